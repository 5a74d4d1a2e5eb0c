/**
 * Loads and validates a cluster directory: fishchat.json (cluster-wide) and
 * one JSON file per role, as in the original FishChat (gateway.json,
 * msg_server.19000.json, msg_server.19001.json, router.json, manager.json,
 * monitor.json). A directory without fishchat.json runs with the defaults
 * below (DESIGN.md "Roles"); a fishchat.json whose "roles" list predates the
 * manager and the monitor gets the default manager and monitor.
 *
 * Every field is checked on load; a ConfigError names the file, the field,
 * what was expected and what was found.
 */
import { readFile, stat } from 'node:fs/promises';
import { isIP } from '../platform/address.js';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import {
  DEFAULT_SETTINGS,
  type AuthMode,
  type ClusterConfig,
  type GatewayConfig,
  type ManagerConfig,
  type MonitorConfig,
  type MsgServerConfig,
  type RoleConfig,
  type RouterConfig,
  type RuntimeName,
  type Settings,
} from './config.js';
import { ensureSecret, readSecret, secretProblem } from './secret.js';

export const CLUSTER_FILE = 'fishchat.json';
/** Where `up` records what it started (see RunInfo). */
export const RUN_FILE = join('.fishchat', 'run.json');

export const DEFAULT_HOST = '127.0.0.1';
/** Default ports (DESIGN.md "Roles"); msg_server n listens on 19000 + n, HTTP 19100 + n. */
export const DEFAULT_PORTS = {
  gateway: 17000,
  gatewayHttp: 17080,
  msgServer: 19000,
  msgServerHttp: 19100,
  router: 20000,
  manager: 18000,
  monitor: 21000,
} as const;
/** `fishchat init --msg-servers` range: beyond 100 the msg_server ports would reach the HTTP ones. */
export const MAX_MSG_SERVERS = 100;

/** The cluster file as written by `fishchat init` with `msgServers` msg_servers. */
export function defaultClusterFile(msgServers = 2): ClusterFile {
  return {
    cluster: 'local',
    runtime: 'node',
    redis: null,
    auth: 'token',
    secretFile: join('.fishchat', 'secret'),
    dataDir: join('.fishchat', 'data'),
    settings: structuredClone(DEFAULT_SETTINGS),
    roles: defaultRoleFiles(msgServers).map((r) => r.file),
  };
}

/** The per-role files of the default cluster, in start order of their names. */
export function defaultRoleFiles(msgServers = 2): { file: string; config: RoleFile }[] {
  const files: { file: string; config: RoleFile }[] = [
    {
      file: 'gateway.json',
      config: {
        role: 'gateway',
        id: 'gateway',
        host: DEFAULT_HOST,
        port: DEFAULT_PORTS.gateway,
        httpHost: DEFAULT_HOST,
        httpPort: DEFAULT_PORTS.gatewayHttp,
      },
    },
  ];
  for (let i = 0; i < msgServers; i++) {
    const port = DEFAULT_PORTS.msgServer + i;
    files.push({
      file: `msg_server.${port}.json`,
      config: {
        role: 'msg_server',
        id: `ms-${port}`,
        host: DEFAULT_HOST,
        port,
        httpHost: DEFAULT_HOST,
        httpPort: DEFAULT_PORTS.msgServerHttp + i,
      },
    });
  }
  files.push(
    {
      file: 'router.json',
      config: { role: 'router', id: 'router', httpHost: DEFAULT_HOST, httpPort: DEFAULT_PORTS.router },
    },
    ...DEFAULT_ADMIN_ROLES.map((role) => defaultAdminRoleFile(role)),
  );
  return files;
}

/** Roles a "roles" list written before them may leave out: they then run with their defaults. */
const DEFAULT_ADMIN_ROLES = ['manager', 'monitor'] as const;

/** manager.json / monitor.json as `init` writes them: HTTP on 127.0.0.1 (DESIGN.md "Security"). */
function defaultAdminRoleFile(role: (typeof DEFAULT_ADMIN_ROLES)[number]): { file: string; config: RoleFile } {
  return { file: `${role}.json`, config: { role, id: role, httpHost: DEFAULT_HOST, httpPort: DEFAULT_PORTS[role] } };
}

