/**
 * Chaos runs: a real cluster from `fishchat up` (the compiled dist/,
 * so `npm run build` first) under steady p2p traffic from the client library,
 * while something breaks on a schedule:
 *
 * - `kill-ms`: Redis mode (`up --redis` on a private redis-server with
 *   appendonly yes, appendfsync always), two msg_servers; every `everyMs` one
 *   msg_server process (alternating, pid from run.json, which `up` rewrites
 *   after a restart) gets SIGKILL and the supervisor restarts it.
 * - `restart-redis`: the same cluster; every `everyMs` the redis-server gets
 *   SIGTERM and is started again on the same directory (its AOF).
 * - `kill-up`: embedded mode (`up --embedded`, every role in one process,
 *   SQLite under the cluster directory), fixed ports in the role files; every
 *   `everyMs` the whole `up` process gets SIGKILL and a new `up` is started on
 *   the same directory.
 *
 * Traffic: `pairs` senders (push: false) and `pairs` receivers (autoAck), all
 * through the gateway with the client's reconnect and catch-up. Sender i sends
 * to receiver i one message after another, `intervalMs` apart, each with a cid
 * of its own, retried with the same cid until the server says ok. Receiver i
 * has no other sender, so its inbox must end up holding exactly the messages
 * acknowledged to sender i: seqs 1..n, each once.
 *
 * What is measured: every `ok` (mid, seq, when, on which msg_server); every
 * message as the app saw it (the client's 'message' event); and every raw
 * `msg` frame that reached a client connection (push or sync page) before the
 * client's own seq filter, through a tap on the client's Connection (see
 * `installFrameTap`), so repeats the client dropped are counted too.
 *
 * Checks (`problems` in the result; empty when all is well): no acknowledged
 * mid missing at its receiver (lost), no mid handed to the app twice, no
 * message stored twice (one k under two mids), no seq handed to the app out
 * of order, and per receiver the seqs received are exactly the seqs of its
 * oks. A loss names the receiver, seq, mid, when it was acked, and the chaos
 * events around it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Connection, FishClient, type Frame, type Msg } from '../../runtime/client/index.js';
import { signToken } from '../../runtime/protocol/token.js';
import { BIN, CLEAN_ENV, fishchat, NODE, ROOT } from './cli.js';
import { freePort } from './net.js';
import { RedisServer } from './redis-server.js';
import { processAlive } from '../../runtime/cluster/run-file.js';
import { eachLine } from '../../runtime/cluster/supervisor.js';
import { deleteKeysWithPrefix } from '../../runtime/redis/index.js';
import { parseRedisUrl } from '../../runtime/cluster/backends.js';

const ROLE_FILES = [
  'gateway.json',
  'msg_server.19000.json',
  'msg_server.19001.json',
  'router.json',
  'manager.json',
  'monitor.json',
];

export type ChaosMode = 'kill-ms' | 'restart-redis' | 'kill-up' | 'custom';

export interface ChaosOptions {
  mode: ChaosMode;
  /** how long the traffic runs, ms */
  durationMs: number;
  /** sender/receiver pairs */
  pairs: number;
  /** pause between one sender's ok and its next send, ms */
  intervalMs: number;
  /** a chaos event every this many ms (the first one after this long) */
  everyMs: number;
  /** at most this many chaos events (default: as many as fit in durationMs) */
  maxEvents?: number;
  /** restart-redis: how long the redis-server stays down before it is started again, ms (default 1000) */
  redisDownMs?: number;
  /** restart-redis: the signal that stops it (default SIGTERM: Redis writes its AOF out and exits) */
  redisSignal?: NodeJS.Signals;
  /** how long to wait for the last messages after the traffic stops, ms */
  deliveryTimeoutMs?: number;
  /** how long one message may take to get its ok, retries included, ms */
  sendTimeoutMs?: number;
  /** progress lines */
  log?: (line: string) => void;
  /**
   * kill-ms and custom: an external Redis instead of a private redis-server
   * (such as a Redis Cluster, `redis://127.0.0.1:PORT?cluster=1`); the run's
   * keys are deleted from it afterwards.
   */
  redisUrl?: string;
  /**
   * custom: the chaos event, called every `everyMs` (at most `maxEvents`
   * times); `event` writes the timeline (a line starting "kill -9" counts as
   * a chaos event).
   */
  chaos?: (event: (what: string) => void, ctx: { dir: string; index: number }) => Promise<void>;
  /**
   * After delivery, before the cluster stops: more checks against the live
   * cluster, given every ok per receiver (in send order); the problems it
   * returns go into the result's.
   */
  verify?: (v: ChaosVerify) => Promise<string[]>;
}

