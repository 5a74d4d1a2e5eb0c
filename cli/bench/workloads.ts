/**
 * The three workloads over the real protocol: p2p pairs, one topic with
 * publishers, idle connections. Every client is connected and logged in
 * before the warmup; then warmup, the measured window, stop, close.
 *
 * Hot path: a send is a template copy with the time in its body
 * (wire.ts); a push is scanned for seq and body only; receivers ack every
 * ACK_EVERY messages; no timer per request (one keepalive/stall sweep for
 * everything).
 */
import { isLoopback, parseHostPort } from '../../runtime/cluster/index.js';
import { signToken } from '../../runtime/protocol/token.js';
import { BenchConn, ServerError, type Transport } from './conn.js';
import type { MsgServer } from './cluster.js';
import { Samples } from './report.js';
import { ackFrame, readTime, RequestTemplate } from './wire.js';

/** Receivers ack after this many messages (docs/protocol.md §4.2: ack is cumulative). */
const ACK_EVERY = 64;
/** Logins (connect + login) in flight at once while setting up. */
const SETUP_CONCURRENCY = 200;
/** One setup request (route, login, topic_*) may take this long. */
export const SETUP_TIMEOUT_MS = 30_000;
/** A sender with messages in flight and no delivery for this long is released (and reported). */
const STALL_MS = 15_000;
/** Connections per source address before another 127.0.0.x is used (loopback only). */
const CONNS_PER_SOURCE = 5000;
/** After the window: how long the last messages in flight may take to arrive before closing. */
const DRAIN_MS = 2000;

export type Workload = 'p2p' | 'topic' | 'idle';

export interface WorkloadOptions {
  workload: Workload;
  pairs: number;
  cross: boolean;
  topicMembers: number;
  publishers: number;
  idle: number;
  size: number;
  duration: number;
  warmup: number;
  inflight: number;
  /** tcp: each msg_server's `addr`; ws: its `ws` URL (every server must have one) */
  transport: Transport;
  servers: MsgServer[];
  secret: string;
  heartbeat: number;
  /** progress and warnings (stderr) */
  status: (line: string) => void;
  /** called at the start and the end of the measured window */
  /** `end` runs while every client is still connected (the idle workload reads the server's figure in it) */
  window: { start: () => void; end: () => void | Promise<void> };
  /** throws when the cluster died */
  check: () => void;
  /** set when the user interrupts: setup and waits stop early */
  aborted: () => boolean;
}

export interface WorkloadResult {
  sent: number;
  delivered: number;
  errors: number;
  seconds: number;
  /** latency samples (ms), sorted */
  latencies: Float64Array;
  /** messages released by the stall sweep (never delivered in time) */
  stalled: number;
}

/** Shared counters of a run; `measuring` gates what counts. */
class Run {
  measuring = false;
  running = false;
  sent = 0;
  delivered = 0;
  errors = 0;
  stalled = 0;
  readonly samples = new Samples();
  private reported = 0;
  private readonly codes = new Map<string, number>();

  constructor(private readonly status: (line: string) => void) {}

  /** A server error on a request of the run: counted in the window, the first few shown. */
  error(code: string, message: string, where: string): void {
    if (this.measuring) this.errors++;
    this.codes.set(code, (this.codes.get(code) ?? 0) + 1);
    if (this.reported < 5) {
      this.reported++;
      this.status(
        `server error on ${where}: ${code}: ${message}${this.reported === 5 ? ' (further errors are only counted)' : ''}`,
      );
    }
  }

  summary(): string | undefined {
    if (this.codes.size === 0) return undefined;
    return [...this.codes].map(([c, n]) => `${c} × ${n}`).join(', ');
  }
}

