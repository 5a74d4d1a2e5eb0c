/**
 * Pure helpers shared by the peer benchmarks (bench/peers/*): exact percentiles, a growable
 * sample buffer, /proc readers for CPU and RSS, and the machine description of the result
 * contract (bench/FORMAT.md). Percentiles, samples and the machine line are `fishchat bench`'s
 * own (cli/bench/report.ts), so both systems are measured and described alike.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { machine, percentiles, type Latency as LatencySummary } from '../../cli/bench/report.js';

/** Latency summary of the result contract, in ms. */
export type { Latency as LatencySummary } from '../../cli/bench/report.js';

export { percentile, Samples } from '../../cli/bench/report.js';

/** Sorts (a copy of) the samples and returns p50/p90/p99/p999/max, or null when there are none: `fishchat bench`'s own arithmetic. */
export function summarize(samples: Float64Array): LatencySummary | null {
  return percentiles(Float64Array.from(samples).sort());
}

let clkTck: number | undefined;
/** Clock ticks per second (`getconf CLK_TCK`, 100 when unknown). */
export function clockTicks(): number {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 2000 }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/** utime + stime of a process from the text of /proc/<pid>/stat, in clock ticks. */
export function parseProcStatTicks(stat: string): number {
  // comm (field 2) may hold spaces and parentheses: the fields after the last ')' start at 3.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(rest[14 - 3]);
  const stime = Number(rest[15 - 3]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error('unparsable /proc stat line');
  return utime + stime;
}

/** VmRSS from the text of /proc/<pid>/status, in bytes (NaN when absent). */
export function parseProcStatusRss(status: string): number {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  return m ? Number(m[1]) * 1024 : NaN;
}

/** CPU time (s) of a live process, from /proc. */
export function procCpuSeconds(pid: number): number {
  return parseProcStatTicks(readFileSync(`/proc/${pid}/stat`, 'utf8')) / clockTicks();
}

/** RSS (bytes) of a live process, from /proc. */
export function procRssBytes(pid: number): number {
  return parseProcStatusRss(readFileSync(`/proc/${pid}/status`, 'utf8'));
}

export const MiB = 1024 * 1024;
export const round1 = (x: number): number => Math.round(x * 10) / 10;

/** The `machine` object of the result contract. */
export function machineInfo(): { cpus: number; model: string; memGiB: number; os: string; node: string } {
  return machine();
}

/** Busy and total jiffies of all CPUs from the text of /proc/stat (its first, "cpu" line). */
export function parseProcStatCpu(stat: string): { busy: number; total: number } {
  const line = stat.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) throw new Error('no cpu line in /proc/stat');
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest and guest_nice are inside user and nice)
  const total = v.slice(0, 8).reduce((a, b) => a + (b || 0), 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: total - idle, total };
}

/** The fraction (0–1) of the machine's CPU time busy over the next `ms` milliseconds. */
export async function machineBusy(ms = 1000): Promise<number> {
  const a = parseProcStatCpu(readFileSync('/proc/stat', 'utf8'));
  await new Promise((r) => setTimeout(r, ms));
  const b = parseProcStatCpu(readFileSync('/proc/stat', 'utf8'));
  const total = b.total - a.total;
  return total > 0 ? (b.busy - a.busy) / total : 0;
}