/** What `verify` gets. */
export interface ChaosVerify {
  gateway: string;
  /** a token for any user of the run */
  token: (user: string) => () => string;
  /** receiver → the oks of its sender, in send order */
  oks: Map<string, { k: number; mid: string; seq: number; at: number }[]>;
  /** ms since the traffic started (the timeline's clock) */
  now: () => number;
}

export interface ChaosEvent {
  /** ms since the traffic started */
  t: number;
  what: string;
}

export interface LostMessage {
  receiver: string;
  seq: number;
  mid: string;
  k: number;
  /** ms since the traffic started */
  ackedAt: number;
  /** the msg_server the sender was logged in on when it got the ok */
  ackedOn: string;
  /** the chaos events within 3 s of the ok */
  near: ChaosEvent[];
  /** the receiver's disconnects and logins (server, login seq) */
  receiverLog: ChaosEvent[];
}

export interface ChaosResult {
  run: string;
  mode: ChaosMode;
  pairs: number;
  durationMs: number;
  intervalMs: number;
  everyMs: number;
  /** restart-redis: how long Redis stayed down each time, ms */
  redisDownMs?: number;
  redisSignal?: NodeJS.Signals;
  /** chaos events done: kills, Redis restarts */
  events: number;
  /** messages that got ok */
  acked: number;
  /** distinct acknowledged mids the receivers' apps got */
  received: number;
  lost: number;
  /** mids the app got more than once */
  duplicatesAtApp: number;
  /** raw msg frames (pushes and sync pages) the client dropped as repeats */
  rawRepeats: number;
  /** raw msg frames in all */
  rawFrames: number;
  /** messages stored twice (one cid under two mids) */
  storedTwice: number;
  /** seqs below a receiver's highest acked seq that it never got */
  gaps: number;
  /** messages the app got that no sender was told ok about */
  unexpected: number;
  /** messages whose send never got an ok within sendTimeoutMs */
  unconfirmed: number;
  /** failed send attempts retried with the same cid */
  sendRetries: number;
  /** client reconnects (senders and receivers) */
  reconnects: number;
  /** ms from the end of the traffic until every acked message was received */
  drainMs: number;
  /** acked messages per second of traffic */
  rate: number;
  /** the longest time a single message took to get its ok, retries included, ms */
  maxSendMs: number;
  node: string;
  ok: boolean;
  /** what went wrong, in words (empty when ok) */
  problems: string[];
  timeline: ChaosEvent[];
  lostDetail: LostMessage[];
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** `p`, or undefined after `ms` (the timer is cleared either way, so nothing is left pending). */
async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([p, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------- raw frame tap

type FrameListener = (frame: Frame) => void;
const frameListeners = new Set<FrameListener>();
let tapInstalled = false;

/**
 * Sees every `msg` frame that reaches a client connection, before the
 * client's seq filter: the pushes (Connection's onPush) and the pages of a
 * `sync` (a request's onMsg). The client library keeps its de-duplication to
 * itself, so the test wraps Connection.open and Connection#request (test
 * code only; the frames are handed on unchanged).
 */
export function installFrameTap(): void {
  if (tapInstalled) return;
  tapInstalled = true;
  const tap = (frame: Frame) => {
    if (frame.op !== 'msg') return;
    for (const l of frameListeners) l(frame);
  };
  const open = Connection.open.bind(Connection);
  Connection.open = (addr, opts) => {
    const onPush = opts.onPush;
    return open(addr, onPush ? { ...opts, onPush: (f: Frame) => (tap(f), onPush(f)) } : opts);
  };
  const request = Connection.prototype.request;
  Connection.prototype.request = function (this: Connection, op, fields, ro) {
    const onMsg = ro?.onMsg;
    return request.call(this, op, fields, onMsg ? { ...ro, onMsg: (f: Frame) => (tap(f), onMsg(f)) } : ro);
  };
}

// ---------------------------------------------------------------- processes

/** `fishchat up …` as a child process; output kept (bounded) and scanned line by line. */
export class UpProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #out: string[] = [];
  #ready = false;
  #done = false;

  constructor(args: string[], onLine?: (line: string) => void) {
    this.child = spawn(NODE, [BIN, 'up', ...args], {
      cwd: ROOT,
      env: { ...process.env, ...CLEAN_ENV },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const feed = (stream: NodeJS.ReadableStream, tag: string) =>
      eachLine(stream, (line) => {
        if (/^cluster ready in \d+ ms/.test(line)) this.#ready = true;
        this.#out.push(`${tag}${line}`);
        if (this.#out.length > 400) this.#out.splice(0, 100);
        onLine?.(line);
      });
    feed(this.child.stdout!, '');
    feed(this.child.stderr!, 'stderr: ');
    this.exited = new Promise((resolve) =>
      this.child.on('exit', (code, signal) => {
        this.#done = true;
        resolve({ code, signal });
      }),
    );
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return !this.#done && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The last lines of its output. */
  get output(): string {
    return this.#out.slice(-60).join('\n');
  }

  async waitReady(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#ready) {
      if (this.#done) throw new Error(`fishchat up exited before it was ready:\n${this.output}`);
      if (Date.now() > deadline) throw new Error(`fishchat up not ready within ${timeoutMs} ms:\n${this.output}`);
      await sleep(25);
    }
  }

  /** SIGKILL now; resolves when it is gone (bounded). */
  async kill9(timeoutMs = 10_000): Promise<void> {
    if (this.running) this.child.kill('SIGKILL');
    await within(this.exited, timeoutMs);
  }

  /** `signal`, then SIGKILL after `timeoutMs`. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 30_000): Promise<void> {
    if (this.running) this.child.kill(signal);
    const timer = setTimeout(() => this.running && this.child.kill('SIGKILL'), timeoutMs);
    try {
      await within(this.exited, timeoutMs + 5000);
    } finally {
      clearTimeout(timer);
    }
  }
}

interface RunJson {
  pid: number;
  gateway: string;
  roles: { role: string; id: string; pid?: number; addresses: { tcp?: string; http?: string } }[];
}

function readRun(dir: string): RunJson | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, '.fishchat', 'run.json'), 'utf8')) as RunJson;
  } catch {
    return undefined;
  }
}

/** Whether a process with this pid exists (the launcher's own check). */
export const alive = processAlive;

/** A role process of this cluster directory still running (checked through /proc, so a reused pid is left alone). */
function isOurRole(pid: number, dir: string): boolean {
  if (!alive(pid)) return false;
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmd.includes('role-main') && cmd.includes(dir);
  } catch {
    return false;
  }
}

/**
 * `fishchat init` in a new temp directory, under a unique cluster name, with
 * quick beats and heartbeats and a short reconnect backoff. Ports: 0 (from the
 * OS at each start), or `fixed` free ports picked now (so a restarted `up`
 * listens where the clients knew it).
 */
export async function initCluster(opts: {
  fixedPorts: boolean;
}): Promise<{ dir: string; cluster: string; secret: string }> {
  const dir = await realpath(await mkdtemp(join(tmpdir(), 'fishchat-chaos-')));
  const r = await fishchat(['init', dir]);
  if (r.code !== 0) throw new Error(`fishchat init failed: ${r.stdout}${r.stderr}`);
  const cluster = `chaos-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  const file = JSON.parse(await readFile(join(dir, 'fishchat.json'), 'utf8')) as {
    cluster: string;
    roles: string[];
    settings: Record<string, unknown>;
  };
  file.cluster = cluster;
  file.settings = { ...file.settings, beat: 500, heartbeat: 1000, backoff: { base: 100, max: 1000 } };
  await writeFile(join(dir, 'fishchat.json'), JSON.stringify(file, null, 2));
  for (const f of file.roles) {
    const role = JSON.parse(await readFile(join(dir, f), 'utf8')) as Record<string, unknown>;
    if ('port' in role) role.port = opts.fixedPorts ? await freePort() : 0;
    role.httpPort = opts.fixedPorts ? await freePort() : 0;
    await writeFile(join(dir, f), JSON.stringify(role, null, 2));
  }
  if (!file.roles.every((f) => ROLE_FILES.includes(f))) throw new Error(`unexpected role files: ${file.roles}`);
  const secret = (await readFile(join(dir, '.fishchat', 'secret'), 'utf8')).trim();
  return { dir, cluster, secret };
}

// ---------------------------------------------------------------- the run

interface Ok {
  k: number;
  mid: string;
  seq: number;
  at: number;
  on: string;
}

interface Got {
  mid: string;
  seq: number;
  k: number;
  times: number;
}

export async function runChaos(o: ChaosOptions): Promise<ChaosResult> {
  installFrameTap();
  const log = o.log ?? (() => {});
  const deliveryTimeoutMs = o.deliveryTimeoutMs ?? 20_000;
  const sendTimeoutMs = o.sendTimeoutMs ?? 30_000;
  const maxEvents = o.maxEvents ?? Math.max(0, Math.floor((o.durationMs - 1) / o.everyMs));
  const tag = Math.random().toString(36).slice(2, 7);
  const runName = `${o.mode}-${tag}`;
  const problems: string[] = [];
  const timeline: ChaosEvent[] = [];
  let t0 = Date.now();
  const now = () => Date.now() - t0;
  const event = (what: string) => {
    timeline.push({ t: now(), what });
    log(`  [${(now() / 1000).toFixed(2)} s] ${what}`);
  };

  const c = await initCluster({ fixedPorts: o.mode === 'kill-up' });
  let redis: RedisServer | undefined;
  const ups: UpProcess[] = [];
  const clients: FishClient[] = [];
  const rolePids = new Set<number>();
  const trackPids = () => {
    for (const r of readRun(c.dir)?.roles ?? []) if (r.pid) rolePids.add(r.pid);
  };
  const restartedLine = /^(\S+)\s+(\S+)\s+restarted \(pid (\d+)\)/;
  const diedLine = /^(\S+)\s+(\S+)\s+((?:killed by \S+|exited with code \S+); restarting in \d+ ms)/;
  const onUpLine = (line: string) => {
    const m = restartedLine.exec(line);
    if (m) event(`${m[2]} restarted by the supervisor (pid ${m[3]})`);
    const d = diedLine.exec(line);
    if (d) event(`${d[2]} ${d[3]}`);
  };

  let stopTraffic = false;
  /** the run is being torn down: senders stop retrying */
  let aborted = false;
  try {
    // ---- the cluster
    if (o.mode === 'kill-up') {
      ups.push(new UpProcess([c.dir, '--embedded'], onUpLine));
    } else {
      if (o.redisUrl === undefined) redis = await RedisServer.start(['--appendonly', 'yes', '--appendfsync', 'always']);
      ups.push(new UpProcess([c.dir, '--redis', o.redisUrl ?? redis!.url], onUpLine));
    }
    await ups[0]!.waitReady();
    const run = readRun(c.dir);
    if (!run) throw new Error('no run.json after the cluster got ready');
    trackPids();
    const gateway = run.gateway;
    log(
      `cluster ${c.cluster} ready in ${c.dir} (${o.mode}); gateway ${gateway}${redis ? `, redis ${redis.url} (pid ${redis.pid})` : ''}`,
    );

    // ---- clients
    const token = (u: string) => () => signToken(c.secret, u, { ttlSeconds: 3600 });
    const common = { gateway, requestTimeoutMs: 3000 } as const;
    const receiverOf = (i: number) => `r${i}-${tag}`;
    const senderOf = (i: number) => `s${i}-${tag}`;
    const oks = new Map<string, Ok[]>();
    const got = new Map<string, Map<string, Got>>();
    const appSeqs = new Map<string, number[]>();
    const connLog = new Map<string, ChaosEvent[]>();
    const rawSeen = new Map<string, number>();
    let rawFrames = 0;
    let reconnects = 0;
    let sendRetries = 0;
    let unconfirmed = 0;
    let maxSendMs = 0;
    const receivers = new Set<string>();
    const listener: FrameListener = (f) => {
      if (typeof f.to !== 'string' || !receivers.has(f.to)) return;
      rawFrames++;
      const key = `${f.to} ${String(f.seq)}`;
      rawSeen.set(key, (rawSeen.get(key) ?? 0) + 1);
    };
    frameListeners.add(listener);
    try {
      const connectRetrying = async (opts: Parameters<typeof FishClient.connect>[0]) => {
        const deadline = Date.now() + 30_000;
        for (;;) {
          try {
            return await FishClient.connect(opts);
          } catch (err) {
            if (Date.now() > deadline) throw err;
            await sleep(200);
          }
        }
      };
      await Promise.all(
        Array.from({ length: o.pairs }, async (_, i) => {
          const user = receiverOf(i);
          receivers.add(user);
          oks.set(user, []);
          got.set(user, new Map());
          appSeqs.set(user, []);
          const rc = await connectRetrying({ ...common, user, token: token(user), autoAck: true });
          clients.push(rc);
          rc.on('error', () => {});
          const history: ChaosEvent[] = [
            { t: now(), what: `login on ${rc.login.server}, seq ${rc.login.seq}, acked ${rc.login.acked}` },
          ];
          connLog.set(user, history);
          rc.on('disconnect', (d) => history.push({ t: now(), what: `disconnect (${d.reason})` }));
          rc.on('reconnect', (l) => {
            reconnects++;
            if (l.epochChanged)
              problems.push(`${user}: the inbox got a new epoch at ${(now() / 1000).toFixed(2)} s (the store lost it)`);
            history.push({
              t: now(),
              what: `login on ${l.server}, seq ${l.seq}, acked ${l.acked}${l.epochChanged ? ', NEW EPOCH' : ''}; app had up to seq ${rc.lastSeq}`,
            });
          });
          rc.on(
            'kick',
            (k) => k.reason === 'replaced' && problems.push(`${user} was kicked "replaced": it has only one device`),
          );
          rc.on('message', (m: Msg) => {
            const mine = got.get(user)!;
            appSeqs.get(user)!.push(m.seq);
            const prev = mine.get(m.mid);
            if (prev) prev.times++;
            else mine.set(m.mid, { mid: m.mid, seq: m.seq, k: (m.body as { k?: number } | null)?.k ?? -1, times: 1 });
          });
        }),
      );
      const senders = await Promise.all(
        Array.from({ length: o.pairs }, async (_, i) => {
          const user = senderOf(i);
          const sc = await connectRetrying({ ...common, user, token: token(user), push: false });
          clients.push(sc);
          sc.on('error', () => {});
          sc.on('reconnect', () => reconnects++);
          return sc;
        }),
      );
      log(
        `${o.pairs} pairs connected; traffic for ${o.durationMs / 1000} s, a ${o.mode} event every ${o.everyMs / 1000} s (at most ${maxEvents})`,
      );

      // ---- traffic
      t0 = Date.now();
      const sending = senders.map(async (sc, i) => {
        const to = receiverOf(i);
        const mine = oks.get(to)!;
        for (let k = 1; !stopTraffic; k++) {
          const started = Date.now();
          for (;;) {
            try {
              const ok = await sc.send(to, { k, s: i }, { cid: `c${k}` });
              mine.push({ k, mid: ok.mid, seq: ok.seq, at: now(), on: sc.connected ? sc.login.server : '?' });
              maxSendMs = Math.max(maxSendMs, Date.now() - started);
              break;
            } catch {
              if (aborted) return;
              sendRetries++;
              if (Date.now() - started > sendTimeoutMs) {
                unconfirmed++;
                problems.push(
                  `${senderOf(i)} → ${to}: message k=${k} (cid c${k}) got no ok within ${sendTimeoutMs} ms`,
                );
                return;
              }
              await sleep(50);
            }
          }
          if (o.intervalMs > 0) await sleep(o.intervalMs);
        }
      });

      // ---- chaos
      let events = 0;
      const chaos = (async () => {
        let victim = 0;
        const killed = new Set<number>();
        while (events < maxEvents) {
          const at = (events + 1) * o.everyMs;
          while (now() < at && !stopTraffic) await sleep(Math.min(100, at - now()));
          if (stopTraffic) return;
          if (o.mode === 'kill-ms') {
            const id = ['ms-19000', 'ms-19001'][victim % 2]!;
            victim++;
            const r = readRun(c.dir)?.roles.find((x) => x.id === id);
            trackPids();
            if (!r?.pid || killed.has(r.pid) || !isOurRole(r.pid, c.dir)) {
              event(`${id} not running yet (run.json pid ${r?.pid}): not killed this time`);
              events++;
              continue;
            }
            process.kill(r.pid, 'SIGKILL');
            killed.add(r.pid);
            event(`kill -9 ${id} (pid ${r.pid})`);
          } else if (o.mode === 'custom') {
            if (!o.chaos) throw new Error('chaos mode "custom" needs a chaos function');
            await o.chaos(event, { dir: c.dir, index: events });
          } else if (o.mode === 'restart-redis') {
            event(`redis-server ${o.redisSignal ?? 'SIGTERM'} (pid ${redis!.pid})`);
            await redis!.stop(o.redisSignal ?? 'SIGTERM');
            event(`redis-server stopped; starting it again on its AOF in ${o.redisDownMs ?? 1000} ms`);
            await sleep(o.redisDownMs ?? 1000);
            await redis!.run();
            event(`redis-server back (pid ${redis!.pid})`);
          } else {
            const up = ups[ups.length - 1]!;
            event(`kill -9 fishchat up --embedded (pid ${up.pid})`);
            await up.kill9();
            if (up.running) throw new Error(`fishchat up (pid ${up.pid}) still runs after SIGKILL`);
            const next = new UpProcess([c.dir, '--embedded'], onUpLine);
            ups.push(next);
            await next.waitReady(30_000);
            event(`fishchat up --embedded started again (pid ${next.pid})`);
          }
          events++;
        }
      })();

      while (now() < o.durationMs) await sleep(Math.min(100, o.durationMs - now()));
      stopTraffic = true;
      const trafficMs = now();
      await chaos;
      await Promise.all(sending);
      event('traffic stopped; every send answered');
      const ended = Date.now();

      // ---- delivery (bounded)
      const missing = () => {
        let n = 0;
        for (const [to, list] of oks) {
          const mine = got.get(to)!;
          for (const ok of list) if (!mine.has(ok.mid)) n++;
        }
        return n;
      };
      const deadline = Date.now() + deliveryTimeoutMs;
      while (missing() > 0 && Date.now() < deadline) await sleep(100);
      const drainMs = Date.now() - ended;
      if (missing() > 0) event(`${missing()} acknowledged messages still missing after ${deliveryTimeoutMs} ms`);
      else event(`every acknowledged message received ${drainMs} ms after the traffic stopped`);
      // late repeats would show now
      await sleep(1000);
      trackPids();
      if (o.verify) problems.push(...(await o.verify({ gateway, token, oks, now })));

      // ---- checks
      let acked = 0;
      let received = 0;
      let lost = 0;
      let duplicatesAtApp = 0;
      let storedTwice = 0;
      let gaps = 0;
      let unexpected = 0;
      const lostDetail: LostMessage[] = [];
      for (let i = 0; i < o.pairs; i++) {
        const to = receiverOf(i);
        const list = oks.get(to)!;
        const mine = got.get(to)!;
        acked += list.length;
        const okMids = new Set(list.map((x) => x.mid));
        for (const ok of list) {
          if (mine.has(ok.mid)) {
            received++;
            const g = mine.get(ok.mid)!;
            if (g.seq !== ok.seq)
              problems.push(`${to}: mid ${ok.mid} acked with seq ${ok.seq} but received with seq ${g.seq}`);
          } else {
            lost++;
            const near = timeline.filter((e) => Math.abs(e.t - ok.at) <= 3000);
            lostDetail.push({
              receiver: to,
              seq: ok.seq,
              mid: ok.mid,
              k: ok.k,
              ackedAt: ok.at,
              ackedOn: ok.on,
              near,
              receiverLog: connLog.get(to) ?? [],
            });
          }
        }
        for (const g of mine.values()) {
          if (g.times > 1) {
            duplicatesAtApp += g.times - 1;
            problems.push(`${to}: mid ${g.mid} (seq ${g.seq}) handed to the app ${g.times} times`);
          }
          if (!okMids.has(g.mid)) {
            unexpected++;
            const twin = list.find((x) => x.k === g.k);
            if (twin) {
              storedTwice++;
              problems.push(
                `${to}: k=${g.k} stored twice: acked as mid ${twin.mid} seq ${twin.seq}, also received as mid ${g.mid} seq ${g.seq}`,
              );
            } else {
              problems.push(`${to}: received mid ${g.mid} seq ${g.seq} k=${g.k}, which no ok named`);
            }
          }
        }
        // the seqs received are exactly the seqs of the oks
        const okSeqs = list.map((x) => x.seq).sort((a, b) => a - b);
        const gotSeqs = [...mine.values()].map((g) => g.seq).sort((a, b) => a - b);
        const okSet = new Set(okSeqs);
        const gotSet = new Set(gotSeqs);
        const top = okSeqs.length ? okSeqs[okSeqs.length - 1]! : 0;
        for (let s = 1; s <= top; s++) if (!gotSet.has(s)) gaps++;
        if (new Set(okSeqs).size !== okSeqs.length) problems.push(`${to}: one seq given to two acked messages`);
        if (okSeqs.length !== top)
          problems.push(`${to}: acked seqs are not 1..${top} (${okSeqs.length} oks): a seq was spent without an ok`);
        if (
          okSeqs.length !== gotSeqs.length ||
          okSeqs.some((s) => !gotSet.has(s)) ||
          gotSeqs.some((s) => !okSet.has(s))
        ) {
          const notGot = okSeqs.filter((s) => !gotSet.has(s));
          const notOk = gotSeqs.filter((s) => !okSet.has(s));
          const twice = gotSeqs.filter((s, j) => j > 0 && gotSeqs[j - 1] === s);
          problems.push(
            `${to}: seqs received ≠ seqs acked (acked but not received: ${notGot.slice(0, 20).join(',') || '-'}; received but not acked: ${notOk.slice(0, 20).join(',') || '-'}; received under two mids: ${twice.slice(0, 20).join(',') || '-'})`,
          );
        }
        const order = appSeqs.get(to)!;
        for (let j = 1; j < order.length; j++) {
          if (order[j]! <= order[j - 1]!) {
            problems.push(`${to}: the app got seq ${order[j]} after seq ${order[j - 1]}`);
            break;
          }
        }
      }
      for (const l of lostDetail.slice(0, 50)) {
        problems.push(
          `LOST ${l.receiver} seq ${l.seq} mid ${l.mid} (k=${l.k}), acked at ${(l.ackedAt / 1000).toFixed(2)} s on ${l.ackedOn}; events near: ${l.near.map((e) => `${(e.t / 1000).toFixed(2)} s ${e.what}`).join('; ') || 'none'}; receiver: ${l.receiverLog.map((e) => `${(e.t / 1000).toFixed(2)} s ${e.what}`).join('; ')}`,
        );
      }
      let rawRepeats = 0;
      for (const n of rawSeen.values()) rawRepeats += n - 1;

      const result: ChaosResult = {
        run: runName,
        mode: o.mode,
        pairs: o.pairs,
        durationMs: trafficMs,
        intervalMs: o.intervalMs,
        everyMs: o.everyMs,
        ...(o.mode === 'restart-redis'
          ? { redisDownMs: o.redisDownMs ?? 1000, redisSignal: o.redisSignal ?? 'SIGTERM' }
          : {}),
        events: timeline.filter((e) => /^kill -9|^redis-server SIG/.test(e.what)).length,
        acked,
        received,
        lost,
        duplicatesAtApp,
        rawRepeats,
        rawFrames,
        storedTwice,
        gaps,
        unexpected,
        unconfirmed,
        sendRetries,
        reconnects,
        drainMs,
        rate: Math.round(acked / (trafficMs / 1000)),
        maxSendMs,
        node: process.version,
        ok: problems.length === 0,
        problems,
        timeline,
        lostDetail,
      };
      if (result.events === 0 && maxEvents > 0) problems.push('no chaos event happened');
      if (acked === 0) problems.push('no message was acknowledged');
      result.ok = problems.length === 0;
      return result;
    } finally {
      frameListeners.delete(listener);
    }
  } catch (err) {
    const last = ups[ups.length - 1];
    if (last) (err as Error).message += `\n--- fishchat up output (last lines)\n${last.output}`;
    throw err;
  } finally {
    stopTraffic = true;
    aborted = true;
    await Promise.allSettled(clients.map((cl) => within(cl.close(), 3000)));
    trackPids();
    for (const up of ups) await up.stop('SIGTERM', 20_000);
    // Role processes watch up's stdin and stop with it; any left over go by PID.
    for (const pid of rolePids) {
      if (isOurRole(pid, c.dir)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
    if (redis) {
      await deleteKeys(redis.url, c.cluster).catch(() => {});
      await redis.destroy();
    } else if (o.redisUrl !== undefined) {
      const { url, cluster } = parseRedisUrl(o.redisUrl);
      await deleteKeysWithPrefix(url, `fishchat:${c.cluster}:`, cluster).catch(() => {});
    }
    await rm(c.dir, { recursive: true, force: true }).catch(() => {});
  }
}

const deleteKeys = (url: string, cluster: string): Promise<void> => deleteKeysWithPrefix(url, `fishchat:${cluster}:`);

/** The one-line summary (no timeline or details). */
export function summaryLine(r: ChaosResult): string {
  const { timeline: _t, lostDetail: _l, problems, ...rest } = r;
  return JSON.stringify({ ...rest, problems: problems.slice(0, 10) });
}

export function haveDist(): boolean {
  return existsSync(join(ROOT, 'dist', 'cli', 'commands', 'up.js'));
}
