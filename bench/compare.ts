/**
 * FishChat vs socket.io, same workloads, same flags, interleaved, several rounds.
 *
 *   npm run bench:compare -- [--workloads p2p,topic] [--rounds 3] [--pairs 1000 | --pairs 100,500,1000]
 *       [--inflight 1,32] [--topic-members 10000] [--publishers 2] [--topic-inflight 1]
 *       [--runtimes node,bun] [--transports tcp,ws] [--duration 10] [--warmup 2] [--size 100]
 *       [--redis URL] [--out FILE] [--quiet-wait 120]
 *
 * The comparisons: p2p for each pairs × inflight value (`fishchat bench --json --cross --redis
 * URL`, one process per role over Redis, per FishChat runtime and transport, against the
 * socket.io peer with --cross: two nodes + Redis adapter), and with `--workloads topic` the
 * topic fan-out (`fishchat bench --json --redis URL --topic-members N --publishers P`, the
 * members round-robin over two msg_servers, against the socket.io peer's room broadcast to the
 * same N members over its two nodes). Interleaved in rounds: round 1 runs every comparison once
 * (FishChat TCP, FishChat WebSocket, socket.io, …), round 2 the same, and so on, so that what
 * else the machine does hits every system alike.
 *
 * Every result line is appended to --out (JSONL; default bench/results/compare-<timestamp>.jsonl)
 * as soon as it is there, with the fields bench:compare adds (round, rounds, run, lost,
 * publishers, otherCpuPct: bench/FORMAT.md). At the end two tables: the median over the rounds
 * of each (workload, system, transport): msgs/s (topic: deliveries/s), p50, p99, p999, server
 * CPU (sum over the server processes, % of one core), RSS (sum), redis CPU, CPU-µs per message
 * (server processes + redis-server), FishChat/socket.io ratios of the medians (msgs/s, p99,
 * CPU-µs per message), lost and errors summed over the rounds, the other work's CPU; and the
 * per-round values. Exit 0 when every run gave a result, 1 when one failed (the reason is
 * printed; the other runs still run), 2 on bad flags.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { BenchResult } from '../cli/bench/report.js';
import { machineBusy } from './peers/stats.js';

const root = join(import.meta.dirname, '..');

/** What is read of a result line (fishchat's or the socket.io peer's; bench/FORMAT.md). */
export type Result = Pick<
  BenchResult,
  'pairs' | 'msgsPerSec' | 'sent' | 'delivered' | 'errors' | 'latencyMs' | 'processes' | 'at'
> & {
  system: string;
  runtime: string | null;
  mode: string;
  /** absent in lines written before WebSocket: tcp for FishChat */
  transport?: string;
  workload: string;
  topicMembers?: number;
  inflight?: number;
  /** topic: publishing members (the socket.io peer's line; bench:compare adds it to FishChat's) */
  publishers?: number;
  /** messages given up on after 15 s without delivery (the peer's line; for FishChat from its stderr) */
  lost?: number;
  client?: BenchResult['client'];
  /** the CPU (% of one core) other work used over the window, from the run's stderr */
  otherCpuPct?: number;
};

/** The "… of which N% not this benchmark's" both benchmarks print on stderr; undefined when absent. */
export function otherCpu(stderr: string): number | undefined {
  const m = /machine CPU over the window: \d+% of one core busy, of which (\d+)% not this benchmark's/.exec(stderr);
  return m ? Number(m[1]) : undefined;
}

/** The "N message(s) were not delivered within 15 s and were given up on" both benchmarks print; 0 when absent. */
export function lostCount(stderr: string): number {
  const m = /(\d+) message\(s\) were not delivered within \d+ s and were given up on/.exec(stderr);
  return m ? Number(m[1]) : 0;
}

/** One comparison: a workload with its parameters, run by every system once per round. */
export interface Config {
  workload: 'p2p' | 'topic';
  /** p2p pairs (0 for topic) */
  pairs: number;
  /** topic members (0 for p2p) */
  members: number;
  publishers: number;
  inflight: number;
}

