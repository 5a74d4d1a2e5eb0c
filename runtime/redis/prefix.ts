/** Deleting keys by prefix, on one Redis or every master of a Redis Cluster. */
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { clusterNodes, type RedisClient } from './connect.js';

/**
 * Deletes every key under `prefix` (on every master of a Redis Cluster when
 * `url` lists cluster nodes and `cluster` is set): for tests and benchmarks
 * that run a cluster under a name of their own.
 */
export async function deleteKeysWithPrefix(url: string, prefix: string, cluster = false): Promise<void> {
  if (/[*?[\]\\]/.test(prefix)) throw new Error(`deleteKeysWithPrefix: "${prefix}" holds a glob character`);
  const opts: RedisOptions = {
    maxRetriesPerRequest: 1,
    lazyConnect: true,
    connectTimeout: 3000,
    retryStrategy: () => null,
  };
  let root: RedisClient;
  if (cluster) {
    const { nodes, redisOptions } = clusterNodes(url, 'store');
    root = new Cluster(nodes, {
      redisOptions: { ...redisOptions, ...opts },
      lazyConnect: true,
      clusterRetryStrategy: () => null,
    });
  } else {
    root = new Redis(url, opts);
  }
  root.on('error', () => undefined);
  try {
    await root.connect();
    const clients = root instanceof Cluster ? root.nodes('master') : [root];
    for (const c of clients) {
      let cursor = '0';
      do {
        const [next, keys] = await c.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length === 0) continue;
        // on a Cluster the keys of one scan page sit in many slots: one by one there
        if (root instanceof Cluster) for (const k of keys) await c.unlink(k);
        else await c.unlink(...keys);
      } while (cursor !== '0');
    }
  } finally {
    root.disconnect();
  }
}