/** fishchat.json as written on disk (every field optional when loading). */
export interface ClusterFile {
  cluster: string;
  runtime: RuntimeName;
  redis: string | null;
  auth: AuthMode;
  secretFile: string;
  dataDir: string;
  settings: Partial<Settings>;
  roles: string[];
}

/** A role file as written on disk. */
export interface RoleFile {
  role: RoleConfig['role'];
  id: string;
  host?: string;
  port?: number;
  advertise?: string;
  httpHost?: string;
  httpPort?: number;
  seeds?: string[];
}

/** A configuration problem, naming the file, the field, what was expected and what was found. */
export class ConfigError extends Error {
  constructor(
    /** the file, as named in the cluster directory (e.g. "msg_server.19001.json") */
    readonly file: string,
    /** the field (e.g. "port", "settings.backoff.base"), when the problem is one field */
    readonly field: string | undefined,
    /** what is wrong, e.g. `must be an integer 0–65535, found "abc"` */
    readonly problem: string,
  ) {
    super(field === undefined ? `${file}: ${problem}` : `${file}: "${field}" ${problem}`);
    this.name = 'ConfigError';
  }
}

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

const RUNTIMES: readonly RuntimeName[] = ['node', 'bun', 'deno'];
const AUTH_MODES: readonly AuthMode[] = ['token', 'none'];
const ROLES = ['gateway', 'msg_server', 'router', 'manager', 'monitor'] as const;
const ROLE_NAMES = ROLES.map((r) => JSON.stringify(r)).join(', ');
type Role = (typeof ROLES)[number];
/** Ids name bus channels (`/sysctrl/deliver/<server-id>`): the protocol's id alphabet. */
const ID_RE = /^[A-Za-z0-9_.@-]{1,64}$/;
const CLUSTER_RE = /^[A-Za-z0-9_.-]{1,64}$/;
const HOSTNAME_RE = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

const CLUSTER_FIELDS = ['cluster', 'runtime', 'redis', 'auth', 'secretFile', 'dataDir', 'settings', 'roles'];
const ROLE_FIELDS: Record<Role, string[]> = {
  gateway: ['role', 'id', 'host', 'port', 'httpHost', 'httpPort', 'seeds'],
  msg_server: ['role', 'id', 'host', 'port', 'advertise', 'httpHost', 'httpPort'],
  router: ['role', 'id', 'httpHost', 'httpPort'],
  manager: ['role', 'id', 'httpHost', 'httpPort'],
  monitor: ['role', 'id', 'httpHost', 'httpPort'],
};

/** A role as loaded: its file, or a default standing in for a file the "roles" list does not name. */
interface RoleEntry {
  file: string;
  config: RoleConfig;
  /** not listed in fishchat.json "roles": runs with its defaults */
  defaulted?: boolean;
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
    gateway.config.seeds = msgServers.map((m) => m.config.advertise ?? joinHostPort(m.config.host, m.config.port));
  }

  const auth = cf?.auth ?? 'token';
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

  let runtime = cf?.runtime ?? 'node';
  if (overrides.runtime !== undefined) runtime = checkRuntime('--runtime', undefined, overrides.runtime);
  let redis = cf?.redis ?? undefined;
  if (overrides.redis !== undefined) redis = overrides.redis === null ? undefined : checkRedis('--redis', undefined, overrides.redis);

  const secretFile = resolve(root, cf?.secretFile ?? join('.fishchat', 'secret'));
  const dataDir = resolve(root, cf?.dataDir ?? join('.fishchat', 'data'));
  const secret = await loadSecret(root, secretFile, auth, overrides);

  let cluster = cf?.cluster ?? 'local';
  if (overrides.cluster !== undefined) {
    if (!CLUSTER_RE.test(overrides.cluster)) fail('FISHCHAT_CLUSTER', undefined, 'must be 1 to 64 characters of A-Z a-z 0-9 _ . -', overrides.cluster);
    cluster = overrides.cluster;
  }

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

