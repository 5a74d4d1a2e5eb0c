/**
 * The p2p and topic workloads of `fishchat bench` on socket.io 4.8 + @socket.io/redis-adapter:
 * the peer FishChat is compared with (bench/compare.ts).
 *
 *   node --import tsx bench/peers/socketio/bench.ts [--pairs 100 [--cross] | --topic-members N [--publishers P]]
 *       [--size 100] [--duration 10] [--warmup 2] [--inflight 1] [--redis redis://127.0.0.1:6379] [--json]
 *       [--parser msgpack|default] [--autopipeline on|off] [--runtime node]
 *
 * Two socket.io server nodes (server.mjs), each its own Node child process on a port from the
 * OS, both on @socket.io/redis-adapter (ioredis) over --redis with a key prefix of this run's
 * own, websocket transport only. All clients live in this process (socket.io-client, websocket
 * only, one connection each: forceNew, no multiplexing).
 *
 * p2p (--pairs N, the default): pair i has sender s<i> on node i%2 and receiver r<i> on the
 * same node, or with --cross on the other one. The receiver is in room r<i>; the sender emits
 * `send` {to, body} with an ack; the server does io.to(to).emit('msg', body) (through Redis when
 * the room is on the other node) and acks.
 *
 * topic (--topic-members N [--publishers P], as `fishchat bench --topic-members N --publishers
 * P`): N members m<j>, member j on node j%2 (round-robin, as fishchat's over its msg_servers),
 * each socket in the one room of the run; members 0..P-1 also publish: `send` {to: room, body}
 * with an ack, and the server does io.to(room).emit('msg', body): socket.io's room broadcast
 * (every member on both nodes, the publisher included, at-most-once, nothing stored; the other
 * node's members through Redis). Every delivery to every member counts (deliveries/s); a topic
 * message is in flight until every member has it, and each publisher keeps at most `inflight`
 * in flight.
 *
 * Same method as `fishchat bench` (bench/FORMAT.md): body = `size` bytes, the first 8
 * the send time (performance.now(), float64 LE) written just before the emit; latency = receive
 * time - that, per delivery; each sender keeps at most `inflight` messages not yet received
 * (topic: by every member); a message not received for 15 s is given up on and counted as
 * `lost`; counts, latencies (exact percentiles over every sample), CPU % of each server process
 * and of the local redis-server (/proc/<pid>/stat) and of this process are taken over the
 * measured window after the warm-up; RSS at its end. --json prints the one-line result contract
 * on stdout and nothing else; without it, a table. Exit 0 done, 1 the run failed, 2 bad
 * arguments.
 *
 * Tuning, as the socket.io performance guide has it: msgpack parser (one binary websocket frame
 * per packet instead of a text frame + one frame per Buffer; --parser default for the stock
 * one), ws' bufferutil add-on installed, no per-message deflate, no HTTP long-polling; ioredis
 * auto-pipelining on the adapter's publish client (--autopipeline off to disable).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { io as connect, type Socket } from 'socket.io-client';
import msgpackParser from 'socket.io-msgpack-parser';
import { readFileSync } from 'node:fs';
import type { BenchResult } from '../../../cli/bench/report.js';
import {
  clockTicks,
  machineInfo,
  MiB,
  parseProcStatCpu,
  procCpuSeconds,
  procRssBytes,
  round1,
  Samples,
  summarize,
} from '../stats.js';

class UsageError extends Error {}

/** A message not received for this long is given up on (as in fishchat bench). */
const STALL_MS = 15_000;
/** File descriptors this process needs besides its connections (as fishchat bench). */
const FD_HEADROOM = 100;

/** RLIMIT_NOFILE of this process, from /proc/self/limits; undefined off Linux. */
export function openFilesLimit(limits?: string): { soft: number; hard: number } | undefined {
  try {
    const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(limits ?? readFileSync('/proc/self/limits', 'latin1'));
    if (!m) return undefined;
    const n = (v: string) => (v === 'unlimited' ? Infinity : Number(v));
    return { soft: n(m[1]!), hard: n(m[2]!) };
  } catch {
    return undefined;
  }
}

