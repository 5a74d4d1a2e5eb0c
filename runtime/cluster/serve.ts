/**
 * One role in this process, over the cluster's Redis (docs/architecture.md
 * "Three ways to run, one code path", 1), as a function: `fishchat serve`
 * and the role-process entry (./role-main.ts) use it.
 */
import { dirname, resolve } from 'node:path';
import { getPlatform } from '../platform/index.js';
import { parseHostPort } from '../platform/address.js';
import { makeRoleContext, ROLE_NAMES, type Logger, type RoleHandle, type RoleName } from '../contract/index.js';
import { startRole } from './start-role.js';
import { NoRedisError, openBackends, redactRedisUrl } from './backends.js';
import { ConfigError } from './checks.js';
import type { ClusterConfig, RoleConfig } from './config.js';
import { loadCluster, loadRoleFile } from './load.js';

/** How long a clean stop may take before the process gives up on it. */
export const ROLE_STOP_TIMEOUT_MS = 10_000;

export interface ServeRoleOptions {
  /** the cluster directory (fishchat.json, the secret); default: the directory of `configFile`, else the current one */
  dir?: string;
  /** which role; may be left out with `configFile` (the file says) */
  role?: string;
  /** which one, when the cluster has several of that role (msg_servers) */
  id?: string;
  /** the role's own JSON file, instead of picking it from fishchat.json "roles" */
  configFile?: string;
  /** Redis URL; wins over FISHCHAT_REDIS and fishchat.json "redis" */
  redis?: string;
  /** the gateway's seed msg_servers, host:port (the supervisor passes their real addresses) */
  seeds?: string[];
  /** their WebSocket URLs by address (the supervisor passes them with the seeds) */
  seedWs?: Record<string, string>;
  /** FISHCHAT_REDIS, FISHCHAT_CLUSTER, FISHCHAT_SECRET, FISHCHAT_PORT, FISHCHAT_HTTP_PORT (default process.env) */
  env?: Record<string, string | undefined>;
  log: Logger;
}

export interface ServedRole {
  readonly handle: RoleHandle;
  readonly config: ClusterConfig;
  readonly roleConfig: RoleConfig;
  /** the Redis URL, password hidden */
  readonly redis: string;
  /** Stops the role, then closes the bus and the store. Idempotent. */
  stop(): Promise<void>;
}

/** A problem with what was asked for (not a failure at run time). */
export class ServeUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ServeUsageError';
  }
}

/** Starts one role of the cluster in this process, over the cluster's Redis. */
export async function serveRole(opts: ServeRoleOptions): Promise<ServedRole> {
  const env = opts.env ?? process.env;
  if (opts.role !== undefined && !ROLE_NAMES.includes(opts.role as RoleName)) {
    throw new ServeUsageError(`unknown role ${JSON.stringify(opts.role)}: must be one of ${ROLE_NAMES.join(', ')}`);
  }
  if (opts.role === undefined && opts.configFile === undefined) {
    throw new ServeUsageError(`which role? give ROLE (${ROLE_NAMES.join(', ')}) or --config FILE`);
  }
  const dir = resolve(opts.dir ?? (opts.configFile !== undefined ? dirname(resolve(opts.configFile)) : process.cwd()));
  const redisOverride = opts.redis ?? nonEmpty(env.FISHCHAT_REDIS);
  const config = await loadCluster(dir, { env, redis: redisOverride, cluster: nonEmpty(env.FISHCHAT_CLUSTER) });
  if (config.redis === undefined) {
    throw new NoRedisError(
      `one role alone (${opts.role ?? opts.configFile}) shares the bus and the store with the other roles, so it`,
      '; to run the whole cluster in one process without Redis, use `fishchat up --embedded`',
    );
  }
  const roleConfig = applyPortEnv(await pickRole(config, opts), env);
  if (roleConfig.role === 'gateway') {
    const seeds = opts.seeds ?? roleConfig.seeds;
    // A seed with port 0 is a msg_server whose port is not known yet: the gateway learns it from the beats.
    roleConfig.seeds = seeds.filter((s) => (parseHostPort(s)?.port ?? 0) !== 0);
    if (opts.seedWs !== undefined) roleConfig.seedWs = opts.seedWs;
  }

  const platform = await getPlatform();
  const backends = await openBackends(config, { platform, kind: 'redis', log: (m) => opts.log.info(`redis: ${m}`) });
  const ctx = makeRoleContext({
    cluster: config.cluster,
    settings: config.settings,
    auth: { mode: config.auth, secret: config.secret },
    bus: backends.bus,
    store: backends.store,
    platform,
    log: opts.log,
  });
  let handle: RoleHandle;
  try {
    handle = await startRole(roleConfig.role, ctx, roleConfig);
  } catch (err) {
    await backends.close().catch(() => {});
    throw err;
  }
  let stopping: Promise<void> | undefined;
  return {
    handle,
    config,
    roleConfig,
    redis: redactRedisUrl(config.redis),
    stop() {
      stopping ??= (async () => {
        try {
          await handle.stop();
        } finally {
          await backends.close();
        }
      })();
      return stopping;
    },
  };
}

async function pickRole(config: ClusterConfig, opts: ServeRoleOptions): Promise<RoleConfig> {
  if (opts.configFile !== undefined) {
    const c = await loadRoleFile(opts.configFile);
    if (opts.role !== undefined && c.role !== opts.role) {
      throw new ConfigError(
        opts.configFile,
        'role',
        `is ${JSON.stringify(c.role)}, but the role asked for is ${JSON.stringify(opts.role)}`,
      );
    }
    if (opts.id !== undefined && c.id !== opts.id) {
      throw new ConfigError(
        opts.configFile,
        'id',
        `is ${JSON.stringify(c.id)}, but the id asked for is ${JSON.stringify(opts.id)}`,
      );
    }
    return c;
  }
  const all: RoleConfig[] = [config.gateway, ...config.msgServers, config.router, config.manager, config.monitor];
  const ofRole = all.filter((c) => c.role === opts.role);
  if (opts.id !== undefined) {
    const found = ofRole.find((c) => c.id === opts.id);
    if (!found) {
      throw new ServeUsageError(
        `the cluster in ${config.dir} has no ${opts.role} with id ${JSON.stringify(opts.id)}; its ${opts.role} ids: ${ofRole.map((c) => c.id).join(', ')}`,
      );
    }
    return structuredClone(found);
  }
  if (ofRole.length > 1) {
    throw new ServeUsageError(
      `the cluster in ${config.dir} has ${ofRole.length} ${opts.role}s (${ofRole.map((c) => c.id).join(', ')}): pick one with --id, or give its file with --config`,
    );
  }
  return structuredClone(ofRole[0]!);
}

function applyPortEnv(c: RoleConfig, env: Record<string, string | undefined>): RoleConfig {
  const port = (name: string): number | undefined => {
    const v = nonEmpty(env[name]);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!/^\d{1,5}$/.test(v) || n > 65535)
      throw new ConfigError(name, undefined, `must be a port 0–65535, found ${JSON.stringify(v)}`);
    return n;
  };
  const tcp = port('FISHCHAT_PORT');
  const http = port('FISHCHAT_HTTP_PORT');
  if (tcp !== undefined) {
    if (c.role !== 'gateway' && c.role !== 'msg_server')
      throw new ConfigError('FISHCHAT_PORT', undefined, `is only for a gateway or a msg_server, not a ${c.role}`);
    c.port = tcp;
  }
  if (http !== undefined) c.httpPort = http;
  return c;
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}
