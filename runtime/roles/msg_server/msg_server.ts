/**
 * The msg_server role: holds client connections; login, ping, logout, send,
 * ack, sync; appends to inboxes, pushes to its local connections, and hands
 * messages for users on other msg_servers to the router.
 */
import { randomBytes } from 'node:crypto';
import { randomHex } from '../../protocol/random.js';
import { encodeFrame, MSG_SERVER_OPS, parseRequest, verifyToken, type Request } from '../../protocol/index.js';
import type {
  AckReq,
  LoginReq,
  LogoutReq,
  PingReq,
  SendReq,
  SyncReq,
  TopicCreateReq,
  TopicJoinReq,
  TopicLeaveReq,
  TopicMembersReq,
  TopicSendReq,
} from '../../protocol/types.js';
import type { MsgServerConfig } from '../config.js';
import type { RoleContext } from '../context.js';
import type { TcpSocket } from '../../platform/types.js';
import type { AppendResult, DirEntry, FanoutMessage, Store, StoreTopics, StoredMessage } from '../../store/store.js';
import {
  asStoredMessage,
  BatchPublisher,
  decodeItems,
  type Beat,
  type ClientStatusItem,
  type DeliverItem,
  type TopicStatusItem,
  type TopicSyncItem,
} from '../../bus/payloads.js';
import { RoleStats } from '../../metrics/stats.js';
import { makeBeat } from '../../metrics/beat.js';
import { Conn, msgFrame, TopicFrame, type PushMessage } from './connection.js';

/** Copies a fan-out step appends per store call. */
const FANOUT_STEP = 2000;

/** A mid unique in the cluster forever: time-ordered prefix + 64 random bits. */
let midCounter = 0;
const midNode = randomBytes(4).toString('hex');
export function newMid(now: number): string {
  midCounter = (midCounter + 1) & 0xffffff;
  return now.toString(36) + midNode + midCounter.toString(36).padStart(5, '0') + randomHex(4);
}

export class MsgServer {
  readonly boot = randomBytes(8).toString('hex');
  readonly stats = new RoleStats();
  /** local connections of each user (every device) */
  private readonly byUser = new Map<string, Set<Conn>>();
  private readonly conns = new Set<Conn>();
  private readonly pub: BatchPublisher;
  private stopping = false;
  addr = '';

  constructor(
    readonly ctx: RoleContext,
    readonly config: MsgServerConfig,
  ) {
    this.pub = new BatchPublisher(ctx.bus);
  }

  get id(): string {
    return this.config.id;
  }

  get connectionCount(): number {
    return this.conns.size;
  }

  // ---- connections -------------------------------------------------------

  accept(sock: TcpSocket): void {
    if (this.stopping) {
      sock.destroy();
      return;
    }
    const settings = this.ctx.settings;
    if (this.conns.size >= settings.maxConnections) {
      // Full: say so before reading anything, and close (PROTOCOL.md §2).
      this.stats.countOut();
      sock.onData(() => undefined); // nothing it sends is read, nor kept
      sock.write(OVERLOADED_FRAME(settings.maxConnections));
      sock.end();
      const t = setTimeout(() => sock.destroy(), 2000);
      t.unref?.();
      return;
    }
    const conn = new Conn(
      sock,
      {
        readInbox: async (user, after, limit) => (await this.ctx.store.readInbox(user, after, limit)).messages,
        onPushed: (n) => this.stats.countOut(n),
        onSlow: (c) => this.kickSlow(c),
      },
      {
        maxFrame: settings.maxFrame,
        maxOutBuffer: settings.maxOutBuffer,
        sendRate: settings.sendRate,
        drainTimeout: Math.max(1000, settings.heartbeat),
      },
    );
    this.conns.add(conn);
    conn.loginTimer = setTimeout(() => {
      conn.loginTimer = undefined;
      if (conn.loggedIn || conn.closing) return;
      conn.closing = true;
      conn.sock.end();
      const t = setTimeout(() => conn.sock.destroy(), 2000);
      t.unref?.();
    }, settings.loginTimeout);
    conn.loginTimer.unref?.();
    sock.onData((chunk) => this.onData(conn, chunk));
    sock.onClose(() => void this.onClose(conn));
  }

