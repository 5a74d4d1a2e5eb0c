/**
 * Unit tests of the client library: backoff, queue, and the connection and
 * FishClient against a small fake gateway and msg_server over real TCP
 * (written here with encodeFrame/FrameDecoder; the real roles have their own
 * integration tests).
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Backoff } from '../runtime/client/backoff.js';
import { FishClient, route, type Msg } from '../runtime/client/client.js';
import { Connection, type Frame } from '../runtime/client/connection.js';
import { FishError } from '../runtime/client/errors.js';
import { Queue } from '../runtime/client/queue.js';
import { getPlatform, type TcpListener, type TcpSocket } from '../runtime/platform/index.js';
import {
  decodeFrame,
  encodeBody,
  encodeFrame,
  FrameDecoder,
  RawCbor,
  type WireValue,
} from '../runtime/protocol/index.js';
import { sleep, until } from './helpers/wait.js';

const HOST = '127.0.0.1';
// --- a fake server over real TCP ----------------------------------------------

type Req = Record<string, unknown> & { op: string; rid?: number };
type Out = { [k: string]: WireValue | undefined };

class FakeConn {
  closed = false;
  state: Record<string, unknown> = {};
  constructor(readonly sock: TcpSocket) {}
  send(map: Out): void {
    this.sock.write(encodeFrame(map));
  }
}

const listeners: TcpListener[] = [];
after(async () => {
  for (const l of listeners) await l.close();
});

/** A TCP server speaking frames: handle(req, conn) for each request. */
async function fakeServer(handle: (req: Req, conn: FakeConn) => void, onClose?: (conn: FakeConn) => void) {
  const platform = await getPlatform();
  const conns: FakeConn[] = [];
  const listener = await platform.listenTcp({
    host: HOST,
    port: 0,
    onConnection: (sock) => {
      const conn = new FakeConn(sock);
      conns.push(conn);
      const decoder = new FrameDecoder(65536);
      sock.onData((chunk) => {
        decoder.feed(chunk, (payload) => handle(decodeFrame(payload) as Req, conn));
      });
      sock.onClose(() => {
        conn.closed = true;
        onClose?.(conn);
      });
    },
  });
  listeners.push(listener);
  return { listener, conns, addr: `${HOST}:${listener.port}` };
}

interface StoredMsg {
  seq: number;
  mid: string;
  from: string;
  to: string;
  body: unknown;
  ts: number;
}

/** A fake cluster: inboxes, acks, and any number of fake msg_servers and one gateway. */
class FakeCluster {
  epoch = 'e1';
  loginPush = 1000;
  inboxes = new Map<string, { seq: number; msgs: StoredMsg[] }>();
  acked = new Map<string, number>();
  requests: (Req & { server: string })[] = [];
  /** sessions with push on: user → conns */
  live = new Set<FakeConn>();
  servers: Awaited<ReturnType<typeof fakeServer>>[] = [];
  gateway!: Awaited<ReturnType<typeof fakeServer>>;
  /** servers the gateway lists, by index into `servers` */
  routeTo: number[] = [];
  /** login hook: called after the backlog was pushed */
  afterLogin?: (conn: FakeConn) => void;

  inbox(user: string) {
    let box = this.inboxes.get(user);
    if (!box) this.inboxes.set(user, (box = { seq: 0, msgs: [] }));
    return box;
  }

  append(from: string, to: string, body: unknown): StoredMsg {
    const box = this.inbox(to);
    const m: StoredMsg = { seq: ++box.seq, mid: `m${to}${box.seq}${this.epoch}`, from, to, body, ts: Date.now() };
    box.msgs.push(m);
    for (const c of this.live) {
      if (c.state.user === to && !c.closed && m.seq > (c.state.loginSeq as number)) c.send(this.frameOf(m));
    }
    return m;
  }

  frameOf(m: StoredMsg, rid?: number): Out {
    return {
      op: 'msg',
      rid,
      seq: m.seq,
      mid: m.mid,
      from: m.from,
      to: m.to,
      body: new RawCbor(encodeBody(m.body)),
      ts: m.ts,
    };
  }

