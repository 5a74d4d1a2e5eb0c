/** Opening the Redis store: one connection (a Cluster client on a Redis Cluster), ready before the store is. */
import { Cluster, Redis } from 'ioredis';
import { clusterNodes, whenReady, type RedisClient } from '../../redis/index.js';
import type { Store, StoreLimits } from '../store.js';
import { RedisStore } from './store.js';

export interface RedisStoreOptions {
  /** `redis://[user:pass@]host:port[/db]`; on a cluster, one or more startup nodes separated by commas. */
  url: string;
  /** the cluster prefix, e.g. `fishchat:<cluster>:` */
  prefix: string;
  limits?: Partial<StoreLimits>;
  /** a Redis Cluster: ioredis Cluster */
  cluster?: boolean;
}

/**
 * The Redis store: connects (rejects when Redis cannot be reached, leaving
 * nothing open) and returns the Store once the connection is ready.
 */
export async function openRedisStore(opts: RedisStoreOptions): Promise<Store> {
  if (/[{}]/.test(opts.prefix)) throw new Error(`store: the Redis key prefix "${opts.prefix}" may not hold { or }`);
  let client: RedisClient;
  if (opts.cluster) {
    const { nodes, redisOptions } = clusterNodes(opts.url, 'store');
    client = new Cluster(nodes, {
      lazyConnect: true,
      enableAutoPipelining: true,
      redisOptions: { ...redisOptions, connectionName: 'fishchat-store' },
    });
  } else {
    client = new Redis(opts.url, { lazyConnect: true, enableAutoPipelining: true, connectionName: 'fishchat-store' });
  }
  // an error listener always: ioredis reports unhandled errors itself otherwise
  client.on('error', () => undefined);
  try {
    const ready = whenReady(client);
    client.connect().catch(() => undefined);
    await ready;
  } catch (err) {
    client.disconnect();
    throw err;
  }
  return new RedisStore(client, opts.prefix, opts.limits);
}
