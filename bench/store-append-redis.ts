/**
 * Micro-benchmark: appendP2P/s of the Redis store with many concurrent
 * appenders (each awaits its append, then sends the next), as
 * bench/store-append.ts does for the embedded store. One connection
 * (ioredis auto-pipelining: every append of one event-loop turn goes in one
 * round trip, one Lua script each).
 *
 * Each line runs under a fresh key prefix, deleted afterwards.
 *
 *   node --import tsx bench/store-append-redis.ts [appenders=1000] [seconds=3] [bodyBytes=100] [recipients=100,1000,10000] [url=redis://127.0.0.1:6379]
 *   bun bench/store-append-redis.ts ...
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { deleteKeysWithPrefix, openRedisStore } from '../runtime/store/redis.js';
import type { Store } from '../runtime/store/store.js';

const isBun = typeof (globalThis as { Bun?: unknown }).Bun !== 'undefined';
const appenders = Number(process.argv[2] ?? 1000);
const seconds = Number(process.argv[3] ?? 3);
const bodyBytes = Number(process.argv[4] ?? 100);
const recipientCounts = (process.argv[5] ?? '100,1000,10000').split(',').map(Number);
const url = process.argv[6] ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

async function run(store: Store, label: string, users: number, withCid: boolean): Promise<void> {
  const body = new Uint8Array(bodyBytes).fill(7);
  const midPrefix = randomUUID();
  let count = 0;
  let running = true;
  const latencies: number[] = [];
  async function appender(i: number): Promise<void> {
    let n = 0;
    while (running) {
      const to = `user${(i * 7919 + n) % users}`;
      const t0 = performance.now();
      await store.appendP2P({
        from: `sender${i}`,
        to,
        mid: `${midPrefix}-${i}-${n}`,
        body,
        ts: Date.now(),
        cid: withCid ? `c${i}-${n}` : undefined,
      });
      if ((n & 63) === 0) latencies.push(performance.now() - t0);
      n++;
      count++;
    }
  }
  const workers = Array.from({ length: appenders }, (_, i) => appender(i));
  // warm up, then measure
  await new Promise((r) => setTimeout(r, 500));
  const start = performance.now();
  const startCount = count;
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const done = count - startCount;
  const elapsed = (performance.now() - start) / 1000;
  running = false;
  await Promise.all(workers);
  latencies.sort((a, b) => a - b);
  const p = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!.toFixed(2);
  console.log(
    `${label}: ${Math.round(done / elapsed).toLocaleString('en-US')} appends/s ` +
      `(${appenders} appenders, ${users} recipients, ${bodyBytes} B bodies; latency p50 ${p(0.5)} ms, p99 ${p(0.99)} ms)`,
  );
}

const deletePrefix = (prefix: string): Promise<void> => deleteKeysWithPrefix(url, prefix);

const rt = isBun ? 'bun' : `node ${process.version}`;
for (const users of recipientCounts) {
  for (const withCid of [false, true]) {
    const prefix = `fishchat:bench-${randomBytes(4).toString('hex')}:`;
    try {
      const store = await openRedisStore({ url, prefix });
      // a tenth of the recipients are online, so appends also read directory entries
      for (let u = 0; u < users; u += 10) {
        await store.login({ user: `user${u}`, device: 'phone', server: 'ms1', boot: 'b1', push: true });
      }
      await run(store, `${rt} redis appendP2P${withCid ? ' with cid' : ''}`, users, withCid);
      await store.close();
    } finally {
      await deletePrefix(prefix);
    }
  }
}
