/**
 * The cluster a benchmark loads: one it starts itself (`fishchat up` of a
 * temporary cluster directory, as a child process), or one already running
 * behind a gateway.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  clusterPrefix,
  initCluster,
  isLoopback,
  loadCluster,
  parseHostPort,
  roleCommand,
  type RunInfo,
  type RuntimeName,
} from '../../runtime/cluster/index.js';
import { BenchConn } from './conn.js';
import { cpuSeconds, type ServerProcess } from './proc.js';

/** How long `fishchat up` may take to print "cluster ready". */
const READY_TIMEOUT_MS = 60_000;
/** SIGTERM, then SIGKILL after this long. */
const STOP_TIMEOUT_MS = 20_000;
/** Log lines of the cluster kept for error messages. */
const KEEP_LINES = 40;

export interface MsgServer {
  id: string;
  /** client address host:port */
  addr: string;
  /** its WebSocket URL (the route reply's `ws`), when it serves one */
  ws?: string;
  /** its HTTP listener host:port (`/health`), when known (a cluster this bench started) */
  http?: string;
}

export interface Target {
  mode: 'embedded' | 'redis' | 'external';
  runtime: RuntimeName | null;
  gateway: string;
  /** msg_servers, in a stable order (by id) */
  servers: MsgServer[];
  secret: string;
  heartbeat: number;
  maxFrame: number;
  /** server processes to measure ([] when unknown) */
  processes: ServerProcess[];
  /** the msg_server processes by id (embedded: the one `up` process) */
  msgServerPid: (id: string) => number | undefined;
  /** the cluster's last log lines (own cluster only) */
  lastLines: () => string[];
  /** throws when the cluster died */
  check: () => void;
  stop: () => Promise<void>;
}

/** The package root: where bin/run.js is, from cli/bench/ or dist/cli/bench/. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'bin', 'run.js')) && existsSync(join(dir, 'package.json'))) return dir;
    dir = dirname(dir);
  }
  throw new Error('bin/run.js not found above the bench command (is the fishchat package complete?)');
}

export interface StartOptions {
  msgServers: number;
  /** Redis URL: one process per role over it; undefined: embedded */
  redis?: string;
  runtime: RuntimeName;
  /** settings raised above what the workload needs */
  settings: Record<string, unknown>;
  status: (line: string) => void;
  /** ws: the msg_servers' WebSocket URLs are read from the gateway's route reply */
  transport?: 'tcp' | 'ws';
  /** embedded: `fishchat up --threads N` (1: every role on the main thread; undefined: up's default) */
  threads?: number;
}

/** Raised for user mistakes found while starting (exit 2). */
export class BenchUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BenchUsageError';
  }
}

/**
 * Writes a temporary cluster directory (every port 0, a cluster name of its
 * own, limits raised), starts `fishchat up` on it as a child process in a
 * process group of its own, and waits for "cluster ready" and run.json.
 */
