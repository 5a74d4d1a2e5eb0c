/**
 * What the manager does every beat (docs/architecture.md "Leases, not guesses" and
 * "Topics: log, then fan-out"):
 * - removes the directory entries of every msg_server whose lease expired,
 *   so its users' later messages wait in their inboxes for their next login;
 * - trims inboxes, topic logs and cid records past retention (at start, then
 *   hourly);
 * - resumes the fan-outs a msg_server left behind (it died mid fan-out), and
 *   hands each step's copies to the router on `/sysctrl/topic-sync`.
 * Each job runs at most once at a time; a beat that finds one still running
 * skips it.
 */
import type { RoleContext } from '../../contract/context.js';
import { encodeItems, type TopicSyncItem } from '../../bus/payloads.js';

const TRIM_EVERY_MS = 3600_000;
/** Copies per fan-out step. */
const FANOUT_STEP = 1000;

type Ctx = RoleContext;

export class Housekeeping {
  private readonly running = new Map<string, Promise<void>>();
  /** topics whose fan-out this process is running */
  private readonly fanouts = new Map<string, Promise<void>>();
  private lastTrim = 0;
  private stopping = false;

  constructor(
    private readonly ctx: Ctx,
    private readonly id: string,
  ) {}

  /** Starts this beat's jobs (those not still running from an earlier beat). */
  tick(now = Date.now()): void {
    if (this.stopping) return;
    this.once('leases', () => this.expireLeases(now));
    this.once('fanouts', () => this.resumeFanouts());
    if (now - this.lastTrim >= TRIM_EVERY_MS) {
      this.once('trim', async () => {
        this.lastTrim = now;
        await this.trim(now);
      });
    }
  }

  /** Lets running jobs finish (fan-outs stop at their next step) and starts no more. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all([...this.running.values(), ...this.fanouts.values()]);
  }

  private once(job: string, fn: () => Promise<void>): void {
    if (this.running.has(job)) return;
    const p = fn()
      .catch((err) => this.ctx.log.warn(`${job}: ${(err as Error).message}`))
      .finally(() => this.running.delete(job));
    this.running.set(job, p);
  }

  async expireLeases(now: number): Promise<void> {
    const { store, log } = this.ctx;
    for (const { server, boot } of await store.expiredLeases(now)) {
      if (this.stopping) return;
      const n = await store.removeServerSessions(server, boot);
      log.info(
        `msg_server ${server} (boot ${boot}) lost its lease: removed ${n} directory ${n === 1 ? 'entry' : 'entries'}; its users' messages wait in their inboxes`,
      );
    }
  }

  async trim(now: number): Promise<void> {
    const n = await this.ctx.store.trim(now);
    if (n > 0) this.ctx.log.info(`trimmed ${n} messages past retention`);
  }

  /**
   * Resumes the fan-outs that stalled: a topic behind whose position has not
   * moved since the last beat (its msg_server died mid-way, or lost the store).
   * One that moves is being run by a msg_server: running it here too would
   * only repeat its steps (idempotent, but twice the store work under load).
   */
  async resumeFanouts(): Promise<void> {
    const { store } = this.ctx;
    const seen = new Map<string, number>();
    for (const topic of await store.topicsBehind()) {
      const info = await store.topicInfo(topic);
      if (info === null) continue;
      seen.set(topic, info.fanned);
      if (this.behind.get(topic) === info.fanned) this.fanout(topic);
    }
    this.behind = seen;
  }

  /** topics behind at the last beat → their fan-out position then */
  private behind = new Map<string, number>();

  /** Runs the topic's fan-out to the end, unless this process already runs it. */
  fanout(topic: string): void {
    if (this.stopping || this.fanouts.has(topic)) return;
    const p = this.runFanout(topic)
      .catch((err) =>
        this.ctx.log.warn(`fan-out of topic ${topic} stopped: ${(err as Error).message}; the next beat resumes it`),
      )
      .finally(() => this.fanouts.delete(topic));
    this.fanouts.set(topic, p);
  }

  private async runFanout(topic: string): Promise<void> {
    const { store, bus, channels } = this.ctx;
    let copies = 0;
    while (!this.stopping) {
      const { messages, done } = await store.topicFanout(topic, FANOUT_STEP);
      const items: TopicSyncItem[] = [];
      for (const msg of messages) {
        if (msg.copies.length === 0) continue;
        items.push({ origin: this.id, msg });
        copies += msg.copies.length;
      }
      // One publish per step; the router sends one deliver per msg_server.
      if (items.length > 0) bus.publish(channels.topicSync, encodeItems(items));
      if (done) break;
    }
    if (copies > 0)
      this.ctx.log.info(`resumed the fan-out of topic ${topic}: ${copies} inbox ${copies === 1 ? 'copy' : 'copies'}`);
  }
}