  /** More than maxOutBuffer unsent: kick `slow`; its messages wait in its inbox. */
  private kickSlow(conn: Conn): void {
    if (conn.closing) return;
    if (conn.loggedIn && conn.push) this.status({ k: 'kick', user: conn.user!, device: conn.device, server: this.id, gen: conn.gen, reason: 'slow', ts: Date.now() });
    conn.kick('slow');
  }

  private onData(conn: Conn, chunk: Uint8Array): void {
    conn.lastSeen = Date.now();
    if (conn.closing) return;
    const err = conn.decoder.feed(chunk, (payload) => {
      // The payload view is only valid during this call: keep a copy.
      conn.requests.push(payload.slice());
      conn.queuedBytes += payload.length;
    });
    if (conn.requests.length > MAX_QUEUED_REQUESTS || conn.queuedBytes > MAX_QUEUED_BYTES) {
      // A client that sends far ahead of the replies: the server sheds it rather than buffer without bound.
      conn.requests = [];
      conn.queuedBytes = 0;
      conn.error('overloaded', `more than ${MAX_QUEUED_REQUESTS} requests or ${MAX_QUEUED_BYTES >> 20} MiB waiting on this connection; wait for replies before sending more`);
      conn.closing = true;
      conn.sock.end();
      return;
    }
    if (err) {
      // Replies to frames before the bad one keep their order: queue the error too.
      conn.requests.push(err === 'frame_too_large' ? TOO_LARGE : BAD_FRAME);
    }
    if (!conn.busy) void this.drain(conn);
  }

  /**
   * Handles queued requests in arrival order, replies in that order too.
   * Consecutive sends are pipelined: their appends go to the store together
   * (one group commit / one Redis call), then each is answered and pushed in
   * turn. Any other request waits until the sends before it are answered.
   */
  private async drain(conn: Conn): Promise<void> {
    conn.busy = true;
    const sends: PendingSend[] = [];
    try {
      while (conn.requests.length && !conn.closing) {
        const payload = conn.requests.shift()!;
        conn.queuedBytes -= payload.length;
        if (payload === TOO_LARGE || payload === BAD_FRAME) {
          await this.finishSends(conn, sends);
          conn.error(payload === TOO_LARGE ? 'frame_too_large' : 'bad_frame', payload === TOO_LARGE ? `frame larger than maxFrame (${this.ctx.settings.maxFrame} bytes)` : 'frame length 0');
          conn.closing = true;
          conn.sock.end();
          break;
        }
        const t0 = performance.now();
        this.stats.countIn();
        const parsed = parseRequest(payload, { ops: MSG_SERVER_OPS, maxFrame: this.ctx.settings.maxFrame });
        if (parsed.ok && parsed.req.op === 'send' && conn.loggedIn) {
          if (!conn.takeToken(Date.now())) {
            await this.finishSends(conn, sends);
            this.rateLimited(conn, parsed.req.rid);
            continue;
          }
          sends.push(this.startSend(conn, parsed.req, t0));
          if (sends.length < MAX_PIPELINED_SENDS && conn.requests.length > 0) continue;
          await this.finishSends(conn, sends);
          continue;
        }
        await this.finishSends(conn, sends);
        if (conn.closing) break;
        if (!parsed.ok) {
          conn.error(parsed.code, parsed.message, parsed.rid);
          if (parsed.code === 'bad_frame' || parsed.code === 'frame_too_large') {
            conn.closing = true;
            conn.sock.end();
            break;
          }
          continue;
        }
        try {
          await this.handle(conn, parsed.req);
        } catch (err) {
          this.ctx.log.error(`${parsed.req.op} failed: ${(err as Error)?.message ?? err}`);
          conn.error('internal', 'server fault; the request may be retried', parsed.req.rid);
        }
        this.stats.latency(performance.now() - t0);
      }
      await this.finishSends(conn, sends);
    } finally {
      conn.busy = false;
    }
  }