  async start(nServers: number): Promise<void> {
    for (let i = 0; i < nServers; i++) {
      const id = `ms${i}`;
      this.servers.push(
        await fakeServer(
          (req, conn) => this.handle(id, req, conn),
          (conn) => this.live.delete(conn),
        ),
      );
    }
    this.routeTo = this.servers.map((_, i) => i);
    this.gateway = await fakeServer((req, conn) => {
      if (req.op !== 'route') return conn.send({ op: 'error', rid: req.rid, code: 'unknown_op', message: 'no' });
      if (this.routeTo.length === 0)
        return conn.send({ op: 'error', rid: req.rid, code: 'overloaded', message: 'none alive' });
      conn.send({
        op: 'ok',
        rid: req.rid,
        servers: this.routeTo.map((i) => ({ id: `ms${i}`, addr: this.servers[i]!.addr })),
        heartbeat: 200,
        backoff: { base: 10, max: 40 },
      });
    });
  }

  handle(server: string, req: Req, conn: FakeConn): unknown {
    this.requests.push({ ...req, server });
    const rid = req.rid;
    const user = conn.state.user as string | undefined;
    switch (req.op) {
      case 'login': {
        if (req.token !== undefined && req.token !== 'good') {
          conn.send({ op: 'error', rid, code: 'auth_failed', message: 'bad token' });
          conn.sock.end();
          return;
        }
        const u = req.user as string;
        const device = (req.device as string | undefined) ?? 'default';
        const box = this.inbox(u);
        const acked = this.acked.get(`${u}/${device}`) ?? 0;
        const first = box.msgs[0]?.seq ?? box.seq + 1;
        Object.assign(conn.state, { user: u, device, loginSeq: box.seq });
        conn.send({ op: 'ok', rid, user: u, device, server, seq: box.seq, acked, first, epoch: this.epoch });
        if (req.push === false) return;
        const from = Math.max(acked, first - 1);
        for (const m of box.msgs.filter((x) => x.seq > from).slice(0, this.loginPush)) conn.send(this.frameOf(m));
        this.live.add(conn);
        this.afterLogin?.(conn);
        return;
      }
      case 'ping':
        return conn.send({ op: 'pong', rid, seq: user ? this.inbox(user).seq : undefined });
      case 'ack': {
        const key = `${user}/${conn.state.device}`;
        this.acked.set(key, Math.max(this.acked.get(key) ?? 0, req.seq as number));
        return;
      }
      case 'send': {
        const m = this.append(user!, req.to as string, req.body);
        return conn.send({ op: 'ok', rid, mid: m.mid, seq: m.seq, ts: m.ts });
      }
      case 'sync': {
        const box = this.inbox(user!);
        const limit = (req.limit as number | undefined) ?? 100;
        const page = box.msgs.filter((m) => m.seq > (req.after as number)).slice(0, limit);
        for (const m of page) conn.send(this.frameOf(m, rid));
        const last = page.at(-1)?.seq ?? (req.after as number);
        return conn.send({
          op: 'ok',
          rid,
          last,
          more: last < box.seq,
          first: box.msgs[0]?.seq ?? box.seq + 1,
          epoch: this.epoch,
        });
      }
      case 'logout':
        conn.send({ op: 'ok', rid });
        conn.sock.end();
        return;
      case 'topic_join':
        return conn.send({ op: 'error', rid, code: 'no_such_topic', message: `no topic ${String(req.topic)}` });
      default:
        return conn.send({ op: 'error', rid, code: 'unknown_op', message: req.op });
    }
  }

  /** Every live session of `user` on any server. */
  sessions(user: string): FakeConn[] {
    return [...this.live].filter((c) => c.state.user === user && !c.closed);
  }
}

/** Reads n messages from an iterator, within ms. */
async function take(it: AsyncIterator<Msg>, n: number, ms = 5000): Promise<Msg[]> {
  const out: Msg[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), ms)));
  try {
    while (out.length < n) {
      const r = await Promise.race([it.next(), deadline]);
      if (r === null) throw new Error(`got ${out.length} of ${n} messages: ${out.map((m) => m.seq).join(',')}`);
      if (r.done) break;
      out.push(r.value);
    }
  } finally {
    clearTimeout(timer);
  }
  return out;
}

// --- backoff -------------------------------------------------------------------

