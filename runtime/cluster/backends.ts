/**
 * The bus and the store of a cluster, for whichever mode it runs in
 * (docs/architecture.md "Three ways to run, one code path"): Redis pub/sub and the Redis
 * store when the cluster has a Redis URL, else the in-process bus and the
 * SQLite store under the data directory. Roles get the two through their
 * RoleContext and never learn which they got.
 *
 * The Redis implementations are imported only when asked for, so embedded
 * mode never loads ioredis, and a Redis role process (which may run on Deno)
 * never loads SQLite.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { clusterPrefix, type Bus } from '../bus/bus.js';
import type { Platform } from '../platform/types.js';
import type { Store, StoreLimits } from '../store/store.js';
import type { ClusterConfig } from './config.js';

export type BackendKind = 'redis' | 'embedded';

export interface Backends {
  readonly kind: BackendKind;
  readonly bus: Bus;
  readonly store: Store;
  /** Closes the bus, then the store. Tries both; throws the first failure. Idempotent. */
  close(): Promise<void>;
}

export interface BackendOptions {
  /** the platform, for SQLite (embedded) */
  platform: Platform;
  /** 'redis' refuses a cluster without a Redis URL; 'embedded' ignores any URL; default: by the config */
  kind?: BackendKind;
  /** log lines of the bus (reconnects, resubscribes) */
  log?: (msg: string) => void;
}

export { clusterPrefix };

/** The cluster needs Redis, and has none configured. */
export class NoRedisError extends Error {
  constructor(what: string, hint = '') {
    super(
      `${what} needs Redis, but none is configured: set "redis" in fishchat.json, or FISHCHAT_REDIS, or --redis${hint}`,
    );
    this.name = 'NoRedisError';
  }
}

export function storeLimits(config: ClusterConfig): StoreLimits {
  return {
    retentionMs: config.settings.retentionMs,
    maxInbox: config.settings.maxInbox,
    cidWindowMs: config.settings.cidWindowMs,
  };
}

/**
 * A Redis URL as given, and whether it names a Redis Cluster: a `cluster=1`
 * (or `true`, `yes`) query parameter says so and is removed from the URL.
 * A cluster URL may list several seed nodes, `redis://h1:7000,h2:7001?cluster=1`
 * (the Cluster client needs one of them up to start; it learns the rest).
 */
export function parseRedisUrl(url: string): { url: string; cluster: boolean } {
  const q = url.indexOf('?');
  if (q < 0) return { url, cluster: false };
  const params = new URLSearchParams(url.slice(q + 1));
  const flag = params.get('cluster');
  if (flag === null) return { url, cluster: false };
  params.delete('cluster');
  const rest = params.toString();
  return { url: url.slice(0, q) + (rest ? `?${rest}` : ''), cluster: /^(1|true|yes)$/i.test(flag) };
}

/** The seed nodes of a Redis URL: one URL each (the first carries user, password, TLS; the others inherit them). */
export function redisSeeds(url: string): string[] {
  const m = /^(rediss?:\/\/)([^/?#@]*@)?([^/?#]*)(.*)$/.exec(url);
  if (!m || !m[3]!.includes(',')) return [url];
  return m[3]!
    .split(',')
    .map((h) => h.trim())
    .filter(Boolean)
    .map((h) => `${m[1]}${m[2] ?? ''}${h}${m[4]}`);
}

/** A Redis URL with its password hidden, for log lines. */
export function redactRedisUrl(url: string): string {
  return url.replace(/^(rediss?:\/\/)([^/?#@]*)@/, (_m, scheme: string, auth: string) => {
    const i = auth.indexOf(':');
    return i < 0 ? `${scheme}${auth}@` : `${scheme}${auth.slice(0, i)}:***@`;
  });
}

export async function openBackends(config: ClusterConfig, opts: BackendOptions): Promise<Backends> {
  const kind = opts.kind ?? (config.redis !== undefined ? 'redis' : 'embedded');
  if (kind === 'redis') {
    if (config.redis === undefined) throw new NoRedisError('this cluster');
    return openRedisBackends(config.redis, config, opts);
  }
  return openEmbeddedBackends(config, opts);
}

async function openRedisBackends(redisUrl: string, config: ClusterConfig, opts: BackendOptions): Promise<Backends> {
  const { url, cluster } = parseRedisUrl(redisUrl);
  const [{ createRedisBus }, { openRedisStore }] = await Promise.all([
    import('../bus/redis.js'),
    import('../store/redis/index.js'),
  ]);
  const bus = await createRedisBus({ url, cluster, log: opts.log });
  let store: Store;
  try {
    store = await openRedisStore({ url, prefix: clusterPrefix(config.cluster), limits: storeLimits(config), cluster });
  } catch (err) {
    await bus.close().catch(() => {});
    throw err;
  }
  return withClose('redis', bus, store);
}

async function openEmbeddedBackends(config: ClusterConfig, opts: BackendOptions): Promise<Backends> {
  const [{ createMemoryBus }, { openSqliteStore }] = await Promise.all([
    import('../bus/memory.js'),
    import('../store/sqlite/index.js'),
  ]);
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const db = opts.platform.openSqlite(join(config.dataDir, 'fishchat.db'));
  let store: Store;
  try {
    store = await openSqliteStore(db, storeLimits(config));
  } catch (err) {
    db.close();
    throw err;
  }
  return withClose('embedded', createMemoryBus(), store);
}

function withClose(kind: BackendKind, bus: Bus, store: Store): Backends {
  let closing: Promise<void> | undefined;
  return {
    kind,
    bus,
    store,
    close() {
      closing ??= (async () => {
        const errors: unknown[] = [];
        await bus.close().catch((err: unknown) => errors.push(err));
        await store.close().catch((err: unknown) => errors.push(err));
        if (errors.length > 0) throw errors[0];
      })();
      return closing;
    },
  };
}

/**
 * Whether the Redis at `url` persists with appendonly (docs/architecture.md: `fishchat
 * serve` warns when it does not). undefined when it cannot tell (CONFIG is
 * disabled on many hosted Redis services, or Redis is unreachable).
 */
export async function redisAppendonly(redisUrl: string, timeoutMs = 3000): Promise<boolean | undefined> {
  // on a Redis Cluster: the first seed node (CONFIG is per node)
  const url = redisSeeds(parseRedisUrl(redisUrl).url)[0]!;
  const { Redis } = await import('ioredis');
  const client = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: timeoutMs,
    enableOfflineQueue: false,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    const reply = (await Promise.race([
      client.config('GET', 'appendonly'),
      new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), timeoutMs).unref?.()),
    ])) as string[];
    return reply[1] === undefined ? undefined : reply[1] === 'yes';
  } catch {
    return undefined;
  } finally {
    client.disconnect();
  }
}

/** The warning of `up` and `serve` when redisAppendonly said false. */
export function noAppendonlyWarning(redisUrl: string): string {
  return (
    `the Redis at ${redactRedisUrl(redisUrl)} runs without appendonly: ` +
    'a Redis restart loses what it held since its last snapshot'
  );
}
