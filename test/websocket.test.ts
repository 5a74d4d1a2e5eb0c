/**
 * The WebSocket transport from the outside (docs/protocol.md §1a), with a
 * raw client of the `ws` package: the same maps as over TCP, one per binary
 * message; the close codes; allowedOrigins; the gateway's `ws` in route
 * replies and `GET /v1/route` with CORS; TCP and WebSocket clients talking
 * across two msg_servers.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ClientStatusItem, decodeItems } from '../runtime/bus/payloads.js';
import { startTestCluster, type TestCluster } from './helpers/cluster.js';
import { RawConn, rid } from './helpers/raw.js';
import { sleep, until } from './helpers/wait.js';
import { RawWs } from './helpers/ws.js';

async function wsLogin(c: TestCluster, i: number, user: string, extra: Record<string, string> = {}): Promise<RawWs> {
  const ws = await RawWs.connect(c.ws(i));
  const ok = await ws.request({ op: 'login', rid: rid(), user, token: c.token(user), ...extra });
  assert.equal(ok.op, 'ok', JSON.stringify(ok));
  return ws;
}

async function tcpLogin(c: TestCluster, i: number, user: string): Promise<RawConn> {
  const conn = await RawConn.connect(c.ms(i));
  const ok = await conn.request({ op: 'login', rid: rid(), user, token: c.token(user) });
  assert.equal(ok.op, 'ok', JSON.stringify(ok));
  return conn;
}

describe('WebSocket: the same session over a second transport', () => {
  it('p2p both ways between a WebSocket and a TCP client on different msg_servers, in order', async () => {
    const c = await startTestCluster();
    try {
      assert.match(c.ws(0), /^ws:\/\/127\.0\.0\.1:\d+\/v1\/ws$/);
      const alice = await wsLogin(c, 0, 'alice');
      const bob = await tcpLogin(c, 1, 'bob');
      // Pipelined: ten sends without waiting, replies in order.
      const rids = Array.from({ length: 10 }, () => rid());
      for (const [i, r] of rids.entries()) alice.send({ op: 'send', rid: r, to: 'bob', body: `a${i}`, cid: `c${i}` });
      for (const r of rids) {
        const ok = await alice.next(3000, (f) => f.rid !== undefined);
        assert.equal(ok.rid, r);
        assert.equal(ok.op, 'ok');
      }
      const got = await bob.msgs(10);
      assert.deepEqual(
        got.map((m) => m.body),
        rids.map((_, i) => `a${i}`),
      );
      assert.deepEqual(
        got.map((m) => m.seq),
        rids.map((_, i) => i + 1),
      );
      for (const m of got) assert.equal(m.from, 'alice');

      const r = await bob.request({ op: 'send', rid: rid(), to: 'alice', body: new Uint8Array([1, 2, 3]) });
      assert.equal(r.op, 'ok');
      const [m] = await alice.msgs(1);
      assert.equal(m!.from, 'bob');
      assert.deepEqual(new Uint8Array(m!.body as Uint8Array), new Uint8Array([1, 2, 3]), 'bytes stay bytes');
      alice.close();
      bob.close();
    } finally {
      await c.stop();
    }
  });

  it('topics across transports and msg_servers; sync and the login backlog over WebSocket', async () => {
    const c = await startTestCluster();
    try {
      const ann = await wsLogin(c, 0, 'ann');
      const ben = await tcpLogin(c, 1, 'ben');
      assert.equal((await ann.request({ op: 'topic_create', rid: rid(), topic: 'room' })).op, 'ok');
      assert.equal((await ann.request({ op: 'topic_join', rid: rid(), topic: 'room' })).op, 'ok');
      assert.equal((await ben.request({ op: 'topic_join', rid: rid(), topic: 'room' })).op, 'ok');
      assert.equal((await ben.request({ op: 'topic_send', rid: rid(), topic: 'room', body: 'hi from tcp' })).op, 'ok');
      assert.equal((await ann.request({ op: 'topic_send', rid: rid(), topic: 'room', body: 'hi from ws' })).op, 'ok');
      const a = await ann.msgs(2);
      const b = await ben.msgs(2);
      assert.deepEqual(
        a.map((m) => m.body),
        ['hi from tcp', 'hi from ws'],
      );
      assert.deepEqual(
        b.map((m) => m.body),
        ['hi from tcp', 'hi from ws'],
      );
      assert.equal(a[0]!.topic, 'room');

      // Offline: messages wait; a WebSocket login gets them as its backlog, and sync reads them again.
      ann.close();
      await sleep(50);
      for (let i = 0; i < 3; i++) await ben.request({ op: 'send', rid: rid(), to: 'ann', body: `later${i}` });
      const back = await RawWs.connect(c.ws(1));
      const ok = await back.request({ op: 'login', rid: rid(), user: 'ann', token: c.token('ann') });
      assert.equal(ok.seq, 5);
      const backlog = await back.msgs(5);
      assert.deepEqual(
        backlog.map((m) => m.seq),
        [1, 2, 3, 4, 5],
      );
      const syncRid = rid();
      back.send({ op: 'sync', rid: syncRid, after: 2, limit: 10 });
      const pages = [];
      for (let i = 0; i < 3; i++) pages.push(await back.next(3000, (f) => f.rid === syncRid && f.op === 'msg'));
      const done = await back.next(3000, (f) => f.rid === syncRid && f.op === 'ok');
      assert.deepEqual(
        pages.map((m) => m.body),
        ['later0', 'later1', 'later2'],
      );
      assert.equal(done.last, 5);
      back.close();
      ben.close();
    } finally {
      await c.stop();
    }
  });
});

describe('WebSocket: errors and close codes (§1a)', () => {
  it('text → bad_frame, 1003; a binary non-map → bad_frame, 1007; other connections untouched', async () => {
    const c = await startTestCluster({ msgServers: 1 });
    try {
      const bystander = await wsLogin(c, 0, 'bystander');
      const t = await RawWs.connect(c.ws(0));
      t.sendText('{"op":"login"}');
      const e1 = await t.next();
      assert.equal(e1.op, 'error');
      assert.equal(e1.code, 'bad_frame');
      assert.equal(e1.rid, undefined);
      assert.equal(await t.waitClosed(), 1003);

      for (const bytes of [new Uint8Array([0x01]), new Uint8Array(0), new Uint8Array([0xa1, 0x62, 0x6f])]) {
        const b = await RawWs.connect(c.ws(0));
        b.sendBytes(bytes);
        const e = await b.next();
        assert.equal(e.code, 'bad_frame', `for ${Buffer.from(bytes).toString('hex')}`);
        assert.equal(await b.waitClosed(), 1007);
      }
      // Two maps in one message: trailing bytes after the map.
      const two = await RawWs.connect(c.ws(0));
      const { encodeFrame } = await import('../runtime/protocol/index.js');
      const one = encodeFrame({ op: 'ping', rid: 1 }).subarray(4);
      two.sendBytes(new Uint8Array([...one, ...one]));
      assert.equal((await two.next()).code, 'bad_frame');
      assert.equal(await two.waitClosed(), 1007);

      // Unknown op: an error, and the socket stays open.
      const u = await RawWs.connect(c.ws(0));
      const e = await u.request({ op: 'frobnicate', rid: 7 });
      assert.equal(e.code, 'unknown_op');
      const nl = await u.request({ op: 'send', rid: 8, to: 'x', body: 'y' });
      assert.equal(nl.code, 'not_logged_in');
      assert.equal((await u.request({ op: 'ping', rid: 9 })).op, 'pong');
      u.close();

      assert.equal((await bystander.request({ op: 'ping', rid: rid() })).op, 'pong');
      bystander.close();
    } finally {
      await c.stop();
    }
  });

  it('over maxFrame → frame_too_large, 1009; auth_failed → 1008; logout → 1000', async () => {
    const c = await startTestCluster({ msgServers: 1, settings: { maxFrame: 2048, maxOutBuffer: 65536 } });
    try {
      const big = await RawWs.connect(c.ws(0));
      big.send({ op: 'ping', rid: 1, pad: 'x'.repeat(3000) });
      const e = await big.next();
      assert.equal(e.code, 'frame_too_large');
      assert.equal(await big.waitClosed(), 1009);

      const bad = await RawWs.connect(c.ws(0));
      const f = await bad.request({ op: 'login', rid: 2, user: 'mallory', token: c.token('alice') });
      assert.equal(f.code, 'auth_failed');
      assert.equal(await bad.waitClosed(), 1008);

      const ws = await wsLogin(c, 0, 'carol');
      assert.equal((await ws.request({ op: 'logout', rid: 3 })).op, 'ok');
      assert.equal(await ws.waitClosed(), 1000);
    } finally {
      await c.stop();
    }
  });

  it('a second login of the device kicks the older (replaced, 1008); draining kicks with 1001', async () => {
    const c = await startTestCluster();
    try {
      const first = await wsLogin(c, 0, 'dave', { device: 'phone' });
      const second = await wsLogin(c, 1, 'dave', { device: 'phone' });
      const kick = await first.next(3000, (f) => f.op === 'kick');
      assert.equal(kick.reason, 'replaced');
      assert.equal(await first.waitClosed(), 1008);

      const stopping = c.msgServers[1]!.stop();
      const k2 = await second.next(3000, (f) => f.op === 'kick');
      assert.equal(k2.reason, 'draining');
      assert.equal(await second.waitClosed(), 1001);
      await stopping;
    } finally {
      await c.stop();
    }
  });

  it('the send rate holds per WebSocket (rate_limited, the socket stays); no login in time: 1008', async () => {
    const c = await startTestCluster({
      msgServers: 1,
      settings: { sendRate: { rate: 1, burst: 3 }, loginTimeout: 300 },
    });
    try {
      const ws = await wsLogin(c, 0, 'eve');
      const rids = Array.from({ length: 5 }, () => rid());
      for (const r of rids) ws.send({ op: 'send', rid: r, to: 'eve2', body: 'x' });
      const codes = [];
      for (const r of rids) {
        const f = await ws.next(3000, (x) => x.rid === r);
        codes.push(f.op === 'ok' ? 'ok' : f.code);
      }
      assert.deepEqual(codes, ['ok', 'ok', 'ok', 'rate_limited', 'rate_limited']);
      assert.equal((await ws.request({ op: 'ping', rid: rid() })).op, 'pong');
      ws.close();

      const lazy = await RawWs.connect(c.ws(0));
      const t0 = Date.now();
      assert.equal(await lazy.waitClosed(3000), 1008);
      assert.ok(Date.now() - t0 >= 250, 'closed at the login timeout, not before');
    } finally {
      await c.stop();
    }
  });

  it('beyond maxConnections: overloaded, 1008', async () => {
    const c = await startTestCluster({ msgServers: 1, settings: { maxConnections: 2 } });
    try {
      const a = await RawWs.connect(c.ws(0));
      const b = await RawConn.connect(c.ms(0));
      const third = await RawWs.connect(c.ws(0));
      const e = await third.next();
      assert.equal(e.code, 'overloaded');
      assert.equal(await third.waitClosed(), 1008);
      a.close();
      b.close();
    } finally {
      await c.stop();
    }
  });

  it('a client that reads nothing is kicked slow (maxOutBuffer counts the unsent bytes)', async () => {
    const c = await startTestCluster({ msgServers: 1, settings: { maxOutBuffer: 128 * 1024 } });
    const kicks: ClientStatusItem[] = [];
    const unsubscribe = await c.ctx.bus.subscribe(c.ctx.channels.clientStatus, (p) => {
      for (const it of decodeItems<ClientStatusItem>(p)) if (it.k === 'kick') kicks.push(it);
    });
    try {
      const slow = await wsLogin(c, 0, 'slowpoke');
      const sender = await tcpLogin(c, 0, 'pusher');
      slow.ws.pause();
      const body = new Uint8Array(32 * 1024).fill(7);
      for (let batch = 0; batch < 16 && !kicks.some((k) => k.user === 'slowpoke'); batch++) {
        for (let i = 0; i < 32; i++) {
          const ok = await sender.request({ op: 'send', rid: rid(), to: 'slowpoke', body });
          assert.equal(ok.op, 'ok');
        }
        await sleep(50);
      }
      await until(() => kicks.some((k) => k.user === 'slowpoke'), 5000, 'the slow kick');
      assert.equal(kicks.find((k) => k.user === 'slowpoke')!.reason, 'slow');
      slow.ws.resume();
      const code = await slow.waitClosed(8000);
      assert.ok(code === 1008 || code === 1006, `closed with ${code}`);
      sender.close();
    } finally {
      await unsubscribe();
      await c.stop();
    }
  });
});

describe('WebSocket: origins and the gateway', () => {
  it('allowedOrigins: a listed Origin and no Origin are served, another gets HTTP 403', async () => {
    const c = await startTestCluster({ msgServers: 1, settings: { allowedOrigins: ['https://app.example.com'] } });
    try {
      const good = await RawWs.connect(c.ws(0), { origin: 'https://app.example.com' });
      assert.equal((await good.request({ op: 'ping', rid: 1 })).op, 'pong');
      const none = await RawWs.connect(c.ws(0));
      assert.equal((await none.request({ op: 'ping', rid: 1 })).op, 'pong');
      await assert.rejects(
        RawWs.connect(c.ws(0), { origin: 'https://evil.example.com' }),
        (err: { status?: number }) => {
          assert.equal(err.status, 403);
          return true;
        },
      );
      good.close();
      none.close();

      // The gateway's CORS follows the same list.
      const gw = `http://${c.gatewayHttp}/v1/route`;
      const ok = await fetch(gw, { headers: { Origin: 'https://app.example.com' } });
      assert.equal(ok.status, 200);
      assert.equal(ok.headers.get('access-control-allow-origin'), 'https://app.example.com');
      await ok.arrayBuffer();
      const no = await fetch(gw, { headers: { Origin: 'https://evil.example.com' } });
      assert.equal(no.status, 403);
      assert.equal(no.headers.get('access-control-allow-origin'), null);
      await no.arrayBuffer();
    } finally {
      await c.stop();
    }
  });

  it('route replies name each msg_server ws URL, over TCP and over HTTP with CORS; 503 {code} when none', async () => {
    const c = await startTestCluster();
    try {
      const gw = await RawConn.connect(c.gateway);
      await until(
        async () => {
          const r = await gw.request({ op: 'route', rid: rid() });
          return (r.servers as { ws?: string }[]).every((s) => typeof s.ws === 'string');
        },
        5000,
        'beats carrying ws',
      );
      const r = await gw.request({ op: 'route', rid: rid(), user: 'u1' });
      const servers = r.servers as { id: string; addr: string; ws: string }[];
      assert.deepEqual(servers.map((s) => s.ws).sort(), [c.ws(0), c.ws(1)].sort());
      gw.close();

      const res = await fetch(`http://${c.gatewayHttp}/v1/route?user=u1`, { headers: { Origin: 'http://page.test' } });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('access-control-allow-origin'), 'http://page.test');
      const body = (await res.json()) as { servers: { ws: string }[]; heartbeat: number; backoff: { base: number } };
      assert.deepEqual(body.servers.map((s) => s.ws).sort(), [c.ws(0), c.ws(1)].sort());
      assert.equal(typeof body.heartbeat, 'number');
      assert.equal(typeof body.backoff.base, 'number');
      const pre = await fetch(`http://${c.gatewayHttp}/v1/route`, {
        method: 'OPTIONS',
        headers: { Origin: 'http://page.test', 'Access-Control-Request-Method': 'GET' },
      });
      assert.ok(pre.status === 204 || pre.status === 200, `preflight ${pre.status}`);
      assert.equal(pre.headers.get('access-control-allow-origin'), 'http://page.test');
      await pre.arrayBuffer();
      const bad = await fetch(`http://${c.gatewayHttp}/v1/route?user=${encodeURIComponent('no spaces')}`);
      assert.equal(bad.status, 400);
      assert.equal(((await bad.json()) as { code: string }).code, 'bad_request');

      // GET /v1/ws without an upgrade: 426.
      const plain = await fetch(c.ws(0).replace('ws://', 'http://'));
      assert.equal(plain.status, 426);
      await plain.arrayBuffer();

      for (const m of c.msgServers) await m.stop();
      await until(
        async () => (await fetch(`http://${c.gatewayHttp}/v1/route`).then((x) => x.status)) === 503,
        10_000,
        'route to answer 503',
      );
      const none = await fetch(`http://${c.gatewayHttp}/v1/route`);
      const nb = (await none.json()) as { code: string; message: string };
      assert.equal(nb.code, 'overloaded');
      assert.equal(typeof nb.message, 'string');
    } finally {
      await c.stop();
    }
  });
});

describe('WebSocket: what a msg_server advertises', () => {
  it('the advertised host with the HTTP port; a configured URL as given; none with ws: false', async () => {
    const c = await startTestCluster({ msgServers: 1 });
    const { startMsgServer } = await import('../runtime/roles/msg_server/index.js');
    const base = { role: 'msg_server', host: '127.0.0.1', port: 0, httpHost: '127.0.0.1', httpPort: 0 } as const;
    const started = [];
    try {
      const adv = await startMsgServer(c.ctx, { ...base, id: 'ms-adv', advertise: 'chat.fishchat.test:4000' });
      started.push(adv);
      const httpPort = adv.addresses.http!.split(':').pop();
      assert.equal(adv.addresses.ws, `ws://chat.fishchat.test:${httpPort}/v1/ws`);
      const tls = await startMsgServer(c.ctx, { ...base, id: 'ms-tls', ws: 'wss://chat.example.com/v1/ws' });
      started.push(tls);
      assert.equal(tls.addresses.ws, 'wss://chat.example.com/v1/ws');
      // The endpoint still answers on the HTTP port (the TLS proxy forwards there).
      const direct = await RawWs.connect(`ws://${tls.addresses.http}/v1/ws`);
      assert.equal((await direct.request({ op: 'ping', rid: 1 })).op, 'pong');
      direct.close();
      const off = await startMsgServer(c.ctx, { ...base, id: 'ms-off', ws: false });
      started.push(off);
      assert.equal(off.addresses.ws, undefined);
      await assert.rejects(RawWs.connect(`ws://${off.addresses.http}/v1/ws`), (err: { status?: number }) => {
        assert.equal(err.status, 404);
        return true;
      });
    } finally {
      for (const h of started) await h.stop();
      await c.stop();
    }
  });
});

describe('WebSocket: the gateway before the first beats', () => {
  it('seeds carry the ws URL they were started with, until a beat replaces them', async () => {
    const { ServerList } = await import('../runtime/roles/gateway/index.js');
    const now = Date.now();
    const list = new ServerList(2000, ['10.0.0.1:19000', '10.0.0.2:19000'], now, {
      '10.0.0.1:19000': 'ws://10.0.0.1:19100/v1/ws',
    });
    assert.deepEqual(list.live(now), [
      { id: '10.0.0.1:19000', addr: '10.0.0.1:19000', ws: 'ws://10.0.0.1:19100/v1/ws' },
      { id: '10.0.0.2:19000', addr: '10.0.0.2:19000' },
    ]);
    list.onBeat(
      {
        role: 'msg_server',
        id: 'ms-a',
        addr: '10.0.0.1:19000',
        ws: 'wss://chat.example.com/v1/ws',
        pid: 1,
        boot: 'b',
        uptime: 1,
        conns: 5,
        inRate: 0,
        outRate: 0,
        p50: 0,
        p99: 0,
        rss: 0,
        loop: 0,
        ts: now,
      },
      now,
    );
    assert.deepEqual(list.live(now), [
      { id: '10.0.0.2:19000', addr: '10.0.0.2:19000' },
      { id: 'ms-a', addr: '10.0.0.1:19000', ws: 'wss://chat.example.com/v1/ws' },
    ]);
  });
});
