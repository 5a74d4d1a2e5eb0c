/**
 * Redis mode under stress: Redis restarted from its AOF under traffic loses
 * no acknowledged message and seq continues; the cluster's p2p and topic
 * paths on a 3-node Redis Cluster. Private redis-server processes on free
 * ports, stopped by PID.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FishClient, type Msg } from '../runtime/client/index.js';
import { available, RedisServer, startRedisCluster } from './helpers/redis-server.js';
import { startTestCluster } from './helpers/cluster.js';

const haveRedis = available();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Redis restarted under traffic', { skip: haveRedis ? false : 'redis-server is not on PATH' }, () => {
  let redis: RedisServer;
  before(async () => {
    redis = await RedisServer.start(['--appendonly', 'yes', '--appendfsync', 'always']);
  });
  after(async () => {
    await redis?.destroy();
  });

  it('loses no acknowledged message, delivers each once, and seq continues', async () => {
    const c = await startTestCluster({
      msgServers: 2,
      redis: { url: redis.url },
      settings: { beat: 200, heartbeat: 1000, backoff: { base: 20, max: 300 } },
    });
    const PAIRS = 6;
    const PER = 100;
    const received = new Map<string, Map<string, Msg>>();
    const clients: FishClient[] = [];
    try {
      const receivers = [];
      for (let i = 0; i < PAIRS; i++) {
        const user = `r${i}`;
        received.set(user, new Map());
        const r = await FishClient.connect({
          server: c.ms(i % 2),
          gateway: undefined,
          user,
          token: () => c.token(user),
          autoAck: true,
          heartbeatMs: 300,
          backoff: { base: 20, max: 300 },
          requestTimeoutMs: 2000,
        });
        r.on('message', (m) => received.get(user)!.set(m.mid, m));
        r.on('error', () => undefined);
        receivers.push(r);
        clients.push(r);
      }
      const acked = new Map<string, { mid: string; seq: number }[]>();
      const senders = [];
      for (let i = 0; i < PAIRS; i++) {
        const s = await FishClient.connect({
          server: c.ms((i + 1) % 2),
          user: `s${i}`,
          token: () => c.token(`s${i}`),
          push: false,
          heartbeatMs: 300,
          backoff: { base: 20, max: 300 },
          requestTimeoutMs: 2000,
        });
        s.on('error', () => undefined);
        clients.push(s);
        acked.set(`r${i}`, []);
        senders.push(
          (async () => {
            for (let k = 0; k < PER; k++) {
              // retried with the same cid until the server says ok: idempotent
              for (let attempt = 0; ; attempt++) {
                try {
                  const ok = await s.send(`r${i}`, { k }, { cid: `m-${k}` });
                  acked.get(`r${i}`)!.push(ok);
                  break;
                } catch (err) {
                  if (attempt > 200) throw err;
                  await sleep(25);
                }
              }
              await sleep(5);
            }
          })(),
        );
      }
      await sleep(150);
      let sentBefore = 0;
      for (const l of acked.values()) sentBefore += l.length;
      await redis.restart('SIGTERM');
      await Promise.all(senders);
      assert.ok(
        sentBefore > 0 && sentBefore < PAIRS * PER,
        `the restart came mid-traffic (${sentBefore} acked before it)`,
      );
      // every acknowledged message reaches its receiver, once (by mid)
      const deadline = Date.now() + 15_000;
      for (const [user, oks] of acked) {
        assert.equal(oks.length, PER);
        while (oks.some((o) => !received.get(user)!.has(o.mid))) {
          if (Date.now() > deadline) {
            const missing = oks.filter((o) => !received.get(user)!.has(o.mid));
            assert.fail(
              `${user}: ${missing.length} acknowledged messages never arrived (seqs ${missing.map((m) => m.seq).join(',')})`,
            );
          }
          await sleep(50);
        }
        // one seq per message: seq continued after the restart, never reused
        const seqs = oks.map((o) => o.seq);
        assert.equal(new Set(seqs).size, PER, `${user}: a seq was given twice`);
        assert.deepEqual(
          [...seqs].sort((a, b) => a - b),
          seqs,
          `${user}: seqs grow`,
        );
        assert.equal(received.get(user)!.size, PER, `${user}: no extra message`);
      }
    } finally {
      await Promise.allSettled(clients.map((cl) => cl.close()));
      await c.stop();
    }
  });
});

describe('on a 3-node Redis Cluster', { skip: haveRedis ? false : 'redis-server is not on PATH' }, () => {
  let rc: Awaited<ReturnType<typeof startRedisCluster>> | undefined;
  let why = '';
  before(async () => {
    try {
      rc = await startRedisCluster();
    } catch (err) {
      why = (err as Error).message;
    }
  });
  after(async () => {
    await rc?.destroy();
  });

  it('p2p across msg_servers and a topic fan-out work with every script on one slot', async (t) => {
    if (!rc) return t.skip(`could not start a Redis Cluster here: ${why}`);
    const c = await startTestCluster({ msgServers: 2, redis: { url: rc.url, cluster: true } });
    const clients: FishClient[] = [];
    try {
      const connect = async (user: string, i: number) => {
        const cl = await FishClient.connect({ server: c.ms(i), user, token: c.token(user) });
        clients.push(cl);
        return cl;
      };
      const ann = await connect('ann', 0);
      const bob = await connect('bob', 1);
      const cat = await connect('cat', 0);
      const got = new Map<string, Msg[]>([
        ['ann', []],
        ['bob', []],
        ['cat', []],
      ]);
      for (const [u, cl] of [
        ['ann', ann],
        ['bob', bob],
        ['cat', cat],
      ] as const)
        cl.on('message', (m) => got.get(u)!.push(m));
      for (let i = 0; i < 20; i++) assert.equal((await ann.send('bob', i)).seq, i + 1);
      await ann.topicCreate('room');
      await bob.topicJoin('room');
      await cat.topicJoin('room');
      const t1 = await cat.topicSend('room', 'hi room');
      const end = Date.now() + 10_000;
      while (got.get('bob')!.length < 21 || got.get('ann')!.length < 1 || got.get('cat')!.length < 1) {
        if (Date.now() > end)
          assert.fail(`deliveries missing: ${JSON.stringify([...got].map(([u, l]) => [u, l.length]))}`);
        await sleep(20);
      }
      assert.deepEqual(
        got
          .get('bob')!
          .slice(0, 20)
          .map((m) => m.seq),
        Array.from({ length: 20 }, (_, i) => i + 1),
      );
      for (const u of ['ann', 'bob', 'cat']) {
        const m = got.get(u)!.at(-1)!;
        assert.deepEqual([m.topic, m.tseq, m.mid], ['room', 1, t1.mid]);
      }
    } finally {
      await Promise.allSettled(clients.map((cl) => cl.close()));
      await c.stop();
    }
  });
});
