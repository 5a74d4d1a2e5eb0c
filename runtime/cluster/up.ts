/**
 * What `fishchat up` does (docs/architecture.md "Three ways to run, one code path"): chooses the mode
 * and says why, starts the cluster in it (embedded; a managed redis-server,
 * then one process per role; an external Redis, then one process per role),
 * keeps .fishchat/run.json, and stops it in the reverse of the start order.
 * The command itself only parses flags and prints.
 */
import { join } from 'node:path';
import { detectRuntime } from '../platform/index.js';
import { noAppendonlyWarning, redactRedisUrl, redisAppendonly } from './backends.js';
import type { ClusterConfig } from './config.js';
import { CLUSTER_FILE } from './defaults.js';
import { startEmbedded } from './embedded.js';
import { removeRunFile, runFilePath, writeRunFile, type RunInfo, type RunMode } from './run-file.js';
import { findRedisServer, MANAGED_REDIS_DIR, startManagedRedis, type ManagedRedis } from './managed-redis.js';
import { Supervisor, type RoleProcessInfo } from './supervisor.js';

/** How long a clean stop may take before `up` gives up on it (Redis modes: one role group after the other). */
export const UP_STOP_TIMEOUT_MS = { embedded: 15_000, redis: 60_000 } as const;

export interface ModeChoice {
  mode: RunMode;
  /** why this mode, as the user reads it */
  why: string;
  /** managed: the redis-server found on PATH */
  redisServer?: string;
}

/** docs/architecture.md "Three ways to run, one code path": --embedded, else a Redis URL, else redis-server on PATH, else embedded. */
export function chooseMode(config: ClusterConfig, flags: { redis?: string; embedded?: boolean }): ModeChoice {
  if (flags.embedded) return { mode: 'embedded', why: '--embedded' };
  if (flags.redis !== undefined) return { mode: 'redis', why: 'from --redis' };
  if (config.redis !== undefined) return { mode: 'redis', why: `"redis" in ${CLUSTER_FILE}` };
  const redisServer = findRedisServer();
  if (redisServer) {
    return { mode: 'managed', why: `no Redis URL given, and redis-server is on PATH (${redisServer})`, redisServer };
  }
  return { mode: 'embedded', why: 'no Redis configured, and no redis-server on PATH' };
}

/**
 * The "mode: …" line and its notes, said before the cluster starts. `shown`
 * writes a path as the user should read it; `runtimeGiven`: --runtime was given.
 */
export function describeMode(
  config: ClusterConfig,
  choice: ModeChoice,
  shown: (path: string) => string,
  runtimeGiven: boolean,
): string[] {
  const runtime = config.runtime;
  switch (choice.mode) {
    case 'embedded': {
      const here = detectRuntime();
      const lines = [
        `mode: embedded (${choice.why}: every role runs in this process on ${here}, ` +
          `with an in-process bus and the SQLite store in ${shown(config.dataDir)})`,
      ];
      if (config.redis !== undefined) {
        lines.push(`note: "redis" (${redactRedisUrl(config.redis)}) is not used in embedded mode`);
      }
      if (runtime !== here || runtimeGiven) {
        lines.push(
          `note: "runtime": "${runtime}" applies to role processes; embedded mode runs in this ${here} process`,
        );
      }
      return lines;
    }
    case 'managed':
      return [
        `mode: managed Redis (${choice.why}: a private redis-server for this cluster on 127.0.0.1, ` +
          `appendonly on, data in ${shown(join(config.dir, MANAGED_REDIS_DIR))}; ` +
          `every role in its own ${runtime} process)`,
      ];
    case 'redis':
      return [
        `mode: Redis at ${redactRedisUrl(config.redis!)} (${choice.why}: every role in its own ${runtime} process, ` +
          'over Redis pub/sub and the Redis store)',
      ];
  }
}

/** A role as `up` announces it (pid: a role process). */
export interface UpRole {
  role: string;
  id: string;
  addresses: { tcp?: string; http?: string; ws?: string };
  pid?: number;
}

/** What a starting and running cluster tells `up`. */
export interface UpEvents {
  /** a log line of a role, or of the managed redis-server (role "redis", id "redis-server") */
  log: (role: string, id: string, line: string) => void;
  /** a role is ready (restarted: a role process that came back after it died) */
  ready: (r: UpRole, restarted: boolean) => void;
  /** a managed redis-server runs */
  redisReady?: (redis: { url: string; pid: number }) => void;
  /** something worth a warning (an external Redis without appendonly) */
  warn: (line: string) => void;
  /** the cluster cannot go on (its managed redis-server exited): `up` should stop it */
  fatal: (message: string) => void;
}

