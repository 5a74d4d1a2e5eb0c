/**
 * Micro-benchmark: appendP2P/s of the embedded SQLite store with many
 * concurrent appenders (each awaits its append, then sends the next), so the
 * group commit sees what a busy msg_server gives it. The append loop here
 * serves bench/store-append-redis.ts too.
 *
 * Each line is a fresh database; recipients are spread evenly. What limits
 * it is how many distinct inbox pages a batch dirties: about one per
 * distinct recipient in the batch, so few recipients go much faster.
 *
 *   node --import tsx bench/store-append.ts [appenders=1000] [seconds=3] [bodyBytes=100] [recipients=100,1000,10000]
 *   bun bench/store-append.ts ...
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomUUID } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import type { SqliteDatabase } from '../runtime/platform/types.js';
import { openSqliteStore, type Store } from '../runtime/store/index.js';

const isBun = typeof (globalThis as { Bun?: unknown }).Bun !== 'undefined';
const appenders = Number(process.argv[2] ?? 1000);
const seconds = Number(process.argv[3] ?? 3);
const bodyBytes = Number(process.argv[4] ?? 100);
const recipientCounts = (process.argv[5] ?? '100,1000,10000').split(',').map(Number);

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

/** One line's store: `open` it, and `cleanup` after it closed (or failed to open). */
export interface BenchStore {
  open: () => Promise<Store>;
  cleanup: () => Promise<void>;
}

/**
 * Every line (recipient count × without / with cid) on a fresh store from
 * `fresh`; `kind` goes into the label ('' or 'redis ').
 */
export async function benchAppends(kind: string, fresh: () => Promise<BenchStore>): Promise<void> {
  const rt = isBun ? 'bun' : `node ${process.version}`;
  for (const users of recipientCounts) {
    for (const withCid of [false, true]) {
      const line = await fresh();
      try {
        const store = await line.open();
        // a tenth of the recipients are online, so appends also read directory entries
        for (let u = 0; u < users; u += 10) {
          await store.login({ user: `user${u}`, device: 'phone', server: 'ms1', boot: 'b1', push: true });
        }
        await run(store, `${rt} ${kind}appendP2P${withCid ? ' with cid' : ''}`, users, withCid);
        await store.close();
      } finally {
        await line.cleanup();
      }
    }
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const { openSqlite }: { openSqlite: (path: string) => SqliteDatabase } = isBun
    ? await import('../runtime/platform/bun/sqlite.js')
    : await import('../runtime/platform/node/sqlite.js');
  await benchAppends('', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fishchat-bench-'));
    return {
      open: () => openSqliteStore(openSqlite(join(dir, 'store.db'))),
      cleanup: () => rm(dir, { recursive: true, force: true }),
    };
  });
}
