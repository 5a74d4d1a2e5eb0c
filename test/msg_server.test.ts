/**
 * docs/protocol.md §1–4.2 over real TCP against an in-process cluster with two
 * msg_servers, a router and a gateway (ports from the OS).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { MemoryFigure } from '../runtime/platform/types.js';
import { encodeBody, encodeFrame, RawCbor } from '../runtime/protocol/index.js';
import { signToken } from '../runtime/protocol/token.js';
import { RawConn, rid, type Frame } from './helpers/raw.js';
import { startTestCluster, type TestCluster } from './helpers/cluster.js';

let c: TestCluster;
let userN = 0;
const uniq = (p: string) => `${p}${++userN}_${Math.random().toString(36).slice(2, 7)}`;

async function login(
  addr: string,
  user: string,
  extra: Record<string, unknown> = {},
): Promise<{ conn: RawConn; ok: Frame }> {
  const conn = await RawConn.connect(addr);
  const r = rid();
  const ok = await conn.request({ op: 'login', rid: r, user, token: c.token(user), ...(extra as object) });
  assert.equal(ok.op, 'ok', JSON.stringify(ok));
  return { conn, ok };
}

async function sendBody(conn: RawConn, to: string, body: unknown, cid?: string): Promise<Frame> {
  return conn.request({ op: 'send', rid: rid(), to, body: new RawCbor(encodeBody(body)), cid });
}

before(async () => {
  c = await startTestCluster({ msgServers: 2 });
});
after(async () => {
  await c.stop();
});

describe('framing (§1)', () => {
  it('accepts a frame split byte by byte and many frames in one write', async () => {
    const conn = await RawConn.connect(c.ms(0));
    const a = encodeFrame({ op: 'ping', rid: 1 });
    for (const b of a) {
      conn.writeRaw(Uint8Array.of(b));
      await new Promise((r) => setImmediate(r));
    }
    assert.deepEqual(await conn.next(), { op: 'pong', rid: 1 });
    const many = Buffer.concat([2, 3, 4, 5].map((r) => encodeFrame({ op: 'ping', rid: r })));
    conn.writeRaw(many);
    for (const r of [2, 3, 4, 5]) assert.equal((await conn.next()).rid, r);
    conn.close();
  });

  it('length 0 is bad_frame and closes', async () => {
    const conn = await RawConn.connect(c.ms(0));
    conn.writeRaw(Uint8Array.of(0, 0, 0, 0));
    const f = await conn.next();
    assert.equal(f.op, 'error');
    assert.equal(f.code, 'bad_frame');
    assert.equal(f.rid, undefined);
    await conn.waitClosed();
  });

  it('a length over maxFrame is frame_too_large right after the 4 bytes, and closes', async () => {
    const conn = await RawConn.connect(c.ms(1));
    conn.writeRaw(Uint8Array.of(0x00, 0x01, 0x00, 0x01)); // 65537, nothing more sent
    const f = await conn.next();
    assert.equal(f.code, 'frame_too_large');
    await conn.waitClosed();
  });

  it('bytes that are not one CBOR map with a text op: bad_frame and close', async () => {
    const cases: number[][] = [
      [0xff], // break alone
      [0x83, 0x01, 0x02, 0x03], // an array
      [0xa1, 0x62, 0x6f, 0x70, 0x01], // op is not text
      [0xa0], // no op
      [0xa1, 0x01, 0x02], // integer key
      [0xa1, 0x62, 0x6f, 0x70, 0x64, 0x70, 0x69, 0x6e, 0x67, 0x00], // trailing byte
      [0xa1, 0x62, 0x6f, 0x70, 0x64, 0x70, 0x69, 0x6e], // truncated
    ];
    for (const bytes of cases) {
      const conn = await RawConn.connect(c.ms(0));
      const len = Buffer.alloc(4);
      len.writeUInt32BE(bytes.length);
      conn.writeRaw(Buffer.concat([len, Buffer.from(bytes)]));
      const f = await conn.next();
      assert.equal(f.code, 'bad_frame', `for ${Buffer.from(bytes).toString('hex')}`);
      assert.equal(f.rid, undefined);
      await conn.waitClosed();
    }
  });

  it('nesting deeper than 64 is bad_frame; 64 is fine', async () => {
    const nest = (depth: number) => {
      // frame map (level 1) with key "x" holding depth-1 nested arrays
      const inner = Buffer.concat([Buffer.alloc(depth - 1, 0x81), Buffer.from([0x01])]);
      return Buffer.concat([Buffer.from([0xa2, 0x62, 0x6f, 0x70, 0x64, 0x70, 0x69, 0x6e, 0x67, 0x61, 0x78]), inner]);
    };
    for (const [depth, ok] of [
      [64, true],
      [65, false],
    ] as const) {
      const conn = await RawConn.connect(c.ms(0));
      const body = nest(depth);
      const len = Buffer.alloc(4);
      len.writeUInt32BE(body.length);
      conn.writeRaw(Buffer.concat([len, body]));
      const f = await conn.next();
      assert.equal(f.op, ok ? 'pong' : 'error', `depth ${depth}`);
      conn.close();
    }
  });

  it('unknown op: unknown_op with rid, the connection stays open; unknown fields are ignored', async () => {
    const conn = await RawConn.connect(c.ms(0));
    const f = await conn.request({ op: 'teleport', rid: 77 });
    assert.deepEqual([f.op, f.code, f.rid], ['error', 'unknown_op', 77]);
    const p = await conn.request({ op: 'ping', rid: 78, future_field: [1, 2] });
    assert.equal(p.op, 'pong');
    conn.close();
  });
});

describe('gateway (§3)', () => {
  it('route lists both live msg_servers with heartbeat and backoff', async () => {
    const conn = await RawConn.connect(c.gateway);
    const f = await conn.request({ op: 'route', rid: 5, user: 'alice' });
    assert.equal(f.op, 'ok');
    const servers = f.servers as { id: string; addr: string }[];
    assert.equal(servers.length, 2);
    assert.deepEqual(new Set(servers.map((s) => s.addr)), new Set([c.ms(0), c.ms(1)]));
    assert.equal(f.heartbeat, 20000);
    assert.deepEqual(f.backoff, { base: 1000, max: 30000 });
    // the connection stays open for more requests
    const g = await conn.request({ op: 'route', rid: 6 });
    assert.equal(g.op, 'ok');
    const bad = await conn.request({ op: 'route', rid: 7, user: 'not valid!' });
    assert.equal(bad.code, 'bad_request');
    const unk = await conn.request({ op: 'login', rid: 8, user: 'x' });
    assert.equal(unk.code, 'unknown_op');
    conn.close();
  });
});

describe('/health memory figure', () => {
  type Memory = MemoryFigure;
  const health = async (query: string, auth?: string) => {
    const res = await fetch(`http://${c.msgServers[0]!.addresses.http}/health${query}`, {
      headers: auth === undefined ? {} : { authorization: auth },
      signal: AbortSignal.timeout(10_000),
    });
    return {
      status: res.status,
      body: (await res.json()) as { memory?: Memory; connections?: number; error?: { code: string } },
    };
  };
  const sane = (m: Memory | undefined): Memory => {
    assert.ok(m, 'memory is there');
    for (const k of ['rss', 'heapTotal', 'heapUsed'] as const)
      assert.ok(Number.isSafeInteger(m[k]) && m[k] > 0, `${k} ${m[k]}`);
    for (const k of ['external', 'arrayBuffers'] as const)
      assert.ok(Number.isSafeInteger(m[k]) && m[k] >= 0, `${k} ${m[k]}`);
    // The process's resident memory holds its JS heap (and this test's: the cluster runs in this process).
    assert.ok(m.rss > m.heapUsed, `rss ${m.rss} > heapUsed ${m.heapUsed}`);
    assert.ok(m.rss < 64 * 1024 ** 3, `rss ${m.rss}`);
    return m;
  };

  it('plain /health: the memory figure without a GC, no token needed', async () => {
    const r = await health('');
    assert.equal(r.status, 200);
    assert.equal(typeof r.body.connections, 'number');
    assert.equal(sane(r.body.memory).afterGc, false);
    assert.equal(sane((await health('?gc=0')).body.memory).afterGc, false);
  });

  it('?gc=1 needs an admin token, then measures right after a full GC', async () => {
    assert.equal((await health('?gc=1')).status, 401);
    assert.equal((await health('?gc=1', `Bearer ${c.token('alice')}`)).status, 401);
    const bad = await health('?gc=yes');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error?.code, 'bad_request');
    // ~40 MB of garbage in this process (the cluster runs in it): a full GC takes it back.
    let junk: unknown[] | undefined = [];
    for (let i = 0; i < 400_000; i++) junk.push({ i, s: `x${i}`, a: [i, i] });
    const withJunk = process.memoryUsage().heapUsed;
    junk = undefined;
    const admin = `Bearer ${signToken(c.secret, 'ops', { admin: true })}`;
    const r = await health('?gc=1', admin);
    assert.equal(r.status, 200);
    const m = sane(r.body.memory);
    assert.equal(m.afterGc, true);
    assert.ok(m.heapUsed < withJunk - 20e6, `heapUsed after the GC ${m.heapUsed}, with the garbage ${withJunk}`);
  });
});

describe('session (§4.1)', () => {
  it('before login: ping pongs without seq, other known ops are not_logged_in', async () => {
    const conn = await RawConn.connect(c.ms(0));
    assert.deepEqual(await conn.request({ op: 'ping', rid: 1 }), { op: 'pong', rid: 1 });
    for (const op of ['send', 'sync', 'logout']) {
      const f = await conn.request({ op, rid: 2, to: 'bob', body: 'x', after: 0 });
      assert.equal(f.code, 'not_logged_in', op);
    }
    const ack = conn.send({ op: 'ack', seq: 1 });
    void ack;
    const f = await conn.next();
    assert.equal(f.code, 'not_logged_in');
    assert.equal(f.rid, undefined);
    // Whatever its fields: a known op before login is not_logged_in, not bad_request (§2).
    for (const bad of [
      { op: 'send', rid: 3 },
      { op: 'sync', rid: 4, after: 'x' },
      { op: 'topic_join', rid: 5 },
    ]) {
      const e = await conn.request(bad);
      assert.equal(e.code, 'not_logged_in', JSON.stringify(bad));
    }
    // login itself: its fields are checked (bad_request), and the connection stays open.
    assert.equal((await conn.request({ op: 'login', rid: 6 })).code, 'bad_request');
    assert.equal((await conn.request({ op: 'ping', rid: 7 })).op, 'pong');
    conn.close();
  });

  it('login replies with user, device, server, seq, acked, first, epoch', async () => {
    const u = uniq('fresh');
    const { conn, ok } = await login(c.ms(0), u);
    assert.equal(ok.user, u);
    assert.equal(ok.device, 'default');
    assert.equal(ok.server, 'ms-0');
    assert.equal(ok.seq, 0);
    assert.equal(ok.acked, 0);
    assert.equal(ok.first, 1);
    assert.equal(typeof ok.epoch, 'string');
    const p = await conn.request({ op: 'ping', rid: 9 });
    assert.deepEqual(p, { op: 'pong', rid: 9, seq: 0 });
    const again = await conn.request({ op: 'login', rid: 10, user: u, token: c.token(u) });
    assert.equal(again.code, 'bad_request');
    assert.equal((await conn.request({ op: 'ping', rid: 11 })).seq, 0);
    conn.close();
  });

  it('auth_failed closes: missing, tampered, other user, expired, other secret, alg none', async () => {
    const u = uniq('auth');
    const good = c.token(u);
    const [h, p, s] = good.split('.') as [string, string, string];
    const none = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url') + '.' + p + '.';
    const tokens: (string | undefined)[] = [
      undefined,
      `${h}.${p}.${s.slice(0, -2)}AA`,
      c.token('someone_else'),
      signToken(c.secret, u, { ttlSeconds: -120 }),
      signToken('other-secret', u),
      none,
    ];
    for (const token of tokens) {
      const conn = await RawConn.connect(c.ms(0));
      const f = await conn.request({ op: 'login', rid: 3, user: u, token });
      assert.equal(f.code, 'auth_failed', String(token));
      await conn.waitClosed();
    }
  });

  it('fields are validated before the token: bad user is bad_request', async () => {
    const conn = await RawConn.connect(c.ms(0));
    const f = await conn.request({ op: 'login', rid: 3, user: 'bad user' });
    assert.equal(f.code, 'bad_request');
    assert.equal((await conn.request({ op: 'ping', rid: 4 })).op, 'pong');
    conn.close();
  });

  it('logout replies ok and the server closes', async () => {
    const { conn } = await login(c.ms(1), uniq('bye'));
    const f = await conn.request({ op: 'logout', rid: 12 });
    assert.deepEqual(f, { op: 'ok', rid: 12 });
    await conn.waitClosed();
  });
});

describe('messages (§4.2)', () => {
  it('send on the same server: ok {mid, seq, ts} then a push to the recipient', async () => {
    const a = uniq('a');
    const b = uniq('b');
    const { conn: ca } = await login(c.ms(0), a);
    const { conn: cb } = await login(c.ms(0), b);
    const ok = await sendBody(ca, b, 'hello');
    assert.equal(ok.op, 'ok');
    assert.equal(ok.seq, 1);
    assert.equal(typeof ok.mid, 'string');
    assert.ok(Number.isInteger(ok.ts) && (ok.ts as number) > 1.6e12);
    // ts travels as a CBOR unsigned integer (0x1b head), not a float
    const raw = (ok as unknown as { raw: Uint8Array }).raw;
    assert.ok(Buffer.from(raw).includes(Buffer.from([0x62, 0x74, 0x73, 0x1b])), 'ts is uint64');
    const [m] = await cb.msgs(1);
    assert.deepEqual({ ...m }, { op: 'msg', seq: 1, mid: ok.mid, from: a, to: b, body: 'hello', ts: ok.ts });
    ca.close();
    cb.close();
  });

  it('cross-server p2p reaches the recipient on the other msg_server', async () => {
    const a = uniq('x');
    const b = uniq('y');
    const { conn: ca } = await login(c.ms(0), a);
    const { conn: cb } = await login(c.ms(1), b);
    for (let i = 1; i <= 20; i++) assert.equal((await sendBody(ca, b, { n: i })).seq, i);
    const got = await cb.msgs(20);
    assert.deepEqual(
      got.map((m) => m.seq),
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    assert.deepEqual(
      got.map((m) => (m.body as { n: number }).n),
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    ca.close();
    cb.close();
  });

  it('pipelined sends in one write: replies in request order, seqs in that order, other ops wait their turn', async () => {
    const a = uniq('pipe');
    const b = uniq('pipe');
    const { conn: ca } = await login(c.ms(0), a);
    const { conn: cb } = await login(c.ms(1), b);
    // 150 sends with a ping, a bad send (no `to`) and an unknown op among them, all in one write
    const frames: Uint8Array[] = [];
    const expect: { rid: number; kind: 'ok' | 'pong' | 'bad_request' | 'unknown_op'; n?: number }[] = [];
    let n = 0;
    for (let i = 1; i <= 153; i++) {
      if (i === 40) {
        frames.push(encodeFrame({ op: 'ping', rid: i }));
        expect.push({ rid: i, kind: 'pong' });
      } else if (i === 80) {
        frames.push(encodeFrame({ op: 'send', rid: i, body: 'no to' }));
        expect.push({ rid: i, kind: 'bad_request' });
      } else if (i === 120) {
        frames.push(encodeFrame({ op: 'nope', rid: i }));
        expect.push({ rid: i, kind: 'unknown_op' });
      } else {
        n++;
        frames.push(encodeFrame({ op: 'send', rid: i, to: b, body: new RawCbor(encodeBody({ n })) }));
        expect.push({ rid: i, kind: 'ok', n });
      }
    }
    ca.writeRaw(Buffer.concat(frames));
    let seq = 0;
    for (const e of expect) {
      const f = await ca.next(5000);
      assert.equal(f.rid, e.rid, `reply ${e.rid} in order: ${JSON.stringify(f)}`);
      if (e.kind === 'ok') {
        assert.equal(f.op, 'ok');
        assert.equal(f.seq, ++seq, 'seq follows request order');
      } else if (e.kind === 'pong') assert.equal(f.op, 'pong');
      else assert.equal(f.code, e.kind);
    }
    const got = await cb.msgs(n);
    assert.deepEqual(
      got.map((m) => m.seq),
      Array.from({ length: n }, (_, i) => i + 1),
    );
    assert.deepEqual(
      got.map((m) => (m.body as { n: number }).n),
      Array.from({ length: n }, (_, i) => i + 1),
    );
    ca.close();
    cb.close();
  });

  it('passes the body on unchanged: integer map keys and byte strings', async () => {
    const a = uniq('raw');
    const b = uniq('raw');
    const { conn: ca } = await login(c.ms(0), a);
    const { conn: cb } = await login(c.ms(1), b);
    // {1: h'0102ff', -3: [true, null, 1.5], "k": 24(h'00')}
    const body = Buffer.from('a3' + '01' + '430102ff' + '22' + '83f5f6f93e00' + '616b' + 'd818' + '4100', 'hex');
    const ok = await ca.request({ op: 'send', rid: rid(), to: b, body: new RawCbor(body) });
    assert.equal(ok.op, 'ok');
    const [m] = await cb.msgs(1);
    const raw = Buffer.from((m as unknown as { raw: Uint8Array }).raw);
    assert.ok(raw.includes(body), 'the body bytes arrive exactly as sent');
    ca.close();
    cb.close();
  });

  it('a user may send to itself: every device with push gets it, the sender too', async () => {
    const a = uniq('self');
    const { conn: d1 } = await login(c.ms(0), a, { device: 'phone' });
    const { conn: d2 } = await login(c.ms(1), a, { device: 'laptop' });
    const ok = await sendBody(d1, a, 'note to self');
    assert.equal(ok.seq, 1);
    assert.equal((await d1.msgs(1))[0]!.mid, ok.mid);
    assert.equal((await d2.msgs(1))[0]!.mid, ok.mid);
    d1.close();
    d2.close();
  });

  it('offline delivery at login, redelivery without ack, none after ack', async () => {
    const a = uniq('off');
    const b = uniq('off');
    const { conn: ca } = await login(c.ms(0), a);
    for (let i = 1; i <= 3; i++) await sendBody(ca, b, `m${i}`);
    let { conn: cb, ok } = await login(c.ms(1), b);
    assert.equal(ok.seq, 3);
    let got = await cb.msgs(3);
    assert.deepEqual(
      got.map((m) => m.body),
      ['m1', 'm2', 'm3'],
    );
    cb.close();
    await new Promise((r) => setTimeout(r, 50));
    ({ conn: cb, ok } = await login(c.ms(0), b));
    got = await cb.msgs(3);
    assert.deepEqual(
      got.map((m) => m.seq),
      [1, 2, 3],
    );
    cb.send({ op: 'ack', seq: 2 });
    // ack takes effect before any later request is answered
    assert.equal((await cb.request({ op: 'ping', rid: 1 })).seq, 3);
    cb.close();
    await new Promise((r) => setTimeout(r, 50));
    ({ conn: cb, ok } = await login(c.ms(1), b));
    assert.equal(ok.acked, 2);
    got = await cb.msgs(1);
    assert.equal(got[0]!.seq, 3);
    // ack never moves back, and is capped at the newest seq
    cb.send({ op: 'ack', seq: 1 });
    cb.send({ op: 'ack', seq: 99 });
    await cb.request({ op: 'ping', rid: 2 });
    cb.close();
    await new Promise((r) => setTimeout(r, 50));
    ({ conn: cb, ok } = await login(c.ms(1), b));
    assert.equal(ok.acked, 3);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(cb.pending().filter((f) => f.op === 'msg').length, 0);
    ca.close();
    cb.close();
  });

  it('sync pages with last, more, first, epoch and carries the rid', async () => {
    const a = uniq('sy');
    const b = uniq('sy');
    const { conn: ca } = await login(c.ms(0), a);
    for (let i = 1; i <= 5; i++) await sendBody(ca, b, i);
    const { conn: cb, ok } = await login(c.ms(0), b, { push: false });
    cb.send({ op: 'sync', rid: 40, after: 0, limit: 2 });
    const m1 = await cb.next();
    const m2 = await cb.next();
    const done = await cb.next();
    assert.deepEqual([m1.rid, m1.seq, m2.rid, m2.seq], [40, 1, 40, 2]);
    assert.deepEqual(done, { op: 'ok', rid: 40, last: 2, more: true, first: 1, epoch: ok.epoch });
    cb.send({ op: 'sync', rid: 41, after: 2, limit: 3 });
    const rest = [await cb.next(), await cb.next(), await cb.next()];
    assert.deepEqual(
      rest.map((m) => m.seq),
      [3, 4, 5],
    );
    assert.deepEqual(await cb.next(), { op: 'ok', rid: 41, last: 5, more: false, first: 1, epoch: ok.epoch });
    assert.deepEqual(await cb.request({ op: 'sync', rid: 42, after: 5 }), {
      op: 'ok',
      rid: 42,
      last: 5,
      more: false,
      first: 1,
      epoch: ok.epoch,
    });
    for (const limit of [0, 1001])
      assert.equal((await cb.request({ op: 'sync', rid: 43, after: 0, limit })).code, 'bad_request');
    ca.close();
    cb.close();
  });

  it('cid makes send idempotent per (sender, recipient)', async () => {
    const a = uniq('cid');
    const b = uniq('cid');
    const d = uniq('cid');
    const { conn: ca } = await login(c.ms(0), a);
    const { conn: cb } = await login(c.ms(1), b);
    const first = await sendBody(ca, b, 'once', 'c-1');
    const { conn: ca2 } = await login(c.ms(1), a, { device: 'other' });
    const again = await sendBody(ca2, b, 'body not compared', 'c-1');
    assert.deepEqual([again.mid, again.seq, again.ts], [first.mid, first.seq, first.ts]);
    const other = await sendBody(ca, d, 'to d', 'c-1');
    assert.equal(other.seq, 1);
    assert.notEqual(other.mid, first.mid);
    const next = await sendBody(ca, b, 'two', 'c-2');
    assert.equal(next.seq, 2, 'the repeat spent no seq');
    const got = await cb.msgs(2);
    assert.deepEqual(
      got.map((m) => m.body),
      ['once', 'two'],
    );
    ca.close();
    ca2.close();
    cb.close();
  });

  it('two devices get every message; a second login of one device kicks the older (replaced)', async () => {
    const a = uniq('dev');
    const b = uniq('dev');
    const { conn: ca } = await login(c.ms(0), a);
    const { conn: phone } = await login(c.ms(0), b, { device: 'phone' });
    const { conn: laptop } = await login(c.ms(1), b, { device: 'laptop' });
    await sendBody(ca, b, 'hi both');
    assert.equal((await phone.msgs(1))[0]!.body, 'hi both');
    assert.equal((await laptop.msgs(1))[0]!.body, 'hi both');
    // same device again, on the other server: the older is kicked
    const { conn: phone2 } = await login(c.ms(1), b, { device: 'phone' });
    assert.deepEqual(await phone.next(3000, (f) => f.op === 'kick'), { op: 'kick', reason: 'replaced' });
    await phone.waitClosed();
    // and on the same server
    const { conn: phone3 } = await login(c.ms(1), b, { device: 'phone' });
    assert.deepEqual(await phone2.next(3000, (f) => f.op === 'kick'), { op: 'kick', reason: 'replaced' });
    await sendBody(ca, b, 'after');
    assert.equal((await phone3.msgs(2)).at(-1)!.body, 'after');
    ca.close();
    laptop.close();
    phone3.close();
  });

  it('push:false sessions get no backlog or pushes and neither kick nor get kicked', async () => {
    const a = uniq('bot');
    const b = uniq('bot');
    const { conn: cb } = await login(c.ms(0), b);
    const { conn: bot } = await login(c.ms(1), a, { push: false });
    const { conn: botSame } = await login(c.ms(1), b, { device: 'default', push: false });
    assert.equal((await sendBody(bot, b, 'from bot')).op, 'ok');
    assert.equal((await cb.msgs(1))[0]!.body, 'from bot');
    await sendBody(bot, a, 'to the bot itself');
    assert.equal((await bot.request({ op: 'ping', rid: 5 })).seq, 1);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(bot.pending().length, 0);
    assert.equal(botSame.pending().length, 0);
    assert.equal(cb.closed, false);
    cb.close();
    bot.close();
    botSame.close();
  });

  it('validates send fields', async () => {
    const { conn } = await login(c.ms(0), uniq('v'));
    const cases: Record<string, unknown>[] = [
      { to: 'bad id' },
      { to: '' },
      { to: 'x'.repeat(65) },
      { to: 'ok' }, // no body
      { to: 'ok', body: 'x', cid: '' },
      { to: 'ok', body: 'x', cid: 5 },
    ];
    for (const f of cases) {
      const r = await conn.request({ op: 'send', rid: 3, ...(f as object) });
      assert.equal(r.code, 'bad_request', JSON.stringify(f));
      assert.equal(r.rid, 3);
    }
    const big = await conn.request({ op: 'send', rid: 4, to: 'ok', body: 'x'.repeat(65536 - 400) });
    assert.equal(big.code, 'bad_request');
    conn.close();
  });
});
