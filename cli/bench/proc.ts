/**
 * What /proc says about the server processes (Linux): CPU time, RSS, and the
 * open-files limit of this process.
 */
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on Linux). */
const TICKS_PER_S = 100;

/** CPU seconds (user + system) used by pid so far; undefined when it cannot be read. */
export function cpuSeconds(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // The name (field 2) may hold spaces and parentheses: fields after the last ")".
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state): utime is field 14, stime field 15.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return undefined;
  return (utime + stime) / TICKS_PER_S;
}

/** Resident set size of pid in bytes (VmRSS); undefined when it cannot be read. */
export function rssBytes(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** RLIMIT_NOFILE of this process, from /proc/self/limits; undefined when not on Linux. */
export function openFilesLimit(): { soft: number; hard: number } | undefined {
  try {
    const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'latin1'));
    if (!m) return undefined;
    const n = (s: string) => (s === 'unlimited' ? Infinity : Number(s));
    return { soft: n(m[1]!), hard: n(m[2]!) };
  } catch {
    return undefined;
  }
}

/** Busy jiffies of all CPUs so far (/proc/stat, first line: all but idle and iowait); undefined off Linux. */
export function machineBusyTicks(): number | undefined {
  try {
    const line = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0]!;
    if (!line.startsWith('cpu ')) return undefined;
    const v = line.trim().split(/\s+/).slice(1, 9).map(Number);
    if (v.some((x) => !Number.isFinite(x))) return undefined;
    return v.reduce((a, b) => a + b, 0) - v[3]! - v[4]!;
  } catch {
    return undefined;
  }
}

export interface ServerProcess {
  name: string;
  pid: number;
}

export interface ProcessSample {
  name: string;
  pid: number;
  cpuPct: number | null;
  rssMiB: number | null;
}

/** CPU of each process over a window: start() at its start, end() at its end (RSS then too). */
export class ProcessMeter {
  private start0 = new Map<number, number | undefined>();
  private t0 = 0;
  private client0 = process.cpuUsage();
  private machine0: number | undefined;

  constructor(readonly processes: ServerProcess[]) {}

  start(): void {
    this.t0 = performance.now();
    this.machine0 = machineBusyTicks();
    for (const p of this.processes) this.start0.set(p.pid, cpuSeconds(p.pid));
    this.client0 = process.cpuUsage();
  }

  end(): {
    processes: ProcessSample[];
    client: { cpuPct: number; rssMiB: number };
    seconds: number;
    /** the whole machine's busy CPU over the window, % of one core (undefined off Linux) */
    machinePct?: number;
  } {
    const seconds = (performance.now() - this.t0) / 1000;
    const c = process.cpuUsage(this.client0);
    const m1 = machineBusyTicks();
    const machinePct =
      this.machine0 === undefined || m1 === undefined || seconds <= 0
        ? undefined
        : round1(((m1 - this.machine0) / TICKS_PER_S / seconds) * 100);
    const processes = this.processes.map((p) => {
      const a = this.start0.get(p.pid);
      const b = cpuSeconds(p.pid);
      const rss = rssBytes(p.pid);
      return {
        name: p.name,
        pid: p.pid,
        cpuPct: a === undefined || b === undefined || seconds <= 0 ? null : round1(((b - a) / seconds) * 100),
        rssMiB: rss === undefined ? null : round1(rss / 1048576),
      };
    });
    return {
      processes,
      client: {
        cpuPct: round1(((c.user + c.system) / 1e6 / seconds) * 100),
        rssMiB: round1(process.memoryUsage.rss() / 1048576),
      },
      seconds,
      ...(machinePct === undefined ? {} : { machinePct }),
    };
  }
}

export function round1(x: number): number {
  return Math.round(x * 10) / 10;
}