export const configKey = (c: Config): string =>
  c.workload === 'p2p'
    ? `p2p, ${c.pairs} pairs, inflight ${c.inflight}`
    : `topic, ${c.members} members, ${c.publishers} pub, inflight ${c.inflight}`;

interface Run {
  label: string;
  system: 'fishchat' | 'socketio';
  runtime: string;
  transport: 'tcp' | 'ws';
  config: Config;
  round: number;
  argv: string[];
}

class UsageError extends Error {}

/** File descriptors a benchmark process needs besides its connections (as fishchat bench). */
const FD_HEADROOM = 100;

/** RLIMIT_NOFILE soft limit of this process (its children inherit it); undefined off Linux. */
function openFilesSoft(): number | undefined {
  try {
    const m = /^Max open files\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'latin1'));
    return m ? (m[1] === 'unlimited' ? Infinity : Number(m[1])) : undefined;
  } catch {
    return undefined;
  }
}

export function parseFlags(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      workloads: { type: 'string', default: 'p2p' },
      rounds: { type: 'string', default: '3' },
      pairs: { type: 'string', default: '1000' },
      inflight: { type: 'string', default: '1,32' },
      'topic-members': { type: 'string', default: '10000' },
      publishers: { type: 'string', default: '2' },
      'topic-inflight': { type: 'string', default: '1' },
      runtimes: { type: 'string', default: 'node' },
      transports: { type: 'string', default: 'tcp,ws' },
      duration: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '2' },
      size: { type: 'string', default: '100' },
      redis: { type: 'string', default: 'redis://127.0.0.1:6379' },
      out: { type: 'string' },
      'quiet-wait': { type: 'string', default: '120' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const posInt = (name: string, v: string, max = 10_000_000): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isInteger(n) || n < 1 || n > max)
      throw new UsageError(`--${name}: a positive integer${max < 10_000_000 ? ` up to ${max}` : ''}, found "${v}"`);
    return n;
  };
  const posNum = (name: string, v: string, min: number): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < min)
      throw new UsageError(`--${name}: a number ≥ ${min}, found "${v}"`);
    return n;
  };
  const list = (name: string, v: string, max?: number): number[] => [
    ...new Set(v.split(',').map((p) => posInt(name, p.trim(), max))),
  ];
  const workloads = [...new Set(values.workloads.split(',').map((w) => w.trim()))];
  for (const w of workloads)
    if (w !== 'p2p' && w !== 'topic') throw new UsageError(`--workloads: p2p or topic, found "${w}"`);
  const pairs = list('pairs', values.pairs, 50_000);
  const inflight = list('inflight', values.inflight, 10_000);
  const topicMembers = posInt('topic-members', values['topic-members'], 100_000);
  const publishers = posInt('publishers', values.publishers);
  if (publishers > topicMembers)
    throw new UsageError(
      `--publishers ${publishers} is more than --topic-members ${topicMembers}: publishers are members`,
    );
  const topicInflight = list('topic-inflight', values['topic-inflight'], 10_000);
  const runtimes = values.runtimes.split(',').map((r) => r.trim());
  for (const r of runtimes)
    if (!['node', 'bun', 'deno'].includes(r)) throw new UsageError(`--runtimes: node, bun or deno, found "${r}"`);
  const transports = values.transports.split(',').map((t) => t.trim());
  for (const t of transports)
    if (t !== 'tcp' && t !== 'ws') throw new UsageError(`--transports: tcp or ws, found "${t}"`);
  if (!/^rediss?:\/\//.test(values.redis)) throw new UsageError(`--redis: a redis:// URL, found "${values.redis}"`);
  const configs: Config[] = [];
  if (workloads.includes('p2p'))
    for (const p of pairs)
      for (const k of inflight) configs.push({ workload: 'p2p', pairs: p, members: 0, publishers: 0, inflight: k });
  if (workloads.includes('topic'))
    for (const k of topicInflight)
      configs.push({ workload: 'topic', pairs: 0, members: topicMembers, publishers, inflight: k });
  // Open files: each run's load generator holds every client connection (the runs are one at a
  // time; a server process holds about half of them), and inherits this process' limit.
  const conns = Math.max(...configs.map((c) => (c.workload === 'p2p' ? 2 * c.pairs : c.members)));
  const soft = openFilesSoft();
  if (soft !== undefined && conns + FD_HEADROOM > soft)
    throw new UsageError(
      `${conns} connections need about ${conns + FD_HEADROOM} open files per benchmark process, but this process may open ${soft} (RLIMIT_NOFILE; \`ulimit -n\` raises it up to the hard limit)`,
    );
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  return {
    help: values.help,
    configs,
    rounds: posInt('rounds', values.rounds, 100),
    runtimes: [...new Set(runtimes)],
    transports: [...new Set(transports)] as ('tcp' | 'ws')[],
    duration: posNum('duration', values.duration, 0.1),
    warmup: posNum('warmup', values.warmup, 0),
    size: posInt('size', values.size),
    redis: values.redis,
    quietWait: posNum('quiet-wait', values['quiet-wait'], 0),
    stamp,
    out: values.out ? resolve(values.out) : join(root, 'bench', 'results', `compare-${stamp}.jsonl`),
  };
}
type Flags = ReturnType<typeof parseFlags>;