export function parseFlags(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      pairs: { type: 'string' },
      cross: { type: 'boolean', default: false },
      'topic-members': { type: 'string' },
      publishers: { type: 'string' },
      size: { type: 'string', default: '100' },
      duration: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '2' },
      inflight: { type: 'string', default: '1' },
      runtime: { type: 'string', default: 'node' },
      redis: { type: 'string', default: 'redis://127.0.0.1:6379' },
      json: { type: 'boolean', default: false },
      parser: { type: 'string', default: 'msgpack' },
      autopipeline: { type: 'string', default: 'on' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const int = (name: string, v: string, min: number, max: number): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isInteger(n) || n < min || n > max)
      throw new UsageError(`--${name} must be an integer ${min}–${max}, found "${v}"`);
    return n;
  };
  const num = (name: string, v: string, min: number, max: number): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < min || n > max)
      throw new UsageError(`--${name} must be a number ${min}–${max}, found "${v}"`);
    return n;
  };
  if (values.runtime !== 'node')
    throw new UsageError(`--runtime: the socket.io peer runs on node only, found "${values.runtime}"`);
  if (!/^rediss?:\/\//.test(values.redis))
    throw new UsageError(`--redis must be a redis:// or rediss:// URL, found "${values.redis}"`);
  if (values.parser !== 'msgpack' && values.parser !== 'default')
    throw new UsageError(`--parser must be msgpack or default, found "${values.parser}"`);
  if (values.autopipeline !== 'on' && values.autopipeline !== 'off')
    throw new UsageError(`--autopipeline must be on or off, found "${values.autopipeline}"`);
  // The workload, as fishchat bench picks it: --topic-members N is the topic one, else p2p.
  if (values.pairs !== undefined && values['topic-members'] !== undefined)
    throw new UsageError('--pairs and --topic-members pick different workloads: give one of them');
  const workload: 'p2p' | 'topic' = values['topic-members'] !== undefined ? 'topic' : 'p2p';
  if (workload === 'topic' && values.cross)
    throw new UsageError('--cross is for the p2p workload (--pairs), not --topic-members');
  if (workload === 'p2p' && values.publishers !== undefined)
    throw new UsageError('--publishers is for the topic workload: add --topic-members N');
  const topicMembers = workload === 'topic' ? int('topic-members', values['topic-members']!, 1, 100_000) : 0;
  const publishers = workload === 'topic' ? int('publishers', values.publishers ?? '1', 1, 100_000) : 0;
  if (publishers > topicMembers)
    throw new UsageError(
      `--publishers ${publishers} is more than --topic-members ${topicMembers}: publishers are members`,
    );
  const pairs = workload === 'p2p' ? int('pairs', values.pairs ?? '100', 1, 50_000) : 0;
  // Open files: every client connection is one here (and half of them on each server node).
  const conns = workload === 'p2p' ? 2 * pairs : topicMembers;
  const limit = openFilesLimit();
  if (limit && conns + FD_HEADROOM > limit.soft)
    throw new UsageError(
      `${workload === 'p2p' ? `--pairs ${pairs}` : `--topic-members ${topicMembers}`} needs about ${conns + FD_HEADROOM} open files, ` +
        `but this process may open ${limit.soft} (RLIMIT_NOFILE; ${limit.hard > limit.soft ? `raise it up to ${limit.hard} with \`ulimit -n\`` : `the hard limit is ${limit.hard}`})`,
    );
  return {
    help: values.help,
    workload,
    pairs,
    cross: values.cross,
    topicMembers,
    publishers,
    size: int('size', values.size, 8, 1_000_000),
    duration: num('duration', values.duration, 0.1, 3600),
    warmup: num('warmup', values.warmup, 0, 3600),
    inflight: int('inflight', values.inflight, 1, 10_000),
    redis: values.redis,
    json: values.json,
    parser: values.parser as 'msgpack' | 'default',
    autopipeline: values.autopipeline as 'on' | 'off',
  };
}
type Flags = ReturnType<typeof parseFlags>;

const HELP = `Usage: node --import tsx bench/peers/socketio/bench.ts [flags]