export async function startCluster(o: StartOptions): Promise<Target> {
  const dir = await mkdtemp(join(tmpdir(), 'fishchat-bench-'));
  const name = `bench${process.pid}`;
  let child: ChildProcess | undefined;
  const lines: string[] = [];
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  let stopping: Promise<void> | undefined;
  const killNow = () => {
    if (child?.pid !== undefined && exited === undefined) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  };
  process.on('exit', killNow);

  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      if (child && exited === undefined) {
        const gone = new Promise<void>((r) => child!.once('exit', () => r()));
        child.kill('SIGTERM');
        const timer = setTimeout(() => {
          o.status(`fishchat up (pid ${child!.pid}) did not stop within ${STOP_TIMEOUT_MS / 1000} s: SIGKILL`);
          killNow();
        }, STOP_TIMEOUT_MS);
        await gone;
        clearTimeout(timer);
      }
      process.off('exit', killNow);
      await rm(dir, { recursive: true, force: true }).catch(() => {});
      if (o.redis !== undefined)
        await (await import('../../runtime/redis/index.js'))
          .deleteKeysWithPrefix(o.redis, clusterPrefix(name))
          .catch((err) =>
            o.status(`could not delete the bench keys ${clusterPrefix(name)}* from Redis: ${(err as Error).message}`),
          );
    })());

  try {
    await initCluster(dir, { msgServers: o.msgServers });
    const clusterFile = join(dir, 'fishchat.json');
    const cluster = JSON.parse(await readFile(clusterFile, 'utf8')) as {
      roles: string[];
      settings?: Record<string, unknown>;
      [k: string]: unknown;
    };
    cluster.cluster = name;
    cluster.settings = { ...(cluster.settings ?? {}), ...o.settings };
    await writeFile(clusterFile, JSON.stringify(cluster, null, 2));
    for (const file of cluster.roles) {
      const path = join(dir, file);
      const role = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
      if ('port' in role) role.port = 0;
      if ('httpPort' in role) role.httpPort = 0;
      await writeFile(path, JSON.stringify(role, null, 2));
    }
    const config = await loadCluster(dir);

    const bin = join(packageRoot(), 'bin', 'run.js');
    const args = ['up', dir];
    let command = process.execPath;
    let runtimeArgs: string[] = [];
    if (o.redis !== undefined) args.push('--redis', o.redis, '--runtime', o.runtime);
    else {
      args.push('--embedded');
      if (o.threads !== undefined) args.push('--threads', String(o.threads));
      // Embedded: every role runs in the `up` process itself, so `up` runs on the runtime asked for;
      // FISHCHAT_NODE_ARGS / FISHCHAT_BUN_ARGS (as for role processes, e.g. "--cpu-prof --cpu-prof-dir=DIR") go to it.
      const extra = (name: string) => (process.env[name] ?? '').split(/\s+/).filter(Boolean);
      if (o.runtime === 'bun') {
        command = roleCommand('bun').command;
        runtimeArgs = extra('FISHCHAT_BUN_ARGS');
      } else if (o.runtime === 'deno')
        throw new BenchUsageError('--runtime deno runs the Redis modes only (no SQLite on Deno): add --redis URL');
      else runtimeArgs = extra('FISHCHAT_NODE_ARGS');
    }
    // The cluster must use the secret and the names of its directory, whatever this shell exports.
    const env = { ...process.env };
    // Profiling options for the role processes (FISHCHAT_NODE_ARGS, FISHCHAT_BUN_ARGS) pass through; the rest is the cluster's own.
    for (const k of Object.keys(env))
      if (k.startsWith('FISHCHAT_') && k !== 'FISHCHAT_NODE_ARGS' && k !== 'FISHCHAT_BUN_ARGS') delete env[k];
    // The cluster stops by itself if this bench dies without stopping it (kill -9).
    env.FISHCHAT_EXIT_WITH_PARENT = '1';
    o.status(`starting the cluster: ${command === process.execPath ? 'node' : command} bin/run.js ${args.join(' ')}`);
    const started = performance.now();
    child = spawn(command, [...runtimeArgs, bin, ...args], {
      cwd: dir,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const keep = (chunk: Buffer) => {
      for (const l of chunk.toString('utf8').split('\n')) {
        if (l.trim() === '') continue;
        lines.push(l);
        if (lines.length > KEEP_LINES) lines.shift();
      }
    };
    let ready = false;
    let wakeReady: (() => void) | undefined;
    child.stdout!.on('data', (d: Buffer) => {
      keep(d);
      if (!ready && /^cluster ready in /m.test(d.toString('utf8'))) {
        ready = true;
        wakeReady?.();
      }
    });
    child.stderr!.on('data', keep);
    let spawnError: Error | undefined;
    child.on('error', (err) => {
      spawnError = err;
      wakeReady?.();
    });
    child.on('exit', (code, signal) => {
      exited = { code, signal };
      wakeReady?.();
    });
    await new Promise<void>((resolve) => {
      wakeReady = resolve;
      setTimeout(resolve, READY_TIMEOUT_MS).unref();
      if (ready) resolve();
    });
    const tail = () => lines.map((l) => `  ${l}`).join('\n');
    if (spawnError) throw new Error(`cannot start ${command} ${bin} up: ${spawnError.message}`);
    if (!ready) {
      const how = exited
        ? `exited (${exited.signal ?? `code ${exited.code}`})`
        : `was not ready within ${READY_TIMEOUT_MS / 1000} s`;
      const err = new Error(
        `the bench cluster (fishchat up ${args.slice(2).join(' ')}) ${how}; its last lines:\n${tail()}`,
      );
      // `up` says so when the Redis URL or the runtime is the user's to fix.
      if (exited?.code === 2) throw new BenchUsageError(err.message);
      throw err;
    }
    const run = JSON.parse(await readFile(join(dir, '.fishchat', 'run.json'), 'utf8')) as RunInfo;
    const exitedWhy = () =>
      exited
        ? `the bench cluster exited (${exited.signal ?? `code ${exited.code}`}); its last lines:\n${tail()}`
        : undefined;
    o.status(`cluster ready in ${Math.round(performance.now() - started)} ms (${run.mode}, pid ${run.pid})`);

    let servers: MsgServer[] = run.roles
      .filter((r) => r.role === 'msg_server' && r.addresses.tcp)
      .map((r) => ({ id: r.id, addr: r.addresses.tcp!, ...(r.addresses.http ? { http: r.addresses.http } : {}) }))
      .sort((a, b) => a.id.localeCompare(b.id));
    if (o.transport === 'ws') servers = await webSocketUrls(run.gateway, servers, exitedWhy);
    const processes: ServerProcess[] = [];
    if (run.mode === 'embedded') processes.push({ name: 'up (embedded)', pid: run.pid });
    else {
      for (const r of run.roles)
        if (typeof r.pid === 'number')
          processes.push({ name: r.role === 'msg_server' ? `msg_server.${r.id}` : r.role, pid: r.pid });
      processes.push({ name: 'up', pid: run.pid });
      const redisPid = await redisServerPid(o.redis!);
      if (redisPid !== undefined) processes.push({ name: 'redis-server', pid: redisPid });
    }
    const pidOf = new Map(run.roles.map((r) => [r.id, r.pid]));
    return {
      mode: o.redis !== undefined ? 'redis' : 'embedded',
      runtime: o.runtime,
      gateway: run.gateway,
      servers,
      secret: config.secret,
      heartbeat: config.settings.heartbeat,
      maxFrame: config.settings.maxFrame,
      processes,
      msgServerPid: (id) => (run.mode === 'embedded' ? run.pid : pidOf.get(id)),
      lastLines: () => lines.slice(),
      check: () => {
        if (exited)
          throw new Error(
            `the bench cluster exited during the run (${exited.signal ?? `code ${exited.code}`}); its last lines:\n${tail()}`,
          );
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The pid of the redis-server behind url, when it runs on this machine (INFO server). */
async function redisServerPid(url: string): Promise<number | undefined> {
  let host: string;
  try {
    host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  } catch {
    return undefined;
  }
  if (!isLoopback(host)) return undefined;
  const { Redis } = await import('ioredis');
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 3000 });
  try {
    await r.connect();
    const m = /^process_id:(\d+)/m.exec(await r.info('server'));
    const pid = m ? Number(m[1]) : undefined;
    // Another machine or a container would have another process by that pid.
    return pid !== undefined && cpuSeconds(pid) !== undefined ? pid : undefined;
  } catch {
    return undefined;
  } finally {
    r.disconnect();
  }
}

/** A `route` reply's servers, checked: id, a dialable addr, and `ws` when it is a ws:// or wss:// URL. */
export function routeServers(reply: { servers?: unknown }): MsgServer[] {
  const list = Array.isArray(reply.servers) ? (reply.servers as { id?: unknown; addr?: unknown; ws?: unknown }[]) : [];
  return list
    .filter(
      (s) =>
        s !== null &&
        typeof s === 'object' &&
        typeof s.id === 'string' &&
        typeof s.addr === 'string' &&
        parseHostPort(s.addr) !== undefined,
    )
    .map((s) => {
      const ws = typeof s.ws === 'string' && isWebSocketUrl(s.ws) ? s.ws : undefined;
      return { id: s.id as string, addr: s.addr as string, ...(ws ? { ws } : {}) };
    })
    .sort((a, b) => a.id.localeCompare(b.id));
}

/** A ws:// or wss:// URL with a host (what a `route` reply's `ws` must be). */
export function isWebSocketUrl(s: string): boolean {
  try {
    const u = new URL(s);
    return (u.protocol === 'ws:' || u.protocol === 'wss:') && u.hostname !== '';
  } catch {
    return false;
  }
}

/** One `route` request to the gateway at host:port. */
async function route(gateway: string, timeoutMs: number): Promise<Awaited<ReturnType<BenchConn['request']>>> {
  const hp = parseHostPort(gateway)!;
  const conn = await BenchConn.open(hp.host, hp.port);
  try {
    return await conn.request({ op: 'route' }, timeoutMs);
  } finally {
    conn.close();
  }
}

/** How long the gateway may take to list every msg_server of a new cluster (it learns them from their beats). */
const ROUTE_WAIT_MS = 15_000;

/**
 * The WebSocket URL of each of `servers` (a cluster this bench started), from
 * the gateway's route reply: asked again until it lists them all with `ws`.
 */
async function webSocketUrls(
  gateway: string,
  servers: MsgServer[],
  dead: () => string | undefined,
): Promise<MsgServer[]> {
  const until = performance.now() + ROUTE_WAIT_MS;
  let listed: MsgServer[] = [];
  for (;;) {
    const why = dead();
    if (why) throw new Error(why);
    listed = routeServers(await route(gateway, ROUTE_WAIT_MS));
    const byId = new Map(listed.map((s) => [s.id, s]));
    if (servers.every((s) => byId.get(s.id)?.ws !== undefined))
      return servers.map((s) => ({ ...s, ws: byId.get(s.id)!.ws }));
    if (performance.now() > until) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const missing = servers.filter((s) => !listed.some((l) => l.id === s.id && l.ws !== undefined)).map((s) => s.id);
  throw new Error(
    `--transport ws: the gateway at ${gateway} gives no WebSocket URL (\`ws\` in its route reply) for msg_server ${missing.join(', ')} after ${ROUTE_WAIT_MS / 1000} s`,
  );
}

/**
 * An existing cluster behind `gateway`: its msg_servers from `route`, nothing
 * known of its processes.
 */
export async function externalCluster(gateway: string, secret: string, timeoutMs: number): Promise<Target> {
  const reply = await route(gateway, timeoutMs);
  const servers = routeServers(reply);
  return {
    mode: 'external',
    runtime: null,
    gateway,
    servers,
    secret,
    heartbeat: typeof reply.heartbeat === 'number' && reply.heartbeat > 0 ? reply.heartbeat : 20_000,
    maxFrame: 65_536,
    processes: [],
    msgServerPid: () => undefined,
    lastLines: () => [],
    check: () => {},
    stop: async () => {},
  };
}
