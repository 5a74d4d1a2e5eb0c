/**
 * The result of a run: the JSON object of bench/FORMAT.md (keys in
 * its order), and a short nats-bench-like text report.
 */
import { cpus, release, totalmem, type as osType } from 'node:os';
import type { ServerMemory } from './memory.js';
import type { ProcessSample } from './proc.js';
import type { Workload } from './workloads.js';

export interface Latency {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

export interface BenchResult {
  system: 'fishchat';
  version: string;
  runtime: 'node' | 'bun' | 'deno' | null;
  mode: 'embedded' | 'redis' | 'external';
  /** how the load generator's clients reach the msg_servers: raw TCP, or WebSocket (docs/protocol.md §1a) */
  transport: 'tcp' | 'ws';
  workload: Workload;
  pairs: number;
  cross: boolean;
  topicMembers: number;
  idle: number;
  size: number;
  inflight: number;
  duration: number;
  warmup: number;
  sent: number;
  delivered: number;
  errors: number;
  msgsPerSec: number;
  latencyMs: Latency | null;
  processes: ProcessSample[];
  client: { cpuPct: number; rssMiB: number };
  rssPerConnBytes: number | null;
  /** idle only: the msg_server's own figure (its /health after a full GC), before and after the connections */
  serverMemory: ServerMemory | null;
  machine: { cpus: number; model: string; memGiB: number; os: string; node: string };
  at: string;
}

/**
 * Append-only float64 sample buffer that doubles when full (no per-sample
 * allocation). The socket.io peer uses this one too.
 */
export class Samples {
  private buf: Float64Array;
  length = 0;
  constructor(initial = 1 << 16) {
    this.buf = new Float64Array(initial);
  }
  push(x: number): void {
    if (this.length === this.buf.length) {
      const next = new Float64Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.length++] = x;
  }
  /** The samples so far (a view: sorting it sorts them in place). */
  view(): Float64Array {
    return this.buf.subarray(0, this.length);
  }
  clear(): void {
    this.length = 0;
  }
}

/**
 * Exact percentile, nearest rank: the smallest sample such that at least p of all samples are
 * ≤ it. `sorted` must be sorted ascending; p in [0, 1]. NaN for no samples. (The socket.io peer
 * uses this one too: both systems are measured with the same arithmetic.)
 */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  if (!(p >= 0 && p <= 1)) throw new RangeError(`percentile: p must be in [0, 1], got ${p}`);
  return sorted[Math.min(n - 1, Math.max(0, Math.ceil(p * n) - 1))]!;
}

/** Exact percentiles (nearest rank) of sorted samples; null without samples. */
export function percentiles(sorted: Float64Array): Latency | null {
  const n = sorted.length;
  if (n === 0) return null;
  const at = (p: number) => round3(percentile(sorted, p));
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), p999: at(0.999), max: round3(sorted[n - 1]!) };
}

export function machine(): BenchResult['machine'] {
  const c = cpus();
  return {
    cpus: c.length,
    model: (c[0]?.model ?? 'unknown').trim(),
    memGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: `${osType().toLowerCase()} ${release()}`,
    node: process.version,
  };
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** The JSON line, keys in the contract's order whatever order the object was built in. */
export function toJson(r: BenchResult): string {
  const ordered: BenchResult = {
    system: r.system,
    version: r.version,
    runtime: r.runtime,
    mode: r.mode,
    transport: r.transport,
    workload: r.workload,
    pairs: r.pairs,
    cross: r.cross,
    topicMembers: r.topicMembers,
    idle: r.idle,
    size: r.size,
    inflight: r.inflight,
    duration: r.duration,
    warmup: r.warmup,
    sent: r.sent,
    delivered: r.delivered,
    errors: r.errors,
    msgsPerSec: r.msgsPerSec,
    latencyMs: r.latencyMs && {
      p50: r.latencyMs.p50,
      p90: r.latencyMs.p90,
      p99: r.latencyMs.p99,
      p999: r.latencyMs.p999,
      max: r.latencyMs.max,
    },
    processes: r.processes.map((p) => ({ name: p.name, pid: p.pid, cpuPct: p.cpuPct, rssMiB: p.rssMiB })),
    client: { cpuPct: r.client.cpuPct, rssMiB: r.client.rssMiB },
    rssPerConnBytes: r.rssPerConnBytes,
    serverMemory: r.serverMemory,
    machine: r.machine,
    at: r.at,
  };
  return JSON.stringify(ordered);
}

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const num = (n: number, d = 1) => n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });

