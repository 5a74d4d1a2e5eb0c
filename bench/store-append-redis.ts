/**
 * Micro-benchmark: appendP2P/s of the Redis store with many concurrent
 * appenders (each awaits its append, then sends the next), with the append
 * loop of bench/store-append.ts (the embedded store's). One connection
 * (ioredis auto-pipelining: every append of one event-loop turn goes in one
 * round trip, one Lua script each).
 *
 * Each line runs under a fresh key prefix, deleted afterwards.
 *
 *   node --import tsx bench/store-append-redis.ts [appenders=1000] [seconds=3] [bodyBytes=100] [recipients=100,1000,10000] [url=redis://127.0.0.1:6379]
 *   bun bench/store-append-redis.ts ...
 */
import { randomBytes } from 'node:crypto';
import { deleteKeysWithPrefix } from '../runtime/redis/index.js';
import { openRedisStore } from '../runtime/store/redis/index.js';
import { benchAppends } from './store-append.js';

const url = process.argv[6] ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

await benchAppends('redis ', async () => {
  const prefix = `fishchat:bench-${randomBytes(4).toString('hex')}:`;
  return { open: () => openRedisStore({ url, prefix }), cleanup: () => deleteKeysWithPrefix(url, prefix) };
});