function checkClusterFile(raw: unknown): Partial<ClusterFile> {
  const f = CLUSTER_FILE;
  const o = checkObject(f, undefined, raw);
  checkKnown(f, '', o, CLUSTER_FIELDS);
  const out: Partial<ClusterFile> = {};
  if (o.cluster !== undefined) {
    if (typeof o.cluster !== 'string' || !CLUSTER_RE.test(o.cluster)) fail(f, 'cluster', 'must be 1 to 64 characters of A-Z a-z 0-9 _ . -', o.cluster);
    out.cluster = o.cluster;
  }
  if (o.runtime !== undefined) out.runtime = checkRuntime(f, 'runtime', o.runtime);
  if (o.redis !== undefined && o.redis !== null) out.redis = checkRedis(f, 'redis', o.redis);
  if (o.auth !== undefined) {
    if (!AUTH_MODES.includes(o.auth as AuthMode)) fail(f, 'auth', 'must be "token" or "none"', o.auth);
    out.auth = o.auth as AuthMode;
  }
  for (const key of ['secretFile', 'dataDir'] as const) {
    const v = o[key];
    if (v === undefined) continue;
    if (typeof v !== 'string' || v.trim() === '') fail(f, key, 'must be a non-empty path (relative to the cluster directory)', v);
    out[key] = v;
  }
  if (o.settings !== undefined) out.settings = checkSettings(o.settings);
  if (o.roles !== undefined) {
    if (!Array.isArray(o.roles) || o.roles.length === 0) fail(f, 'roles', 'must be a non-empty array of role file names', o.roles);
    const seen = new Set<string>();
    out.roles = (o.roles as unknown[]).map((r, i) => {
      if (typeof r !== 'string' || r.trim() === '') fail(f, `roles[${i}]`, 'must be a file name (relative to the cluster directory)', r);
      if (seen.has(r)) fail(f, `roles[${i}]`, 'must not repeat a file already listed', r);
      seen.add(r);
      return r;
    });
  }
  return out;
}

function checkSettings(raw: unknown): Partial<Settings> {
  const f = CLUSTER_FILE;
  const o = checkObject(f, 'settings', raw);
  checkKnown(f, 'settings.', o, Object.keys(DEFAULT_SETTINGS));
  const out: Partial<Settings> = {};
  const int = (key: keyof Settings, min: number, max: number, unit = '') => {
    if (o[key] !== undefined) (out as Record<string, number>)[key] = checkInt(f, `settings.${key}`, o[key], min, max, unit);
  };
  int('maxFrame', 1024, 16 * 1024 * 1024, ' (bytes)');
  int('heartbeat', 10, 3_600_000, ' (ms)');
  int('loginPush', 1, 1_000_000);
  int('maxOutBuffer', 1024, 1024 * 1024 * 1024, ' (bytes)');
  int('retentionMs', 1000, 10 * 365 * 24 * 3600_000, ' (ms)');
  int('maxInbox', 1, 100_000_000);
  int('cidWindowMs', 0, 10 * 365 * 24 * 3600_000, ' (ms)');
  int('beat', 10, 600_000, ' (ms)');
  int('loginTimeout', 10, 3_600_000, ' (ms)');
  int('maxConnections', 1, 10_000_000);
  int('maxTopicMembers', 1, 100_000_000);
  if (o.sendRate !== undefined) {
    const r = checkObject(f, 'settings.sendRate', o.sendRate);
    checkKnown(f, 'settings.sendRate.', r, ['rate', 'burst']);
    const rate = r.rate === undefined ? DEFAULT_SETTINGS.sendRate.rate : checkInt(f, 'settings.sendRate.rate', r.rate, 1, 1_000_000, ' (per second)');
    // An unset burst is twice the rate (the default's ratio), so `{ "rate": 1000 }` alone does not starve on the default burst.
    const burst = r.burst === undefined ? Math.max(rate * 2, 1) : checkInt(f, 'settings.sendRate.burst', r.burst, 1, 10_000_000);
    out.sendRate = { rate, burst };
  }
  if (o.backoff !== undefined) {
    const b = checkObject(f, 'settings.backoff', o.backoff);
    checkKnown(f, 'settings.backoff.', b, ['base', 'max']);
    const base = b.base === undefined ? DEFAULT_SETTINGS.backoff.base : checkInt(f, 'settings.backoff.base', b.base, 0, 3_600_000, ' (ms)');
    const max = b.max === undefined ? DEFAULT_SETTINGS.backoff.max : checkInt(f, 'settings.backoff.max', b.max, 0, 3_600_000, ' (ms)');
    if (base > max) fail(f, 'settings.backoff.max', `must be at least settings.backoff.base (${base})`, max);
    out.backoff = { base, max };
  }
  // One pushed frame can be maxFrame bytes: a buffer cap below it would kick healthy clients `slow`.
  const maxFrame = out.maxFrame ?? DEFAULT_SETTINGS.maxFrame;
  const maxOutBuffer = out.maxOutBuffer ?? DEFAULT_SETTINGS.maxOutBuffer;
  if (maxOutBuffer < maxFrame) fail(f, 'settings.maxOutBuffer', `must be at least settings.maxFrame (${maxFrame})`, maxOutBuffer);
  const retention = out.retentionMs ?? DEFAULT_SETTINGS.retentionMs;
  // Unset, the cid window follows a shorter retention; set, it must fit in it.
  if (out.cidWindowMs === undefined && retention < DEFAULT_SETTINGS.cidWindowMs) out.cidWindowMs = retention;
  const cidWindow = out.cidWindowMs ?? DEFAULT_SETTINGS.cidWindowMs;
  if (cidWindow > retention) fail(f, 'settings.cidWindowMs', `must be at most settings.retentionMs (${retention})`, cidWindow);
  return out;
}

