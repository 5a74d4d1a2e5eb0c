/**
 * The Bus contract against the in-process bus and the Redis bus (the Redis
 * at 127.0.0.1:6379, or REDIS_URL; every case on its own channel prefix),
 * plus what only the Redis bus has: resubscription after Redis restarts,
 * publishes while Redis is down, sharded pub/sub on a Redis Cluster.
 *
 *   node --import tsx --test test/bus.test.ts
 *   bun test test/bus.test.ts
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { createMemoryBus } from '../runtime/bus/memory.js';
import { BatchPublisher, decodeItems, forEachPush, type DeliverItem } from '../runtime/bus/payloads.js';
import { encodeFrame } from '../runtime/protocol/index.js';
import { createRedisBus } from '../runtime/bus/redis.js';
import { busContract, until } from './bus-contract.js';
import { closedPort } from './helpers/net.js';
import { redisReachable } from './helpers/redis.js';
import { available, RedisServer, startRedisCluster } from './helpers/redis-server.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const bytes = (text: string) => new TextEncoder().encode(text);
const text = (payload: Uint8Array) => new TextDecoder().decode(payload);

const hasRedisServer = available();
const sharedRedis = await redisReachable(REDIS_URL);

busContract('memory', async () => ({ bus: createMemoryBus(), cleanup: async () => {} }));

if (sharedRedis) {
  busContract(`redis (${REDIS_URL})`, async () => {
    const logs: string[] = [];
    const bus = await createRedisBus({ url: REDIS_URL, log: (m) => logs.push(m) });
    return { bus, cleanup: async () => {} };
  });
} else {
  describe('Bus contract: redis', () => {
    it('runs against a Redis', { skip: `no Redis answers at ${REDIS_URL}` }, () => {});
  });
}

describe('RedisBus', () => {
  it('after redis-server restarts: onResubscribe fires and later publishes arrive; publishes while down never throw', {
    skip: hasRedisServer ? false : 'redis-server is not on PATH',
    timeout: 90_000,
  }, async () => {
    // without persistence; restarted on the same port
    const server = await RedisServer.start(['--appendonly', 'no']);
    const port = server.port;
    const logs: string[] = [];
    const bus = await createRedisBus({ url: `redis://127.0.0.1:${port}`, log: (m) => logs.push(m), maxQueued: 5 });
    try {
      const ch = `fishchat:test-${randomUUID()}:/sysctrl/deliver/ms1`;
      const a: string[] = [];
      const b: string[] = [];
      let resubscribed = 0;
      bus.onResubscribe(() => resubscribed++);
      await bus.subscribe(ch, (p) => a.push(text(p)));
      await bus.subscribe(ch, (p) => b.push(text(p)));
      bus.publish(ch, bytes('before'));
      await until(() => a.length === 1 && b.length === 1, 'the first payload');
      assert.equal(resubscribed, 0);

      await server.stop('SIGKILL');
      await sleep(100);
      // Redis is down: publish must not throw, and must not hold more than maxQueued
      for (let i = 0; i < 50; i++) bus.publish(ch, bytes(`during ${i}`));
      await until(() => logs.some((l) => /dropping/.test(l)), 'a log line about dropped publishes');

      await server.run();
      await until(() => resubscribed >= 1, 'onResubscribe', 15_000);
      // what was queued while down went out; at most maxQueued of the 50
      await sleep(200);
      assert.ok(a.filter((m) => m.startsWith('during')).length <= 5, `at most 5 queued publishes, got ${a.length - 1}`);

      bus.publish(ch, bytes('after'));
      await until(() => a.includes('after') && b.includes('after'), 'a publish after the restart', 10_000);
      assert.equal(a[0], 'before');
      assert.equal(a.at(-1), 'after');
      // the subscription is one Redis subscription, counted once
      const probe = new Redis(`redis://127.0.0.1:${port}`);
      try {
        const counts = (await probe.call('PUBSUB', 'NUMSUB', ch)) as [string, number];
        assert.equal(Number(counts[1]), 1);
      } finally {
        probe.disconnect();
      }
    } finally {
      await bus.close();
      await server.destroy();
    }
  });

  it('many subscribe() calls share one Redis subscription, dropped with the last handler', {
    skip: sharedRedis ? false : `no Redis answers at ${REDIS_URL}`,
  }, async () => {
    const bus = await createRedisBus({ url: REDIS_URL, log: () => {} });
    const probe = new Redis(REDIS_URL);
    const numsub = async (ch: string) => Number(((await probe.call('PUBSUB', 'NUMSUB', ch)) as [string, number])[1]);
    try {
      const ch = `fishchat:test-${randomUUID()}:/sysctrl/test`;
      const offs = await Promise.all(Array.from({ length: 5 }, () => bus.subscribe(ch, () => {})));
      assert.equal(await numsub(ch), 1);
      for (const off of offs.slice(1)) await off();
      assert.equal(await numsub(ch), 1);
      await offs[0]!();
      assert.equal(await numsub(ch), 0);
    } finally {
      probe.disconnect();
      await bus.close();
    }
  });

  it('batches: a burst of publishes in one turn goes out as one pipeline, in order', {
    skip: sharedRedis ? false : `no Redis answers at ${REDIS_URL}`,
    timeout: 60_000,
  }, async () => {
    const bus = await createRedisBus({ url: REDIS_URL, log: () => {} });
    try {
      const ch = `fishchat:test-${randomUUID()}:/sysctrl/topic-sync`;
      const got: number[] = [];
      await bus.subscribe(ch, (p) => got.push(new DataView(p.buffer, p.byteOffset, p.byteLength).getUint32(0)));
      const t0 = performance.now();
      for (let i = 0; i < 20_000; i++) {
        const b = new Uint8Array(4);
        new DataView(b.buffer).setUint32(0, i);
        bus.publish(ch, b);
      }
      await until(() => got.length === 20_000, '20 000 payloads', 20_000);
      const ms = performance.now() - t0;
      assert.deepEqual(
        got,
        Array.from({ length: 20_000 }, (_, i) => i),
      );
      // one round trip per batch, not per message: far below 20 000 RTTs
      assert.ok(ms < 10_000, `20 000 publishes took ${ms.toFixed(0)} ms`);
    } finally {
      await bus.close();
    }
  });

  it('createRedisBus rejects, leaving nothing open, when Redis cannot be reached', async () => {
    const port = await closedPort();
    await assert.rejects(
      createRedisBus({ url: `redis://127.0.0.1:${port}`, log: () => {} }),
      /cannot connect to Redis/,
    );
  });

  it('on a Redis Cluster: sharded pub/sub across the slots of every node, in order, binary, unsubscribe', {
    skip: hasRedisServer ? false : 'redis-server is not on PATH',
    timeout: 90_000,
  }, async (t) => {
    let cluster: Awaited<ReturnType<typeof startRedisCluster>>;
    try {
      cluster = await startRedisCluster();
    } catch (err) {
      t.skip(`a Redis Cluster could not be started here: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    const logs: string[] = [];
    let bus: Awaited<ReturnType<typeof createRedisBus>> | undefined;
    try {
      bus = await createRedisBus({
        url: cluster.nodes.map((n) => n.url).join(','),
        cluster: true,
        log: (m) => logs.push(m),
      });
      const prefix = `fishchat:test-${randomUUID()}:/sysctrl/deliver/`;
      // 30 channels: their slots fall on all three masters
      const names = Array.from({ length: 30 }, (_, i) => `${prefix}ms${i}`);
      const got = new Map<string, string[]>(names.map((n) => [n, []]));
      const offs = await Promise.all(names.map((n) => bus!.subscribe(n, (p) => got.get(n)!.push(text(p)))));
      const all = new Uint8Array(256).map((_, i) => i);
      let binary: Uint8Array | undefined;
      await bus.subscribe(names[0]!, (p) => {
        if (p.byteLength === 256) binary = p;
      });
      for (let i = 0; i < 100; i++) for (const n of names) bus.publish(n, bytes(String(i)));
      bus.publish(names[0]!, all);
      await until(() => names.every((n) => got.get(n)!.length >= 100) && binary !== undefined, 'every channel', 15_000);
      for (const n of names)
        assert.deepEqual(
          got.get(n)!.slice(0, 100),
          Array.from({ length: 100 }, (_, i) => String(i)),
        );
      assert.deepEqual([...binary!], [...all]);

      await offs[1]!();
      bus.publish(names[1]!, bytes('gone'));
      bus.publish(names[2]!, bytes('still'));
      await until(() => got.get(names[2]!)!.includes('still'), 'the remaining channel');
      await sleep(50);
      assert.ok(!got.get(names[1]!)!.includes('gone'));

      // a master restarts: its sharded subscriber is made again and resubscribed
      let resubscribed = 0;
      bus.onResubscribe(() => resubscribed++);
      await cluster.nodes[1]!.restart('SIGKILL');
      await until(() => resubscribed >= 1, 'onResubscribe', 20_000);
      const live = names.filter((_, i) => i !== 1);
      await until(
        () => {
          for (const n of live) bus!.publish(n, bytes('after'));
          return live.every((n) => got.get(n)!.includes('after'));
        },
        'publishes on every channel after the restart',
        20_000,
      );
    } finally {
      await bus?.close();
      await cluster.destroy();
    }
  });
});

describe('BatchPublisher pushes', () => {
  it('packs the pushes of a turn into one payload per channel beside its items, in order; the receiver gets the frames as they were', async () => {
    const bus = createMemoryBus();
    const got: Uint8Array[] = [];
    const unsub = await bus.subscribe('d/1', (p) => got.push(p));
    const pub = new BatchPublisher(bus);
    const frame = (n: number) => encodeFrame({ op: 'msg', seq: n, body: 'x'.repeat(n * 100) });
    // A frame larger than the pack's first buffer, and a user name outside ASCII.
    for (let i = 1; i <= 60; i++) pub.addPush('d/1', i % 2 ? 'alice' : 'bøb', i, frame(i));
    pub.add('d/1', { k: 'kick', user: 'carol', device: 'phone', gen: 3 });
    await until(() => got.length === 1, 'one payload', 2000);
    await sleep(20);
    assert.equal(got.length, 1, 'one payload for the turn');
    const items = decodeItems<DeliverItem>(got[0]!);
    assert.deepEqual(items[0], { k: 'kick', user: 'carol', device: 'phone', gen: 3 });
    const pushes: [string, number, Uint8Array][] = [];
    const item = items[1] as Extract<DeliverItem, { k: 'pushes' }>;
    assert.equal(item.k, 'pushes');
    assert.equal(
      forEachPush(item.b, (u, s, f) => pushes.push([u, s, f])),
      60,
    );
    pushes.forEach(([u, s, f], i) => {
      assert.equal(u, (i + 1) % 2 ? 'alice' : 'bøb');
      assert.equal(s, i + 1);
      assert.deepEqual([...f], [...frame(i + 1)]);
    });
    await unsub();
    await bus.close();
  });

  it('forEachPush stops at a malformed push: a cut pack, a frame whose length prefix does not match, a seq that is no integer', () => {
    const pack = (user: string, seq: number, frame: Uint8Array) => {
      const u = Buffer.from(user);
      const b = Buffer.alloc(2 + u.length + 12 + frame.length);
      b.writeUInt16BE(u.length, 0);
      u.copy(b, 2);
      b.writeDoubleBE(seq, 2 + u.length);
      b.writeUInt32BE(frame.length, 10 + u.length);
      b.set(frame, 14 + u.length);
      return b;
    };
    const good = pack('a', 1, encodeFrame({ op: 'msg', seq: 1 }));
    const count = (b: Uint8Array) => forEachPush(b, () => {});
    assert.equal(count(Buffer.concat([good, good])), 2);
    assert.equal(count(Buffer.concat([good, good.subarray(0, good.length - 1)])), 1);
    const lying = Buffer.from(encodeFrame({ op: 'msg', seq: 1 }));
    lying.writeUInt32BE(999, 0);
    assert.equal(count(Buffer.concat([good, pack('a', 2, lying), good])), 1);
    assert.equal(count(Buffer.concat([pack('a', 1.5, encodeFrame({ op: 'msg' })), good])), 0);
    assert.equal(count(new Uint8Array(0)), 0);
  });
});
