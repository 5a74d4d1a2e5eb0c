/**
 * An in-process cluster for tests: in-process bus, SQLite store in a temp
 * directory, a router, N msg_servers and a gateway, every port from the OS.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { Bus } from '../../runtime/bus/bus.js';
import { createMemoryBus } from '../../runtime/bus/memory.js';
import { DEFAULT_SETTINGS, type Settings } from '../../runtime/contract/config.js';
import { makeRoleContext, type RoleContext, type RoleHandle } from '../../runtime/contract/context.js';
import { deleteKeysWithPrefix } from '../../runtime/redis/index.js';
import { getPlatform } from '../../runtime/platform/index.js';
import { openSqliteStore } from '../../runtime/store/sqlite/index.js';
import type { Store } from '../../runtime/store/store.js';
import { startGateway } from '../../runtime/roles/gateway/index.js';
import { startMsgServer } from '../../runtime/roles/msg_server/index.js';
import { startRouter } from '../../runtime/roles/router/index.js';
import { signToken } from '../../runtime/protocol/token.js';

export interface TestCluster {
  dir: string;
  secret: string;
  store: Store;
  gateway: string;
  msgServers: RoleHandle[];
  /** client address of msg_server i */
  ms(i: number): string;
  /** WebSocket URL of msg_server i */
  ws(i: number): string;
  /** the gateway's HTTP address (GET /v1/route) */
  gatewayHttp: string;
  token(user: string, ttlSeconds?: number): string;
  ctx: RoleContext;
  /** stops the roles and the store; keeps the directory unless `remove` */
  stop(remove?: boolean): Promise<void>;
  /** starts another msg_server on this cluster */
  addMsgServer(id: string): Promise<RoleHandle>;
}

export interface TestClusterOptions {
  msgServers?: number;
  settings?: Partial<Settings>;
  dir?: string;
  auth?: 'token' | 'none';
  secret?: string;
  /**
   * Where the bus and the store live: embedded (memory bus + SQLite in `dir`),
   * or Redis at `url` (`cluster`: a Redis Cluster). Default: embedded, unless
   * FISHCHAT_TEST_REDIS names a Redis URL — then the same suites run on Redis.
   */
  redis?: { url: string; cluster?: boolean; name?: string };
}

/** FISHCHAT_TEST_REDIS: a Redis URL; `?cluster=1` at its end: a Redis Cluster (test/on-redis-cluster.ts). */
function fromEnv(url: string | undefined): TestClusterOptions['redis'] {
  if (!url) return undefined;
  const m = /^(.*)\?cluster=1$/.exec(url);
  return m ? { url: m[1]!, cluster: true } : { url };
}

export async function startTestCluster(opts: TestClusterOptions = {}): Promise<TestCluster> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'fishchat-test-'));
  const platform = await getPlatform();
  const settings: Settings = { ...DEFAULT_SETTINGS, ...opts.settings };
  const limits = { retentionMs: settings.retentionMs, maxInbox: settings.maxInbox, cidWindowMs: settings.cidWindowMs };
  const redis = opts.redis ?? fromEnv(process.env.FISHCHAT_TEST_REDIS);
  // A restart of a Redis test cluster must find the same keys: the name is kept in `dir`.
  const name = redis ? (redis.name ?? `t${basename(dir).replace(/[^A-Za-z0-9]/g, '')}`) : 'test';
  let store: Store;
  let bus: Bus;
  if (redis) {
    const { openRedisStore } = await import('../../runtime/store/redis/index.js');
    const { createRedisBus } = await import('../../runtime/bus/redis.js');
    store = await openRedisStore({ url: redis.url, prefix: `fishchat:${name}:`, limits, cluster: redis.cluster });
    bus = await createRedisBus({ url: redis.url, cluster: redis.cluster });
  } else {
    store = await openSqliteStore(platform.openSqlite(join(dir, 'fishchat.db')), limits);
    bus = createMemoryBus();
  }
  const secret = opts.secret ?? 'test-secret-' + Math.random().toString(36).slice(2);
  const logs: string[] = [];
  const log = {
    info: (m: string) => logs.push(m),
    warn: (m: string) => logs.push(m),
    error: (m: string) => logs.push(m),
  };
  const ctx = makeRoleContext({
    cluster: name,
    settings,
    auth: { mode: opts.auth ?? 'token', secret },
    bus,
    store,
    platform,
    log,
  });
  const roles: RoleHandle[] = [];
  roles.push(await startRouter(ctx, { role: 'router', id: 'router', httpHost: '127.0.0.1', httpPort: 0 }));
  const msgServers: RoleHandle[] = [];
  const addMsgServer = async (id: string) => {
    const h = await startMsgServer(ctx, {
      role: 'msg_server',
      id,
      host: '127.0.0.1',
      port: 0,
      httpHost: '127.0.0.1',
      httpPort: 0,
    });
    msgServers.push(h);
    roles.push(h);
    return h;
  };
  for (let i = 0; i < (opts.msgServers ?? 2); i++) await addMsgServer(`ms-${i}`);
  const gw = await startGateway(ctx, {
    role: 'gateway',
    id: 'gateway',
    host: '127.0.0.1',
    port: 0,
    httpHost: '127.0.0.1',
    httpPort: 0,
    seeds: msgServers.map((m) => m.addresses.tcp!),
  });
  roles.push(gw);
  return {
    dir,
    secret,
    store,
    gateway: gw.addresses.tcp!,
    msgServers,
    ms: (i) => msgServers[i]!.addresses.tcp!,
    ws: (i) => msgServers[i]!.addresses.ws!,
    gatewayHttp: gw.addresses.http!,
    token: (user, ttl) => signToken(secret, user, { ttlSeconds: ttl }),
    ctx,
    addMsgServer,
    async stop(remove = true) {
      for (const r of roles.reverse()) await r.stop().catch(() => undefined);
      await bus.close();
      await store.close();
      if (remove) {
        rmSync(dir, { recursive: true, force: true });
        if (redis) await deleteKeys(redis.url, `fishchat:${name}:`, redis.cluster);
      }
    },
  };
}

/** Deletes every key under `prefix` (on every master of a Redis Cluster). */
export async function deleteKeys(url: string, prefix: string, cluster = false): Promise<void> {
  await deleteKeysWithPrefix(url, prefix, cluster);
}
