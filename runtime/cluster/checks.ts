/**
 * The checks of a cluster directory's files: every field of fishchat.json and
 * of the role files, one by one; a ConfigError names the file, the field,
 * what was expected and what was found.
 */
import { isHost, isWildcard, parseHostPort } from '../platform/address.js';
import { ROLE_NAMES, type RoleName } from '../contract/context.js';
import {
  DEFAULT_SETTINGS,
  type AuthMode,
  type GatewayConfig,
  type MsgServerConfig,
  type RoleConfig,
  type RuntimeName,
  type Settings,
} from '../contract/config.js';
import { CLUSTER_FILE, DEFAULT_HOST, type ClusterFile } from './defaults.js';

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

const RUNTIMES: readonly RuntimeName[] = ['node', 'bun', 'deno'];
const AUTH_MODES: readonly AuthMode[] = ['token', 'none'];
/** The role names as an error message lists them: "gateway", "msg_server", … */
const ROLE_LIST = ROLE_NAMES.map((r) => JSON.stringify(r)).join(', ');
/** Ids name bus channels (`/sysctrl/deliver/<server-id>`): the protocol's id alphabet. */
const ID_RE = /^[A-Za-z0-9_.@-]{1,64}$/;
const CLUSTER_RE = /^[A-Za-z0-9_.-]{1,64}$/;

const CLUSTER_FIELDS = ['cluster', 'runtime', 'redis', 'auth', 'secretFile', 'dataDir', 'settings', 'roles'];
const ROLE_FIELDS: Record<RoleName, string[]> = {
  gateway: ['role', 'id', 'host', 'port', 'httpHost', 'httpPort', 'seeds', 'chatPage'],
  msg_server: ['role', 'id', 'host', 'port', 'advertise', 'httpHost', 'httpPort', 'ws'],
  router: ['role', 'id', 'httpHost', 'httpPort'],
  manager: ['role', 'id', 'httpHost', 'httpPort'],
  monitor: ['role', 'id', 'httpHost', 'httpPort'],
};

/** A role as loaded: its file, or a default standing in for a file the "roles" list does not name. */
export interface RoleEntry {
  file: string;
  config: RoleConfig;
  /** not listed in fishchat.json "roles": runs with its defaults */
  defaulted?: boolean;
}

