/**
 * The limits over real TCP, each from its setting: login timeout,
 * per-connection send rate, max connections per msg_server (and the gateway
 * routing around a full one), the outbound buffer cap (slow consumer), max
 * topic members, and a non-default maxFrame.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { encodeBody, RawCbor } from '../runtime/protocol/index.js';
import { decodeItems, type ClientStatusItem } from '../runtime/bus/payloads.js';
import { RawConn, rid, type Frame } from './helpers/raw.js';
import { startTestCluster, type TestCluster } from './helpers/cluster.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(pred: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

async function login(c: TestCluster, addr: string, user: string, extra: Record<string, unknown> = {}) {
  const conn = await RawConn.connect(addr);
  const ok = await conn.request({ op: 'login', rid: rid(), user, token: c.token(user), ...(extra as object) });
  assert.equal(ok.op, 'ok', JSON.stringify(ok));
  return { conn, ok };
}

const send = (conn: RawConn, to: string, body: unknown, timeoutMs = 3000): Promise<Frame> =>
  conn.request({ op: 'send', rid: rid(), to, body: new RawCbor(encodeBody(body)) }, timeoutMs);

describe('login timeout', () => {
  it('closes a connection that does not log in in time, pings or not; a logged-in one stays', async () => {
    const c = await startTestCluster({ msgServers: 1, settings: { loginTimeout: 400 } });
    try {
      const t0 = Date.now();
      const idle = await RawConn.connect(c.ms(0));
      const pinger = await RawConn.connect(c.ms(0));
      const { conn: user } = await login(c, c.ms(0), 'lt-user');
      // A pre-login ping is answered but does not extend the timeout.
      let pings = 0;
      const pinging = setInterval(() => {
        if (!pinger.closed) pinger.send({ op: 'ping', rid: 1000 + pings++ });
      }, 100);
      try {
        await Promise.all([idle.waitClosed(3000), pinger.waitClosed(3000)]);
      } finally {
        clearInterval(pinging);
      }
      const took = Date.now() - t0;
      assert.ok(took >= 350, `closed after ${took} ms, before the 400 ms timeout`);
      assert.ok(pings >= 3, `pinged ${pings} times`);
      assert.ok(
        pinger.pending().some((f) => f.op === 'pong'),
        'pre-login pings are answered',
      );
      // No error frame is needed; if any frame came to the idle one, it is not an ok.
      assert.ok(!idle.pending().some((f) => f.op === 'ok'));
      // The logged-in connection is still usable well after the timeout.
      await sleep(300);
      assert.equal(user.closed, false);
      const pong = await user.request({ op: 'ping', rid: 77 });
      assert.equal(pong.op, 'pong');
      user.close();
    } finally {
      await c.stop();
    }
  });

  it('a failed login does not stop the clock', async () => {
    const c = await startTestCluster({ msgServers: 1, settings: { loginTimeout: 300 } });
    try {
      const conn = await RawConn.connect(c.ms(0));
      const bad = await conn.request({ op: 'login', rid: 1, user: 'no spaces allowed', token: 'x' });
      assert.equal(bad.code, 'bad_request');
      await conn.waitClosed(3000);
    } finally {
      await c.stop();
    }
  });
});

describe('send rate', () => {
  it('over the bucket: rate_limited, nothing stored, the connection stays; it recovers after refill', async () => {
    // 2 tokens per second, 5 at once: a pipelined burst of 10 gets 5 through.
    const c = await startTestCluster({ msgServers: 1, settings: { sendRate: { rate: 2, burst: 5 } } });
    try {
      const { conn } = await login(c, c.ms(0), 'rl-sender');
      const rids: number[] = [];
      for (let i = 0; i < 10; i++) {
        const r = rid();
        rids.push(r);
        conn.send({ op: 'send', rid: r, to: 'rl-receiver', body: new RawCbor(encodeBody(`m${i}`)) });
      }
      const replies: Frame[] = [];
      for (const r of rids) replies.push(await conn.next(3000, (f) => f.rid === r));
      const codes = replies.map((f) => (f.op === 'ok' ? 'ok' : String(f.code)));
      assert.deepEqual(codes.slice(0, 6), ['ok', 'ok', 'ok', 'ok', 'ok', 'rate_limited'], codes.join(','));
      // at most one token can have refilled (500 ms) while the burst was handled
      const oks = codes.filter((x) => x === 'ok').length;
      assert.ok(oks <= 6, codes.join(','));
      for (const f of replies) if (f.op === 'error') assert.match(String(f.message), /rate/);

      // topic_send draws from the same bucket
      await sleep(1100); // 2 tokens
      assert.equal(
        (await conn.request({ op: 'topic_create', rid: rid(), topic: 'rl-topic' })).op,
        'ok',
        'topic_create is not rate limited',
      );
      const t1 = await conn.request({
        op: 'topic_send',
        rid: rid(),
        topic: 'rl-topic',
        body: new RawCbor(encodeBody('t1')),
      });
      const s1 = await send(conn, 'rl-receiver', 'after-refill');
      const t2 = await conn.request({
        op: 'topic_send',
        rid: rid(),
        topic: 'rl-topic',
        body: new RawCbor(encodeBody('t2')),
      });
      assert.equal(t1.op, 'ok', JSON.stringify(t1));
      assert.equal(s1.op, 'ok', JSON.stringify(s1));
      assert.equal(t2.code, 'rate_limited', JSON.stringify(t2));
      // other requests are not limited, and the connection is open
      assert.equal((await conn.request({ op: 'ping', rid: rid() })).op, 'pong');

      // Exactly the accepted messages are stored, in order.
      const { messages } = await c.store.readInbox('rl-receiver', 0, 100);
      const want = replies.filter((f) => f.op === 'ok').map((f) => f.mid);
      want.push(s1.mid);
      assert.deepEqual(
        messages.map((m) => m.mid),
        want,
      );
      conn.close();
    } finally {
      await c.stop();
    }
  });

  it('under the rate every message is stored', async () => {
    const c = await startTestCluster({ msgServers: 1, settings: { sendRate: { rate: 100, burst: 10 } } });
    try {
      const { conn } = await login(c, c.ms(0), 'steady');
      const mids: unknown[] = [];
      for (let i = 0; i < 30; i++) {
        const ok = await send(conn, 'steady-rcv', i);
        assert.equal(ok.op, 'ok', JSON.stringify(ok));
        mids.push(ok.mid);
        await sleep(15); // ~66/s, under 100/s
      }
      const { messages } = await c.store.readInbox('steady-rcv', 0, 100);
      assert.deepEqual(
        messages.map((m) => m.mid),
        mids,
      );
      conn.close();
    } finally {
      await c.stop();
    }
  });
});

describe('max connections', () => {
  it('the (N+1)th connection gets overloaded and is closed; the gateway skips full msg_servers', async () => {
    const c = await startTestCluster({ msgServers: 2, settings: { maxConnections: 2, beat: 50 } });
    const open: RawConn[] = [];
    try {
      const gw = await RawConn.connect(c.gateway);
      const route = async () => gw.request({ op: 'route', rid: rid() });
      const ids = (f: Frame) => (f.servers as { id: string }[] | undefined)?.map((s) => s.id) ?? [];
      await until(async () => ids(await route()).length === 2, 3000, 'both msg_servers listed');

      for (let i = 0; i < 2; i++) open.push(await RawConn.connect(c.ms(0)));
      const extra = await RawConn.connect(c.ms(0));
      const f = await extra.next(3000);
      assert.equal(f.op, 'error');
      assert.equal(f.code, 'overloaded');
      assert.equal(f.rid, undefined);
      assert.match(String(f.message), /full/);
      await extra.waitClosed(3000);
      // The ones inside still work.
      const { conn } = await login(c, c.ms(1), 'mc-user');
      open.push(conn);
      assert.equal((await open[0]!.request({ op: 'ping', rid: 5 })).op, 'pong');

      // ms-0 is full: the gateway no longer lists it.
      await until(async () => ids(await route()).join() === 'ms-1', 3000, 'ms-0 left out');

      // Both full: overloaded.
      open.push(await RawConn.connect(c.ms(1)));
      let last: Frame | undefined;
      await until(async () => (last = await route()).op === 'error', 3000, 'route overloaded');
      assert.equal(last!.code, 'overloaded');
      assert.match(String(last!.message), /full/);

      // A place frees up on ms-0: listed again, and a connection there is served.
      open.shift()!.close();
      await until(async () => ids(await route()).join() === 'ms-0', 3000, 'ms-0 back');
      const { conn: again } = await login(c, c.ms(0), 'mc-again');
      open.push(again);
      gw.close();
    } finally {
      for (const o of open) o.close();
      await c.stop();
    }
  });
});

describe('slow consumer', () => {
  it('a client that does not read is kicked slow; its messages wait in its inbox', async () => {
    const c = await startTestCluster({ msgServers: 1, settings: { maxOutBuffer: 128 * 1024 } });
    const kicks: ClientStatusItem[] = [];
    const unsubscribe = await c.ctx.bus.subscribe(c.ctx.channels.clientStatus, (p) => {
      for (const it of decodeItems<ClientStatusItem>(p)) if (it.k === 'kick') kicks.push(it);
    });
    try {
      const { conn: slow } = await login(c, c.ms(0), 'slowpoke', { device: 'phone' });
      const { conn: sender } = await login(c, c.ms(0), 'pusher');
      slow.sock.pause(); // reads nothing from now on
      const body = new Uint8Array(32 * 1024).fill(7);
      const mids: unknown[] = [];
      // 1 MiB at a time until the server gives up on it (kernel buffers take the first part).
      for (let batch = 0; batch < 16 && !kicks.some((k) => k.user === 'slowpoke'); batch++) {
        for (let i = 0; i < 32; i++) {
          const ok = await send(sender, 'slowpoke', body);
          assert.equal(ok.op, 'ok', JSON.stringify(ok));
          mids.push(ok.mid);
        }
        await sleep(50);
      }
      await until(() => kicks.some((k) => k.user === 'slowpoke'), 5000, 'the slow kick');
      const kick = kicks.find((k) => k.user === 'slowpoke')!;
      assert.equal(kick.reason, 'slow');
      assert.ok(mids.length >= 64, `pushed ${mids.length * 32} KiB`);
      // Messages sent after the kick surely never reached it.
      for (let i = 0; i < 5; i++) mids.push((await send(sender, 'slowpoke', `after-kick-${i}`)).mid);

      // Reading again: what the kernel held, maybe the kick frame, then the close.
      slow.sock.resume();
      await slow.waitClosed(8000);
      const got = slow.pending().filter((f) => f.op === 'msg');
      const kickFrame = slow.pending().find((f) => f.op === 'kick');
      if (kickFrame) assert.equal(kickFrame.reason, 'slow');
      assert.ok(got.length <= mids.length - 5, 'it got nothing sent after the kick');
      for (const [i, m] of got.entries()) assert.equal(m.seq, i + 1);

      // The sender was never disturbed.
      assert.equal((await sender.request({ op: 'ping', rid: 9 })).op, 'pong');

      // Logging in again: the whole inbox comes as the backlog, paced under maxOutBuffer.
      const { conn: back, ok } = await login(c, c.ms(0), 'slowpoke', { device: 'phone' });
      assert.equal(ok.seq, mids.length);
      assert.equal(ok.acked, 0);
      const backlog = await back.msgs(mids.length, 10_000);
      assert.deepEqual(
        backlog.map((m) => m.mid),
        mids,
      );
      assert.deepEqual(
        backlog.map((m) => m.seq),
        mids.map((_, i) => i + 1),
      );
      assert.equal((await back.request({ op: 'ping', rid: 10 })).op, 'pong');
      assert.equal(back.closed, false);

      // sync of the whole inbox in one page is paced too
      const r = rid();
      back.send({ op: 'sync', rid: r, after: 0, limit: 1000 });
      const synced: Frame[] = [];
      for (;;) {
        const f = await back.next(10_000, (x) => x.rid === r);
        if (f.op !== 'msg') {
          assert.equal(f.op, 'ok', JSON.stringify(f));
          assert.equal(f.last, mids.length);
          break;
        }
        synced.push(f);
      }
      assert.equal(synced.length, mids.length);
      back.close();
      sender.close();
    } finally {
      await unsubscribe();
      await c.stop();
    }
  });
});

describe('max topic members', () => {
  it('a join beyond maxTopicMembers is bad_request "topic is full"; members may join again; a leave frees a place', async () => {
    const c = await startTestCluster({ msgServers: 2, settings: { maxTopicMembers: 3 } });
    try {
      const conns: Record<string, RawConn> = {};
      for (const [i, u] of ['tm-a', 'tm-b', 'tm-c', 'tm-d'].entries()) conns[u] = (await login(c, c.ms(i % 2), u)).conn;
      assert.equal((await conns['tm-a']!.request({ op: 'topic_create', rid: rid(), topic: 'small' })).op, 'ok');
      assert.equal((await conns['tm-b']!.request({ op: 'topic_join', rid: rid(), topic: 'small' })).members, 2);
      assert.equal((await conns['tm-c']!.request({ op: 'topic_join', rid: rid(), topic: 'small' })).members, 3);
      const full = await conns['tm-d']!.request({ op: 'topic_join', rid: rid(), topic: 'small' });
      assert.equal(full.op, 'error');
      assert.equal(full.code, 'bad_request');
      assert.match(String(full.message), /topic is full \(3 members/);
      // not a member: cannot send
      const ns = await conns['tm-d']!.request({
        op: 'topic_send',
        rid: rid(),
        topic: 'small',
        body: new RawCbor(encodeBody('x')),
      });
      assert.equal(ns.code, 'not_a_member');
      // a member joining again is fine
      const again = await conns['tm-c']!.request({ op: 'topic_join', rid: rid(), topic: 'small' });
      assert.equal(again.op, 'ok', JSON.stringify(again));
      assert.equal(again.members, 3);
      // missing topic is still no_such_topic
      assert.equal(
        (await conns['tm-d']!.request({ op: 'topic_join', rid: rid(), topic: 'nope' })).code,
        'no_such_topic',
      );
      // a leave frees a place
      assert.equal((await conns['tm-b']!.request({ op: 'topic_leave', rid: rid(), topic: 'small' })).op, 'ok');
      const joined = await conns['tm-d']!.request({ op: 'topic_join', rid: rid(), topic: 'small' });
      assert.equal(joined.op, 'ok', JSON.stringify(joined));
      assert.equal(joined.members, 3);
      const page = await conns['tm-a']!.request({ op: 'topic_members', rid: rid(), topic: 'small' });
      assert.deepEqual(page.members, ['tm-a', 'tm-c', 'tm-d']);
      for (const conn of Object.values(conns)) conn.close();
    } finally {
      await c.stop();
    }
  });
});

describe('maxFrame', () => {
  it('a maxFrame of 1024 holds end to end: frames up to it work, 2000 bytes is frame_too_large and closes', async () => {
    const c = await startTestCluster({ msgServers: 1, settings: { maxFrame: 1024 } });
    try {
      const { conn } = await login(c, c.ms(0), 'mf-user');
      // a ~1000-byte frame (unknown fields are ignored) is fine
      const padded = {
        op: 'send',
        rid: rid(),
        to: 'mf-user',
        body: new RawCbor(encodeBody('hi')),
        pad: 'p'.repeat(900),
      };
      const ok = await conn.request(padded);
      assert.equal(ok.op, 'ok', JSON.stringify(ok));
      // body limit follows: maxFrame − 512
      const big = await send(conn, 'mf-user', new Uint8Array(600));
      assert.equal(big.code, 'bad_request');
      assert.equal((await send(conn, 'mf-user', new Uint8Array(400))).op, 'ok');
      // the length alone is enough for the error
      conn.writeRaw(Uint8Array.of(0x00, 0x00, 0x07, 0xd0)); // 2000
      const f = await conn.next(3000, (x) => x.op === 'error');
      assert.equal(f.code, 'frame_too_large');
      assert.equal(f.rid, undefined);
      assert.match(String(f.message), /1024/);
      await conn.waitClosed(3000);

      // The gateway takes the same setting.
      const gw = await RawConn.connect(c.gateway);
      gw.writeRaw(Uint8Array.of(0x00, 0x00, 0x07, 0xd0));
      assert.equal((await gw.next(3000)).code, 'frame_too_large');
      await gw.waitClosed(3000);
    } finally {
      await c.stop();
    }
  });
});

describe('requests waiting on one connection', () => {
  it('a client that sends far ahead of the replies is shed with overloaded, not buffered without bound', async () => {
    const c = await startTestCluster({ msgServers: 1, settings: { sendRate: { rate: 1_000_000, burst: 10_000_000 } } });
    try {
      const { conn } = await login(c, c.ms(0), 'flooder');
      const body = new RawCbor(encodeBody('x'.repeat(1000)));
      const { encodeFrame } = await import('../runtime/protocol/index.js');
      const frames = Buffer.concat(
        Array.from({ length: 20_000 }, (_, i) => encodeFrame({ op: 'send', rid: i + 10, to: 'sink', body })),
      );
      conn.writeRaw(frames);
      const err = await conn.next(15_000, (f) => f.op === 'error');
      assert.deepEqual([err.code, err.rid], ['overloaded', undefined]);
      await conn.waitClosed(15_000);
      assert.ok(conn.pending().filter((f) => f.op === 'ok').length < 20_000, 'shed before it handled everything');
      // the server is fine: another client works
      const { conn: other } = await login(c, c.ms(0), 'calm');
      assert.equal((await send(other, 'sink', 'still fine')).op, 'ok');
      other.close();
    } finally {
      await c.stop();
    }
  });
});