const HELP = `Usage: npm run bench:compare -- [flags]

Runs \`fishchat bench --json --redis URL\` (one process per role over Redis), over raw TCP and
over WebSocket (\`--transport ws\`), and the socket.io peer (two nodes + @socket.io/redis-adapter,
websocket only) with the same flags, interleaved in rounds (round 1: every system once, round
2: the same, …), and prints the median of the rounds side by side, with the per-round values.

  --workloads W[,W]    p2p (cross-server pairs) and/or topic (one topic / socket.io room, members
                       round-robin over two servers) (default p2p)
  --rounds N           rounds (default 3)
  --pairs N[,N...]     p2p pairs, one value or a sweep (default 1000)
  --inflight K[,K...]  p2p: messages in flight per sender, one value or several (default 1,32)
  --topic-members N    topic: members (default 10000)
  --publishers P       topic: members that publish (default 2)
  --topic-inflight K   topic: messages each publisher keeps in flight (default 1, as fishchat bench)
  --runtimes R[,R...]  FishChat cluster runtimes: node, bun, deno (default node)
  --transports T[,T]   FishChat client transports: tcp, ws (default tcp,ws)
  --duration S         measured seconds per run (default 10)
  --warmup S           warm-up seconds per run (default 2)
  --size B             payload bytes (default 100)
  --redis URL          Redis for both (default redis://127.0.0.1:6379)
  --out FILE           append every result line here (default bench/results/compare-<timestamp>.jsonl)
  --quiet-wait S       before each run, wait up to S seconds (default 120; 0: don't) for the
                       machine to be quiet (3 s in a row under 25% CPU busy): other work skews the numbers

Examples: npm run bench:compare
          npm run bench:compare -- --workloads p2p,topic
          npm run bench:compare -- --pairs 100,500,1000 --inflight 1 --runtimes node,bun
`;

/** Every run, round after round; in a round every comparison, FishChat's runtimes and transports, then socket.io. */
export function runsFor(
  f: Pick<Flags, 'configs' | 'rounds' | 'runtimes' | 'transports' | 'redis' | 'size' | 'duration' | 'warmup'>,
): Run[] {
  const common = (c: Config) => [
    '--json',
    '--redis',
    f.redis,
    '--size',
    String(f.size),
    '--duration',
    String(f.duration),
    '--warmup',
    String(f.warmup),
    '--inflight',
    String(c.inflight),
    ...(c.workload === 'p2p'
      ? ['--cross', '--pairs', String(c.pairs)]
      : ['--topic-members', String(c.members), '--publishers', String(c.publishers)]),
  ];
  const runs: Run[] = [];
  for (let round = 1; round <= f.rounds; round++)
    for (const config of f.configs) {
      for (const rt of f.runtimes)
        for (const tr of f.transports)
          runs.push({
            label: `FishChat on ${rt}, ${tr === 'ws' ? 'WebSocket' : 'TCP'}`,
            system: 'fishchat',
            runtime: rt,
            transport: tr,
            config,
            round,
            argv: [join(root, 'bin', 'run.js'), 'bench', ...common(config), '--runtime', rt, '--transport', tr],
          });
      runs.push({
        label: 'socket.io (WebSocket)',
        system: 'socketio',
        runtime: 'node',
        transport: 'ws',
        config,
        round,
        argv: ['--import', 'tsx', join(root, 'bench', 'peers', 'socketio', 'bench.ts'), ...common(config)],
      });
    }
  return runs;
}