describe('Backoff', () => {
  test('first attempt immediate, then exponential with full jitter, capped', () => {
    const top = new Backoff({ base: 100, max: 1000 }, () => 0.999999);
    assert.deepEqual(
      Array.from({ length: 7 }, () => top.next()),
      [0, 100, 200, 400, 800, 1000, 1000],
    );
    const bottom = new Backoff({ base: 100, max: 1000 }, () => 0);
    assert.deepEqual(
      Array.from({ length: 4 }, () => bottom.next()),
      [0, 0, 0, 0],
    );
    const b = new Backoff({ base: 100, max: 1000 });
    b.next();
    for (let i = 0; i < 200; i++) {
      const d = new Backoff({ base: 100, max: 1000 });
      d.next();
      d.next();
      const x = d.next(); // attempt 2: [0, 200]
      assert.ok(x >= 0 && x <= 200 && Number.isInteger(x));
    }
  });

  test('after draining: first wait in [0, base], then it doubles; reset starts over', () => {
    const b = new Backoff({ base: 100, max: 1000 }, () => 0.999999);
    b.next();
    b.next();
    b.next();
    assert.equal(b.afterDraining(), 100);
    assert.equal(b.next(), 200);
    b.reset();
    assert.equal(b.attempt, 0);
    assert.equal(b.next(), 0);
    const r = new Backoff({ base: 100, max: 1000 });
    for (let i = 0; i < 100; i++) {
      const x = r.afterDraining();
      assert.ok(x >= 0 && x <= 100);
    }
  });

  test('huge attempt counts do not overflow', () => {
    const b = new Backoff({ base: 1000, max: 30_000 }, () => 0.999999);
    for (let i = 0; i < 2000; i++) b.next();
    assert.equal(b.next(), 30_000);
  });
});

// --- queue ---------------------------------------------------------------------

describe('Queue', () => {
  test('items pushed before and during iteration arrive in order; end() ends the loop', async () => {
    const q = new Queue<number>();
    q.push(1);
    q.push(2);
    assert.equal(q.length, 2);
    const seen: number[] = [];
    const loop = (async () => {
      for await (const x of q) seen.push(x);
    })();
    await sleep(5);
    for (let i = 3; i <= 1000; i++) q.push(i);
    await sleep(5);
    q.push(1001);
    q.end();
    q.push(9999); // after end: dropped
    await loop;
    assert.deepEqual(
      seen,
      Array.from({ length: 1001 }, (_, i) => i + 1),
    );
    assert.equal(q.done, true);
  });

  test('end(error) throws after the items already pushed', async () => {
    const q = new Queue<string>();
    q.push('a');
    q.end(new Error('boom'));
    const seen: string[] = [];
    await assert.rejects(async () => {
      for await (const x of q) seen.push(x);
    }, /boom/);
    assert.deepEqual(seen, ['a']);
  });

  test('break stops the queue; one consumer only', async () => {
    const q = new Queue<number>();
    for (let i = 0; i < 10; i++) q.push(i);
    const it = q[Symbol.asyncIterator]();
    await it.next();
    await assert.rejects(q[Symbol.asyncIterator]().next(), /already has a consumer/);
    for await (const x of { [Symbol.asyncIterator]: () => it }) {
      if (x === 3) break;
    }
    assert.equal(q.done, true);
    q.push(11);
    assert.equal(q.length, 0);
  });

  test('a waiting consumer wakes on push', async () => {
    const q = new Queue<number>();
    const it = q[Symbol.asyncIterator]();
    const next = it.next();
    setTimeout(() => q.push(42), 20);
    assert.deepEqual(await next, { value: 42, done: false });
  });
});

// --- connection ----------------------------------------------------------------

