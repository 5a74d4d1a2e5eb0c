/**
 * Connecting to Redis with ioredis, shared by the Redis store
 * (runtime/store/redis/) and the Redis bus (runtime/bus/redis.ts): the node
 * list of a Redis Cluster URL, and the wait for a client's first `ready`.
 */
import type { Cluster, ClusterNode, Redis, RedisOptions } from 'ioredis';

/** A connection: one Redis, or a Redis Cluster. */
export type RedisClient = Redis | Cluster;

/**
 * `redis://host:port,host:port` (or bare `host:port`s) → the cluster's seed
 * nodes; user, password and TLS from the first part that has them.
 * `who` names the caller in the error ("store", "bus").
 */
export function clusterNodes(url: string, who: string): { nodes: ClusterNode[]; redisOptions: RedisOptions } {
  const nodes: ClusterNode[] = [];
  const redisOptions: RedisOptions = {};
  for (const part of url
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const u = new URL(part.includes('://') ? part : `redis://${part}`);
    nodes.push({ host: u.hostname || '127.0.0.1', port: Number(u.port || 6379) });
    if (u.username && redisOptions.username === undefined) redisOptions.username = decodeURIComponent(u.username);
    if (u.password && redisOptions.password === undefined) redisOptions.password = decodeURIComponent(u.password);
    if (u.protocol === 'rediss:') redisOptions.tls = {};
  }
  if (nodes.length === 0) throw new Error(`${who}: no Redis Cluster node in "${url}"`);
  return { nodes, redisOptions };
}

/** Waits for a client's first `ready`, or rejects when it closes / errors first. */
export function whenReady(client: RedisClient): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      client.off('ready', onReady);
      client.off('error', onError);
      client.off('end', onEnd);
    };
    const onReady = () => {
      cleanup();
      resolve();
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const onEnd = () => {
      cleanup();
      reject(new Error('the Redis connection closed'));
    };
    client.on('ready', onReady);
    client.on('error', onError);
    client.on('end', onEnd);
  });
}
