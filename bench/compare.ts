/**
 * FishChat vs socket.io, same p2p workload, same flags, one after the other.
 *
 *   npm run bench:compare -- [--pairs 1000 | --pairs 100,500,1000] [--runtimes node,bun]
 *       [--transports tcp,ws] [--duration 10] [--warmup 2] [--inflight 1] [--size 100]
 *       [--redis URL] [--out FILE]
 *
 * For each pairs value: `fishchat bench --json --cross --redis URL` once per FishChat runtime
 * and transport (one process per role over Redis: the counterpart of socket.io's two nodes +
 * Redis adapter; `--transport ws`: the clients over WebSocket, as socket.io's are), then the
 * socket.io peer (bench/peers/socketio/bench.ts --json --cross) with the same flags. Every
 * result line is appended to --out (JSONL; default bench/results/compare-<timestamp>.jsonl) as
 * soon as it is there; at the end a table side by side: msgs/s, p50, p99, p999, server CPU
 * (sum over the server processes, % of one core) and RSS (sum), CPU-µs per message (server
 * processes + redis-server), and FishChat/socket.io for msgs/s, p99 and CPU-µs per message.
 * Exit 0 when every run gave a result, 1 when one failed (the reason is printed; the other
 * runs still run), 2 on bad flags.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, mkdirSync } from 'node:fs';
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
  client?: BenchResult['client'];
  /** not in the line: the CPU (% of one core) other work used over the window, from the run's stderr */
  otherCpuPct?: number;
};

/** The "… of which N% not this benchmark's" both benchmarks print on stderr; undefined when absent. */
export function otherCpu(stderr: string): number | undefined {
  const m = /machine CPU over the window: \d+% of one core busy, of which (\d+)% not this benchmark's/.exec(stderr);
  return m ? Number(m[1]) : undefined;
}

interface Run {
  label: string;
  system: 'fishchat' | 'socketio';
  runtime: string;
  transport: 'tcp' | 'ws';
  pairs: number;
  argv: string[];
}

class UsageError extends Error {}

function parseFlags(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      pairs: { type: 'string', default: '1000' },
      runtimes: { type: 'string', default: 'node' },
      transports: { type: 'string', default: 'tcp,ws' },
      duration: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '2' },
      inflight: { type: 'string', default: '1' },
      size: { type: 'string', default: '100' },
      redis: { type: 'string', default: 'redis://127.0.0.1:6379' },
      out: { type: 'string' },
      'quiet-wait': { type: 'string', default: '120' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const posInt = (name: string, v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${name}: a positive integer, found "${v}"`);
    return n;
  };
  const posNum = (name: string, v: string, min: number): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new UsageError(`--${name}: a number ≥ ${min}, found "${v}"`);
    return n;
  };
  const pairs = values.pairs.split(',').map((p) => posInt('pairs', p.trim()));
  const runtimes = values.runtimes.split(',').map((r) => r.trim());
  for (const r of runtimes)
    if (!['node', 'bun', 'deno'].includes(r)) throw new UsageError(`--runtimes: node, bun or deno, found "${r}"`);
  const transports = values.transports.split(',').map((t) => t.trim());
  for (const t of transports)
    if (t !== 'tcp' && t !== 'ws') throw new UsageError(`--transports: tcp or ws, found "${t}"`);
  if (!/^rediss?:\/\//.test(values.redis)) throw new UsageError(`--redis: a redis:// URL, found "${values.redis}"`);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  return {
    help: values.help,
    pairs,
    runtimes: [...new Set(runtimes)],
    transports: [...new Set(transports)] as ('tcp' | 'ws')[],
    duration: posNum('duration', values.duration, 0.1),
    warmup: posNum('warmup', values.warmup, 0),
    inflight: posInt('inflight', values.inflight),
    size: posInt('size', values.size),
    redis: values.redis,
    quietWait: posNum('quiet-wait', values['quiet-wait'], 0),
    out: values.out ? resolve(values.out) : join(root, 'bench', 'results', `compare-${stamp}.jsonl`),
  };
}
type Flags = ReturnType<typeof parseFlags>;

