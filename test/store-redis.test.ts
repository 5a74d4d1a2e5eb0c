/**
 * The Store contract against the Redis store (runtime/store/redis/) on the
 * Redis at 127.0.0.1:6379 (REDIS_URL to change it), each case under a fresh
 * prefix `fishchat:test-<random>:` whose keys are deleted afterwards. Plus a
 * private redis-server with appendonly on a free port, restarted under the
 * store: acknowledged messages stay and seq continues.
 *
 *   node --import tsx --test test/store-redis.test.ts
 *   bun test test/store-redis.test.ts
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { deleteKeysWithPrefix } from '../runtime/redis/index.js';
import { openRedisStore } from '../runtime/store/redis/index.js';
import type { Store, StoreLimits } from '../runtime/store/store.js';
import { closedPort } from './helpers/net.js';
import { redisReachable } from './helpers/redis.js';
import { available, RedisServer, startRedisCluster } from './helpers/redis-server.js';
import { storeContract } from './store-contract.js';

const URL_ = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const newPrefix = () => `fishchat:test-${randomBytes(6).toString('hex')}:`;

const deletePrefix = (url: string, prefix: string): Promise<void> => deleteKeysWithPrefix(url, prefix);

const up = await redisReachable(URL_);
if (!up) console.log(`# store-redis: no Redis at ${URL_}: the Redis store contract is skipped`);

if (up) {
  storeContract('redis', async (limits?: Partial<StoreLimits>) => {
    const prefix = newPrefix();
    let store = await openRedisStore({ url: URL_, prefix, limits });
    return {
      store,
      reopen: async () => {
        await store.close();
        store = await openRedisStore({ url: URL_, prefix, limits });
        return store;
      },
      cleanup: async () => {
        await store.close();
        await deletePrefix(URL_, prefix);
      },
    };
  });
}

describe('RedisStore', { skip: up ? false : `no Redis at ${URL_}` }, () => {
  it('keeps every key of a user, a topic, the leases under one hash tag; the rest are global indexes', async () => {
    const prefix = newPrefix();
    const store = await openRedisStore({ url: URL_, prefix });
    const r = new Redis(URL_);
    try {
      await store.login({ user: 'bob', device: 'phone', server: 'ms1', boot: 'b1', push: true });
      await store.appendP2P({
        from: 'alice',
        to: 'bob',
        mid: 'm1',
        body: new Uint8Array([1]),
        ts: Date.now(),
        cid: 'c',
      });
      await store.ack('bob', 'phone', 1);
      await store.recordUserEvent({ k: 'login', user: 'bob', device: 'phone', server: 'ms1', ts: 1 });
      await store.topicCreate('t', 'bob', 1);
      await store.topicAppend({
        topic: 't',
        from: 'bob',
        mid: 'm2',
        body: new Uint8Array([2]),
        ts: Date.now(),
        cid: 'c',
      });
      await store.topicFanout('t', 10);
      await store.renewLease('ms1', 'b1', 60_000);
      const keys = (await r.keys(`${prefix}*`)).map((k) => k.slice(prefix.length)).sort();
      const tagged = keys.filter((k) => k.startsWith('{'));
      const global = keys.filter((k) => !k.startsWith('{'));
      assert.deepEqual(global, ['dirusers', 'topics', 'users']);
      const tags = new Set(tagged.map((k) => k.slice(0, k.indexOf('}') + 1)));
      assert.deepEqual([...tags].sort(), ['{lease}', '{s:["ms1","b1"]}', '{t:t}', '{u:bob}']);
      // no volatile key but the lease itself: seq, gens and epoch never expire
      for (const k of keys) {
        const ttl = await r.pttl(prefix + k);
        assert.ok(k.startsWith('{lease}:k:') ? ttl > 0 : ttl === -1, `${k}: ttl ${ttl}`);
      }
      // the body is stored once: the inbox copy refers to the topic log
      const { messages } = await store.readInbox('bob', 0, 10);
      assert.deepEqual(
        messages.map((m) => [m.seq, m.topic ?? null, [...m.body]]),
        [
          [1, null, [1]],
          [2, 't', [2]],
        ],
      );
      const inbox = await r.lrangeBuffer(`${prefix}{u:bob}:i`, 0, -1);
      assert.ok(inbox[1]!.length < 60, 'the topic copy holds no body');
    } finally {
      r.disconnect();
      await store.close();
      await deletePrefix(URL_, prefix);
    }
  });

  it('bodies are binary-safe, large ones too', async () => {
    const prefix = newPrefix();
    const store = await openRedisStore({ url: URL_, prefix });
    try {
      const big = randomBytes(300_000);
      const odd = new Uint8Array([0, 0xff, 0xfe, 0x80, 0x0d, 0x0a, 0]);
      await store.appendP2P({ from: 'a', to: 'b', mid: randomUUID(), body: big, ts: Date.now() });
      await store.appendP2P({ from: 'a', to: 'b', mid: randomUUID(), body: odd, ts: Date.now() });
      const { messages } = await store.readInbox('b', 0, 10);
      assert.ok(Buffer.from(messages[0]!.body).equals(big));
      assert.deepEqual([...messages[1]!.body], [...odd]);
    } finally {
      await store.close();
      await deletePrefix(URL_, prefix);
    }
  });

  it('calls after close reject; opening an unreachable Redis rejects', async () => {
    const prefix = newPrefix();
    const store = await openRedisStore({ url: URL_, prefix });
    await store.close();
    await assert.rejects(store.appendP2P({ from: 'a', to: 'b', mid: 'm', body: new Uint8Array(1), ts: 1 }), /closed/);
    await assert.rejects(store.head('b'), /closed/);
    await store.close();
    const port = await closedPort();
    await assert.rejects(openRedisStore({ url: `redis://127.0.0.1:${port}`, prefix }));
  });
});

// ---- a private redis-server with appendonly, restarted under the store ------

const hasRedisServer = available();

describe('RedisStore over a private redis-server (appendonly)', {
  skip: hasRedisServer ? false : 'redis-server is not on PATH',
}, () => {
  let server: RedisServer;
  let port = 0;
  const start = () => server.run();
  const stop = () => server.stop();

  before(async () => {
    server = await RedisServer.start(['--appendonly', 'yes']);
    port = server.port;
  });
  after(async () => {
    await server.destroy();
  });

  it('a restart from the AOF loses no acknowledged message and seq continues', async (t) => {
    const url = `redis://127.0.0.1:${port}`;
    const store: Store = await openRedisStore({ url, prefix: 'fishchat:aof:' });
    try {
      const sent: string[] = [];
      for (let i = 0; i < 50; i++) {
        const mid = randomUUID();
        await store.appendP2P({
          from: 'alice',
          to: 'bob',
          mid,
          body: new Uint8Array([i]),
          ts: Date.now(),
          cid: `c${i}`,
        });
        sent.push(mid);
      }
      await Promise.all(
        Array.from({ length: 50 }, (_, i) => {
          const mid = randomUUID();
          sent.push(mid);
          return store.appendP2P({ from: 'alice', to: 'bob', mid, body: new Uint8Array([50 + i]), ts: Date.now() });
        }),
      );
      const login = await store.login({ user: 'bob', device: 'phone', server: 'ms1', boot: 'b1', push: true });
      const epoch = (await store.head('bob')).epoch;

      await stop();
      // while Redis is down a call never succeeds falsely: it waits and lands
      // once Redis is back, or rejects
      const duringMid = randomUUID();
      const during = store
        .appendP2P({ from: 'alice', to: 'bob', mid: duringMid, body: new Uint8Array([1]), ts: Date.now() })
        .then(
          (r) => r.seq,
          () => 0,
        );
      await sleep(300);
      await start();
      const duringSeq = await during;
      if (duringSeq > 0) sent.push(duringMid);

      // the same store object reconnects by itself
      let head = await store.head('bob').catch(async () => {
        await sleep(500);
        return store.head('bob');
      });
      assert.equal(head.seq, duringSeq > 0 ? 101 : 100);
      if (duringSeq > 0) assert.equal(duringSeq, 101);
      assert.equal(head.epoch, epoch);
      const { messages } = await store.readInbox('bob', 0, 1000);
      assert.deepEqual(
        messages.map((m) => m.mid),
        sent,
      );
      const base = duringSeq > 0 ? 101 : 100;
      assert.equal(
        (
          await store.appendP2P({
            from: 'alice',
            to: 'bob',
            mid: randomUUID(),
            body: new Uint8Array(0),
            ts: Date.now(),
          })
        ).seq,
        base + 1,
      );
      const dup = await store.appendP2P({
        from: 'alice',
        to: 'bob',
        mid: randomUUID(),
        body: new Uint8Array(0),
        ts: Date.now(),
        cid: 'c7',
      });
      assert.equal(dup.duplicate, true);
      assert.equal(dup.seq, 8);
      const again = await store.login({ user: 'bob', device: 'phone', server: 'ms2', boot: 'b2', push: true });
      assert.equal(again.gen, login.gen + 1);
      head = await store.head('bob');
      assert.equal(head.seq, base + 1);
      t.diagnostic(
        `the append made while Redis was down ${duringSeq > 0 ? `landed with seq ${duringSeq}` : 'was rejected'}`,
      );
    } finally {
      await store.close();
    }
  });
});

// ---- a private 3-node Redis Cluster: the contract with ioredis Cluster ------

const hasRedisCli = spawnSync('redis-cli', ['--version']).status === 0;

async function startCluster(): Promise<Awaited<ReturnType<typeof startRedisCluster>> | string> {
  try {
    return await startRedisCluster();
  } catch (err) {
    return `a Redis Cluster could not be started here: ${(err as Error).message}`;
  }
}

const cluster = hasRedisServer && hasRedisCli ? await startCluster() : 'redis-server or redis-cli is not on PATH';
if (typeof cluster === 'string') {
  console.log(`# store-redis: ${cluster}: the Redis Cluster contract is skipped`);
} else {
  const clusterUrl = cluster.nodes.map((n) => n.url).join(',');
  describe('Redis Cluster (3 masters)', () => {
    after(() => cluster.destroy());
    storeContract('redis cluster', async (limits?: Partial<StoreLimits>) => {
      // a private cluster: a fresh prefix per case is all the cleanup it needs
      const prefix = newPrefix();
      let store = await openRedisStore({ url: clusterUrl, prefix, limits, cluster: true });
      return {
        store,
        reopen: async () => {
          await store.close();
          store = await openRedisStore({ url: clusterUrl, prefix, limits, cluster: true });
          return store;
        },
        cleanup: () => store.close(),
      };
    });
  });
}