export function checkClusterFile(raw: unknown): Partial<ClusterFile> {
  const f = CLUSTER_FILE;
  const o = checkObject(f, undefined, raw);
  checkKnown(f, '', o, CLUSTER_FIELDS);
  const out: Partial<ClusterFile> = {};
  if (o.cluster !== undefined) {
    out.cluster = checkClusterName(f, 'cluster', o.cluster);
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
    if (typeof v !== 'string' || v.trim() === '')
      fail(f, key, 'must be a non-empty path (relative to the cluster directory)', v);
    out[key] = v;
  }
  if (o.settings !== undefined) out.settings = checkSettings(o.settings);
  if (o.roles !== undefined) {
    if (!Array.isArray(o.roles) || o.roles.length === 0)
      fail(f, 'roles', 'must be a non-empty array of role file names', o.roles);
    const seen = new Set<string>();
    out.roles = (o.roles as unknown[]).map((r, i) => {
      if (typeof r !== 'string' || r.trim() === '')
        fail(f, `roles[${i}]`, 'must be a file name (relative to the cluster directory)', r);
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
    if (o[key] !== undefined)
      (out as Record<string, number>)[key] = checkInt(f, `settings.${key}`, o[key], min, max, unit);
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
    const rate =
      r.rate === undefined
        ? DEFAULT_SETTINGS.sendRate.rate
        : checkInt(f, 'settings.sendRate.rate', r.rate, 1, 1_000_000, ' (per second)');
    // An unset burst is twice the rate (the default's ratio), so `{ "rate": 1000 }` alone does not starve on the default burst.
    const burst =
      r.burst === undefined ? Math.max(rate * 2, 1) : checkInt(f, 'settings.sendRate.burst', r.burst, 1, 10_000_000);
    out.sendRate = { rate, burst };
  }
  if (o.backoff !== undefined) {
    const b = checkObject(f, 'settings.backoff', o.backoff);
    checkKnown(f, 'settings.backoff.', b, ['base', 'max']);
    const base =
      b.base === undefined
        ? DEFAULT_SETTINGS.backoff.base
        : checkInt(f, 'settings.backoff.base', b.base, 0, 3_600_000, ' (ms)');
    const max =
      b.max === undefined
        ? DEFAULT_SETTINGS.backoff.max
        : checkInt(f, 'settings.backoff.max', b.max, 0, 3_600_000, ' (ms)');
    if (base > max) fail(f, 'settings.backoff.max', `must be at least settings.backoff.base (${base})`, max);
    out.backoff = { base, max };
  }
  if (o.allowedOrigins !== undefined) out.allowedOrigins = checkOrigins(f, 'settings.allowedOrigins', o.allowedOrigins);
  // One pushed frame can be maxFrame bytes: a buffer cap below it would kick healthy clients `slow`.
  const maxFrame = out.maxFrame ?? DEFAULT_SETTINGS.maxFrame;
  const maxOutBuffer = out.maxOutBuffer ?? DEFAULT_SETTINGS.maxOutBuffer;
  if (maxOutBuffer < maxFrame)
    fail(f, 'settings.maxOutBuffer', `must be at least settings.maxFrame (${maxFrame})`, maxOutBuffer);
  const retention = out.retentionMs ?? DEFAULT_SETTINGS.retentionMs;
  // Unset, the cid window follows a shorter retention; set, it must fit in it.
  if (out.cidWindowMs === undefined && retention < DEFAULT_SETTINGS.cidWindowMs) out.cidWindowMs = retention;
  const cidWindow = out.cidWindowMs ?? DEFAULT_SETTINGS.cidWindowMs;
  if (cidWindow > retention)
    fail(f, 'settings.cidWindowMs', `must be at most settings.retentionMs (${retention})`, cidWindow);
  return out;
}

export function checkRoleFile(file: string, raw: unknown): RoleConfig {
  const o = checkObject(file, undefined, raw);
  const fromName = ROLE_NAMES.find((r) => baseName(file).startsWith(`${r}.`));
  if (o.role === undefined && fromName === undefined) {
    fail(file, 'role', `must be one of ${ROLE_LIST} (or the file name must start with one)`, o.role);
  }
  if (o.role !== undefined && !ROLE_NAMES.includes(o.role as RoleName))
    fail(file, 'role', `must be one of ${ROLE_LIST}`, o.role);
  const role = (o.role ?? fromName) as RoleName;
  checkKnown(file, '', o, ROLE_FIELDS[role]);
  if (typeof o.id !== 'string' || !ID_RE.test(o.id))
    fail(file, 'id', 'must be 1 to 64 characters of A-Z a-z 0-9 _ . @ -', o.id);
  const id = o.id;
  const httpHost = (fallback: string) =>
    o.httpHost === undefined ? fallback : checkHost(file, 'httpHost', o.httpHost);
  const httpPort = () => checkInt(file, 'httpPort', o.httpPort, 0, 65535);
  switch (role) {
    case 'gateway': {
      const host = o.host === undefined ? DEFAULT_HOST : checkHost(file, 'host', o.host);
      const port = checkInt(file, 'port', o.port, 0, 65535);
      let seeds: string[] = [];
      if (o.seeds !== undefined) {
        if (!Array.isArray(o.seeds))
          fail(file, 'seeds', 'must be an array of "host:port" msg_server addresses', o.seeds);
        seeds = (o.seeds as unknown[]).map((s, i) => checkHostPort(file, `seeds[${i}]`, s));
      }
      const config: GatewayConfig = { role, id, host, port, httpHost: httpHost(host), httpPort: httpPort(), seeds };
      if (o.chatPage !== undefined) {
        if (typeof o.chatPage !== 'boolean') fail(file, 'chatPage', 'must be true or false', o.chatPage);
        config.chatPage = o.chatPage;
      }
      return config;
    }
    case 'msg_server': {
      const host = o.host === undefined ? DEFAULT_HOST : checkHost(file, 'host', o.host);
      const port = checkInt(file, 'port', o.port, 0, 65535);
      const config: MsgServerConfig = { role, id, host, port, httpHost: httpHost(host), httpPort: httpPort() };
      if (o.advertise !== undefined) config.advertise = checkHostPort(file, 'advertise', o.advertise);
      if (o.ws !== undefined) config.ws = checkWs(file, 'ws', o.ws);
      return config;
    }
    case 'router':
      return { role, id, httpHost: httpHost(DEFAULT_HOST), httpPort: httpPort() };
    // The admin HTTP APIs bind 127.0.0.1 unless configured otherwise (docs/architecture.md "Security").
    case 'manager':
    case 'monitor':
      return { role, id, httpHost: httpHost(DEFAULT_HOST), httpPort: httpPort() };
  }
}

/** A msg_server's "ws": true, false, or the ws:// / wss:// URL clients are told to dial. */
function checkWs(file: string, field: string, v: unknown): boolean | string {
  if (typeof v === 'boolean') return v;
  const rule = 'must be true, false, or the WebSocket URL clients dial (such as "wss://chat.example.com/v1/ws")';
  if (typeof v !== 'string') fail(file, field, rule, v);
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    fail(file, field, rule, v);
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') fail(file, field, `${rule}: ws:// or wss://`, v);
  if (isWildcard(url.hostname.replace(/^\[|\]$/g, '')))
    fail(file, field, `${rule}: a host clients can reach, not a wildcard such as 0.0.0.0`, v);
  return v;
}

/** "*" or browser origins: scheme://host[:port], nothing after. */
function checkOrigins(file: string, field: string, v: unknown): string[] {
  const rule =
    'must be an array of origins such as "https://app.example.com" (scheme, host, optional port), or ["*"] for any';
  if (!Array.isArray(v) || v.length === 0) fail(file, field, rule, v);
  return (v as unknown[]).map((o, i) => {
    if (o === '*') return o;
    let url: URL | undefined;
    try {
      url = typeof o === 'string' ? new URL(o) : undefined;
    } catch {
      url = undefined;
    }
    if (!url || url.origin === 'null' || url.origin !== o) fail(file, `${field}[${i}]`, rule, o);
    return o;
  });
}

export function pickRoles(
  roles: RoleEntry[],
  role: RoleConfig['role'],
  want: 'exactly one' | 'at least one' | 'at most one',
) {
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
export function checkUnique(roles: RoleEntry[]): void {
  const ids = new Map<string, string>();
  const ports = new Map<number, { host: string; where: string }[]>();
  const ordered = [...roles.filter((r) => r.defaulted), ...roles.filter((r) => !r.defaulted)];
  for (const { file, config, defaulted } of ordered) {
    const where = (field: string) =>
      defaulted
        ? `the default ${config.role}'s "${field}" (no ${config.role} file is listed in ${CLUSTER_FILE} "roles"; list one, such as ${config.role}.json, to change it)`
        : `${file} "${field}"`;
    const other = ids.get(config.id);
    if (other)
      throw new ConfigError(
        file,
        'id',
        `must be unique in the cluster, found ${JSON.stringify(config.id)}, also ${other}`,
      );
    ids.set(config.id, defaulted ? where('id') : `the id in ${file}`);
    const listeners: { field: string; host: string; port: number }[] = [
      { field: 'httpPort', host: config.httpHost, port: config.httpPort },
    ];
    if (config.role === 'gateway' || config.role === 'msg_server')
      listeners.unshift({ field: 'port', host: config.host, port: config.port });
    for (const l of listeners) {
      if (l.port === 0) continue;
      const taken = (ports.get(l.port) ?? []).find(
        (p) => p.host === l.host || isWildcard(p.host) || isWildcard(l.host),
      );
      if (taken)
        throw new ConfigError(
          file,
          l.field,
          `must not clash with another listener, found ${l.port}, also used by ${taken.where}`,
        );
      ports.set(l.port, [...(ports.get(l.port) ?? []), { host: l.host, where: where(l.field) }]);
    }
  }
}

/** A cluster name: it names bus channels (`fishchat:<cluster>:`). */
export function checkClusterName(file: string, field: string | undefined, v: unknown): string {
  if (typeof v !== 'string' || !CLUSTER_RE.test(v)) {
    fail(file, field, 'must be 1 to 64 characters of A-Z a-z 0-9 _ . -', v);
  }
  return v;
}

/**
 * A Redis URL as `init --redis` takes it: redis:// or rediss://, a host, an
 * optional port 1–65535 (ioredis's URL form: user, password, /db and
 * ?cluster=1 allowed; with ?cluster=1 several host:port separated by commas,
 * the seed nodes of a Redis Cluster). Throws ConfigError naming `source`.
 */
export function checkRedisUrl(url: string, source = '--redis'): string {
  const expected = 'must be a URL "redis://host:port" (or rediss:// for TLS), such as redis://127.0.0.1:6379';
  // A Redis Cluster may list several seed nodes: redis://h1:7000,h2:7001?cluster=1; each is checked.
  const seeds = /^(rediss?:\/\/)([^/?#@]*@)?([^/?#]*)(.*)$/.exec(url);
  if (seeds && seeds[3]!.includes(',')) {
    if (!/[?&]cluster=(1|true|yes)(&|$)/i.test(seeds[4]!)) {
      throw new ConfigError(
        source,
        undefined,
        `${expected}; several host:port separated by commas only for a Redis Cluster (add ?cluster=1), found ${describeValue(url)}`,
      );
    }
    for (const host of seeds[3]!.split(',')) checkRedisUrl(`${seeds[1]}${seeds[2] ?? ''}${host}${seeds[4]}`, source);
    return url;
  }
  let u: URL | undefined;
  try {
    u = /\s/.test(url) ? undefined : new URL(url);
  } catch {
    u = undefined;
  }
  if (!u || (u.protocol !== 'redis:' && u.protocol !== 'rediss:') || u.hostname === '') {
    throw new ConfigError(source, undefined, `${expected}, found ${describeValue(url)}`);
  }
  if (u.port !== '' && Number(u.port) === 0)
    throw new ConfigError(source, undefined, `${expected} (port 1–65535), found ${describeValue(url)}`);
  if (u.pathname !== '' && u.pathname !== '/' && !/^\/\d+$/.test(u.pathname)) {
    throw new ConfigError(
      source,
      undefined,
      `${expected}; the path may only be a database number (/0), found ${describeValue(url)}`,
    );
  }
  return url;
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
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    fail(file, field, `must be an integer ${min}–${max}${unit}`, v);
  return v;
}

function checkHost(file: string, field: string, v: unknown): string {
  if (typeof v !== 'string' || !isHost(v))
    fail(file, field, 'must be a host name or IP address, such as "127.0.0.1"', v);
  return v;
}

function checkHostPort(file: string, field: string, v: unknown): string {
  const hp = typeof v === 'string' ? parseHostPort(v) : undefined;
  if (hp === undefined || hp.port === 0) fail(file, field, 'must be "host:port" with a port 1–65535', v);
  return v as string;
}

export function checkRedis(file: string, field: string | undefined, v: unknown): string {
  if (typeof v !== 'string' || !/^rediss?:\/\/\S+$/.test(v))
    fail(file, field, 'must be null or a URL "redis://host:port" (or rediss://)', v);
  return v;
}

export function checkRuntime(file: string, field: string | undefined, v: unknown): RuntimeName {
  if (!RUNTIMES.includes(v as RuntimeName)) fail(file, field, 'must be one of "node", "bun", "deno"', v);
  return v as RuntimeName;
}

function checkKnown(file: string, prefix: string, o: Record<string, unknown>, known: readonly string[]): void {
  for (const key of Object.keys(o)) {
    if (known.includes(key)) continue;
    const near = known.find(
      (k) => k.toLowerCase() === key.toLowerCase() || editDistance(k.toLowerCase(), key.toLowerCase()) <= 2,
    );
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

function baseName(file: string): string {
  return file.split(/[\\/]/).pop() ?? file;
}