export interface UpCluster {
  mode: RunMode;
  /** the gateway's client address, host:port */
  gateway: string;
  /** how long stop() may take */
  stopTimeoutMs: number;
  /** the cluster failed on its own (fatal was called): `up` exits 1 after the stop */
  readonly failed: boolean;
  /** Stops every role in the reverse of the start order, then a managed redis-server; removes run.json. */
  stop(): Promise<void>;
}

/** Starts the cluster of `config` in the chosen mode; resolves once every role is ready and run.json is written. */
/** `threads`: embedded mode's threads (./embedded.ts; 1: every role on one thread); the Redis modes ignore it. */
export async function startUp(
  config: ClusterConfig,
  choice: ModeChoice,
  events: UpEvents,
  opts: { threads?: number } = {},
): Promise<UpCluster> {
  if (choice.mode === 'embedded') {
    const cluster = await startEmbedded(config, {
      log: events.log,
      onReady: (r) => events.ready(r, false),
      threads: opts.threads,
    });
    return {
      mode: 'embedded',
      gateway: cluster.gateway,
      stopTimeoutMs: UP_STOP_TIMEOUT_MS.embedded,
      failed: false,
      stop: () => cluster.stop(),
    };
  }
  return startRedisModes(config, choice, events);
}

/** Managed and external Redis: every role its own process, under a Supervisor. */
async function startRedisModes(config: ClusterConfig, choice: ModeChoice, events: UpEvents): Promise<UpCluster> {
  const runtime = config.runtime;
  const runFile = runFilePath(config.dir);
  let managed: ManagedRedis | undefined;
  let url: string;
  if (choice.mode === 'managed') {
    // Once it runs, its warnings (`#`) only: its start-up banner and notices are noise next to the
    // roles' lines (a failed start quotes its last lines in the error).
    let redisUp = false;
    managed = await startManagedRedis({
      clusterDir: config.dir,
      bin: choice.redisServer,
      notice: (line) => events.log('redis', 'redis-server', line),
      log: (line) => {
        const warning = /^\d+:[A-Z] .* # /.test(line) || !/^\d+:[A-Z] /.test(line);
        if (redisUp && warning) events.log('redis', 'redis-server', line);
      },
    });
    redisUp = true;
    url = managed.url;
    events.redisReady?.({ url, pid: managed.pid });
  } else {
    url = config.redis!;
    if ((await redisAppendonly(url)) === false) events.warn(noAppendonlyWarning(url));
  }

  const startedAt = new Date().toISOString();
  const info = (roles: RoleProcessInfo[]): RunInfo => ({
    pid: process.pid,
    mode: choice.mode,
    redis: managed ? { url, pid: managed.pid, dir: managed.dir } : { url: redactRedisUrl(url) },
    runtime,
    gateway: roles.find((r) => r.role === 'gateway')?.addresses.tcp ?? '',
    monitor: roles.find((r) => r.role === 'monitor')?.addresses.http,
    roles: roles.map((r) => ({ role: r.role, id: r.id, addresses: { ...r.addresses }, pid: r.pid })),
    startedAt,
  });
  // run.json is rewritten when a restarted role comes back (its pid, maybe its ports): one write at a time.
  let writes: Promise<void> = Promise.resolve();
  let published = false;
  const supervisor = new Supervisor({
    config,
    redis: url,
    runtime,
    log: (role, id, line) => events.log(role, id, line),
    notice: (role, id, line) => events.log(role, id, line),
    onReady: (r, restarted) => {
      events.ready(r, restarted);
      if (!restarted || !published) return;
      writes = writes.then(() => writeRunFile(runFile, info(supervisor.roles))).catch(() => {});
    },
  });

  let roles: RoleProcessInfo[];
  try {
    roles = await supervisor.start();
    await writeRunFile(runFile, info(roles));
    published = true;
  } catch (err) {
    await supervisor.stop().catch(() => {});
    await managed?.stop().catch(() => {});
    throw err;
  }

  let failed = false;
  let stopping: Promise<void> | undefined;
  void managed?.exited.then(({ code, signal }) => {
    if (stopping) return;
    failed = true;
    events.fatal(`the managed redis-server exited (${signal ? `killed by ${signal}` : `code ${code}`})`);
  });
  return {
    mode: choice.mode,
    gateway: roles.find((r) => r.role === 'gateway')!.addresses.tcp!,
    stopTimeoutMs: UP_STOP_TIMEOUT_MS.redis,
    get failed() {
      return failed;
    },
    stop() {
      stopping ??= (async () => {
        try {
          await supervisor.stop();
          if (managed) {
            await managed.stop();
            events.log('redis', 'redis-server', 'stopped');
          }
        } finally {
          await writes;
          await removeRunFile(runFile);
        }
      })();
      return stopping;
    },
  };
}
