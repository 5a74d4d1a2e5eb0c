/**
 * The client library against a real in-process cluster: routing through the
 * gateway, pushes as an async iterator, ack and sync, and reconnect with
 * resync when its msg_server drains.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FishClient, FishError, route } from '../runtime/client/index.js';
import { startTestCluster } from './helpers/cluster.js';
import { take } from './helpers/messages.js';

describe('client library', () => {
  it('routes, logs in, sends and receives, acks, syncs, and reports server errors as FishError', async () => {
    const c = await startTestCluster({ msgServers: 2 });
    try {
      const r = await route(c.gateway);
      assert.equal(r.servers.length, 2);
      const alice = await FishClient.connect({ gateway: c.gateway, user: 'alice', token: c.token('alice') });
      const bob = await FishClient.connect({ gateway: c.gateway, user: 'bob', token: () => c.token('bob') });
      const inbox = bob.messages()[Symbol.asyncIterator]();
      const sent = [];
      for (let i = 0; i < 10; i++) sent.push(await alice.send('bob', { i, bytes: new Uint8Array([i, 255]) }));
      const got = await take(inbox, 10);
      assert.deepEqual(
        got.map((m) => m.mid),
        sent.map((s) => s.mid),
      );
      assert.deepEqual(
        got.map((m) => m.seq),
        sent.map((s) => s.seq),
      );
      assert.equal(got[3]!.from, 'alice');
      bob.ack(got.at(-1)!.seq);
      await bob.ping();
      const page = await bob.sync(5, 3);
      assert.deepEqual(
        page.messages.map((m) => m.seq),
        [6, 7, 8],
      );
      assert.equal(page.more, true);
      await assert.rejects(
        alice.send('not valid!', 'x'),
        (e: unknown) => e instanceof FishError && e.code === 'bad_request',
      );
      await assert.rejects(
        FishClient.connect({ gateway: c.gateway, user: 'mallory', token: c.token('alice'), reconnect: false }),
        (e: unknown) => e instanceof FishError && e.code === 'auth_failed',
      );
      await alice.close();
      await bob.close();
    } finally {
      await c.stop();
    }
  });

  it('after a draining kick it reconnects through the gateway and loses nothing', async () => {
    const c = await startTestCluster({ msgServers: 2, settings: { beat: 100, backoff: { base: 20, max: 200 } } });
    try {
      // bob on ms-0 (the gateway lists the least loaded first; pin with `server`)
      const bob = await FishClient.connect({
        gateway: c.gateway,
        server: c.ms(0),
        user: 'bob',
        token: () => c.token('bob'),
        autoAck: true,
      });
      assert.equal(bob.login.server, 'ms-0');
      const alice = await FishClient.connect({ server: c.ms(1), user: 'alice', token: c.token('alice') });
      const inbox = bob.messages()[Symbol.asyncIterator]();
      const reconnected = new Promise<void>((res) => bob.on('reconnect', () => res()));
      const sending = (async () => {
        const oks = [];
        for (let i = 0; i < 60; i++) {
          oks.push(await alice.send('bob', i));
          if (i === 20) void c.msgServers[0]!.stop();
          await new Promise((r) => setTimeout(r, 5));
        }
        return oks;
      })();
      const oks = await sending;
      await reconnected;
      assert.equal(bob.login.server, 'ms-1');
      const got = await take(inbox, 60, 10_000);
      assert.deepEqual(
        got.map((m) => m.seq),
        oks.map((o) => o.seq),
        'every message once, in order',
      );
      await alice.close();
      await bob.close();
    } finally {
      await c.stop();
    }
  });

  it('topics through the client', async () => {
    const c = await startTestCluster({ msgServers: 2 });
    try {
      const a = await FishClient.connect({ server: c.ms(0), user: 'ann', token: c.token('ann') });
      const b = await FishClient.connect({ server: c.ms(1), user: 'ben', token: c.token('ben') });
      await a.topicCreate('lobby');
      assert.deepEqual(await b.topicJoin('lobby'), { members: 2 });
      const ok = await b.topicSend('lobby', 'hello all');
      for (const cl of [a, b]) {
        const [m] = await take(cl.messages()[Symbol.asyncIterator](), 1);
        assert.deepEqual([m!.topic, m!.tseq, m!.mid, m!.body], ['lobby', 1, ok.mid, 'hello all']);
      }
      assert.deepEqual(await a.topicMembers('lobby'), { members: ['ann', 'ben'], more: false });
      await a.close();
      await b.close();
    } finally {
      await c.stop();
    }
  });
});