/** Runs one benchmark process: its result line (with the other work's CPU and the lost count), or an Error with the reason. */
function runOne(run: Run, f: Flags): Promise<Result> {
  const conns = run.config.workload === 'p2p' ? 2 * run.config.pairs : run.config.members;
  const limitMs = (f.warmup + f.duration) * 1000 + 300_000 + conns * 50;
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, run.argv, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderrTail = '';
    let other: number | undefined;
    let lost = 0;
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => {
      const s = d.toString();
      stderrTail = (stderrTail + s).slice(-4000);
      other = otherCpu(s) ?? other;
      lost = lostCount(s) || lost;
      for (const line of s.split('\n')) if (line.trim()) process.stderr.write(`  | ${line}\n`);
    });
    const timer = setTimeout(() => {
      if (child.pid !== undefined) {
        try {
          process.kill(child.pid, 'SIGTERM');
        } catch {
          /* gone */
        }
        setTimeout(() => {
          try {
            if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
          } catch {
            /* gone */
          }
        }, 10_000).unref();
      }
      reject(new Error(`no result within ${Math.round(limitMs / 1000)} s (killed pid ${child.pid})`));
    }, limitMs);
    const onSignal = () => {
      if (child.pid !== undefined) {
        try {
          process.kill(child.pid, 'SIGTERM');
        } catch {
          /* gone */
        }
      }
    };
    process.once('SIGINT', onSignal);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      process.removeListener('SIGINT', onSignal);
      const lines = stdout.split('\n').filter((l) => l.trim());
      const last = lines[lines.length - 1];
      let parsed: Result | undefined;
      try {
        parsed = last ? (JSON.parse(last) as Result) : undefined;
      } catch {
        parsed = undefined;
      }
      const tail = stderrTail.trim().split('\n').slice(-5).join(' / ');
      if (code !== 0) return reject(new Error(`exit ${signal ?? code}${tail ? `: ${tail}` : ''}`));
      if (
        !parsed ||
        typeof parsed.msgsPerSec !== 'number' ||
        parsed.system !== run.system ||
        parsed.workload !== run.config.workload
      )
        return reject(new Error(`no result line on stdout (last line: ${JSON.stringify((last ?? '').slice(0, 200))})`));
      const r: Result = { ...parsed, lost: typeof parsed.lost === 'number' ? parsed.lost : lost };
      if (run.config.workload === 'topic' && typeof r.publishers !== 'number') r.publishers = run.config.publishers;
      if (other !== undefined) r.otherCpuPct = other;
      resolvePromise(r);
    });
  });
}

/** Machine CPU busy (0–1) under which a run starts without waiting. */
const QUIET = 0.25;
const QUIET_SECONDS = 3;
const pct = (x: number): string => `${Math.round(x * 100)}%`;
const sum = (xs: (number | null | undefined)[]): number => xs.reduce<number>((a, b) => a + (b ?? 0), 0);
/** Server processes: every one but the `up` supervisor and redis-server (shown on its own). */
export const isServer = (name: string): boolean => name !== 'up' && name !== 'redis-server';
const fmtInt = (v: number | undefined): string => (v === undefined ? '-' : Math.round(v).toLocaleString('en-US'));
const fmtMs = (v: number | undefined): string =>
  v === undefined ? '-' : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);