function mergeSettings(partial: Partial<Settings> | undefined): Settings {
  const s = structuredClone(DEFAULT_SETTINGS);
  return partial ? { ...s, ...partial, backoff: { ...(partial.backoff ?? s.backoff) }, sendRate: { ...(partial.sendRate ?? s.sendRate) } } : s;
}

function checkRoleFile(file: string, raw: unknown): RoleConfig {
  const o = checkObject(file, undefined, raw);
  const fromName = ROLES.find((r) => baseName(file).startsWith(`${r}.`));
  if (o.role === undefined && fromName === undefined) {
    fail(file, 'role', `must be one of ${ROLE_NAMES} (or the file name must start with one)`, o.role);
  }
  if (o.role !== undefined && !ROLES.includes(o.role as Role)) fail(file, 'role', `must be one of ${ROLE_NAMES}`, o.role);
  const role = (o.role ?? fromName) as Role;
  checkKnown(file, '', o, ROLE_FIELDS[role]);
  if (typeof o.id !== 'string' || !ID_RE.test(o.id)) fail(file, 'id', 'must be 1 to 64 characters of A-Z a-z 0-9 _ . @ -', o.id);
  const id = o.id;
  const httpHost = (fallback: string) => (o.httpHost === undefined ? fallback : checkHost(file, 'httpHost', o.httpHost));
  const httpPort = () => checkInt(file, 'httpPort', o.httpPort, 0, 65535);
  switch (role) {
    case 'gateway': {
      const host = o.host === undefined ? DEFAULT_HOST : checkHost(file, 'host', o.host);
      const port = checkInt(file, 'port', o.port, 0, 65535);
      let seeds: string[] = [];
      if (o.seeds !== undefined) {
        if (!Array.isArray(o.seeds)) fail(file, 'seeds', 'must be an array of "host:port" msg_server addresses', o.seeds);
        seeds = (o.seeds as unknown[]).map((s, i) => checkHostPort(file, `seeds[${i}]`, s));
      }
      return { role, id, host, port, httpHost: httpHost(host), httpPort: httpPort(), seeds };
    }
    case 'msg_server': {
      const host = o.host === undefined ? DEFAULT_HOST : checkHost(file, 'host', o.host);
      const port = checkInt(file, 'port', o.port, 0, 65535);
      const config: MsgServerConfig = { role, id, host, port, httpHost: httpHost(host), httpPort: httpPort() };
      if (o.advertise !== undefined) config.advertise = checkHostPort(file, 'advertise', o.advertise);
      return config;
    }
    case 'router':
      return { role, id, httpHost: httpHost(DEFAULT_HOST), httpPort: httpPort() };
    // The admin HTTP APIs bind 127.0.0.1 unless configured otherwise (DESIGN.md "Security").
    case 'manager':
    case 'monitor':
      return { role, id, httpHost: httpHost(DEFAULT_HOST), httpPort: httpPort() };
  }
}