  /** Starts a send's append (the sender is logged in and within its rate). */
  private startSend(conn: Conn, req: SendReq, t0: number): PendingSend {
    const ts = Date.now();
    const append = this.ctx.store.appendP2P({ from: conn.user!, to: req.to, mid: newMid(ts), body: req.body, ts, cid: req.cid });
    append.catch(() => undefined); // awaited in finishSends; never an unhandled rejection meanwhile
    return { req, append, t0 };
  }

  /** Answers and pushes the started sends, in order. */
  private async finishSends(conn: Conn, sends: PendingSend[]): Promise<void> {
    for (let i = 0; i < sends.length; i++) {
      const { req, append, t0 } = sends[i]!;
      try {
        this.sent(conn, req, await append);
      } catch (err) {
        this.ctx.log.error(`send failed: ${(err as Error)?.message ?? err}`);
        conn.error('internal', 'server fault; the request may be retried', req.rid);
      }
      this.stats.latency(performance.now() - t0);
    }
    sends.length = 0;
  }

  private async handle(conn: Conn, req: Request): Promise<void> {
    if (req.op === 'login') return this.login(conn, req);
    if (req.op === 'ping') return this.ping(conn, req);
    if (!conn.loggedIn) {
      conn.error('not_logged_in', `log in before "${req.op}"`, req.rid);
      return;
    }
    if (req.op === 'topic_send' && !conn.takeToken(Date.now())) {
      this.rateLimited(conn, req.rid);
      return;
    }
    switch (req.op) {
      case 'logout':
        return this.logout(conn, req);
      case 'send':
        // (drain pipelines every send of a logged-in connection; this path is not taken)
        return this.finishSends(conn, [this.startSend(conn, req, performance.now())]);
      case 'ack':
        return this.ack(conn, req);
      case 'sync':
        return this.sync(conn, req);
      case 'topic_create':
        return this.topicCreate(conn, req);
      case 'topic_join':
        return this.topicJoin(conn, req);
      case 'topic_leave':
        return this.topicLeave(conn, req);
      case 'topic_members':
        return this.topicMembers(conn, req);
      case 'topic_send':
        return this.topicSend(conn, req);
      default:
        conn.error('unknown_op', `unknown op "${req.op}"`, req.rid);
    }
  }

  private async onClose(conn: Conn): Promise<void> {
    this.conns.delete(conn);
    conn.closing = true;
    clearTimeout(conn.loginTimer);
    conn.wakeDrain();
    const user = conn.user;
    if (user === undefined) return;
    this.unregister(conn);
    if (conn.push) {
      try {
        await this.ctx.store.removeSession(user, conn.device, conn.gen);
      } catch {
        // the lease expires and the manager removes it
      }
      this.status({ k: 'logout', user, device: conn.device, server: this.id, gen: conn.gen, ts: Date.now() });
    }
  }

  private register(conn: Conn): void {
    let set = this.byUser.get(conn.user!);
    if (!set) this.byUser.set(conn.user!, (set = new Set()));
    set.add(conn);
  }

  private unregister(conn: Conn): void {
    const set = this.byUser.get(conn.user!);
    if (!set) return;
    set.delete(conn);
    if (set.size === 0) this.byUser.delete(conn.user!);
  }

  private status(item: ClientStatusItem): void {
    this.pub.add(this.ctx.channels.clientStatus, item);
  }

  // ---- ops -----------------------------------------------------------------

