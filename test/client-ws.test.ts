/**
 * The client library over WebSocket (docs/protocol.md §1a) against a real
 * in-process cluster: routing (the TCP `route` op and `GET /v1/route`),
 * login, messages both ways with a TCP client on another msg_server, topics,
 * sync, reconnect when its msg_server drains, a `cid` retried across a lost
 * reply stored once, `auth_failed` and `replaced`. Runs on Node (the `ws`
 * package on Node 20, the global WebSocket from Node 22) and on Bun (its
 * global WebSocket).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Connection, FishChatClient, FishError, route, type Msg } from '../runtime/client/index.js';
import { startTestCluster, type TestCluster } from './helpers/cluster.js';
import { take } from './helpers/messages.js';
import { until } from './helpers/wait.js';

/** The WebSocket URL of msg_server i, as the gateway lists it. */
async function wsOf(c: TestCluster, i: number): Promise<string> {
  const r = await route(c.gateway);
  const id = c.msgServers[i]!.id;
  const s = r.servers.find((x) => x.id === id);
  assert.ok(s?.ws, `the route lists a ws URL for ${id}: ${JSON.stringify(r.servers)}`);
  return s.ws;
}

describe('client over WebSocket', () => {
  it('routes, logs in and exchanges messages both ways with a TCP client on another msg_server', async () => {
    const c = await startTestCluster({ msgServers: 2 });
    try {
      const r = await route(c.gateway);
      assert.equal(r.servers.length, 2);
      for (const s of r.servers) {
        assert.match(s.ws ?? '', /^ws:\/\/127\.0\.0\.1:\d+\/v1\/ws$/, `ws of ${s.id}`);
        assert.match(s.addr, /^127\.0\.0\.1:\d+$/);
      }
      const alice = await FishChatClient.connect({
        server: await wsOf(c, 0),
        gateway: c.gateway,
        transport: 'ws',
        user: 'alice',
        token: () => c.token('alice'),
      });
      const bob = await FishChatClient.connect({ server: c.ms(1), user: 'bob', token: c.token('bob') });
      assert.equal(alice.login.server, 'ms-0');
      assert.equal(bob.login.server, 'ms-1');
      const aliceIn = alice.messages()[Symbol.asyncIterator]();
      const bobIn = bob.messages()[Symbol.asyncIterator]();

      // WebSocket → TCP: bodies of every CBOR kind arrive as sent
      const bodies = ['hi', { n: 1, bytes: new Uint8Array([0, 255]) }, [1, 2, 3], 2 ** 40, true];
      const sent = [];
      for (const b of bodies) sent.push(await alice.send('bob', b));
      const atBob = await take(bobIn, bodies.length);
      assert.deepEqual(
        atBob.map((m) => [m.mid, m.seq, m.from, m.to]),
        sent.map((s) => [s.mid, s.seq, 'alice', 'bob']),
      );
      assert.deepEqual(
        atBob.map((m) => m.body),
        bodies,
      );

      // TCP → WebSocket, pipelined
      const back = await Promise.all(Array.from({ length: 20 }, (_, i) => bob.send('alice', `re ${i}`)));
      const atAlice = await take(aliceIn, 20);
      assert.deepEqual(
        atAlice.map((m) => m.mid),
        back.map((s) => s.mid),
      );
      assert.deepEqual(
        atAlice.map((m) => m.seq),
        Array.from({ length: 20 }, (_, i) => i + 1),
      );

      // sync over WebSocket: pages after an ack
      alice.ack(10);
      const page = await alice.sync(10, 4);
      assert.deepEqual(
        page.messages.map((m) => [m.seq, m.body]),
        [11, 12, 13, 14].map((s) => [s, `re ${s - 1}`]),
      );
      assert.equal(page.more, true);
      const rest = await alice.sync(page.last, 1000);
      assert.equal(rest.more, false);
      assert.equal(rest.last, 20);
      assert.equal(rest.epoch, alice.login.epoch);

      // errors keep the WebSocket open
      await assert.rejects(
        alice.send('not valid!', 'x'),
        (e: unknown) => e instanceof FishError && e.code === 'bad_request',
      );
      assert.ok(alice.connected);
      assert.equal(typeof (await alice.ping()).seq, 'number');
      await alice.close();
      await bob.close();
      assert.equal(alice.closed, true);
    } finally {
      await c.stop();
    }
  });

  it('topics between a WebSocket and a TCP client', async () => {
    const c = await startTestCluster({ msgServers: 2 });
    try {
      const ann = await FishChatClient.connect({
        gateway: c.gateway,
        transport: 'ws',
        server: await wsOf(c, 0),
        user: 'ann',
        token: c.token('ann'),
      });
      const ben = await FishChatClient.connect({ server: c.ms(1), user: 'ben', token: c.token('ben') });
      await ann.topicCreate('lobby');
      await assert.rejects(
        ann.topicCreate('lobby'),
        (e: unknown) => e instanceof FishError && e.code === 'topic_exists',
      );
      assert.deepEqual(await ben.topicJoin('lobby'), { members: 2 });
      const one = await ann.topicSend('lobby', 'from ws');
      const two = await ben.topicSend('lobby', 'from tcp');
      assert.deepEqual([one.tseq, two.tseq], [1, 2]);
      for (const cl of [ann, ben]) {
        const got = await take(cl.messages()[Symbol.asyncIterator](), 2);
        assert.deepEqual(
          got.map((m) => [m.topic, m.tseq, m.mid, m.from, m.body]),
          [
            ['lobby', 1, one.mid, 'ann', 'from ws'],
            ['lobby', 2, two.mid, 'ben', 'from tcp'],
          ],
        );
      }
      assert.deepEqual(await ann.topicMembers('lobby'), { members: ['ann', 'ben'], more: false });
      await ben.topicLeave('lobby');
      await assert.rejects(
        ben.topicSend('lobby', 'x'),
        (e: unknown) => e instanceof FishError && e.code === 'not_a_member',
      );
      await ann.close();
      await ben.close();
    } finally {
      await c.stop();
    }
  });

  it('after a draining kick it reconnects over WebSocket through the gateway and loses nothing', async () => {
    const c = await startTestCluster({ msgServers: 2, settings: { beat: 100, backoff: { base: 20, max: 200 } } });
    try {
      const bob = await FishChatClient.connect({
        gateway: c.gateway,
        transport: 'ws',
        server: await wsOf(c, 0),
        user: 'bob',
        token: () => c.token('bob'),
        autoAck: true,
      });
      assert.equal(bob.login.server, 'ms-0');
      const alice = await FishChatClient.connect({ server: c.ms(1), user: 'alice', token: c.token('alice') });
      const inbox = bob.messages()[Symbol.asyncIterator]();
      const kicks: string[] = [];
      const drops: { reason: string; willReconnect: boolean }[] = [];
      bob.on('kick', (k) => kicks.push(k.reason));
      bob.on('disconnect', (d) => drops.push(d));
      bob.on('error', () => undefined);
      const reconnected = new Promise<void>((res) => bob.on('reconnect', () => res()));
      const oks = [];
      for (let i = 0; i < 60; i++) {
        oks.push(await alice.send('bob', i));
        if (i === 20) void c.msgServers[0]!.stop();
        await new Promise((r) => setTimeout(r, 5));
      }
      await reconnected;
      assert.equal(bob.login.server, 'ms-1');
      assert.deepEqual(kicks, ['draining']);
      assert.deepEqual(drops, [{ reason: 'kick:draining', willReconnect: true }]);
      const got = await take(inbox, 60, 10_000);
      assert.deepEqual(
        got.map((m) => m.seq),
        oks.map((o) => o.seq),
        'every message once, in order',
      );
      // still over WebSocket after the reconnect
      const more = await bob.send('alice', 'after');
      assert.equal(typeof more.mid, 'string');
      await alice.close();
      await bob.close();
    } finally {
      await c.stop();
    }
  });

  it('sendWithRetry: a reply lost with the connection is retried after the reconnect with the same cid, stored once', async () => {
    const c = await startTestCluster({ msgServers: 2, settings: { backoff: { base: 20, max: 200 } } });
    // Cut the WebSocket right after the first `send` request of this test is written:
    // the server stores it, the reply is lost with the connection.
    const request = Connection.prototype.request;
    let cut = 0;
    Connection.prototype.request = function (this: Connection, op, fields, ro) {
      const p = request.call(this, op, fields, ro);
      if (op === 'send' && this.transport === 'ws' && fields?.to === 'bob' && cut === 0) {
        cut++;
        setTimeout(() => this.destroy(), 0);
      }
      return p;
    };
    try {
      const alice = await FishChatClient.connect({
        gateway: c.gateway,
        transport: 'ws',
        user: 'alice',
        token: () => c.token('alice'),
      });
      alice.on('error', () => undefined);
      const bob = await FishChatClient.connect({ server: c.ms(1), user: 'bob', token: c.token('bob') });
      const reconnects: string[] = [];
      alice.on('reconnect', (info) => reconnects.push(info.server));
      const r = await alice.sendWithRetry('bob', 'exactly once', { deadlineMs: 10_000 });
      assert.equal(cut, 1, 'the first try was cut');
      assert.equal(reconnects.length, 1, 'it reconnected once');
      assert.match(r.cid, /^[0-9a-f]{32}$/);
      // the same cid again (a new call): the first result, no new message
      const again = await alice.sendWithRetry('bob', 'exactly once', { cid: r.cid });
      assert.deepEqual([again.mid, again.seq, again.ts], [r.mid, r.seq, r.ts]);
      const page = await bob.sync(0, 1000);
      assert.deepEqual(
        page.messages.map((m) => [m.mid, m.body]),
        [[r.mid, 'exactly once']],
      );
      // a final error is not retried
      const t0 = Date.now();
      await assert.rejects(
        alice.sendWithRetry('bad name!', 'x'),
        (e: unknown) => e instanceof FishError && e.code === 'bad_request',
      );
      assert.ok(Date.now() - t0 < 2000);
      await alice.close();
      await assert.rejects(
        alice.sendWithRetry('bob', 'x'),
        (e: unknown) => e instanceof FishError && e.local === 'disconnected',
      );
      await bob.close();
    } finally {
      Connection.prototype.request = request;
      await c.stop();
    }
  });

  it('auth_failed closes; a replaced WebSocket session ends and does not reconnect', async () => {
    const c = await startTestCluster({ msgServers: 1 });
    try {
      const ws = await wsOf(c, 0);
      await assert.rejects(
        FishChatClient.connect({ server: ws, user: 'mallory', token: c.token('alice'), reconnect: false }),
        (e: unknown) => e instanceof FishError && e.code === 'auth_failed',
      );
      const first = await FishChatClient.connect({ server: ws, user: 'dan', device: 'phone', token: c.token('dan') });
      const drops: { reason: string; willReconnect: boolean }[] = [];
      first.on('disconnect', (d) => drops.push(d));
      const ended = (async () => {
        const seen: Msg[] = [];
        for await (const m of first.messages()) seen.push(m);
        return seen;
      })();
      const second = await FishChatClient.connect({
        server: c.ms(0),
        user: 'dan',
        device: 'phone',
        token: c.token('dan'),
      });
      await until(() => first.closed, 5000, 'the replaced client to end');
      assert.deepEqual(drops, [{ reason: 'kick:replaced', willReconnect: false }]);
      assert.deepEqual(await ended, [], 'messages() ended');
      assert.equal(second.connected, true);
      await second.close();
    } finally {
      await c.stop();
    }
  });

  it('rejects what is not an address, and a dead WebSocket URL, with clear errors', async () => {
    await assert.rejects(
      FishChatClient.connect({ server: 'ftp://x:1', user: 'u', reconnect: false }),
      (e: unknown) => e instanceof FishError && e.code === 'bad_request' && /ws:\/\//.test(e.message),
    );
    await assert.rejects(
      FishChatClient.connect({ server: 'ws://127.0.0.1:1/v1/ws', user: 'u', reconnect: false, requestTimeoutMs: 3000 }),
      (e: unknown) => e instanceof FishError && e.local !== undefined && /127\.0\.0\.1:1/.test(e.message),
    );
    await assert.rejects(
      // a bad transport name is refused before any connection
      FishChatClient.connect({ server: '127.0.0.1:1', user: 'u', transport: 'udp' as 'tcp' }),
      (e: unknown) => e instanceof FishError && e.code === 'bad_request',
    );
  });
});