function pickRoles(roles: RoleEntry[], role: RoleConfig['role'], want: 'exactly one' | 'at least one' | 'at most one') {
  const found = roles.filter((r) => r.config.role === role);
  if ((found.length === 0 && want !== 'at most one') || (want !== 'at least one' && found.length > 1)) {
    const names = found.length ? ` (${found.map((r) => r.file).join(', ')})` : '';
    throw new ConfigError(CLUSTER_FILE, 'roles', `must list ${want} ${role} file, found ${found.length}${names}`);
  }
  return found;
}

/**
 * Ids unique; no two listeners on one port of one host (port 0 = any free
 * port, never a clash). Defaulted roles are taken first, so a clash is
 * reported on the file that can be changed.
 */
function checkUnique(roles: RoleEntry[]): void {
  const ids = new Map<string, string>();
  const ports = new Map<number, { host: string; where: string }[]>();
  const ordered = [...roles.filter((r) => r.defaulted), ...roles.filter((r) => !r.defaulted)];
  for (const { file, config, defaulted } of ordered) {
    const where = (field: string) =>
      defaulted ? `the default ${config.role}'s "${field}" (no ${config.role} file is listed in ${CLUSTER_FILE} "roles"; list one, such as ${config.role}.json, to change it)` : `${file} "${field}"`;
    const other = ids.get(config.id);
    if (other) throw new ConfigError(file, 'id', `must be unique in the cluster, found ${JSON.stringify(config.id)}, also ${other}`);
    ids.set(config.id, defaulted ? where('id') : `the id in ${file}`);
    const listeners: { field: string; host: string; port: number }[] = [{ field: 'httpPort', host: config.httpHost, port: config.httpPort }];
    if (config.role === 'gateway' || config.role === 'msg_server') listeners.unshift({ field: 'port', host: config.host, port: config.port });
    for (const l of listeners) {
      if (l.port === 0) continue;
      const taken = (ports.get(l.port) ?? []).find((p) => p.host === l.host || isWildcard(p.host) || isWildcard(l.host));
      if (taken) throw new ConfigError(file, l.field, `must not clash with another listener, found ${l.port}, also used by ${taken.where}`);
      ports.set(l.port, [...(ports.get(l.port) ?? []), { host: l.host, where: where(l.field) }]);
    }
  }
}

// ---------------------------------------------------------------- value checks

/** How a found value reads in an error message. */
export function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return JSON.stringify(v.length > 80 ? `${v.slice(0, 77)}...` : v);
  return String(v);
}

function fail(file: string, field: string | undefined, expected: string, found: unknown): never {
  throw new ConfigError(file, field, `${expected}, found ${describeValue(found)}`);
}

function checkObject(file: string, field: string | undefined, v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(file, field, 'must be a JSON object', v);
  return v as Record<string, unknown>;
}

function checkInt(file: string, field: string, v: unknown, min: number, max: number, unit = ''): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) fail(file, field, `must be an integer ${min}–${max}${unit}`, v);
  return v;
}

function checkHost(file: string, field: string, v: unknown): string {
  if (typeof v !== 'string' || (isIP(v) === 0 && !HOSTNAME_RE.test(v))) fail(file, field, 'must be a host name or IP address, such as "127.0.0.1"', v);
  return v;
}

