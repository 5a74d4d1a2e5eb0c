/**
 * Managed Redis (docs/architecture.md "Three ways to run, one code path", 2): no Redis URL given but
 * redis-server on PATH, so `fishchat up` starts a private redis-server for
 * the cluster: on 127.0.0.1 and a free port, data under
 * <cluster dir>/.fishchat/redis, appendonly on (and no RDB snapshots), and
 * stops it after the roles.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { getPlatform, type TcpSocket } from '../platform/index.js';
import { processAlive } from './run-file.js';
import { eachLine, findOnPath } from './supervisor.js';

export const MANAGED_REDIS_DIR = join('.fishchat', 'redis');
const PID_FILE = 'redis-server.pid';
const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;

export interface ManagedRedis {
  /** redis://127.0.0.1:PORT */
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** absolute path of its data directory */
  readonly dir: string;
  /** Resolves when the redis-server exits (also when it dies on its own). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Stops it (SIGTERM: redis-server flushes the AOF and exits; SIGKILL after a timeout). Idempotent. */
  stop(): Promise<void>;
}

export interface ManagedRedisOptions {
  /** the cluster directory */
  clusterDir: string;
  /** redis-server executable (default: found on PATH) */
  bin?: string;
  /** a line redis-server printed */
  log?: (line: string) => void;
  /** something said about the redis-server (a leftover one stopped) */
  notice?: (line: string) => void;
}

/** The redis-server on PATH, if any. */
export function findRedisServer(): string | undefined {
  return findOnPath('redis-server');
}

export async function startManagedRedis(opts: ManagedRedisOptions): Promise<ManagedRedis> {
  const bin = opts.bin ?? findRedisServer();
  if (!bin) throw new Error('redis-server is not on PATH');
  const dir = join(opts.clusterDir, MANAGED_REDIS_DIR);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await stopLeftover(dir, opts.notice ?? opts.log);

  // The port comes from the OS; another process could take it before
  // redis-server binds it, so try again on a failure to start.
  let lastError: Error | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    try {
      return await launch(bin, port, dir, opts.log);
    } catch (err) {
      lastError = err as Error;
    }
  }
  throw lastError!;
}

async function launch(bin: string, port: number, dir: string, log?: (line: string) => void): Promise<ManagedRedis> {
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--appendonly',
    'yes',
    '--appendfsync',
    'everysec',
    '--save',
    '',
    '--daemonize',
    'no',
    '--pidfile',
    join(dir, PID_FILE),
    '--logfile',
    '',
  ];
  const proc = spawn(bin, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const tail: string[] = [];
  const onLine = (line: string) => {
    tail.push(line);
    if (tail.length > 20) tail.shift();
    log?.(line);
  };
  eachLine(proc.stdout!, onLine);
  eachLine(proc.stderr!, onLine);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.on('error', (err) => {
      onLine(`cannot start ${bin}: ${err.message}`);
      resolve({ code: null, signal: null });
    });
    proc.on('exit', (code, signal) => resolve({ code, signal }));
  });

  let gone = false;
  void exited.then(() => (gone = true));
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (gone)
      throw new Error(
        `redis-server on port ${port} exited at start: ${tail.filter(Boolean).slice(-3).join(' | ') || 'no output'}`,
      );
    if (await ping(port)) break;
    if (Date.now() > deadline) {
      kill(proc, 'SIGKILL');
      throw new Error(`redis-server on port ${port} did not answer PING within ${READY_TIMEOUT_MS / 1000} s`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }

  let stopping: Promise<void> | undefined;
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    pid: proc.pid!,
    dir,
    exited,
    stop() {
      stopping ??= (async () => {
        if (gone) return;
        kill(proc, 'SIGTERM');
        const timer = setTimeout(() => kill(proc, 'SIGKILL'), STOP_TIMEOUT_MS);
        await exited;
        clearTimeout(timer);
      })();
      return stopping;
    },
  };
}

/** PING over a plain TCP connection: true on +PONG (false while loading the AOF, or not listening yet). */
async function ping(port: number): Promise<boolean> {
  const platform = await getPlatform();
  let sock: TcpSocket;
  try {
    sock = await platform.connectTcp('127.0.0.1', port);
  } catch {
    return false;
  }
  const s = sock;
  return new Promise<boolean>((resolve) => {
    let reply = '';
    const done = (ok: boolean) => {
      clearTimeout(timer);
      s.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 1000);
    s.onData((chunk) => {
      reply += new TextDecoder().decode(chunk);
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
    s.onClose(() => done(false));
    s.write(new TextEncoder().encode('PING\r\n'));
  });
}

/** A free port on 127.0.0.1, from the OS (listen on port 0, then close). */
async function freePort(): Promise<number> {
  const platform = await getPlatform();
  const l = await platform.listenTcp({ host: '127.0.0.1', port: 0, onConnection: (s) => s.destroy() });
  const port = l.port;
  await l.close();
  return port;
}

/**
 * A redis-server of an earlier `up` on this directory that was left running
 * (its `up` was killed): stopped, so the new one owns the data directory.
 * Only a pid whose command line names redis-server is touched.
 */
async function stopLeftover(dir: string, log?: (line: string) => void): Promise<void> {
  let pid: number;
  try {
    pid = Number((await readFile(join(dir, PID_FILE), 'utf8')).trim());
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid <= 0 || !processAlive(pid) || !isRedisServer(pid)) return;
  log?.(`stopping a redis-server left running by an earlier fishchat up (pid ${pid})`);
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  while (processAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (processAlive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

function isRedisServer(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('redis-server');
  } catch {
    // No /proc (macOS): trust the pid file only if we cannot tell otherwise.
    return process.platform !== 'linux';
  }
}

function kill(proc: ChildProcess, signal: NodeJS.Signals): void {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  try {
    proc.kill(signal);
  } catch {
    // gone
  }
}