/**
 * CPU time the cluster spent per delivered message, in µs: the server processes (every one
 * but the `up` supervisor) and the redis-server, over the measured window. undefined without
 * deliveries or without a process whose CPU is known.
 */
export function cpuUsPerMsg(r: Pick<Result, 'processes' | 'msgsPerSec'>): number | undefined {
  const known = r.processes.filter((p) => p.name !== 'up' && typeof p.cpuPct === 'number');
  if (known.length === 0 || !(r.msgsPerSec > 0)) return undefined;
  return (sum(known.map((p) => p.cpuPct)) / 100 / r.msgsPerSec) * 1e6;
}
const fmtUs = (v: number | undefined): string => (v === undefined ? '-' : v >= 100 ? v.toFixed(0) : v.toFixed(1));

/** The median of the defined values (the mean of the middle two of an even count); undefined for none. */
export function median(xs: (number | null | undefined)[]): number | undefined {
  const v = xs.filter((x): x is number => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const m = v.length >> 1;
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}

/** One run's outcome: its result line, or null (failed, with the reason). */
export interface Outcome {
  config: Config;
  label: string;
  system: string;
  round: number;
  r: Result | null;
  error?: string;
}

/** The per-round figures of one (comparison, system), and their medians. */
export interface Row {
  config: Config;
  label: string;
  system: string;
  rounds: (Result | null)[];
  ok: number;
  msgsPerSec?: number;
  p50?: number;
  p99?: number;
  p999?: number;
  serverCpu?: number;
  serverRss?: number;
  procs?: number;
  redisCpu?: number;
  cpuUs?: number;
  otherCpu?: number;
  lost: number;
  errors: number;
  /** FishChat/socket.io of the medians; undefined for socket.io's own row or without one */
  vsSio?: { msgsPerSec?: number; p99?: number; cpuUs?: number };
}

const serversOf = (r: Result) => r.processes.filter((p) => isServer(p.name));

/** Groups the outcomes per (comparison, system) in the order they first ran; medians over the rounds, ratios to socket.io. */
export function summarizeRounds(outcomes: Outcome[]): Row[] {
  const rows: Row[] = [];
  const find = (c: Config, label: string) =>
    rows.find((x) => configKey(x.config) === configKey(c) && x.label === label);
  for (const o of outcomes) {
    let row = find(o.config, o.label);
    if (!row) {
      row = { config: o.config, label: o.label, system: o.system, rounds: [], ok: 0, lost: 0, errors: 0 };
      rows.push(row);
    }
    row.rounds[o.round - 1] = o.r;
  }
  for (const row of rows) {
    const ok = row.rounds.filter((r): r is Result => !!r);
    row.ok = ok.length;
    row.msgsPerSec = median(ok.map((r) => r.msgsPerSec));
    row.p50 = median(ok.map((r) => r.latencyMs?.p50));
    row.p99 = median(ok.map((r) => r.latencyMs?.p99));
    row.p999 = median(ok.map((r) => r.latencyMs?.p999));
    row.serverCpu = median(ok.map((r) => sum(serversOf(r).map((p) => p.cpuPct))));
    row.serverRss = median(ok.map((r) => sum(serversOf(r).map((p) => p.rssMiB))));
    row.procs = ok[0] ? serversOf(ok[0]).length : undefined;
    row.redisCpu = median(ok.map((r) => r.processes.find((p) => p.name === 'redis-server')?.cpuPct));
    row.cpuUs = median(ok.map(cpuUsPerMsg));
    row.otherCpu = median(ok.map((r) => r.otherCpuPct));
    row.lost = sum(ok.map((r) => r.lost));
    row.errors = sum(ok.map((r) => r.errors));
  }
  for (const row of rows) {
    if (row.system === 'socketio') continue;
    const sio = rows.find((x) => x.system === 'socketio' && configKey(x.config) === configKey(row.config));
    if (!sio) continue;
    const q = (a: number | undefined, b: number | undefined) =>
      a === undefined || b === undefined || !(b > 0) ? undefined : a / b;
    row.vsSio = {
      msgsPerSec: q(row.msgsPerSec, sio.msgsPerSec),
      p99: q(row.p99, sio.p99),
      cpuUs: q(row.cpuUs, sio.cpuUs),
    };
  }
  return rows;
}

function layout(header: string[], rows: string[][], left: Set<number>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (left.has(i) ? (c ?? '').padEnd(widths[i]!) : (c ?? '').padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n') + '\n';
}

const fmtRatio = (v: number | undefined, own: boolean): string =>
  own ? '1.00×' : v === undefined ? '-' : `${v.toFixed(2)}×`;

/** The table of the medians over the rounds, FishChat/socket.io ratios per comparison. */
export function formatTable(rows: Row[]): string {
  const header = [
    'workload',
    'system',
    'rounds',
    'msgs/s',
    'p50 ms',
    'p99 ms',
    'p999 ms',
    'server CPU %',
    'server RSS MiB',
    'procs',
    'redis CPU %',
    'CPU µs/msg',
    'msgs/s vs sio',
    'p99 vs sio',
    'µs/msg vs sio',
    'lost',
    'errors',
    'other CPU %',
  ];
  const cells = rows.map((x) => {
    const own = x.system === 'socketio';
    if (x.ok === 0)
      return [
        configKey(x.config),
        x.label,
        `0/${x.rounds.length}`,
        'FAILED (see above)',
        ...header.slice(4).map(() => ''),
      ];
    return [
      configKey(x.config),
      x.label,
      `${x.ok}/${x.rounds.length}`,
      fmtInt(x.msgsPerSec),
      fmtMs(x.p50),
      fmtMs(x.p99),
      fmtMs(x.p999),
      x.serverCpu === undefined ? '-' : x.serverCpu.toFixed(0),
      x.serverRss === undefined ? '-' : x.serverRss.toFixed(0),
      String(x.procs ?? '-'),
      x.redisCpu === undefined ? '-' : String(Math.round(x.redisCpu)),
      fmtUs(x.cpuUs),
      fmtRatio(x.vsSio?.msgsPerSec, own),
      fmtRatio(x.vsSio?.p99, own),
      fmtRatio(x.vsSio?.cpuUs, own),
      String(x.lost),
      String(x.errors),
      x.otherCpu === undefined ? '-' : String(Math.round(x.otherCpu)),
    ];
  });
  return layout(header, cells, new Set([0, 1]));
}

/** The per-round values of msgs/s, p99, CPU-µs per message and other CPU, "a / b / c" (FAILED for a failed round). */
export function formatRounds(rows: Row[]): string {
  const header = [
    'workload',
    'system',
    'msgs/s per round',
    'p99 ms per round',
    'CPU µs/msg per round',
    'other CPU % per round',
  ];
  const per = (x: Row, f: (r: Result) => string) => x.rounds.map((r) => (r ? f(r) : 'FAILED')).join(' / ');
  const cells = rows.map((x) => [
    configKey(x.config),
    x.label,
    per(x, (r) => fmtInt(r.msgsPerSec)),
    per(x, (r) => fmtMs(r.latencyMs?.p99)),
    per(x, (r) => fmtUs(cpuUsPerMsg(r))),
    per(x, (r) => (r.otherCpuPct === undefined ? '-' : String(r.otherCpuPct))),
  ]);
  return layout(header, cells, new Set([0, 1, 2, 3, 4, 5]));
}

async function main(): Promise<number> {
  let f: Flags;
  try {
    f = parseFlags(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`bench:compare: ${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (f.help) {
    process.stdout.write(HELP);
    return 0;
  }
  mkdirSync(dirname(f.out), { recursive: true });
  const runs = runsFor(f);
  process.stdout.write(
    `bench:compare: ${f.rounds} round(s) of ${runs.length / f.rounds} runs (${f.configs.map(configKey).join('; ')}; FishChat on ${f.runtimes.join(',')} over ${f.transports.join(',')}, then socket.io), ` +
      `--size ${f.size} --duration ${f.duration} --warmup ${f.warmup}, Redis ${f.redis}; results → ${f.out}\n`,
  );
  const outcomes: Outcome[] = [];
  let failed = 0;
  for (const [i, run] of runs.entries()) {
    // Quiet: QUIET_SECONDS one-second samples in a row under QUIET busy.
    let busy = await machineBusy(1000);
    let quiet = busy <= QUIET ? 1 : 0;
    const waitUntil = performance.now() + f.quietWait * 1000;
    if (f.quietWait > 0 && quiet < QUIET_SECONDS) {
      if (busy > QUIET)
        process.stdout.write(
          `    the machine is busy (${pct(busy)} CPU): waiting up to ${f.quietWait} s for it to be quiet …\n`,
        );
      while (quiet < QUIET_SECONDS && performance.now() < waitUntil) {
        busy = await machineBusy(1000);
        quiet = busy <= QUIET ? quiet + 1 : 0;
      }
    }
    process.stdout.write(
      `[${i + 1}/${runs.length}] round ${run.round}/${f.rounds}: ${run.label}, ${configKey(run.config)} (machine ${pct(busy)} busy before the run, load average ${os.loadavg()[0]!.toFixed(2)}` +
        `${busy > QUIET ? ': other work is running, numbers will be noisy' : ''}) …\n`,
    );
    const base = { config: run.config, label: run.label, system: run.system, round: run.round };
    try {
      const r = await runOne(run, f);
      appendFileSync(f.out, JSON.stringify({ ...r, round: run.round, rounds: f.rounds, run: f.stamp }) + '\n');
      outcomes.push({ ...base, r });
      process.stdout.write(
        `    ${fmtInt(r.msgsPerSec)} ${run.config.workload === 'topic' ? 'deliveries' : 'msgs'}/s, p50 ${fmtMs(r.latencyMs?.p50)} ms, p99 ${fmtMs(r.latencyMs?.p99)} ms, ` +
          `CPU ${fmtUs(cpuUsPerMsg(r))} µs/msg, errors ${r.errors}, lost ${r.lost ?? 0}\n`,
      );
    } catch (e) {
      failed++;
      const reason = (e as Error).message;
      outcomes.push({ ...base, r: null, error: reason });
      process.stdout.write(`    FAILED: ${reason}\n`);
    }
    // Let the previous run's processes and sockets settle before the next one.
    if (i + 1 < runs.length) await new Promise((r) => setTimeout(r, 2000));
  }
  const rows = summarizeRounds(outcomes);
  process.stdout.write(`\nmedian of ${f.rounds} round(s):\n` + formatTable(rows));
  process.stdout.write('\nper round:\n' + formatRounds(rows));
  process.stdout.write(
    `\nmsgs/s: delivered messages per second (topic: deliveries to members per second); p50/p99/p999: latency per delivery.\n` +
      `server CPU: sum over the server processes (% of one core) over the measured window; RSS: sum at its end.\n` +
      `FishChat: every role process (gateway, router, manager, monitor, msg_servers; not the \`up\` supervisor); socket.io: its two nodes.\n` +
      `redis CPU: the redis-server both use (when it is local), over the same window. The load generator is in neither.\n` +
      `CPU µs/msg: (server processes + redis-server) CPU time over the window / messages (topic: deliveries) in it.\n` +
      `Each figure is the median of the rounds (of a figure per round). "vs sio": FishChat's median / socket.io's\n` +
      `(msgs/s: higher is better; p99 and µs/msg: lower is better). lost, errors: summed over the rounds.\n` +
      `other CPU: what the rest of the machine used over the window (% of one core): other work skews every number.\n` +
      `${outcomes.filter((x) => x.r).length} result lines appended to ${f.out}\n`,
  );
  if (failed) {
    process.stderr.write(`bench:compare: ${failed} of ${runs.length} runs failed:\n`);
    for (const x of outcomes)
      if (!x.r) process.stderr.write(`  round ${x.round}, ${x.label}, ${configKey(x.config)}: ${x.error}\n`);
    return 1;
  }
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href)
  process.exitCode = await main();