describe('Connection', () => {
  test('pipelined requests matched by rid, whatever the reply order and the chunking', async () => {
    // Replies to each batch of 5 requests in reverse order, one byte per write turn.
    let batch: Req[] = [];
    let writing = Promise.resolve();
    const srv = await fakeServer((req, conn) => {
      batch.push(req);
      if (batch.length < 5) return;
      const bytes = Buffer.concat(
        batch.reverse().map((r) => encodeFrame({ op: 'ok', rid: r.rid, echo: r.n as number })),
      );
      batch = [];
      writing = writing.then(async () => {
        for (const b of bytes) {
          conn.sock.write(Uint8Array.of(b));
          await new Promise((r) => setImmediate(r));
        }
      });
    });
    const conn = await Connection.open(srv.addr, { requestTimeoutMs: 5000 });
    const replies = await Promise.all(Array.from({ length: 10 }, (_, i) => conn.request('echo', { n: i })));
    assert.deepEqual(
      replies.map((r) => r.echo),
      Array.from({ length: 10 }, (_, i) => i),
    );
    const rids = new Set(replies.map((r) => r.rid));
    assert.equal(rids.size, 10);
    conn.destroy();
  });

  test('many frames in one write; pushes, sync pages and errors go where they belong', async () => {
    const srv = await fakeServer((req, conn) => {
      if (req.op === 'sync') {
        const frames = [
          encodeFrame({ op: 'msg', seq: 99, mid: 'p', from: 'x', body: 'pushed', ts: 1 }),
          ...[1, 2, 3].map((s) =>
            encodeFrame({ op: 'msg', rid: req.rid, seq: s, mid: `m${s}`, from: 'b', body: `b${s}`, ts: 1 }),
          ),
          encodeFrame({ op: 'ok', rid: req.rid, last: 3, more: false }),
          encodeFrame({ op: 'error', code: 'rate_limited', message: 'slow down' }),
          encodeFrame({ op: 'kick', reason: 'future_reason' }),
        ];
        conn.sock.write(Buffer.concat(frames));
      } else if (req.op === 'fail') {
        conn.send({ op: 'error', rid: req.rid, code: 'bad_request', message: 'nope' });
      }
    });
    const pushes: Frame[] = [];
    const errors: FishError[] = [];
    const conn = await Connection.open(srv.addr, {
      requestTimeoutMs: 5000,
      onPush: (f) => pushes.push(f),
      onError: (e) => errors.push(e),
    });
    const pages: Frame[] = [];
    const ok = await conn.request('sync', { after: 0 }, { onMsg: (f) => pages.push(f) });
    assert.equal(ok.last, 3);
    assert.deepEqual(
      pages.map((p) => p.body),
      ['b1', 'b2', 'b3'],
    );
    await until(() => pushes.length === 2 && errors.length === 1, 2000, 'pushes');
    assert.equal(pushes[0]!.body, 'pushed');
    assert.equal(pushes[1]!.op, 'kick');
    assert.equal(errors[0]!.code, 'rate_limited');
    await assert.rejects(
      conn.request('fail'),
      (e: unknown) => e instanceof FishError && e.code === 'bad_request' && e.message === 'nope',
    );
    conn.destroy();
  });

  test('per-request timeout; a late reply is dropped, not pushed', async () => {
    const srv = await fakeServer((req, conn) => {
      if (req.op === 'slow') setTimeout(() => conn.send({ op: 'ok', rid: req.rid }), 150);
      else conn.send({ op: 'ok', rid: req.rid });
    });
    const pushes: Frame[] = [];
    const conn = await Connection.open(srv.addr, { requestTimeoutMs: 5000, onPush: (f) => pushes.push(f) });
    await assert.rejects(conn.request('slow', {}, { timeoutMs: 50 }), (e: unknown) => {
      assert.ok(e instanceof FishError);
      assert.equal(e.code, 'internal');
      assert.equal(e.local, 'timeout');
      return true;
    });
    await sleep(200);
    assert.equal(pushes.length, 0);
    assert.equal(conn.pending, 0);
    await conn.request('fast');
    conn.destroy();
  });

  test('pending requests reject with internal when the connection is lost', async () => {
    const srv = await fakeServer((req, conn) => {
      if (req.op === 'die') conn.sock.destroy();
    });
    let closed = 0;
    const conn = await Connection.open(srv.addr, { requestTimeoutMs: 5000, onClose: () => closed++ });
    const a = conn.request('wait');
    const b = conn.request('die');
    for (const p of [a, b]) {
      await assert.rejects(
        p,
        (e: unknown) => e instanceof FishError && e.code === 'internal' && e.local === 'disconnected',
      );
    }
    assert.equal(closed, 1);
    assert.equal(conn.closed, true);
    await assert.rejects(conn.request('again'), (e: unknown) => e instanceof FishError && e.local === 'disconnected');
  });

  test('an unreadable frame from the server fails the connection', async () => {
    const srv = await fakeServer((_req, conn) => {
      conn.sock.write(Uint8Array.of(0, 0, 0, 2, 0xff, 0xff));
    });
    const errors: FishError[] = [];
    const conn = await Connection.open(srv.addr, { requestTimeoutMs: 5000, onError: (e) => errors.push(e) });
    await assert.rejects(conn.request('x'), (e: unknown) => e instanceof FishError && e.local === 'disconnected');
    assert.equal(errors[0]?.code, 'bad_frame');
  });
});