The p2p and topic workloads of \`fishchat bench\` on socket.io 4.8 + @socket.io/redis-adapter
(two server nodes, each its own process, over Redis; websocket only).

  --pairs N          p2p: sender/receiver pairs (default 100)
  --cross            p2p: receiver on the other server node than its sender
  --topic-members N  topic: N members in one room, round-robin over the two nodes; every
                     delivery to every member counts (io.to(room).emit, at-most-once)
  --publishers P     topic: members that publish to the room (default 1)
  --size B           payload bytes, at least 8 (default 100)
  --duration S       measured seconds (default 10)
  --warmup S         seconds before measuring (default 2)
  --inflight K       messages not yet received per sender (topic: by every member; default 1)
  --redis URL        Redis for the adapter (default redis://127.0.0.1:6379)
  --json             one JSON line (the fishchat bench contract) on stdout
  --parser P         msgpack (default) or default (socket.io's stock parser)
  --autopipeline X   on (default) or off: ioredis auto-pipelining of the adapter's publishes
  --runtime node     the only runtime of the socket.io servers

Examples: node --import tsx bench/peers/socketio/bench.ts --pairs 1000 --cross --json
          node --import tsx bench/peers/socketio/bench.ts --topic-members 10000 --publishers 2 --json
`;

const log = (msg: string): void => void process.stderr.write(`socketio-bench: ${msg}\n`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Rejects after `ms` with `what`; clears its timer either way. */
async function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, rej) => (t = setTimeout(() => rej(new Error(`${what}: no answer in ${ms} ms`)), ms))),
    ]);
  } finally {
    clearTimeout(t);
  }
}

// ---------------------------------------------------------------- server processes

interface Node {
  name: string;
  child: ChildProcess;
  pid: number;
  port: number;
  exited: boolean;
}
const nodes: Node[] = [];
const children: ChildProcess[] = [];

function killChildren(signal: NodeJS.Signals): void {
  for (const c of children) {
    if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) {
      try {
        process.kill(c.pid, signal);
      } catch {
        /* already gone */
      }
    }
  }
}
process.on('exit', () => killChildren('SIGKILL'));

async function startNode(name: string, flags: Flags, key: string): Promise<Node> {
  const script = join(import.meta.dirname, 'server.mjs');
  const child = spawn(
    process.execPath,
    [script, '--redis', flags.redis, '--key', key, '--parser', flags.parser, '--autopipeline', flags.autopipeline],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.push(child);
  child.stderr!.on('data', (d: Buffer) => {
    for (const line of d.toString().split('\n')) if (line) log(`[${name}] ${line}`);
  });
  const node: Node = { name, child, pid: child.pid ?? -1, port: 0, exited: false };
  child.on('exit', () => (node.exited = true));
  let out = '';
  const ready = new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, sig) => reject(new Error(`${name} exited (${sig ?? code}) before it was ready`)));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      try {
        const m = JSON.parse(out.slice(0, nl)) as { ready?: boolean; port?: number; pid?: number };
        if (m.ready && typeof m.port === 'number') {
          node.port = m.port;
          resolve();
        }
      } catch {
        reject(new Error(`${name}: unexpected output ${JSON.stringify(out.slice(0, 200))}`));
      }
    });
  });
  await bounded(ready, 15_000, `${name} ready`);
  return node;
}