/** The human report (stdout without --json). */
export function toText(r: BenchResult, extra: { servers: number; stalled: number }): string {
  const lines: string[] = [];
  const where =
    (r.mode === 'external' ? 'an existing cluster' : `${r.mode} on ${r.runtime}`) +
    (r.transport === 'ws' ? ', clients over WebSocket' : '');
  const what =
    r.workload === 'p2p'
      ? `p2p, ${int(r.pairs)} pairs (${r.cross ? 'receiver on another msg_server' : "receiver on its sender's msg_server"})`
      : r.workload === 'topic'
        ? `topic, ${int(r.topicMembers)} members`
        : `idle, ${int(r.idle)} connections to one msg_server`;
  const load = r.workload === 'idle' ? '' : `, ${r.size} B payload, inflight ${r.inflight}`;
  lines.push(
    `fishchat bench: ${what}${load}; ${where}, ${extra.servers} msg_server(s); ${r.duration} s measured after ${r.warmup} s warmup`,
  );
  lines.push('');
  if (r.workload !== 'idle') {
    lines.push(`  ${r.workload === 'topic' ? 'deliveries/s' : 'msgs/s'}  ${num(r.msgsPerSec)}`);
    lines.push(
      `  sent ${int(r.sent)}  delivered ${int(r.delivered)}  errors ${int(r.errors)}${extra.stalled ? `  given up ${int(extra.stalled)}` : ''}`,
    );
    const l = r.latencyMs;
    lines.push(
      l
        ? `  latency ms  p50 ${num(l.p50, 2)}  p90 ${num(l.p90, 2)}  p99 ${num(l.p99, 2)}  p99.9 ${num(l.p999, 2)}  max ${num(l.max, 2)}`
        : '  latency ms  (no samples)',
    );
  } else {
    lines.push(`  connections ${int(r.idle)}  errors ${int(r.errors)}`);
    lines.push(
      `  msg_server RSS per connection  ${r.rssPerConnBytes === null ? 'unknown (no process to read)' : `${int(r.rssPerConnBytes)} B`} (/proc VmRSS, garbage included)`,
    );
    const m = r.serverMemory;
    lines.push(
      m === null
        ? '  msg_server figure per connection  unknown (no /health to read)'
        : `  msg_server figure per connection  RSS ${int(m.rssPerConnBytes)} B  heap ${int(m.heapUsedPerConnBytes)} B  external ${int(m.externalPerConnBytes)} B (${m.afterGc ? 'after a full GC' : 'no GC forced: the runtime could not'})`,
    );
  }
  lines.push('');
  const rows: string[][] = [['PROCESS', 'PID', 'CPU %', 'RSS MiB']];
  for (const p of r.processes)
    rows.push([
      p.name,
      String(p.pid),
      p.cpuPct === null ? '-' : num(p.cpuPct),
      p.rssMiB === null ? '-' : num(p.rssMiB),
    ]);
  rows.push(['client (this bench)', String(process.pid), num(r.client.cpuPct), num(r.client.rssMiB)]);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  for (const row of rows)
    lines.push(`  ${row.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')}`);
  if (r.processes.length === 0) lines.push('  (server processes unknown: --gateway)');
  lines.push('');
  lines.push(`  CPU % is of one core over the measured window; ${r.machine.cpus} CPU(s): ${r.machine.model}`);
  return lines.join('\n');
}
