/**
 * Background clusters: `fishchat up --detach` and `fishchat down`.
 *
 * - `up --detach` spawns `fishchat up DIR …` (the same flags, without
 *   --detach) in its own session, its output appended to
 *   DIR/.fishchat/logs/up.log, and waits for DIR/.fishchat/run.json to name
 *   that process (the cluster is ready).
 * - Every `up` (foreground or background) holds DIR/.fishchat/up.pid from its
 *   start to its exit: a second `up` is refused also while the first one is
 *   still starting (before run.json exists), and `down` finds an `up` that is
 *   still starting.
 * - `down` sends SIGTERM to the `up` of run.json (or up.pid) and waits until
 *   it is gone; `up` stops the roles itself (msg_servers kick `draining`).
 *
 * Liveness: a pid counts as alive only while it is not a zombie (an exited
 * `up` reparented to an init that does not reap) and, where /proc tells, its
 * command line is still that of a fishchat `up` (a pid reused by another
 * program is not ours to signal).
 */
import { spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { CLUSTER_DEFAULTS, CLUSTER_FILE } from './defaults.js';
import { processAlive, readRunFileRaw, runFilePath, type RunInfo } from './run-file.js';

/** The lock of a running (or starting) `fishchat up`: its pid. */
export const UP_PID_FILE = join('.fishchat', 'up.pid');
/** Where a background `up` writes its output (appended). */
export const UP_LOG_FILE = join('.fishchat', 'logs', 'up.log');
/** Set in the environment of the `up` that `up --detach` starts. */
export const DETACHED_ENV = 'FISHCHAT_UP_DETACHED';
/** up.log is moved to up.log.1 when a background `up` starts and it is larger than this. */
export const LOG_ROTATE_BYTES = 10 * 1024 * 1024;

export function upPidPath(dir: string): string {
  return join(dir, UP_PID_FILE);
}

export function upLogPath(dir: string): string {
  return join(dir, UP_LOG_FILE);
}

/** A second `up` while the first one is still starting (no run.json yet). */
export class AlreadyStartingError extends Error {
  constructor(
    readonly dir: string,
    readonly pid: number,
  ) {
    super(
      `a cluster is already running in ${dir} (fishchat up, pid ${pid}, still starting); ` +
        `wait for it, or stop it with: fishchat down ${dir}`,
    );
    this.name = 'AlreadyStartingError';
  }
}

// ---------------------------------------------------------------- processes

/** The command line of a process (Linux /proc), or undefined when it cannot be read. */
function cmdline(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return undefined;
  }
}

/** True when /proc says the process is a zombie (exited, not yet reaped). */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state === 'Z' || state === 'X';
  } catch {
    return false;
  }
}

/** The process exists and has not exited (a zombie counts as gone). */
export function processRunning(pid: number): boolean {
  return Number.isInteger(pid) && pid > 0 && processAlive(pid) && !isZombie(pid);
}

/**
 * The process runs and, as far as /proc tells, is what `kind` says: a
 * fishchat `up` (an argument `up`), a role process (role-main) or a
 * redis-server. Without /proc (macOS) the pid is trusted.
 */
export function processIs(pid: number, kind: 'up' | 'role' | 'redis-server'): boolean {
  if (!processRunning(pid)) return false;
  const args = cmdline(pid);
  if (args === undefined) return process.platform !== 'linux';
  switch (kind) {
    case 'up':
      return args.includes('up');
    case 'role':
      return args.some((a) => /role-main\.[jt]s$/.test(a)) || args.includes('serve');
    case 'redis-server':
      return args.some((a) => a.includes('redis-server'));
  }
}

/** Sends `signal`; false when the process is gone (or not ours to signal). */
export function signalProcess(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Resolves true once the process is gone, false at the deadline. */
export async function waitForExit(pid: number, timeoutMs: number, pollMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (processRunning(pid)) {
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, pollMs));
  }
  return true;
}

// ---------------------------------------------------------------- up.pid

/** The pid in up.pid when that process is a running `up`; undefined otherwise. */
export function readUpLock(dir: string): number | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(upPidPath(dir), 'utf8').trim());
  } catch {
    return undefined;
  }
  return Number.isInteger(pid) && pid > 0 && pid !== process.pid && processIs(pid, 'up') ? pid : undefined;
}

/**
 * Takes up.pid for this process (created exclusively; a stale one, whose
 * process is gone, is replaced). Throws AlreadyStartingError when another
 * live `up` holds it. The lock is released by `release()` and, at the
 * latest, when this process exits.
 */