  async login(conn: Conn, req: LoginReq): Promise<void> {
    if (conn.loggedIn) {
      conn.error('bad_request', 'already logged in on this connection', req.rid);
      return;
    }
    if (this.ctx.auth.mode === 'token') {
      const v = verifyToken(this.ctx.auth.secret, req.token, req.user);
      if (!v.ok) {
        conn.error('auth_failed', v.reason, req.rid);
        conn.closing = true;
        conn.sock.end();
        return;
      }
    }
    // Login writes before it reads: the directory entry, then head and backlog.
    const res = await this.ctx.store.login({ user: req.user, device: req.device, server: this.id, boot: this.boot, push: req.push });
    if (conn.closing) {
      if (req.push) await this.ctx.store.removeSession(req.user, req.device, res.gen).catch(() => false);
      return;
    }
    conn.user = req.user;
    conn.device = req.device;
    conn.push = req.push;
    conn.gen = res.gen;
    clearTimeout(conn.loginTimer);
    conn.loginTimer = undefined;
    const head = res.head;
    const from = Math.max(res.acked, head.first - 1);
    if (req.push) {
      conn.hold(head.seq + 1);
      this.register(conn);
      this.replaceOlder(req.user, req.device, res.gen, res.replaced);
    }
    conn.reply({ op: 'ok', rid: req.rid, user: req.user, device: req.device, server: this.id, seq: head.seq, acked: res.acked, first: head.first, epoch: head.epoch });
    if (!req.push) return;
    this.status({ k: 'login', user: req.user, device: req.device, server: this.id, gen: res.gen, ts: Date.now() });
    // The backlog, oldest first, at most loginPush; the rest is for sync.
    try {
      const want = Math.min(this.ctx.settings.loginPush, head.seq - from);
      let after = from;
      let left = want;
      while (left > 0 && !conn.closing) {
        const { messages } = await this.ctx.store.readInbox(req.user, after, Math.min(left, 1000));
        if (messages.length === 0) break;
        for (const m of messages) {
          if (m.seq > head.seq) break;
          const f = msgFrame(m);
          // A large backlog goes out as fast as the client reads it, never over maxOutBuffer.
          const wait = conn.room(f.length);
          if (wait) await wait;
          if (conn.closing) break;
          conn.write(f);
        }
        this.stats.countOut(messages.length);
        after = messages[messages.length - 1]!.seq;
        left -= messages.length;
      }
    } finally {
      conn.release(head.seq + 1);
    }
  }

  /** Ends local sessions of user+device older than `gen`, and asks the server of the replaced entry to do the same. */
  private replaceOlder(user: string, device: string, gen: number, replaced?: DirEntry): void {
    this.kickOlder(user, device, gen);
    if (replaced && (replaced.server !== this.id || replaced.boot !== this.boot)) {
      const item: DeliverItem = { k: 'kick', user, device, gen };
      this.pub.add(this.ctx.channels.deliver(replaced.server), item);
    }
  }

  private kickOlder(user: string, device: string, gen: number): void {
    const set = this.byUser.get(user);
    if (!set) return;
    for (const c of set) {
      if (c.device === device && c.push && c.gen < gen) {
        this.unregister(c);
        c.kick('replaced');
        this.status({ k: 'kick', user, device, server: this.id, gen: c.gen, reason: 'replaced', ts: Date.now() });
      }
    }
  }

  async ping(conn: Conn, req: PingReq): Promise<void> {
    if (!conn.loggedIn) {
      conn.reply({ op: 'pong', rid: req.rid });
      return;
    }
    const { head, gen } = await this.ctx.store.check(conn.user!, conn.device);
    if (conn.push && gen > conn.gen) {
      // A newer login of this device exists somewhere in the cluster.
      this.unregister(conn);
      conn.kick('replaced');
      return;
    }
    // Repair lost pushes before answering, so a pong means "you have it all".
    if (conn.push) await conn.fill(head.seq);
    conn.reply({ op: 'pong', rid: req.rid, seq: head.seq });
  }

  async logout(conn: Conn, req: LogoutReq): Promise<void> {
    const user = conn.user!;
    this.unregister(conn);
    if (conn.push) {
      await this.ctx.store.removeSession(user, conn.device, conn.gen);
      this.status({ k: 'logout', user, device: conn.device, server: this.id, gen: conn.gen, ts: Date.now() });
    }
    conn.user = undefined;
    conn.reply({ op: 'ok', rid: req.rid });
    conn.closing = true;
    conn.sock.end();
  }