async function stopNodes(): Promise<void> {
  killChildren('SIGTERM');
  const gone = (c: ChildProcess) => c.exitCode !== null || c.signalCode !== null;
  const all = Promise.all(children.map((c) => (gone(c) ? undefined : new Promise((r) => c.once('exit', r)))));
  try {
    await bounded(all, 5000, 'server nodes exit');
  } catch {
    killChildren('SIGKILL');
  }
}

/**
 * The pid of the redis-server behind a loopback URL (INFO process_id, checked in /proc), as
 * `fishchat bench` does: its CPU and RSS are reported like the servers'. undefined elsewhere.
 */
async function redisServerPid(url: string): Promise<number | undefined> {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  if (!/^(127\.\d+\.\d+\.\d+|localhost|::1)$/.test(host)) return undefined;
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 3000 });
  r.on('error', () => undefined);
  try {
    await bounded(r.connect(), 5000, 'redis connect');
    const m = /^process_id:(\d+)/m.exec(await bounded(r.info('server'), 5000, 'redis INFO'));
    const pid = m ? Number(m[1]) : undefined;
    if (pid === undefined) return undefined;
    procCpuSeconds(pid); // throws when this pid is not ours to see (another machine, a container)
    return pid;
  } catch {
    return undefined;
  } finally {
    r.disconnect();
  }
}

// ---------------------------------------------------------------- clients

function connectClient(
  port: number,
  auth: { user: string; recv?: boolean; room?: string },
  parser: Flags['parser'],
): Promise<Socket> {
  const { user } = auth;
  const socket = connect(`http://127.0.0.1:${port}`, {
    transports: ['websocket'],
    forceNew: true, // one connection per user, as real users have (no multiplexing)
    reconnection: false,
    timeout: 20_000,
    auth,
    ...(parser === 'msgpack' ? { parser: msgpackParser } : {}),
  });
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      socket.close();
      reject(new Error(`${user}: no connect in 25 s`));
    }, 25_000);
    socket.once('connect', () => {
      clearTimeout(t);
      resolve(socket);
    });
    socket.once('connect_error', (e) => {
      clearTimeout(t);
      socket.close();
      reject(new Error(`${user}: connect_error ${e.message}`));
    });
  });
}