const HELP = `Usage: npm run bench:compare -- [flags]

Runs \`fishchat bench --json --cross --redis URL\` (one process per role over Redis), over raw
TCP and over WebSocket (\`--transport ws\`), and the socket.io peer (two nodes +
@socket.io/redis-adapter, websocket only) with the same flags, one after the other, and prints
them side by side.

  --pairs N[,N...]     pairs, one value or a sweep (default 1000)
  --runtimes R[,R...]  FishChat cluster runtimes: node, bun, deno (default node)
  --transports T[,T]   FishChat client transports: tcp, ws (default tcp,ws)
  --duration S         measured seconds per run (default 10)
  --warmup S           warm-up seconds per run (default 2)
  --inflight K         messages in flight per sender (default 1)
  --size B             payload bytes (default 100)
  --redis URL          Redis for both (default redis://127.0.0.1:6379)
  --out FILE           append every result line here (default bench/results/compare-<timestamp>.jsonl)
  --quiet-wait S       before each run, wait up to S seconds (default 120; 0: don't) for the
                       machine to be quiet (3 s in a row under 25% CPU busy): other work skews the numbers

Example: npm run bench:compare -- --pairs 100,500,1000 --runtimes node,bun
`;

function runsFor(f: Flags): Run[] {
  const common = [
    '--json',
    '--cross',
    '--redis',
    f.redis,
    '--size',
    String(f.size),
    '--duration',
    String(f.duration),
    '--warmup',
    String(f.warmup),
    '--inflight',
    String(f.inflight),
  ];
  const runs: Run[] = [];
  for (const pairs of f.pairs) {
    for (const rt of f.runtimes)
      for (const tr of f.transports)
        runs.push({
          label: `FishChat on ${rt}, ${tr === 'ws' ? 'WebSocket' : 'TCP'}`,
          system: 'fishchat',
          runtime: rt,
          transport: tr,
          pairs,
          argv: [
            join(root, 'bin', 'run.js'),
            'bench',
            ...common,
            '--pairs',
            String(pairs),
            '--runtime',
            rt,
            '--transport',
            tr,
          ],
        });
    runs.push({
      label: 'socket.io (WebSocket)',
      system: 'socketio',
      runtime: 'node',
      transport: 'ws',
      pairs,
      argv: [
        '--import',
        'tsx',
        join(root, 'bench', 'peers', 'socketio', 'bench.ts'),
        ...common,
        '--pairs',
        String(pairs),
      ],
    });
  }
  return runs;
}

/** Runs one benchmark process: its result line, or an Error with the reason. */
function runOne(run: Run, f: Flags): Promise<Result> {
  const limitMs = (f.warmup + f.duration) * 1000 + 300_000 + run.pairs * 100;
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, run.argv, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderrTail = '';
    let other: number | undefined;
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => {
      const s = d.toString();
      stderrTail = (stderrTail + s).slice(-4000);
      other = otherCpu(s) ?? other;
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
      if (!parsed || typeof parsed.msgsPerSec !== 'number' || parsed.system !== run.system)
        return reject(new Error(`no result line on stdout (last line: ${JSON.stringify((last ?? '').slice(0, 200))})`));
      resolvePromise(other === undefined ? parsed : { ...parsed, otherCpuPct: other });
    });
  });
}

/** Machine CPU busy (0–1) under which a run starts without waiting. */
const QUIET = 0.25;
const QUIET_SECONDS = 3;
const pct = (x: number): string => `${Math.round(x * 100)}%`;
const sum = (xs: (number | null)[]): number => xs.reduce<number>((a, b) => a + (b ?? 0), 0);
/** Server processes: every one but the `up` supervisor and redis-server (shown on its own). */
export const isServer = (name: string): boolean => name !== 'up' && name !== 'redis-server';
const fmtInt = (v: number): string => Math.round(v).toLocaleString('en-US');
const fmtMs = (v: number | undefined): string =>
  v === undefined ? '-' : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
const ratio = (a: number | undefined, b: number | undefined): string =>
  a === undefined || b === undefined || !(b > 0) ? '-' : `${(a / b).toFixed(2)}×`;

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

