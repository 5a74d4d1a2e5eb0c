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
import { definiteStrings } from '../runtime/client/definite.js';
import {
  Connection,
  FishChatClient,
  FishError,
  RawCbor,
  route,
  type Frame,
  type Msg,
} from '../runtime/client/index.js';
import { startTestCluster, type TestCluster } from './helpers/cluster.js';
import { take } from './helpers/messages.js';
import { until, untilValue } from './helpers/wait.js';

/**
 * Waits until the gateway lists every msg_server with its WebSocket URL (it
 * knows a msg_server from its seed address first, and its `ws` from its first
 * beat), then returns msg_server i's URL as listed.
 */
async function wsOf(c: TestCluster, i: number): Promise<string> {
  let last: unknown;
  const ready = async () => {
    const r = await route(c.gateway);
    last = r.servers;
    return r.servers.length === c.msgServers.length && r.servers.every((s) => s.ws) ? r : undefined;
  };
  const r = await untilValue(ready, 5000, 'ws in every route entry').catch((err: Error) => {
    throw new Error(`${err.message}: ${JSON.stringify(last)}`);
  });
  const s = r.servers.find((x) => x.id === c.msgServers[i]!.id);
  assert.equal(s?.ws, c.ws(i), 'the route lists the URL the msg_server serves');
  return s!.ws!;
}

describe('client over WebSocket', () => {
  it('routes, logs in and exchanges messages both ways with a TCP client on another msg_server', async () => {
    const c = await startTestCluster({ msgServers: 2, settings: { beat: 100 } });
    try {
      await wsOf(c, 0);
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
      assert.deepEqual([alice.transport, bob.transport], ['ws', 'tcp']);
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
      // (cbor-x hands byte strings out as Buffers on Node, Uint8Arrays elsewhere: compare the bytes)
      const plain = (v: unknown): unknown =>
        v instanceof Uint8Array
          ? { bytes: [...v] }
          : v && typeof v === 'object' && !Array.isArray(v)
            ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]))
            : v;
      assert.deepEqual(
        atBob.map((m) => plain(m.body)),
        bodies.map(plain),
      );
      assert.ok((atBob[1]!.body as { bytes: unknown }).bytes instanceof Uint8Array, 'bytes stay bytes');

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
    const c = await startTestCluster({ msgServers: 2, settings: { beat: 100 } });
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
      // no `transport`: a ws:// `server` makes it WebSocket for the reconnects too
      const bob = await FishChatClient.connect({
        gateway: c.gateway,
        server: await wsOf(c, 0),
        user: 'bob',
        token: () => c.token('bob'),
        autoAck: true,
      });
      assert.equal(bob.login.server, 'ms-0');
      assert.equal(bob.transport, 'ws');
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
      assert.equal(bob.transport, 'ws', 'still over WebSocket after the reconnect');
      const more = await bob.send('alice', 'after');
      assert.equal(typeof more.mid, 'string');
      await alice.close();
      await bob.close();
    } finally {
      await c.stop();
    }
  });

  it('sendWithRetry: a reply lost with the connection is retried after the reconnect with the same cid, stored once', async () => {
    const c = await startTestCluster({ msgServers: 2, settings: { beat: 100, backoff: { base: 20, max: 200 } } });
    // A lost reply, made real: the first `send` to bob over WebSocket reaches the
    // server and is stored; its `ok` arrives, and the test then cuts the
    // connection and hands the caller a `disconnected` error instead of it.
    const request = Connection.prototype.request;
    let hidden: Frame | undefined;
    Connection.prototype.request = function (this: Connection, op, fields, ro) {
      const p = request.call(this, op, fields, ro);
      if (op !== 'send' || this.transport !== 'ws' || fields?.to !== 'bob' || hidden !== undefined) return p;
      return p.then((ok) => {
        hidden = ok;
        this.destroy();
        throw new FishError('internal', 'the reply was lost (test)', 'disconnected');
      });
    };
    try {
      await wsOf(c, 0);
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
      assert.ok(hidden, 'the first try was stored and its reply hidden');
      assert.equal(reconnects.length, 1, 'it reconnected once');
      assert.deepEqual([r.mid, r.seq], [hidden.mid, hidden.seq], 'the retry got the first result');
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
    const c = await startTestCluster({ msgServers: 1, settings: { beat: 100 } });
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

  it('a body with indefinite-length strings (well-formed CBOR cbor-x cannot read) reaches WebSocket and TCP clients', async () => {
    const c = await startTestCluster({ msgServers: 2, settings: { beat: 100 } });
    try {
      const ws = await wsOf(c, 0);
      const ann = await FishChatClient.connect({ server: ws, user: 'ann', token: c.token('ann') });
      const ben = await FishChatClient.connect({ server: c.ms(1), user: 'ben', token: c.token('ben') });
      const errors: string[] = [];
      for (const cl of [ann, ben]) cl.on('error', (e) => errors.push(e.message));
      // {"t": (_ "ab" "c"), "b": (_ h'01' h'0203'), "n": [_ (_ "x")]}
      const body = Uint8Array.of(
        ...[0xa3, 0x61, 0x74, 0x7f, 0x62, 0x61, 0x62, 0x61, 0x63, 0xff],
        ...[0x61, 0x62, 0x5f, 0x41, 1, 0x42, 2, 3, 0xff],
        ...[0x61, 0x6e, 0x9f, 0x7f, 0x61, 0x78, 0xff, 0xff],
      );
      const s = await FishChatClient.connect({ server: c.ms(1), user: 'sam', token: c.token('sam'), push: false });
      for (const to of ['ann', 'ben']) await s.send(to, new RawCbor(body));
      await s.send('ann', 'after');
      const got = await take(ann.messages()[Symbol.asyncIterator](), 2);
      const [atBen] = await take(ben.messages()[Symbol.asyncIterator](), 1);
      for (const m of [got[0]!, atBen!]) {
        const b = m.body as { t: string; b: Uint8Array; n: string[] };
        assert.deepEqual([b.t, [...b.b], b.n], ['abc', [1, 2, 3], ['x']]);
      }
      assert.equal(got[1]!.body, 'after');
      assert.ok(ann.connected && ben.connected, 'the connections stayed up');
      assert.deepEqual(errors, []);
      // the rewrite leaves definite CBOR alone and refuses what is not well-formed
      assert.equal(definiteStrings(Uint8Array.of(0xa1, 0x61, 0x61, 0x01)), null);
      assert.equal(definiteStrings(Uint8Array.of(0x7f, 0x61)), null);
      assert.equal(definiteStrings(Uint8Array.of(0x7f, 0x41, 0x61, 0xff)), null, 'a byte chunk in a text string');
      assert.equal(definiteStrings(Uint8Array.of(0x7f, 0xff, 0x00)), null, 'trailing bytes');
      assert.deepEqual([...definiteStrings(Uint8Array.of(0x5f, 0xff))!], [0x40]);
      await Promise.all([ann.close(), ben.close(), s.close()]);
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
