/**
 * Loads a cluster directory: fishchat.json (cluster-wide) and one JSON file
 * per role, as in the original FishChat (gateway.json, msg_server.19000.json,
 * msg_server.19001.json, router.json, manager.json, monitor.json). A
 * directory without fishchat.json runs with the defaults (./defaults.ts,
 * docs/architecture.md "Roles"); a fishchat.json whose "roles" list predates the
 * manager and the monitor gets the default manager and monitor.
 *
 * Every field is checked on load (./checks.ts); a ConfigError names the
 * file, the field, what was expected and what was found.
 */
import { readFile, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { bindAddress, isLoopback } from '../platform/address.js';
import type {
  AuthMode,
  ClusterConfig,
  GatewayConfig,
  ManagerConfig,
  MonitorConfig,
  MsgServerConfig,
  RoleConfig,
  RouterConfig,
  RuntimeName,
} from './config.js';
import {
  checkClusterFile,
  checkClusterName,
  checkRedis,
  checkRoleFile,
  checkRuntime,
  checkUnique,
  ConfigError,
  pickRoles,
  type RoleEntry,
} from './checks.js';
import {
  CLUSTER_DEFAULTS,
  CLUSTER_FILE,
  DEFAULT_ADMIN_ROLES,
  defaultAdminRoleFile,
  defaultRoleFiles,
  mergeSettings,
} from './defaults.js';
import { ensureSecret, readSecret, secretProblem } from './secret.js';
import { advertisedWs } from './config.js';

export interface LoadOverrides {
  /** environment to read FISHCHAT_SECRET from (default process.env) */
  env?: Record<string, string | undefined>;
  /** the secret itself (wins over FISHCHAT_SECRET and the secret file) */
  secret?: string;
  /** create the secret file when it does not exist (`fishchat up`); otherwise a missing secret is an error (auth "token") */
  createSecret?: boolean;
  /** called when the secret file was created */
  onSecretCreated?: (path: string) => void;
  /** Redis URL instead of fishchat.json's "redis" (null: none) */
  redis?: string | null;
  /** runtime instead of fishchat.json's "runtime" */
  runtime?: RuntimeName;
  /** cluster name instead of fishchat.json's "cluster" (FISHCHAT_CLUSTER for `fishchat serve`) */
  cluster?: string;
}

/**
 * Loads the cluster in `dir`: fishchat.json and its role files, or the
 * defaults when there is no fishchat.json. Throws ConfigError.
 */
export async function loadCluster(dir: string, overrides: LoadOverrides = {}): Promise<ClusterConfig> {
  const root = resolve(dir);
  const st = await stat(root).catch(() => undefined);
  if (!st) throw new ConfigError(root, undefined, 'the cluster directory does not exist');
  if (!st.isDirectory()) throw new ConfigError(root, undefined, 'is not a directory');

  const raw = await readJson(root, CLUSTER_FILE, true);
  const cf = raw === undefined ? undefined : checkClusterFile(raw);

  const roles =
    cf?.roles === undefined
      ? defaultRoleFiles().map(({ file, config }) => ({ file, config: checkRoleFile(file, config) }))
      : await readRoleFiles(root, cf.roles);
  const gateway = pickRoles(roles, 'gateway', 'exactly one')[0] as { file: string; config: GatewayConfig };
  const msgServers = pickRoles(roles, 'msg_server', 'at least one') as { file: string; config: MsgServerConfig }[];
  const router = pickRoles(roles, 'router', 'exactly one')[0] as { file: string; config: RouterConfig };
  // A "roles" list from before the manager and the monitor existed still loads: they run with their defaults.
  const [manager, monitor] = DEFAULT_ADMIN_ROLES.map((role): RoleEntry => {
    const listed = pickRoles(roles, role, 'at most one')[0];
    if (listed) return listed;
    const { file, config } = defaultAdminRoleFile(role);
    return { file, config: checkRoleFile(file, config), defaulted: true };
  }) as [{ file: string; config: ManagerConfig }, { file: string; config: MonitorConfig }];
  checkUnique([...roles, ...[manager, monitor].filter((r: RoleEntry) => r.defaulted)]);

  if (gateway.config.seeds.length === 0) {
    gateway.config.seeds = msgServers.map((m) => m.config.advertise ?? bindAddress(m.config.host, m.config.port));
    // Their WebSocket URLs too, where the role file fixes the HTTP port: the first routes name them.
    const seedWs: Record<string, string> = {};
    for (const [i, m] of msgServers.entries()) {
      const addr = gateway.config.seeds[i]!;
      const http = { host: m.config.httpHost, port: m.config.httpPort };
      const ws = http.port === 0 ? undefined : advertisedWs(m.config, addr, http);
      if (ws !== undefined) seedWs[addr] = ws;
    }
    gateway.config.seedWs = seedWs;
  }

  const auth = cf?.auth ?? CLUSTER_DEFAULTS.auth;
  if (auth === 'none') {
    const open: string[] = [];
    for (const { file, config } of [gateway, ...msgServers]) {
      if (!isLoopback(config.host)) open.push(`${file} "host" is ${JSON.stringify(config.host)}`);
      if (!isLoopback(config.httpHost)) open.push(`${file} "httpHost" is ${JSON.stringify(config.httpHost)}`);
    }
    if (open.length > 0) {
      throw new ConfigError(
        CLUSTER_FILE,
        'auth',
        `"none" is refused unless every client listener binds a loopback address, but ${open.join(', ')}; ` +
          'use "token", or bind 127.0.0.1',
      );
    }
  }

  let runtime: RuntimeName = cf?.runtime ?? CLUSTER_DEFAULTS.runtime;
  if (overrides.runtime !== undefined) runtime = checkRuntime('--runtime', undefined, overrides.runtime);
  let redis = cf?.redis ?? undefined;
  if (overrides.redis !== undefined)
    redis = overrides.redis === null ? undefined : checkRedis('--redis', undefined, overrides.redis);

  const secretFile = resolve(root, cf?.secretFile ?? CLUSTER_DEFAULTS.secretFile);
  const dataDir = resolve(root, cf?.dataDir ?? CLUSTER_DEFAULTS.dataDir);
  const secret = await loadSecret(root, secretFile, auth, overrides);

  let cluster: string = cf?.cluster ?? CLUSTER_DEFAULTS.cluster;
  if (overrides.cluster !== undefined) cluster = checkClusterName('FISHCHAT_CLUSTER', undefined, overrides.cluster);

  return {
    dir: root,
    cluster,
    runtime,
    redis,
    auth,
    secret,
    secretFile,
    dataDir,
    settings: mergeSettings(cf?.settings),
    gateway: gateway.config,
    msgServers: msgServers.map((m) => m.config),
    router: router.config,
    manager: manager.config,
    monitor: monitor.config,
  };
}

// ---------------------------------------------------------------- the secret

async function loadSecret(root: string, secretFile: string, auth: AuthMode, o: LoadOverrides): Promise<string> {
  const env = o.env ?? process.env;
  if (o.secret !== undefined) return checkSecret('secret', o.secret);
  const fromEnv = env.FISHCHAT_SECRET;
  if (fromEnv !== undefined && fromEnv !== '') return checkSecret('FISHCHAT_SECRET', fromEnv);
  const shown = displayPath(root, secretFile);
  if (o.createSecret) {
    const { secret, created } = await ensureSecret(secretFile).catch((err: NodeJS.ErrnoException) => {
      throw new ConfigError(shown, undefined, `cannot read or create the secret: ${err.message}`);
    });
    if (created) o.onSecretCreated?.(secretFile);
    return checkSecret(shown, secret);
  }
  const secret = await readSecret(secretFile).catch((err: NodeJS.ErrnoException) => {
    throw new ConfigError(shown, undefined, `cannot read the secret: ${err.message}`);
  });
  if (secret === undefined) {
    // With auth "none" nothing needs a token; an empty secret signs nothing.
    if (auth === 'none') return '';
    throw new ConfigError(
      shown,
      undefined,
      'no cluster secret: the file does not exist; `fishchat init` or `fishchat up` creates it, or set FISHCHAT_SECRET',
    );
  }
  return checkSecret(shown, secret);
}

function checkSecret(source: string, secret: string): string {
  const problem = secretProblem(secret);
  if (problem) throw new ConfigError(source, undefined, `the secret ${problem}`);
  return secret;
}

// ---------------------------------------------------------------- files

async function readJson(root: string, file: string, optional: boolean, listedAs?: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(resolve(root, file), 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && optional) return undefined;
    if (code === 'ENOENT' && listedAs) {
      throw new ConfigError(CLUSTER_FILE, listedAs, `names ${JSON.stringify(file)}, which does not exist in ${root}`);
    }
    throw new ConfigError(file, undefined, `cannot be read: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ConfigError(file, undefined, `is not valid JSON: ${(err as Error).message}`);
  }
}

/**
 * One role file on its own (`fishchat serve ROLE --config FILE`), checked as
 * when it is listed in fishchat.json. Throws ConfigError naming the file.
 */
export async function loadRoleFile(path: string): Promise<RoleConfig> {
  const abs = resolve(path);
  const raw = await readJson(dirname(abs), abs, false);
  return checkRoleFile(path, raw);
}

/** One by one, so the first bad file in the list is the one reported. */
async function readRoleFiles(root: string, files: string[]): Promise<RoleEntry[]> {
  const out: RoleEntry[] = [];
  for (const [i, file] of files.entries()) {
    out.push({ file, config: checkRoleFile(file, await readJson(root, file, false, `roles[${i}]`)) });
  }
  return out;
}

function displayPath(root: string, path: string): string {
  return path.startsWith(root + '/') ? path.slice(root.length + 1) : path;
}