function checkHostPort(file: string, field: string, v: unknown): string {
  const hp = typeof v === 'string' ? parseHostPort(v) : undefined;
  if (hp === undefined || hp.port === 0) fail(file, field, 'must be "host:port" with a port 1–65535', v);
  return v as string;
}

function checkRedis(file: string, field: string | undefined, v: unknown): string {
  if (typeof v !== 'string' || !/^rediss?:\/\/\S+$/.test(v)) fail(file, field, 'must be null or a URL "redis://host:port" (or rediss://)', v);
  return v;
}

function checkRuntime(file: string, field: string | undefined, v: unknown): RuntimeName {
  if (!RUNTIMES.includes(v as RuntimeName)) fail(file, field, 'must be one of "node", "bun", "deno"', v);
  return v as RuntimeName;
}

function checkKnown(file: string, prefix: string, o: Record<string, unknown>, known: readonly string[]): void {
  for (const key of Object.keys(o)) {
    if (known.includes(key)) continue;
    const near = known.find((k) => k.toLowerCase() === key.toLowerCase() || editDistance(k.toLowerCase(), key.toLowerCase()) <= 2);
    const hint = near ? `; did you mean "${prefix}${near}"?` : `; known fields: ${known.join(', ')}`;
    throw new ConfigError(file, `${prefix}${key}`, `is not a known field${hint}`);
  }
}

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0]!;
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = d[j]!;
      d[j] = Math.min(d[j]! + 1, d[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return d[b.length]!;
}

// ---------------------------------------------------------------- addresses

/** "host:port" or "[v6]:port" → parts; undefined when malformed. */
export function parseHostPort(s: string): { host: string; port: number } | undefined {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(s) ?? /^([^:\s]+):(\d{1,5})$/.exec(s);
  if (!m) return undefined;
  const host = m[1]!;
  const port = Number(m[2]);
  if (port > 65535) return undefined;
  if (isIP(host) === 0 && !HOSTNAME_RE.test(host)) return undefined;
  return { host, port };
}

export function joinHostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/** True for addresses only this machine can reach: localhost, 127.0.0.0/8, ::1. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '0:0:0:0:0:0:0:0';
}

function baseName(file: string): string {
  return file.split(/[\\/]/).pop() ?? file;
}

function displayPath(root: string, path: string): string {
  return path.startsWith(root + '/') ? path.slice(root.length + 1) : path;
}

// ---------------------------------------------------------------- run.json

/** How `fishchat up` runs a cluster (DESIGN.md "Three ways to run"). */
export type RunMode = 'embedded' | 'redis' | 'managed';

/** What `fishchat up` records in DIR/.fishchat/run.json while the cluster runs. */
export interface RunInfo {
  /** the `fishchat up` process (embedded: it runs every role; Redis modes: it supervises them) */
  pid: number;
  /** embedded: one process; redis: an external Redis; managed: a private redis-server started by `up` */
  mode: RunMode;
  /** Redis modes: the URL the roles use; managed: also the redis-server's pid and data directory */
  redis?: { url: string; pid?: number; dir?: string };
  /** Redis modes: the runtime of the role processes */
  runtime?: 'node' | 'bun' | 'deno';
  /** the gateway's client address, host:port */
  gateway: string;
  /** the monitor's HTTP address, host:port (`fishchat status` asks it) */
  monitor?: string;
  /** every role, in start order, with where it listens */
  roles: { role: string; id: string; addresses: { tcp?: string; http?: string }; pid?: number }[];
  /** ISO 8601 */
  startedAt: string;
}

export function runFilePath(dir: string): string {
  return isAbsolute(dir) ? join(dir, RUN_FILE) : resolve(dir, RUN_FILE);
}

/** The run file of a cluster whose process is still alive; undefined when none (or stale). */
export async function readRunInfo(dir: string): Promise<RunInfo | undefined> {
  let info: RunInfo;
  try {
    info = JSON.parse(await readFile(runFilePath(dir), 'utf8')) as RunInfo;
  } catch {
    return undefined;
  }
  if (!info || typeof info.pid !== 'number' || typeof info.gateway !== 'string') return undefined;
  return processAlive(info.pid) ? info : undefined;
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