  private rateLimited(conn: Conn, rid: number | undefined): void {
    const { rate, burst } = this.ctx.settings.sendRate;
    conn.error('rate_limited', `over the send rate (${rate}/s, burst ${burst}); retry later`, rid);
  }

  /** A send is stored: the ok, then the pushes (local, and to each other msg_server in the directory). */
  private sent(conn: Conn, req: SendReq, res: AppendResult): void {
    conn.reply({ op: 'ok', rid: req.rid, mid: res.mid, seq: res.seq, ts: res.ts });
    if (res.duplicate) return;
    const msg: StoredMessage = { seq: res.seq, mid: res.mid, from: conn.user!, to: req.to, body: req.body, ts: res.ts };
    this.deliverLocal(req.to, msg);
    // The append returned the recipient's directory entries, read in the same atomic step as
    // the seq: publish straight to each other msg_server holding a session (DESIGN.md: the
    // router hop costs a lookup and a publish per message and gives p2p nothing).
    const dir = res.sessions;
    let item: DeliverItem | undefined;
    next: for (let i = 0; i < dir.length; i++) {
      const server = dir[i]!.server;
      if (server === this.id) continue;
      for (let j = 0; j < i; j++) if (dir[j]!.server === server) continue next; // a user has few devices
      item ??= { k: 'msg', user: req.to, msg };
      this.pub.add(this.ctx.channels.deliver(server), item);
    }
  }

  async ack(conn: Conn, req: AckReq): Promise<void> {
    await this.ctx.store.ack(conn.user!, conn.device, req.seq);
  }

  async sync(conn: Conn, req: SyncReq): Promise<void> {
    const { messages, head } = await this.ctx.store.readInbox(conn.user!, req.after, req.limit);
    for (const m of messages) {
      const f = msgFrame(m, req.rid);
      const wait = conn.room(f.length);
      if (wait) await wait;
      if (conn.closing) return;
      conn.write(f);
    }
    this.stats.countOut(messages.length);
    const last = messages.length ? messages[messages.length - 1]!.seq : req.after;
    const more = last < head.seq && head.first <= head.seq;
    conn.reply({ op: 'ok', rid: req.rid, last, more, first: head.first, epoch: head.epoch });
  }

  // ---- topics --------------------------------------------------------------

  private topicStatus(k: TopicStatusItem['k'], topic: string, user: string): void {
    this.pub.add(this.ctx.channels.topicStatus, { k, topic, user, server: this.id, ts: Date.now() } satisfies TopicStatusItem);
  }

  async topicCreate(conn: Conn, req: TopicCreateReq): Promise<void> {
    if (!(await this.topics.topicCreate(req.topic, conn.user!, Date.now()))) {
      conn.error('topic_exists', `topic "${req.topic}" exists`, req.rid);
      return;
    }
    conn.reply({ op: 'ok', rid: req.rid });
    this.topicStatus('create', req.topic, conn.user!);
  }

  async topicJoin(conn: Conn, req: TopicJoinReq): Promise<void> {
    const max = this.ctx.settings.maxTopicMembers;
    const info = await this.topics.topicInfo(req.topic);
    if (info === null) {
      conn.error('no_such_topic', `no topic "${req.topic}"`, req.rid);
      return;
    }
    // Full: a member joining again still gets its ok (join is idempotent); no one else gets in.
    // (Checked before the join, not in the store's join step: joins racing on a topic one short
    // of full may pass it by the number of racers.)
    if (info.members >= max && !(await this.isMember(req.topic, conn.user!))) {
      conn.error('bad_request', `topic is full (${info.members} members, at most ${max})`, req.rid);
      return;
    }
    const members = await this.topics.topicJoin(req.topic, conn.user!);
    if (members === null) {
      conn.error('no_such_topic', `no topic "${req.topic}"`, req.rid);
      return;
    }
    conn.reply({ op: 'ok', rid: req.rid, members });
    this.topicStatus('join', req.topic, conn.user!);
  }