export function acquireUpLock(dir: string): { path: string; release: () => void } {
  const path = upPidPath(dir);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(path, `${process.pid}\n`, { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 3) throw err;
      const holder = readUpLock(dir);
      if (holder !== undefined) throw new AlreadyStartingError(dir, holder);
      // Stale: its `up` is gone. Move it aside atomically, so two `up`s cannot both remove and create it.
      try {
        renameSync(path, `${path}.stale.${process.pid}`);
        rmSync(`${path}.stale.${process.pid}`, { force: true });
      } catch {
        // someone else moved it: try again
      }
    }
  }
  const release = () => {
    try {
      if (Number(readFileSync(path, 'utf8').trim()) === process.pid) rmSync(path, { force: true });
    } catch {
      // gone already
    }
  };
  process.once('exit', release);
  return {
    path,
    release: () => {
      process.off('exit', release);
      release();
    },
  };
}

/** Removes up.pid unless a running `up` holds it. */
export function removeStaleUpLock(dir: string): boolean {
  const path = upPidPath(dir);
  if (!existsSync(path) || readUpLock(dir) !== undefined) return false;
  rmSync(path, { force: true });
  return true;
}

/**
 * The `up` of DIR (`fishchat down`): the pid of run.json when that is a
 * running `up`, else the one of up.pid (an `up` still starting); `info` is
 * run.json as found, also when its `up` is gone.
 */
export function findUp(dir: string): { pid?: number; info?: RunInfo } {
  const info = readRunFileRaw(runFilePath(dir));
  if (info && processIs(info.pid, 'up')) return { pid: info.pid, info };
  return { pid: readUpLock(dir), info };
}

/** Once the `up` with `pid` is gone: its run.json (a killed `up` cannot remove it) and a stale up.pid. */
export function removeUpFiles(dir: string, pid: number): void {
  const runFile = runFilePath(dir);
  if (readRunFileRaw(runFile)?.pid === pid) rmSync(runFile, { force: true });
  removeStaleUpLock(dir);
}

/** The cluster name from fishchat.json, without validating the rest ("local" when unreadable). */
export function clusterName(dir: string): string {
  try {
    const raw = JSON.parse(readFileSync(join(dir, CLUSTER_FILE), 'utf8')) as { cluster?: unknown };
    return typeof raw.cluster === 'string' ? raw.cluster : CLUSTER_DEFAULTS.cluster;
  } catch {
    return CLUSTER_DEFAULTS.cluster;
  }
}

/**
 * Processes an `up` that is gone may have left: role processes (they stop
 * by themselves when their `up` dies, as they watch their stdin) and a
 * managed redis-server. Each one still running gets SIGTERM; returns what
 * was signalled.
 */
export function stopLeftovers(info: RunInfo): { what: string; pid: number }[] {
  const out: { what: string; pid: number }[] = [];
  for (const r of info.roles ?? []) {
    if (
      typeof r.pid === 'number' &&
      r.pid !== info.pid &&
      processIs(r.pid, 'role') &&
      signalProcess(r.pid, 'SIGTERM')
    ) {
      out.push({ what: `${r.role} ${r.id}`, pid: r.pid });
    }
  }
  const redisPid = info.mode === 'managed' ? info.redis?.pid : undefined;
  if (typeof redisPid === 'number' && processIs(redisPid, 'redis-server') && signalProcess(redisPid, 'SIGTERM')) {
    out.push({ what: 'redis-server', pid: redisPid });
  }
  return out;
}

// ---------------------------------------------------------------- up.log

/** Opens up.log for appending (rotating a large one to up.log.1); returns the fd and where this run's output starts. */
export function openUpLog(dir: string): { fd: number; path: string; offset: number } {
  const path = upLogPath(dir);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  try {
    if (statSync(path).size > LOG_ROTATE_BYTES) renameSync(path, `${path}.1`);
  } catch {
    // no log yet
  }
  const fd = openSync(path, 'a', 0o600);
  return { fd, path, offset: fstatSync(fd).size };
}