/** Runs fn(i) for i < n, at most `limit` at once; the first failure stops the rest. */
async function pool(n: number, limit: number, fn: (i: number) => Promise<void>, aborted: () => boolean): Promise<void> {
  let next = 0;
  let failed: unknown;
  const worker = async () => {
    while (failed === undefined && next < n && !aborted()) {
      const i = next++;
      try {
        await fn(i);
      } catch (err) {
        failed ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, worker));
  if (failed !== undefined) throw failed;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Sleeps ms, waking early on abort. */
async function wait(ms: number, o: WorkloadOptions): Promise<void> {
  const end = performance.now() + ms;
  while (!o.aborted()) {
    const left = end - performance.now();
    if (left <= 0) return;
    await sleep(Math.min(left, 250));
    o.check();
  }
}

/** Connections and their logins, with a source address per connection when there are many on loopback. */
class Clients {
  readonly all: BenchConn[] = [];
  private made = 0;

  constructor(
    private readonly o: WorkloadOptions,
    private readonly total: number,
    private readonly tag: string,
  ) {}

  async login(server: MsgServer, user: string, push: boolean): Promise<BenchConn> {
    const ws = this.o.transport === 'ws';
    const where = ws ? server.ws : server.addr;
    if (where === undefined) throw new Error(`msg_server ${server.id} (${server.addr}) serves no WebSocket`);
    const host = ws ? new URL(where).hostname.replace(/^\[|\]$/g, '') : parseHostPort(where)!.host;
    const i = this.made++;
    const sources = Math.min(254, Math.ceil(this.total / CONNS_PER_SOURCE));
    const local = sources > 1 && isLoopback(host) && !host.includes(':') ? `127.0.0.${1 + (i % sources)}` : undefined;
    let conn: BenchConn;
    try {
      if (ws) conn = await BenchConn.openWs(where, local);
      else {
        const hp = parseHostPort(where)!;
        conn = await BenchConn.open(hp.host, hp.port, local);
      }
    } catch (err) {
      throw Object.assign(
        new Error(
          `cannot connect to msg_server ${server.id} at ${where}${local ? ` from ${local}` : ''}: ${(err as Error).message}`,
        ),
        { code: (err as { code?: string }).code },
      );
    }
    this.all.push(conn);
    const token =
      this.o.secret === ''
        ? undefined
        : signToken(this.o.secret, user, { ttlSeconds: Math.ceil(this.o.warmup + this.o.duration) + 3600 });
    try {
      await conn.request({ op: 'login', user, token, device: this.tag, push }, SETUP_TIMEOUT_MS);
    } catch (err) {
      const what = err instanceof ServerError ? `the server answered ${err.message}` : (err as Error).message;
      throw new Error(`login of ${user} on msg_server ${server.id} (${where}) failed: ${what}`);
    }
    return conn;
  }

  /** Pings connections that wrote nothing since the last sweep (the server closes silent ones after 2.5 heartbeats). */
  keepalive(): void {
    for (const c of this.all) {
      if (!c.wrote && !c.closed) c.ping();
      c.wrote = false;
    }
  }

  closeAll(): void {
    for (const c of this.all) c.close();
  }

  /** Runs the setup; a failure closes what was opened. */
  async setup(fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.closeAll();
      throw err;
    }
  }
}

/** User names of this run: unique, so an existing cluster has no backlog for them. */
function namePrefix(): string {
  return `b${process.pid.toString(36)}${Date.now().toString(36)}`;
}

/** `drive`'s begin for senders: each one's stall clock starts now and its window is filled. */
function startAll<S extends { lastProgress: number }>(senders: S[], fill: (s: S) => void): () => void {
  return () => {
    const now = performance.now();
    for (const s of senders) {
      s.lastProgress = now;
      fill(s);
    }
  };
}

/** Connects everything, then warmup, window, stop; `begin` starts the traffic, `outstanding` says what is still in flight. */
async function drive(
  o: WorkloadOptions,
  run: Run,
  clients: Clients,
  begin: () => void,
  sweep: (now: number) => void,
  outstanding: () => number,
): Promise<WorkloadResult> {
  const tick = Math.max(200, Math.min(1000, o.heartbeat / 4));
  let lastKeepalive = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    if (now - lastKeepalive >= o.heartbeat / 2) {
      lastKeepalive = now;
      clients.keepalive();
    }
    sweep(now);
  }, tick);
  try {
    run.running = true;
    begin();
    if (o.warmup > 0) o.status(`warmup ${o.warmup} s …`);
    await wait(o.warmup * 1000, o);
    run.sent = run.delivered = run.errors = 0;
    run.samples.clear();
    o.window.start();
    const t0 = performance.now();
    run.measuring = true;
    if (!o.aborted()) o.status(`measuring ${o.duration} s …`);
    await wait(o.duration * 1000, o);
    run.measuring = false;
    const seconds = (performance.now() - t0) / 1000;
    await o.window.end();
    run.running = false;
    // Let what is in flight arrive, so the cluster is not stopped under load.
    const end = performance.now() + DRAIN_MS;
    while (outstanding() > 0 && performance.now() < end && !o.aborted()) await sleep(20);
    const summary = run.summary();
    if (summary) o.status(`server errors during the run (warmup included): ${summary}`);
    if (run.stalled > 0)
      o.status(`${run.stalled} message(s) were not delivered within ${STALL_MS / 1000} s and were given up on`);
    const latencies = run.samples.view().sort();
    return { sent: run.sent, delivered: run.delivered, errors: run.errors, seconds, latencies, stalled: run.stalled };
  } finally {
    clearInterval(timer);
    clients.closeAll();
  }
}

