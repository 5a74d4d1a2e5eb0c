/**
 * One role in this process, over Redis (docs/architecture.md "Three ways to run, one code path", 1).
 *
 * As a plain entry point (no oclif, so it starts fast and runs on Node, Bun
 * and Deno alike) — this is what `fishchat up` spawns for each role in the
 * Redis modes:
 *
 *     node|bun|deno dist/runtime/cluster/role-main.js --dir DIR --role ROLE [--id ID]
 *     node|bun|deno dist/runtime/cluster/role-main.js --config FILE [--dir DIR]
 *
 * Other options: --redis URL, --seeds host:port,… (gateway), --watch-stdin
 * (stop when stdin closes: the supervisor is gone). Environment:
 * FISHCHAT_REDIS, FISHCHAT_CLUSTER, FISHCHAT_SECRET override the cluster
 * files; FISHCHAT_PORT and FISHCHAT_HTTP_PORT the role's ports.
 *
 * Prints `ready <role> <id> [tcp=host:port] [http=host:port] pid=N` on
 * stdout once it listens; log lines go to stdout (warnings and errors to
 * stderr). On SIGTERM or SIGINT it stops cleanly (a msg_server kicks its
 * clients with `draining`) and exits 0. A start failure prints
 * `Error: message` on stderr and exits 2 (configuration) or 1.
 *
 * `serveRole()` is the same thing as a function: `fishchat serve` uses it.
 */
import { realpathSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { getPlatform } from '../platform/index.js';
import { makeRoleContext, ROLE_NAMES, startRole, type Logger, type RoleHandle, type RoleName } from '../roles/index.js';
import { NoRedisError, openBackends, redactRedisUrl } from './backends.js';
import type { ClusterConfig, RoleConfig } from './config.js';
import { parseHostPort } from '../platform/address.js';
import { ConfigError } from './checks.js';
import { loadCluster, loadRoleFile } from './load.js';
import { StopSignals, stopWithin } from './signals.js';

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

/** `tcp=host:port http=host:port`, as the ready line shows the addresses. */
export function formatAddresses(addresses: { tcp?: string; http?: string }): string {
  return [addresses.tcp && `tcp=${addresses.tcp}`, addresses.http && `http=${addresses.http}`]
    .filter(Boolean)
    .join(' ');
}

/** A ready line of a role process, parsed; undefined if the line is not one. */
export function parseReadyLine(
  line: string,
): { role: string; id: string; addresses: { tcp?: string; http?: string }; pid?: number } | undefined {
  const m = /^ready (\S+) (\S+)((?: \w+=\S+)*)\s*$/.exec(line);
  if (!m) return undefined;
  const addresses: { tcp?: string; http?: string } = {};
  let pid: number | undefined;
  for (const kv of m[3]!.trim().split(' ').filter(Boolean)) {
    const [k, v] = [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)];
    if (k === 'tcp' || k === 'http') addresses[k] = v;
    else if (k === 'pid') pid = Number(v);
  }
  return { role: m[1]!, id: m[2]!, addresses, pid };
}

// ---------------------------------------------------------------- the entry point

async function main(argv: string[]): Promise<void> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        dir: { type: 'string' },
        config: { type: 'string' },
        role: { type: 'string' },
        id: { type: 'string' },
        redis: { type: 'string' },
        seeds: { type: 'string' },
        'watch-stdin': { type: 'boolean' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    process.stderr.write(
      `Error: ${(err as Error).message}\nusage: role-main --dir DIR --role ROLE [--id ID] | --config FILE\n`,
    );
    process.exit(2);
  }
  const str = (k: string) => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  const log: Logger = {
    info: (m) => writeLines(process.stdout, m),
    warn: (m) => writeLines(process.stderr, `warning: ${m}`),
    error: (m) => writeLines(process.stderr, `error: ${m}`),
  };

  // Stop requests while starting stop the role as soon as it is up.
  const stopRequests = new StopSignals(
    (why) => {
      if (why === 'stdin closed') return;
      process.stderr.write(`${why} again: exiting without a clean stop\n`);
      process.exit(1);
    },
    ['SIGTERM', 'SIGINT'],
  );
  if (values['watch-stdin']) {
    // Our supervisor holds the other end: it closing means the supervisor is gone.
    const gone = () => stopRequests.request('stdin closed');
    process.stdin.on('end', gone);
    process.stdin.on('close', gone);
    process.stdin.on('error', gone);
    process.stdin.resume();
  }

  let served: ServedRole;
  try {
    served = await serveRole({
      dir: str('dir'),
      configFile: str('config'),
      role: str('role'),
      id: str('id'),
      redis: str('redis'),
      seeds: str('seeds')?.split(',').filter(Boolean),
      log,
    });
  } catch (err) {
    const e = err as Error;
    if (process.env.DEBUG) process.stderr.write(`${e.stack}\n`);
    process.stderr.write(`Error: ${e.message || String(e)}\n`);
    await flushStdout();
    process.exit(['ConfigError', 'NoRedisError', 'ServeUsageError'].includes(e.name) ? 2 : 1);
  }
  const h = served.handle;
  process.stdout.write(
    `ready ${h.role} ${h.id} ${formatAddresses(h.addresses)} pid=${process.pid}\n`.replace('  ', ' '),
  );

  const why = await stopRequests.wait();
  log.info(`stopping (${why})`);
  let code = 0;
  await stopWithin(
    ROLE_STOP_TIMEOUT_MS,
    async () => {
      try {
        await served.stop();
        log.info('stopped');
      } catch (err) {
        process.stderr.write(`Error: ${(err as Error).message}\n`);
        code = 1;
      }
    },
    () => {
      process.stderr.write(`did not stop within ${ROLE_STOP_TIMEOUT_MS / 1000} s; exiting\n`);
      process.exit(1);
    },
  );
  await flushStdout();
  process.exit(code);
}

function writeLines(stream: NodeJS.WriteStream, text: string): void {
  stream.write(text.endsWith('\n') ? text : `${text}\n`);
}

function flushStdout(): Promise<void> {
  return new Promise((done) => {
    if (process.stdout.write('')) done();
    else process.stdout.once('drain', () => done());
    setTimeout(done, 500).unref?.();
  });
}

function isMain(): boolean {
  const m = (import.meta as { main?: boolean }).main;
  if (typeof m === 'boolean') return m;
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(resolve(script)) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) await main(process.argv.slice(2));