/** The side-by-side table of the results, FishChat/socket.io ratios per pairs value. */
export function formatTable(results: { pairs: number; label: string; r: Result | null; error?: string }[]): string {
  const header = [
    'pairs',
    'system',
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
    'other CPU %',
  ];
  const rows: string[][] = [];
  for (const pairs of [...new Set(results.map((x) => x.pairs))]) {
    const group = results.filter((x) => x.pairs === pairs);
    const sio = group.find((x) => x.r?.system === 'socketio')?.r ?? null;
    for (const x of group) {
      const r = x.r;
      if (!r) {
        rows.push([String(pairs), x.label, `FAILED (see above)`, '', '', '', '', '', '', '', '', '', '', '', '']);
        continue;
      }
      const isFish = r.system === 'fishchat';
      const servers = r.processes.filter((p) => isServer(p.name));
      const redis = r.processes.find((p) => p.name === 'redis-server');
      rows.push([
        String(pairs),
        x.label,
        fmtInt(r.msgsPerSec),
        fmtMs(r.latencyMs?.p50),
        fmtMs(r.latencyMs?.p99),
        fmtMs(r.latencyMs?.p999),
        sum(servers.map((p) => p.cpuPct)).toFixed(0),
        sum(servers.map((p) => p.rssMiB)).toFixed(0),
        String(servers.length),
        redis ? String(Math.round(redis.cpuPct ?? NaN)) : '-',
        fmtUs(cpuUsPerMsg(r)),
        isFish ? ratio(r.msgsPerSec, sio?.msgsPerSec) : '1.00×',
        isFish ? ratio(r.latencyMs?.p99, sio?.latencyMs?.p99) : '1.00×',
        isFish ? ratio(cpuUsPerMsg(r), sio ? cpuUsPerMsg(sio) : undefined) : '1.00×',
        r.otherCpuPct === undefined ? '-' : String(r.otherCpuPct),
      ]);
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const left = new Set([1]);
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (left.has(i) ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n') + '\n';
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
    `bench:compare: ${runs.length} runs (pairs ${f.pairs.join(',')}; FishChat on ${f.runtimes.join(',')} over ${f.transports.join(',')}; socket.io), ` +
      `--cross --size ${f.size} --inflight ${f.inflight} --duration ${f.duration} --warmup ${f.warmup}, Redis ${f.redis}; results → ${f.out}\n`,
  );
  const results: { pairs: number; label: string; r: Result | null; error?: string }[] = [];
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
      `[${i + 1}/${runs.length}] ${run.label}, ${run.pairs} pairs (machine ${pct(busy)} busy before the run, load average ${os.loadavg()[0]!.toFixed(2)}` +
        `${busy > QUIET ? ': other work is running, numbers will be noisy' : ''}) …\n`,
    );
    try {
      const r = await runOne(run, f);
      const { otherCpuPct: _, ...line } = r;
      appendFileSync(f.out, JSON.stringify(line) + '\n');
      results.push({ pairs: run.pairs, label: run.label, r });
      process.stdout.write(
        `    ${fmtInt(r.msgsPerSec)} msgs/s, p50 ${fmtMs(r.latencyMs?.p50)} ms, p99 ${fmtMs(r.latencyMs?.p99)} ms, errors ${r.errors}\n`,
      );
    } catch (e) {
      failed++;
      const reason = (e as Error).message;
      results.push({ pairs: run.pairs, label: run.label, r: null, error: reason });
      process.stdout.write(`    FAILED: ${reason}\n`);
    }
    // Let the previous run's processes and sockets settle before the next one.
    if (i + 1 < runs.length) await new Promise((r) => setTimeout(r, 2000));
  }
  process.stdout.write('\n' + formatTable(results));
  process.stdout.write(
    `\nserver CPU: sum over the server processes (% of one core) over the measured window; RSS: sum at its end.\n` +
      `FishChat: every role process (gateway, router, manager, monitor, msg_servers; not the \`up\` supervisor); socket.io: its two nodes.\n` +
      `redis CPU: the redis-server both use (when it is local), over the same window. The load generator is in neither.\n` +
      `CPU µs/msg: (server processes + redis-server) CPU time over the window / messages delivered in it.\n` +
      `"vs sio": FishChat / socket.io (msgs/s: higher is better; p99 and µs/msg: lower is better).\n` +
      `other CPU: what the rest of the machine used over the window (% of one core): other work skews every number.\n` +
      `${results.filter((x) => x.r).length} result lines appended to ${f.out}\n`,
  );
  if (failed) {
    process.stderr.write(`bench:compare: ${failed} of ${runs.length} runs failed:\n`);
    for (const x of results) if (!x.r) process.stderr.write(`  ${x.label}, ${x.pairs} pairs: ${x.error}\n`);
    return 1;
  }
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href)
  process.exitCode = await main();