function closedReporter(o: WorkloadOptions, run: Run, what: string) {
  let n = 0;
  return (conn: BenchConn) => () => {
    if (!run.running) return;
    n++;
    if (n <= 3)
      o.status(
        `${what} connection to ${conn.addr} closed during the run${conn.closeReason ? ` (${conn.closeReason})` : ''}`,
      );
  };
}

// ---------------------------------------------------------------- p2p

class Pair {
  outstanding = 0;
  rid = 0;
  lastProgress = 0;
  sinceAck = 0;
  constructor(
    readonly sender: BenchConn,
    readonly tpl: RequestTemplate,
  ) {}
}

export async function runP2p(o: WorkloadOptions): Promise<WorkloadResult> {
  const run = new Run(o.status);
  const clients = new Clients(o, o.pairs * 2, 'bench');
  const prefix = namePrefix();
  const n = o.servers.length;
  const pairs: Pair[] = new Array(o.pairs);
  const K = o.inflight;
  const samples = run.samples;
  const onClosed = closedReporter(o, run, 'a p2p');

  const fill = (pair: Pair) => {
    while (run.running && pair.outstanding < K && !pair.sender.closed) {
      pair.outstanding++;
      pair.rid = (pair.rid + 1) >>> 0;
      pair.sender.write(pair.tpl.make(pair.rid, performance.now()));
      if (run.measuring) run.sent++;
    }
  };

  o.status(
    `connecting ${o.pairs * 2} clients (${o.pairs} pairs${o.cross ? ', receivers on another msg_server' : ''}${o.transport === 'ws' ? ', over WebSocket' : ''}) …`,
  );
  const t = performance.now();
  await clients.setup(() =>
    pool(
      o.pairs,
      SETUP_CONCURRENCY / 2,
      async (i) => {
        const s = o.servers[i % n]!;
        const r = o.servers[(i + (o.cross ? 1 : 0)) % n]!;
        const to = `${prefix}r${i}`;
        // Receiver first: its session exists before the first message is sent.
        const receiver = await clients.login(r, to, true);
        const sender = await clients.login(s, `${prefix}s${i}`, false);
        const pair = new Pair(sender, new RequestTemplate('send', 'to', to, o.size));
        pairs[i] = pair;
        receiver.onMsg = (p, seq, bodyAt, bodyLen) => {
          const now = performance.now();
          if (bodyLen >= 8 && run.measuring) {
            run.delivered++;
            samples.push(now - readTime(p, bodyAt));
          }
          if (++pair.sinceAck >= ACK_EVERY) {
            pair.sinceAck = 0;
            receiver.write(ackFrame(seq));
          }
          pair.lastProgress = now;
          if (pair.outstanding > 0) pair.outstanding--;
          fill(pair);
        };
        sender.onError = (code, message) => {
          run.error(code, message, `send from ${sender.addr}`);
          pair.lastProgress = performance.now();
          if (pair.outstanding > 0) pair.outstanding--;
          fill(pair);
        };
        receiver.onClose = onClosed(receiver);
        sender.onClose = onClosed(sender);
      },
      o.aborted,
    ),
  );
  o.status(`${o.pairs * 2} clients logged in in ${Math.round(performance.now() - t)} ms`);

  return drive(
    o,
    run,
    clients,
    startAll(pairs, fill),
    (now) => {
      for (const p of pairs) {
        if (p.outstanding > 0 && now - p.lastProgress > STALL_MS) {
          run.stalled += p.outstanding;
          p.outstanding = 0;
          p.lastProgress = now;
          fill(p);
        }
      }
    },
    () => {
      let s = 0;
      for (const p of pairs) s += p.outstanding;
      return s;
    },
  );
}

// ---------------------------------------------------------------- topic

class Publisher {
  outstanding = 0;
  rid = 0;
  lastProgress = 0;
  /** send times of the topic_sends not yet answered, in order (replies come in order) */
  readonly unanswered: number[] = [];
  constructor(
    readonly conn: BenchConn,
    readonly tpl: RequestTemplate,
  ) {}
}

interface InFlight {
  pub: Publisher;
  remaining: number;
}