// --- route and FishClient ---------------------------------------------------------

describe('route', () => {
  test('returns servers, heartbeat and backoff; overloaded when none', async () => {
    const cluster = new FakeCluster();
    await cluster.start(2);
    const r = await route(cluster.gateway.addr, { user: 'alice' });
    assert.deepEqual(
      r.servers.map((s) => s.id),
      ['ms0', 'ms1'],
    );
    assert.equal(r.servers[1]!.addr, cluster.servers[1]!.addr);
    assert.equal(r.heartbeat, 200);
    assert.deepEqual(r.backoff, { base: 10, max: 40 });
    cluster.routeTo = [];
    await assert.rejects(
      route(cluster.gateway.addr),
      (e: unknown) => e instanceof FishError && e.code === 'overloaded',
    );
    const route0 = cluster.requests.length; // the gateway's requests are not logged (not a msg_server)
    assert.equal(route0, 0);
  });

  test('a gateway that does not answer times out', async () => {
    const srv = await fakeServer(() => {});
    await assert.rejects(
      route(srv.addr, { timeoutMs: 100 }),
      (e: unknown) => e instanceof FishError && e.local === 'timeout',
    );
  });
});

describe('FishClient', () => {
  test('login, backlog in order, send, body types, errors, close with logout', async () => {
    const cluster = new FakeCluster();
    await cluster.start(1);
    for (let i = 1; i <= 5; i++) cluster.append('bob', 'alice', `hello ${i}`);
    const alice = await FishClient.connect({ gateway: cluster.gateway.addr, user: 'alice', device: 'phone' });
    assert.equal(alice.login.server, 'ms0');
    assert.equal(alice.login.seq, 5);
    assert.equal(alice.login.device, 'phone');
    assert.equal(alice.login.epoch, 'e1');
    assert.equal(alice.heartbeatMs, 200);
    const it = alice.messages()[Symbol.asyncIterator]();
    const backlog = await take(it, 5);
    assert.deepEqual(
      backlog.map((m) => [m.seq, m.body, m.from, m.to]),
      [1, 2, 3, 4, 5].map((s) => [s, `hello ${s}`, 'bob', 'alice']),
    );
    // Sending to oneself: delivered like any message.
    const body = { text: 'hi', n: 2 ** 40, raw: Uint8Array.of(1, 2, 3), list: [1, 'two'] };
    const sent = await alice.send('alice', body, { cid: 'c1' });
    assert.equal(sent.seq, 6);
    const [m6] = await take(it, 1);
    assert.equal(m6!.seq, 6);
    assert.equal(m6!.mid, sent.mid);
    // cbor-x gives byte strings as Buffer on Node, Uint8Array on Bun.
    const plain = (v: unknown) => ({ ...(v as object), raw: Uint8Array.from((v as { raw: Uint8Array }).raw) });
    assert.deepEqual(plain(m6!.body), body);
    const sendReq = cluster.requests.find((r) => r.op === 'send')!;
    assert.equal(sendReq.cid, 'c1');
    assert.deepEqual(plain(sendReq.body), body);
    // A server error rejects with its code.
    await assert.rejects(alice.topicJoin('nope'), (e: unknown) => e instanceof FishError && e.code === 'no_such_topic');
    assert.equal((await alice.ping()).seq, 6);
    const page = await alice.sync(2, 2);
    assert.deepEqual(
      page.messages.map((m) => m.seq),
      [3, 4],
    );
    assert.equal(page.more, true);
    await alice.close();
    assert.ok(cluster.requests.some((r) => r.op === 'logout'));
    assert.deepEqual(await it.next(), { value: undefined, done: true });
    await assert.rejects(alice.send('bob', 'late'), (e: unknown) => e instanceof FishError && e.code === 'internal');
  });

  test('redelivered messages never reach the app twice; ack and autoAck', async () => {
    const cluster = new FakeCluster();
    await cluster.start(1);
    for (let i = 1; i <= 3; i++) cluster.append('bob', 'alice', i);
    const alice = await FishClient.connect({ gateway: cluster.gateway.addr, user: 'alice', autoAck: true });
    const got: Msg[] = [];
    alice.on('message', (m) => got.push(m));
    await until(() => got.length === 3, 5000, 'backlog');
    const [session] = cluster.sessions('alice');
    // The server pushes 2 and 3 again (a repeated push): dropped.
    for (const m of cluster.inbox('alice').msgs.slice(1)) session!.send(cluster.frameOf(m));
    cluster.append('bob', 'alice', 4);
    await until(() => got.length === 4, 5000, 'message 4');
    await sleep(50);
    assert.deepEqual(
      got.map((m) => m.seq),
      [1, 2, 3, 4],
    );
    await until(() => cluster.acked.get('alice/default') === 4, 2000, 'autoAck');
    const acks = cluster.requests.filter((r) => r.op === 'ack');
    assert.ok(acks.length <= 3, `acks are coalesced (${acks.length})`);
    await alice.close();

    const manual = await FishClient.connect({ gateway: cluster.gateway.addr, user: 'alice', device: 'd2' });
    const got2: Msg[] = [];
    manual.on('message', (m) => got2.push(m));
    await until(() => got2.length === 4, 5000, 'backlog d2');
    manual.ack(3);
    await until(() => cluster.acked.get('alice/d2') === 3, 2000, 'manual ack');
    await manual.close();
  });

  test('a backlog cut at loginPush is completed with sync, live pushes held back, seq order kept', async () => {
    const cluster = new FakeCluster();
    cluster.loginPush = 10;
    await cluster.start(1);
    for (let i = 1; i <= 2500; i++) cluster.append('bob', 'alice', i);
    // A message arrives right after the login: pushed live, before the client's catch-up.
    cluster.afterLogin = () => {
      cluster.afterLogin = undefined;
      cluster.append('bob', 'alice', 2501);
    };
    const alice = await FishClient.connect({ gateway: cluster.gateway.addr, user: 'alice' });
    const it = alice.messages()[Symbol.asyncIterator]();
    const all = await take(it, 2501, 10000);
    assert.deepEqual(
      all.map((m) => m.seq),
      Array.from({ length: 2501 }, (_, i) => i + 1),
    );
    const syncs = cluster.requests.filter((r) => r.op === 'sync');
    assert.equal(syncs[0]!.after, 10);
    assert.equal(syncs.length, 3); // 1000 + 1000 + the rest
    await alice.close();
  });

  test('reconnects through the gateway to another msg_server after a lost connection; no repeats, no gaps', async () => {
    const cluster = new FakeCluster();
    await cluster.start(2);
    for (let i = 1; i <= 3; i++) cluster.append('bob', 'alice', i);
    const alice = await FishClient.connect({ gateway: cluster.gateway.addr, user: 'alice' });
    const events: string[] = [];
    alice.on('disconnect', (d) => events.push(`disconnect:${d.reason}:${d.willReconnect}`));
    alice.on('reconnect', (r) => events.push(`reconnect:${r.server}:${r.epochChanged}`));
    const it = alice.messages()[Symbol.asyncIterator]();
    assert.equal((await take(it, 3)).length, 3);
    assert.equal(alice.login.server, 'ms0');
    // ms0 dies: the gateway now lists ms1 only; messages arrive meanwhile.
    cluster.routeTo = [1];
    const pending = alice.request('wait_forever');
    for (const c of cluster.sessions('alice')) c.sock.destroy();
    await assert.rejects(
      pending,
      (e: unknown) => e instanceof FishError && e.code === 'internal' && e.local === 'disconnected',
    );
    cluster.append('bob', 'alice', 4);
    cluster.append('bob', 'alice', 5);
    const more = await take(it, 2);
    assert.deepEqual(
      more.map((m) => m.seq),
      [4, 5],
    );
    assert.equal(alice.login.server, 'ms1');
    assert.equal(alice.connected, true);
    assert.deepEqual(events, ['disconnect:connection lost:true', 'reconnect:ms1:false']);
    // Unacked 1..3 came again in the backlog at ms1 and were dropped.
    cluster.append('bob', 'alice', 6);
    assert.equal((await take(it, 1))[0]!.seq, 6);
    await alice.close();
  });

  test('kick replaced: no reconnect, the client ends', async () => {
    const cluster = new FakeCluster();
    await cluster.start(1);
    const alice = await FishClient.connect({ gateway: cluster.gateway.addr, user: 'alice' });
    const kicks: string[] = [];
    const disconnects: { reason: string; willReconnect: boolean }[] = [];
    alice.on('kick', (k) => kicks.push(k.reason));
    alice.on('disconnect', (d) => disconnects.push(d));
    const loop = (async () => {
      for await (const _ of alice.messages()) void _;
    })();
    const [s] = cluster.sessions('alice');
    s!.send({ op: 'kick', reason: 'replaced' });
    s!.sock.end();
    await loop;
    assert.deepEqual(kicks, ['replaced']);
    assert.deepEqual(disconnects, [{ reason: 'kick:replaced', willReconnect: false }]);
    assert.equal(alice.closed, true);
    await sleep(100);
    assert.equal(cluster.requests.filter((r) => r.op === 'login').length, 1);
  });

  test('kick draining: reconnects after a short random wait', async () => {
    const cluster = new FakeCluster();
    await cluster.start(2);
    const alice = await FishClient.connect({ gateway: cluster.gateway.addr, user: 'alice' });
    let reconnected = false;
    alice.on('reconnect', () => (reconnected = true));
    cluster.routeTo = [1];
    const [s] = cluster.sessions('alice');
    s!.send({ op: 'kick', reason: 'draining' });
    s!.sock.end();
    await until(() => reconnected, 5000, 'reconnect');
    assert.equal(alice.login.server, 'ms1');
    await alice.close();
  });

  test('a new epoch resets the seq state', async () => {
    const cluster = new FakeCluster();
    await cluster.start(1);
    for (let i = 1; i <= 3; i++) cluster.append('bob', 'alice', i);
    const alice = await FishClient.connect({ gateway: cluster.gateway.addr, user: 'alice' });
    const got: Msg[] = [];
    alice.on('message', (m) => got.push(m));
    let epochChanged: boolean | undefined;
    alice.on('reconnect', (r) => (epochChanged = r.epochChanged));
    await until(() => got.length === 3, 5000, 'backlog');
    // The store is wiped: a new epoch, seqs from 1 again.
    cluster.epoch = 'e2';
    cluster.inboxes.clear();
    cluster.acked.clear();
    cluster.append('carol', 'alice', 'after wipe');
    for (const c of cluster.sessions('alice')) c.sock.destroy();
    await until(() => got.length === 4, 5000, 'message after wipe');
    assert.equal(got[3]!.seq, 1);
    assert.equal(got[3]!.body, 'after wipe');
    assert.equal(epochChanged, true);
    assert.equal(alice.lastSeq, 1);
    await alice.close();
  });

  test('direct server, token, push:false, heartbeat pings', async () => {
    const cluster = new FakeCluster();
    await cluster.start(1);
    await assert.rejects(
      FishClient.connect({ server: cluster.servers[0]!.addr, user: 'alice', token: 'bad' }),
      (e: unknown) => e instanceof FishError && e.code === 'auth_failed',
    );
    let minted = 0;
    const bot = await FishClient.connect({
      server: cluster.servers[0]!.addr,
      user: 'bot',
      token: () => (minted++, 'good'),
      push: false,
      heartbeatMs: 30,
    });
    assert.equal(minted, 1);
    const login = cluster.requests.filter((r) => r.op === 'login').at(-1)!;
    assert.equal(login.push, false);
    assert.equal(login.token, 'good');
    await sleep(150);
    assert.ok(cluster.requests.filter((r) => r.op === 'ping' && r.server === 'ms0').length >= 3);
    await bot.close();
  });

  test('no reachable msg_server: connect rejects; reconnect:false ends on a lost connection', async () => {
    const cluster = new FakeCluster();
    await cluster.start(1);
    cluster.routeTo = [];
    await assert.rejects(
      FishClient.connect({ gateway: cluster.gateway.addr, user: 'alice' }),
      (e: unknown) => e instanceof FishError && e.code === 'overloaded',
    );
    cluster.routeTo = [0];
    const alice = await FishClient.connect({ gateway: cluster.gateway.addr, user: 'alice', reconnect: false });
    let info: { reason: string; willReconnect: boolean } | undefined;
    alice.on('disconnect', (d) => (info = d));
    for (const c of cluster.sessions('alice')) c.sock.destroy();
    await until(() => alice.closed, 5000, 'closed');
    assert.deepEqual(info, { reason: 'connection lost', willReconnect: false });
  });
});