/** Runs `fn` over `items` with at most `limit` at a time. */
async function pool<T>(items: T[], limit: number, fn: (x: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function sentAt(body: unknown): number {
  if (Buffer.isBuffer(body)) return body.length >= 8 ? body.readDoubleLE(0) : NaN;
  if (body instanceof ArrayBuffer) return body.byteLength >= 8 ? new DataView(body).getFloat64(0, true) : NaN;
  if (ArrayBuffer.isView(body))
    return body.byteLength >= 8 ? new DataView(body.buffer, body.byteOffset, body.byteLength).getFloat64(0, true) : NaN;
  return NaN;
}
const byteLength = (body: unknown): number =>
  body instanceof ArrayBuffer ? body.byteLength : ArrayBuffer.isView(body) ? body.byteLength : -1;

// ---------------------------------------------------------------- the run

/** The result line of bench/FORMAT.md, as `fishchat bench --json` writes it, for socket.io. */
export type Result = Omit<BenchResult, 'system' | 'runtime' | 'mode' | 'transport' | 'workload'> & {
  system: 'socketio';
  runtime: 'node';
  mode: 'redis';
  /** socket.io's websocket transport only (no long-polling) */
  transport: 'ws';
  workload: 'p2p' | 'topic';
  /** topic: members that publish (0 for p2p) */
  publishers: number;
  /** messages given up on after STALL_MS without (topic: every member's) delivery, whole run */
  lost: number;
};

/** What the run counts; `measuring` gates the window's counters. */
class State {
  sending = false;
  measuring = false;
  tearingDown = false;
  sent = 0;
  delivered = 0;
  errors = 0;
  acked = 0;
  badPayloads = 0;
  disconnects = 0;
  totalSent = 0;
  totalReceived = 0;
  stalled = 0;
  readonly samples = new Samples(1 << 18);
  readonly sockets: Socket[] = [];
  readonly onAck = (): void => void this.acked++;

  /** Counts a disconnect that is not the teardown's (an error inside the window). */
  watch(s: Socket, who: string): void {
    s.on('disconnect', (reason) => {
      if (this.tearingDown) return;
      this.disconnects++;
      if (this.measuring) this.errors++;
      if (this.disconnects <= 5) log(`${who} disconnected: ${reason}`);
    });
  }

  /** A payload received: the latency sample, or a bad payload. The send time, NaN when bad. */
  received(body: unknown, size: number): number {
    const t = performance.now();
    const t0 = sentAt(body);
    this.totalReceived++;
    if (Number.isNaN(t0) || byteLength(body) !== size) {
      this.badPayloads++;
      if (this.measuring) this.errors++;
      return NaN;
    }
    if (this.measuring) {
      this.delivered++;
      this.samples.push(t - t0);
    }
    return t0;
  }
}

/** A workload once its clients are connected: start the traffic, the stall sweep, what is in flight. */
interface Driver {
  begin(): void;
  sweep(now: number): void;
  /** messages (p2p) / deliveries (topic) sent and not yet received */
  undelivered(): number;
  connections: number;
}

const body = (size: number, t: number): Buffer => {
  const b = Buffer.alloc(size);
  b.writeDoubleLE(t, 0);
  return b;
};

async function setupP2p(st: State, flags: Flags): Promise<Driver> {
  interface Pair {
    sender: Socket;
    to: string;
    outstanding: number;
    lastProgress: number;
  }
  const pairs: Pair[] = new Array(flags.pairs);
  const { size, inflight } = flags;
  const pump = (p: Pair): void => {
    while (st.sending && p.outstanding < inflight) {
      p.outstanding++;
      st.totalSent++;
      if (st.measuring) st.sent++;
      p.sender.emit('send', { to: p.to, body: body(size, performance.now()) }, st.onAck);
    }
  };
  // Receivers first (each in its room before any send), then senders.
  const idx = Array.from({ length: flags.pairs }, (_, i) => i);
  const receivers: Socket[] = new Array(flags.pairs);
  await bounded(
    pool(idx, 100, async (i) => {
      const node = nodes[(i + (flags.cross ? 1 : 0)) % 2]!;
      const s = await connectClient(node.port, { user: `r${i}`, recv: true }, flags.parser);
      receivers[i] = s;
      st.sockets.push(s);
    }),
    60_000 + flags.pairs * 50,
    'connecting receivers',
  );
  await bounded(
    pool(idx, 100, async (i) => {
      const node = nodes[i % 2]!;
      const sender = await connectClient(node.port, { user: `s${i}`, recv: false }, flags.parser);
      st.sockets.push(sender);
      const receiver = receivers[i]!;
      const p: Pair = { sender, to: `r${i}`, outstanding: 0, lastProgress: 0 };
      pairs[i] = p;
      st.watch(sender, `s${i}`);
      st.watch(receiver, `r${i}`);
      receiver.on('msg', (b: unknown) => {
        st.received(b, size);
        p.lastProgress = performance.now();
        if (p.outstanding > 0) p.outstanding--;
        if (st.sending) pump(p);
      });
    }),
    60_000 + flags.pairs * 50,
    'connecting senders',
  );
  return {
    connections: flags.pairs * 2,
    begin() {
      for (const p of pairs) {
        p.lastProgress = performance.now();
        pump(p);
      }
    },
    // As fishchat bench: a pair whose messages have not arrived for STALL_MS gives them up and goes on.
    sweep(now) {
      for (const p of pairs) {
        if (p.outstanding > 0 && now - p.lastProgress > STALL_MS) {
          st.stalled += p.outstanding;
          p.outstanding = 0;
          p.lastProgress = now;
          pump(p);
        }
      }
    },
    undelivered: () => st.totalSent - st.totalReceived,
  };
}

/**
 * The topic workload of `fishchat bench --topic-members N --publishers P` (cli/bench/workloads.ts
 * runTopic) on one socket.io room: members round-robin over the nodes, the first P publish; a
 * topic message is in flight (keyed by its send time, unique: bumped on a tie) until every one of
 * the N members has it, then its publisher sends the next.
 */
async function setupTopic(st: State, flags: Flags): Promise<Driver> {
  const N = flags.topicMembers;
  const room = 'topic';
  const { size, inflight: K } = flags;
  interface Publisher {
    sock: Socket;
    outstanding: number;
    lastProgress: number;
  }
  interface InFlight {
    pub: Publisher;
    remaining: number;
  }
  const inflight = new Map<number, InFlight>();
  const members: Socket[] = new Array(N);
  const publishers: Publisher[] = [];
  let deliveriesSent = 0;
  let deliveriesReceived = 0;
  const fill = (pub: Publisher): void => {
    while (st.sending && pub.outstanding < K && pub.sock.connected) {
      let t = performance.now();
      while (inflight.has(t)) t += 1e-6;
      inflight.set(t, { pub, remaining: N });
      pub.outstanding++;
      st.totalSent++;
      deliveriesSent += N;
      if (st.measuring) st.sent++;
      pub.sock.emit('send', { to: room, body: body(size, t) }, st.onAck);
    }
  };
  const release = (t: number, e: InFlight): void => {
    inflight.delete(t);
    e.pub.lastProgress = performance.now();
    if (e.pub.outstanding > 0) e.pub.outstanding--;
    fill(e.pub);
  };
  await bounded(
    pool(
      Array.from({ length: N }, (_, j) => j),
      100,
      async (j) => {
        const s = await connectClient(nodes[j % 2]!.port, { user: `m${j}`, room }, flags.parser);
        members[j] = s;
        st.sockets.push(s);
        st.watch(s, `m${j}`);
        s.on('msg', (b: unknown) => {
          const t0 = st.received(b, size);
          if (Number.isNaN(t0)) return;
          deliveriesReceived++;
          const e = inflight.get(t0);
          if (e !== undefined && --e.remaining === 0) release(t0, e);
        });
      },
    ),
    60_000 + N * 50,
    'connecting topic members',
  );
  for (let p = 0; p < flags.publishers; p++) publishers.push({ sock: members[p]!, outstanding: 0, lastProgress: 0 });
  return {
    connections: N,
    begin() {
      const now = performance.now();
      for (const pub of publishers) {
        pub.lastProgress = now;
        fill(pub);
      }
    },
    // As fishchat bench: a topic message not delivered to every member within STALL_MS (while its
    // publisher made no progress either) is given up on.
    sweep(now) {
      for (const [t0, e] of inflight) {
        if (now - t0 > STALL_MS && now - e.pub.lastProgress > STALL_MS) {
          st.stalled++;
          release(t0, e);
        }
      }
    },
    undelivered: () => deliveriesSent - deliveriesReceived,
  };
}

async function run(flags: Flags): Promise<{ result: Result; notes: string[] }> {
  const require = createRequire(import.meta.url);
  const version = (require('socket.io/package.json') as { version: string }).version;
  const key = `sio-bench:${process.pid}:${Date.now().toString(36)}`;

  nodes.push(await startNode('socketio.1', flags, key), await startNode('socketio.2', flags, key));
  const measured: { name: string; pid: number }[] = nodes.map((n) => ({ name: n.name, pid: n.pid }));
  const redisPid = await redisServerPid(flags.redis);
  if (redisPid !== undefined) measured.push({ name: 'redis-server', pid: redisPid });
  log(`nodes ready: ${nodes.map((n) => `${n.name} pid ${n.pid} port ${n.port}`).join(', ')}; redis key prefix ${key}`);

  const st = new State();
  const t0Connect = performance.now();
  const driver = flags.workload === 'topic' ? await setupTopic(st, flags) : await setupP2p(st, flags);
  log(
    `${driver.connections} clients connected in ${Math.round(performance.now() - t0Connect)} ms` +
      `${flags.workload === 'topic' ? ` (${flags.topicMembers} members in one room, ${flags.publishers} publishing)` : ''}` +
      `; warm-up ${flags.warmup} s, measuring ${flags.duration} s`,
  );

  // Warm-up, then the measured window.
  st.sending = true;
  driver.begin();
  const stallTimer = setInterval(() => driver.sweep(performance.now()), 1000);
  await sleep(flags.warmup * 1000);
  for (const n of nodes) if (n.exited) throw new Error(`${n.name} (pid ${n.pid}) exited during the warm-up`);
  const cpu0 = measured.map((n) => procCpuSeconds(n.pid));
  const machine0 = parseProcStatCpu(readFileSync('/proc/stat', 'utf8'));
  const client0 = process.cpuUsage();
  const w0 = performance.now();
  st.measuring = true;
  await sleep(flags.duration * 1000);
  st.measuring = false;
  const w1 = performance.now();
  const secs = (w1 - w0) / 1000;
  const clientCpu = process.cpuUsage(client0);
  const machine1 = parseProcStatCpu(readFileSync('/proc/stat', 'utf8'));
  for (const n of nodes) if (n.exited) throw new Error(`${n.name} (pid ${n.pid}) exited during the run`);
  const processes = measured.map((n, k) => ({
    name: n.name,
    pid: n.pid,
    cpuPct: round1(((procCpuSeconds(n.pid) - cpu0[k]!) / secs) * 100),
    rssMiB: round1(procRssBytes(n.pid) / MiB),
  }));
  const client = {
    cpuPct: round1(((clientCpu.user + clientCpu.system) / 1e6 / secs) * 100),
    rssMiB: round1(process.memoryUsage().rss / MiB),
  };
  st.sending = false;
  clearInterval(stallTimer);

  // Drain what is still on its way (bounded), then tear down.
  const notes: string[] = [];
  // CPU used by everything else on the machine over the window (other benchmarks skew the numbers).
  const machinePct = ((machine1.busy - machine0.busy) / clockTicks() / secs) * 100;
  const others = machinePct - processes.reduce((a, p) => a + p.cpuPct, 0) - client.cpuPct;
  notes.push(
    `machine CPU over the window: ${Math.round(machinePct)}% of one core busy, of which ${Math.max(0, Math.round(others))}% not this benchmark's`,
  );
  const drainUntil = performance.now() + 5000;
  while (driver.undelivered() > 0 && performance.now() < drainUntil) await sleep(20);
  const what = flags.workload === 'topic' ? 'deliveries' : 'messages';
  if (driver.undelivered() > 0)
    notes.push(`${driver.undelivered()} ${what} sent were not received within 5 s after the run`);
  if (st.stalled)
    notes.push(
      `${st.stalled} message(s) were not delivered within ${STALL_MS / 1000} s and were given up on${flags.workload === 'topic' ? ' (not every member had it)' : ''}`,
    );
  if (st.badPayloads) notes.push(`${st.badPayloads} received payloads had the wrong size or no timestamp`);
  if (st.disconnects) notes.push(`${st.disconnects} clients disconnected during the run`);
  notes.push(`acks received: ${st.acked} of ${st.totalSent} sends (whole run)`);

  const lat = summarize(st.samples.view());
  const result: Result = {
    system: 'socketio',
    version,
    runtime: 'node',
    mode: 'redis',
    transport: 'ws',
    workload: flags.workload,
    pairs: flags.pairs,
    cross: flags.cross,
    topicMembers: flags.topicMembers,
    publishers: flags.publishers,
    idle: 0,
    size: flags.size,
    inflight: flags.inflight,
    duration: flags.duration,
    warmup: flags.warmup,
    sent: st.sent,
    delivered: st.delivered,
    errors: st.errors,
    lost: st.stalled,
    msgsPerSec: round1(st.delivered / secs),
    latencyMs: lat,
    processes,
    client,
    rssPerConnBytes: null,
    serverMemory: null,
    machine: machineInfo(),
    at: new Date().toISOString(),
  };
  st.tearingDown = true;
  for (const s of st.sockets) s.disconnect();
  return { result, notes };
}

function table(r: Result, flags: Flags, notes: string[]): string {
  const l = r.latencyMs;
  const ms = (x: number | undefined) => (x === undefined ? '-' : `${x.toFixed(2)} ms`);
  const rows: [string, string][] = [
    [
      'system',
      `socket.io ${r.version} + @socket.io/redis-adapter, 2 nodes over Redis (parser ${flags.parser}, autopipeline ${flags.autopipeline})`,
    ],
    [
      'workload',
      `${r.workload === 'topic' ? `topic, ${r.topicMembers} members in one room over 2 nodes, ${r.publishers} publishing` : `p2p, ${r.pairs} pairs${r.cross ? ', cross-node' : ', same node'}`}, ${r.size} B, inflight ${r.inflight}, ${r.duration} s after ${r.warmup} s warm-up`,
    ],
    ['sent / delivered / errors / lost', `${r.sent} / ${r.delivered} / ${r.errors} / ${r.lost}`],
    [r.workload === 'topic' ? 'deliveries/s' : 'msgs/s', r.msgsPerSec.toLocaleString('en-US')],
    ['latency p50 / p90 / p99', l ? `${ms(l.p50)} / ${ms(l.p90)} / ${ms(l.p99)}` : '-'],
    ['latency p999 / max', l ? `${ms(l.p999)} / ${ms(l.max)}` : '-'],
    ...r.processes.map((p): [string, string] => [`${p.name} (pid ${p.pid})`, `CPU ${p.cpuPct}%  RSS ${p.rssMiB} MiB`]),
    ['load generator', `CPU ${r.client.cpuPct}%  RSS ${r.client.rssMiB} MiB`],
    [
      'machine',
      `${r.machine.cpus} × ${r.machine.model}, ${r.machine.memGiB} GiB, ${r.machine.os}, node ${r.machine.node}`,
    ],
    ...notes.map((n): [string, string] => ['note', n]),
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n') + '\n';
}

async function main(): Promise<number> {
  let flags: Flags;
  try {
    flags = parseFlags(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`socketio-bench: ${(e as Error).message}\n${HELP}`);
    return 2;
  }
  if (flags.help) {
    process.stdout.write(HELP);
    return 0;
  }
  // Everything is bounded; this is the last resort.
  const limitMs = (flags.warmup + flags.duration) * 1000 + 180_000 + (flags.pairs * 2 + flags.topicMembers) * 50;
  const watchdog = setTimeout(() => {
    log(`the run took longer than ${Math.round(limitMs / 1000)} s: giving up`);
    killChildren('SIGKILL');
    process.exit(1);
  }, limitMs);
  watchdog.unref();
  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.on(sig, () => {
      killChildren('SIGKILL');
      process.exit(1);
    });
  try {
    const { result, notes } = await run(flags);
    await stopNodes();
    if (flags.json) {
      for (const n of notes) log(n);
      process.stdout.write(JSON.stringify(result) + '\n');
    } else process.stdout.write(table(result, flags, notes));
    return result.delivered > 0 ? 0 : 1;
  } catch (e) {
    log(`failed: ${(e as Error).message}`);
    killChildren('SIGKILL');
    return 1;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const code = await main();
  // Sockets and timers may still hold the loop; once stdout is flushed, leave.
  await new Promise((r) => process.stdout.write('', r));
  process.exit(code);
}