  /** Whether `user` is a member: the first member sorting after the name just below it. */
  private async isMember(topic: string, user: string): Promise<boolean> {
    // Names use [A-Za-z0-9_.@-] (all below 0x7f): every name starting with the last character
    // lowered sorts before `below`, and `below` sorts before `user`.
    const last = user.charCodeAt(user.length - 1);
    const below = user.slice(0, -1) + String.fromCharCode(last - 1) + '\x7f';
    const page = await this.topics.topicMembers(topic, below, 1);
    return page?.members[0] === user;
  }

  async topicLeave(conn: Conn, req: TopicLeaveReq): Promise<void> {
    const r = await this.topics.topicLeave(req.topic, conn.user!);
    if (r === 'no_such_topic') conn.error('no_such_topic', `no topic "${req.topic}"`, req.rid);
    else if (r === 'not_a_member') conn.error('not_a_member', `not a member of "${req.topic}"`, req.rid);
    else {
      conn.reply({ op: 'ok', rid: req.rid });
      this.topicStatus('leave', req.topic, conn.user!);
    }
  }

  async topicMembers(conn: Conn, req: TopicMembersReq): Promise<void> {
    const page = await this.topics.topicMembers(req.topic, req.after, req.limit);
    if (!page) conn.error('no_such_topic', `no topic "${req.topic}"`, req.rid);
    else conn.reply({ op: 'ok', rid: req.rid, members: page.members, more: page.more });
  }

  async topicSend(conn: Conn, req: TopicSendReq): Promise<void> {
    const ts = Date.now();
    const r = await this.topics.topicAppend({ topic: req.topic, from: conn.user!, mid: newMid(ts), body: req.body, ts, cid: req.cid });
    if (r.code !== 'ok') {
      conn.error(r.code, r.code === 'no_such_topic' ? `no topic "${req.topic}"` : `not a member of "${req.topic}"`, req.rid);
      return;
    }
    conn.reply({ op: 'ok', rid: req.rid, mid: r.mid, tseq: r.tseq, ts: r.ts });
    // A repeat (cid) may still find its fan-out unfinished: running it is harmless.
    this.fanout(req.topic);
  }

  private get topics(): Store & StoreTopics {
    return this.ctx.store;
  }

  private readonly fanouts = new Map<string, { again: boolean }>();

  /** Runs the topic's fan-out to the end; a send during a run makes it go once more. */
  fanout(topic: string): void {
    const running = this.fanouts.get(topic);
    if (running) {
      running.again = true;
      return;
    }
    const state = { again: false };
    this.fanouts.set(topic, state);
    void (async () => {
      try {
        do {
          state.again = false;
          for (let step = 0; step < 10_000; step++) {
            const { messages, done } = await this.topics.topicFanout(topic, FANOUT_STEP);
            for (const msg of messages) this.pushTopic(msg);
            if (done) break;
          }
        } while (state.again);
      } catch (err) {
        // The stored position is where the manager resumes it.
        this.ctx.log.warn(`fan-out of ${topic} stopped: ${(err as Error).message}`);
      } finally {
        this.fanouts.delete(topic);
      }
    })();
  }

  /** Pushes a fan-out step: to local members directly, to the others through the router. */
  private pushTopic(msg: FanoutMessage): void {
    if (msg.copies.length === 0) return;
    this.deliverTopic(msg);
    this.pub.add(this.ctx.channels.topicSync, { origin: this.id, msg } satisfies TopicSyncItem);
  }

  private deliverTopic(msg: FanoutMessage): void {
    let tpl: TopicFrame | undefined;
    for (const copy of msg.copies) {
      const set = this.byUser.get(copy.user);
      if (!set) continue;
      tpl ??= new TopicFrame(msg);
      const m: PushMessage = { seq: copy.seq, mid: msg.mid, from: msg.from, topic: msg.topic, tseq: msg.tseq, body: msg.body, ts: msg.ts, tpl };
      for (const c of set) c.pushMsg(m);
    }
  }

  // ---- pushes from the bus -------------------------------------------------

  deliverLocal(user: string, msg: StoredMessage): void {
    const set = this.byUser.get(user);
    if (!set) return;
    for (const c of set) c.pushMsg(msg);
  }