/** The size of a file, 0 when it does not exist. */
export function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** The bytes of `path` from `offset` on, as text (empty when none). */
export function readFrom(path: string, offset: number): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return '';
  }
  try {
    const size = fstatSync(fd).size;
    if (size <= offset) return '';
    const buf = Buffer.alloc(size - offset);
    let read = 0;
    while (read < buf.length) {
      const n = readSync(fd, buf, read, buf.length - read, offset + read);
      if (n === 0) break;
      read += n;
    }
    return buf.subarray(0, read).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/**
 * Follows a file that grows: `poll()` returns the complete lines written
 * since the last call (a partial last line waits for its end; `flush()`
 * returns it too).
 */
export class LogFollower {
  #offset: number;
  #partial = '';

  constructor(
    readonly path: string,
    offset: number,
  ) {
    this.#offset = offset;
  }

  poll(): string[] {
    const text = readFrom(this.path, this.#offset);
    this.#offset += Buffer.byteLength(text);
    const all = this.#partial + text;
    const lines = all.split('\n');
    this.#partial = lines.pop() ?? '';
    return lines.map((l) => l.replace(/\r$/, ''));
  }

  flush(): string[] {
    const lines = this.poll();
    if (this.#partial !== '') lines.push(this.#partial);
    this.#partial = '';
    return lines;
  }
}

/** The last `n` non-empty lines of `text`. */
export function lastLines(text: string, n: number): string[] {
  return text
    .split('\n')
    .map((l) => l.replace(/\r$/, ''))
    .filter((l) => l.trim() !== '')
    .slice(-n);
}

// ---------------------------------------------------------------- up --detach

/** How a background `up` ended before it was ready. */
export interface DetachedExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** it could not be started at all */
  error?: string;
}

/** A background `fishchat up` just spawned. */
export interface DetachedUp {
  pid: number;
  /** up.log, and where this run's output starts in it */
  log: { path: string; offset: number };
  /** how it ended, once it did */
  exited(): DetachedExit | undefined;
}

/**
 * Spawns `fishchat up` (`entry` run with this runtime, `args` after it) in a
 * session of its own, its output appended to DIR/.fishchat/logs/up.log.
 */
export async function spawnDetachedUp(dir: string, entry: string, args: string[]): Promise<DetachedUp> {
  const log = openUpLog(dir);
  let exited: DetachedExit | undefined;
  try {
    const started = new Date().toISOString();
    writeSync(log.fd, `==> ${started}  fishchat ${args.join(' ')}  (started by fishchat up --detach)\n`);
    const child = spawn(process.execPath, [...process.execArgv, entry, ...args], {
      cwd: process.cwd(),
      env: { ...process.env, [DETACHED_ENV]: '1' },
      stdio: ['ignore', log.fd, log.fd],
      detached: true,
    });
    child.on('error', (err) => (exited = { code: null, signal: null, error: err.message }));
    child.on('exit', (code, signal) => (exited ??= { code, signal }));
    child.unref();
    if (child.pid === undefined) {
      await new Promise((r) => setImmediate(r));
      throw new Error(`cannot start ${process.execPath} ${entry} up: ${exited?.error ?? 'no pid'}`);
    }
    return { pid: child.pid, log: { path: log.path, offset: log.offset }, exited: () => exited };
  } finally {
    closeSync(log.fd);
  }
}

/** Why waiting for a background `up` ended. */
export type DetachedOutcome =
  | { kind: 'ready' }
  | { kind: 'exited'; exited: DetachedExit | undefined }
  | { kind: 'cancelled'; signal: string }
  | { kind: 'timeout' };

/**
 * Waits until the background `up` is ready: it said "cluster ready in …" and
 * run.json names it. `show` gets its output lines up to that one as they come;
 * `cancelled` tells whether the wait was called off (a signal).
 */
export async function awaitDetachedUp(
  dir: string,
  up: DetachedUp,
  o: { timeoutMs: number; show: (line: string) => void; cancelled: () => string | undefined },
): Promise<DetachedOutcome> {
  const runFile = runFilePath(dir);
  const follower = new LogFollower(up.log.path, up.log.offset);
  const deadline = Date.now() + o.timeoutMs;
  let readyLine = false;
  const show = (lines: string[]) => {
    for (const line of lines) {
      if (readyLine || line.startsWith('==> ')) continue;
      o.show(line);
      if (/^cluster ready in /.test(line)) readyLine = true;
    }
  };
  for (;;) {
    show(follower.poll());
    if (readyLine && readRunFileRaw(runFile)?.pid === up.pid) return { kind: 'ready' };
    if (up.exited() !== undefined || !processRunning(up.pid)) {
      await new Promise((r) => setTimeout(r, 50)); // its last words
      show(follower.flush());
      return { kind: 'exited', exited: up.exited() };
    }
    const signal = o.cancelled();
    if (signal !== undefined || Date.now() >= deadline) {
      show(follower.flush());
      return signal !== undefined ? { kind: 'cancelled', signal } : { kind: 'timeout' };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** SIGTERM, then SIGKILL when it is not gone within `timeoutMs` (`killing` is called first). */
export async function terminate(pid: number, timeoutMs: number, killing?: () => void): Promise<void> {
  signalProcess(pid, 'SIGTERM');
  if (await waitForExit(pid, timeoutMs)) return;
  killing?.();
  signalProcess(pid, 'SIGKILL');
  await waitForExit(pid, 5000);
}