export async function runTopic(o: WorkloadOptions): Promise<WorkloadResult> {
  const run = new Run(o.status);
  const N = o.topicMembers;
  const clients = new Clients(o, N, 'bench');
  const prefix = namePrefix();
  const topic = `${prefix}t`;
  const n = o.servers.length;
  const K = o.inflight;
  const samples = run.samples;
  /** in-flight topic messages by their send time (unique: bumped on a tie) */
  const inflight = new Map<number, InFlight>();
  const members: BenchConn[] = new Array(N);
  const publishers: Publisher[] = [];
  const onClosed = closedReporter(o, run, 'a topic member');

  const fill = (pub: Publisher) => {
    while (run.running && pub.outstanding < K && !pub.conn.closed) {
      let t = performance.now();
      while (inflight.has(t)) t += 1e-6;
      inflight.set(t, { pub, remaining: N });
      pub.unanswered.push(t);
      pub.outstanding++;
      pub.rid = (pub.rid + 1) >>> 0;
      pub.conn.write(pub.tpl.make(pub.rid, t));
      if (run.measuring) run.sent++;
    }
  };
  const release = (t: number, e: InFlight) => {
    inflight.delete(t);
    e.pub.lastProgress = performance.now();
    if (e.pub.outstanding > 0) e.pub.outstanding--;
    fill(e.pub);
  };

  o.status(`connecting ${N} topic members over ${n} msg_server(s) …`);
  const t = performance.now();
  const join = async (j: number) => {
    const conn = await clients.login(o.servers[j % n]!, `${prefix}m${j}`, true);
    members[j] = conn;
    if (j === 0) await conn.request({ op: 'topic_create', topic }, SETUP_TIMEOUT_MS);
    else
      await conn.request({ op: 'topic_join', topic }, SETUP_TIMEOUT_MS).catch((err) => {
        throw new Error(`topic_join of member ${j} failed: ${(err as Error).message}`);
      });
    let sinceAck = 0;
    conn.onMsg = (p, seq, bodyAt, bodyLen) => {
      if (bodyLen < 8) return;
      const t0 = readTime(p, bodyAt);
      if (run.measuring) {
        run.delivered++;
        samples.push(performance.now() - t0);
      }
      if (++sinceAck >= ACK_EVERY) {
        sinceAck = 0;
        conn.write(ackFrame(seq));
      }
      const e = inflight.get(t0);
      if (e !== undefined && --e.remaining === 0) release(t0, e);
    };
    conn.onClose = onClosed(conn);
  };
  // The creator first, then everyone else.
  await clients.setup(async () => {
    await join(0);
    await pool(N - 1, SETUP_CONCURRENCY, (i) => join(i + 1), o.aborted);
  });
  for (let p = 0; p < o.publishers; p++) {
    const conn = members[p]!;
    const pub = new Publisher(conn, new RequestTemplate('topic_send', 'topic', topic, o.size));
    conn.onOk = () => {
      pub.unanswered.shift();
    };
    conn.onError = (code, message) => {
      run.error(code, message, `topic_send from ${conn.addr}`);
      const t0 = pub.unanswered.shift();
      const e = t0 === undefined ? undefined : inflight.get(t0);
      if (e) release(t0!, e);
    };
    publishers.push(pub);
  }
  o.status(
    `${N} members logged in and joined topic ${topic} in ${Math.round(performance.now() - t)} ms; ${o.publishers} publishing`,
  );

  return drive(
    o,
    run,
    clients,
    startAll(publishers, fill),
    (now) => {
      for (const [t0, e] of inflight) {
        if (now - t0 > STALL_MS && now - e.pub.lastProgress > STALL_MS) {
          run.stalled++;
          release(t0, e);
        }
      }
    },
    () => inflight.size,
  );
}

// ---------------------------------------------------------------- idle

/**
 * N logged-in push connections to one msg_server, doing nothing but the
 * keepalive; the warmup lets them settle (the caller samples the
 * msg_server's RSS before this and at the end of the window).
 */
export async function runIdle(o: WorkloadOptions, server: MsgServer): Promise<WorkloadResult> {
  const run = new Run(o.status);
  const N = o.idle;
  const clients = new Clients(o, N, 'bench');
  const prefix = namePrefix();
  const onClosed = closedReporter(o, run, 'an idle');
  o.status(
    `connecting ${N} idle clients to msg_server ${server.id} (${o.transport === 'ws' ? server.ws : server.addr}) …`,
  );
  const t = performance.now();
  let last = t;
  let done = 0;
  await clients.setup(() =>
    pool(
      N,
      SETUP_CONCURRENCY,
      async (i) => {
        const conn = await clients.login(server, `${prefix}i${i}`, true);
        conn.onClose = onClosed(conn);
        done++;
        const now = performance.now();
        if (now - last > 2000) {
          last = now;
          o.status(`  ${done}/${N} logged in`);
        }
      },
      o.aborted,
    ),
  );
  o.status(`${N} idle clients logged in in ${Math.round(performance.now() - t)} ms; letting them settle`);
  return drive(
    o,
    run,
    clients,
    () => {},
    () => {},
    () => 0,
  );
}