  onDeliver = (payload: Uint8Array): void => {
    for (const item of decodeItems<DeliverItem>(payload)) {
      if (!item || typeof item !== 'object') continue;
      if (item.k === 'msg' && typeof item.user === 'string' && item.msg) this.deliverLocal(item.user, asStoredMessage(item.msg));
      else if (item.k === 'topic' && item.msg && Array.isArray(item.msg.copies)) this.deliverTopic(asFanout(item.msg));
      else if (item.k === 'kick' && typeof item.user === 'string') this.kickOlder(item.user, item.device, item.gen);
    }
  };

  /** After the bus came back: pushes may have been lost; each session checks the store. */
  recheckAll(): void {
    for (const c of this.conns) {
      if (!c.loggedIn || !c.push) continue;
      void this.ctx.store
        .head(c.user!)
        .then((h) => c.fill(h.seq))
        .catch(() => undefined);
    }
  }

  // ---- liveness, lease, beats ------------------------------------------------

  /** Closes connections from which nothing arrived for 2.5 × heartbeat. */
  sweepIdle(now: number): void {
    const limit = this.ctx.settings.heartbeat * 2.5;
    for (const c of this.conns) {
      if (now - c.lastSeen > limit) {
        c.closing = true;
        c.sock.destroy();
      }
    }
  }

  /** Renews the lease; if it had expired, writes back this server's directory entries. */
  async renewLease(first: boolean): Promise<void> {
    const alive = await this.ctx.store.renewLease(this.id, this.boot, this.ctx.settings.beat * 3);
    if (alive || first) return;
    this.ctx.log.warn('lease had expired: re-registering local sessions');
    for (const c of this.conns) {
      if (!c.loggedIn || !c.push) continue;
      const ok = await this.ctx.store.restoreSession({ user: c.user!, device: c.device, server: this.id, boot: this.boot, gen: c.gen });
      if (!ok) {
        this.unregister(c);
        c.kick('replaced');
      }
    }
  }

  /** The beat, with `max`: the connection limit, so the gateway stops routing to a full msg_server. */
  beat(): Beat {
    return { ...makeBeat({ role: 'msg_server', id: this.id, addr: this.addr, boot: this.boot, conns: this.conns.size }, this.stats), max: this.ctx.settings.maxConnections };
  }

  /** Drain: kick `draining` to every client, remove their directory entries. */
  async drainAll(): Promise<void> {
    this.stopping = true;
    const removals: Promise<unknown>[] = [];
    for (const c of this.conns) {
      if (c.loggedIn && c.push) {
        this.unregister(c);
        removals.push(this.ctx.store.removeSession(c.user!, c.device, c.gen).catch(() => false));
      }
      c.kick('draining');
    }
    await Promise.all(removals);
  }

  flush(): void {
    this.pub.flush();
  }
}

function asFanout(m: FanoutMessage): FanoutMessage {
  if (!(m.body instanceof Uint8Array)) m.body = new Uint8Array(0);
  return m;
}

/** Requests a connection may have waiting for their turn before it is shed with `overloaded`. */
const MAX_QUEUED_REQUESTS = 10_000;
const MAX_QUEUED_BYTES = 16 << 20;
/** Sends of one connection whose appends run together before the first is answered. */
const MAX_PIPELINED_SENDS = 64;

interface PendingSend {
  req: SendReq;
  append: Promise<AppendResult>;
  t0: number;
}

const TOO_LARGE = new Uint8Array(0);
let overloadedFrame: { max: number; frame: Uint8Array } | undefined;
/** The `overloaded` error a connection beyond maxConnections gets (encoded once). */
function OVERLOADED_FRAME(max: number): Uint8Array {
  if (overloadedFrame?.max !== max) {
    overloadedFrame = { max, frame: encodeFrame({ op: 'error', code: 'overloaded', message: `this msg_server is full (${max} connections); reconnect elsewhere with backoff` }) };
  }
  return overloadedFrame.frame;
}
const BAD_FRAME = new Uint8Array(0);
