/**
 * The Store rules of docs/architecture.md as a client sees them through the msg_server:
 * push cursor, login writes before it reads, gen, leases, first/epoch,
 * loginPush, maxInbox, heartbeat timeout, draining, durability.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { encodeBody, RawCbor } from '../runtime/protocol/index.js';
import { encodeItems, type DeliverItem } from '../runtime/bus/payloads.js';
import { RawConn, rid, type Frame } from './helpers/raw.js';
import { startTestCluster, type TestCluster } from './helpers/cluster.js';

async function login(c: TestCluster, addr: string, user: string, extra: Record<string, unknown> = {}) {
  const conn = await RawConn.connect(addr);
  const ok = await conn.request({ op: 'login', rid: rid(), user, token: c.token(user), ...(extra as object) });
  assert.equal(ok.op, 'ok', JSON.stringify(ok));
  return { conn, ok };
}
const sendBody = (conn: RawConn, to: string, body: unknown, cid?: string): Promise<Frame> =>
  conn.request({ op: 'send', rid: rid(), to, body: new RawCbor(encodeBody(body)), cid });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(pred: () => boolean | Promise<boolean>, timeoutMs = 3000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describe('push cursor', () => {
  it('drops repeats, fills gaps from the store, keeps seq order whatever path a push took', async () => {
    const c = await startTestCluster({ msgServers: 1 });
    try {
      const { conn } = await login(c, c.ms(0), 'bob');
      // Three messages enter the inbox without any push (as if every push was lost).
      const ms = [];
      for (let i = 1; i <= 3; i++)
        ms.push(
          await c.store.appendP2P({
            from: 'alice',
            to: 'bob',
            mid: `m${i}`,
            body: encodeBody(`b${i}`),
            ts: Date.now(),
          }),
        );
      const push = (seq: number) => {
        const item: DeliverItem = {
          k: 'msg',
          user: 'bob',
          msg: { seq, mid: `m${seq}`, from: 'alice', to: 'bob', body: encodeBody(`b${seq}`), ts: 1 },
        };
        c.ctx.bus.publish(c.ctx.channels.deliver('ms-0'), encodeItems([item]));
      };
      push(3); // a gap: 1 and 2 are read from the store first
      const got = await conn.msgs(3);
      assert.deepEqual(
        got.map((m) => m.seq),
        [1, 2, 3],
      );
      push(2); // late repeat: dropped
      push(3); // repeat: dropped
      await sleep(100);
      assert.equal(conn.pending().length, 0);
      conn.close();
    } finally {
      await c.stop();
    }
  });

  it('ping repairs a lost push before the pong', async () => {
    const c = await startTestCluster({ msgServers: 1 });
    try {
      const { conn } = await login(c, c.ms(0), 'carol');
      await c.store.appendP2P({ from: 'dave', to: 'carol', mid: 'lost-1', body: encodeBody('lost'), ts: Date.now() });
      conn.send({ op: 'ping', rid: 7 });
      const m = await conn.next();
      assert.equal(m.op, 'msg');
      assert.equal(m.mid, 'lost-1');
      assert.deepEqual(await conn.next(), { op: 'pong', rid: 7, seq: 1 });
      conn.close();
    } finally {
      await c.stop();
    }
  });

  it('every message reaches a receiver that logs in and out under traffic exactly once, in order', async () => {
    const c = await startTestCluster({ msgServers: 2 });
    try {
      const { conn: sender } = await login(c, c.ms(0), 'sender');
      const N = 300;
      let sent = 0;
      const sending = (async () => {
        while (sent < N) {
          const ok = await sendBody(sender, 'racer', sent + 1);
          assert.equal(ok.seq, ++sent);
        }
      })();
      const seen: number[] = [];
      let acked = 0;
      for (let round = 0; round < 6; round++) {
        const { conn, ok } = await login(c, c.ms(round % 2), 'racer');
        assert.equal(ok.acked, acked);
        const until = Math.min(N, (ok.seq as number) + 20);
        while (seen.length === 0 || seen.at(-1)! < until) {
          const [m] = await conn.msgs(1, 5000);
          const expect = (seen.at(-1) ?? 0) + 1;
          // after a reconnect the backlog restarts at the ack point: skip what we have
          if ((m!.seq as number) < expect) continue;
          assert.equal(m!.seq, expect, 'no gap, no reorder');
          seen.push(m!.seq as number);
        }
        conn.send({ op: 'ack', seq: seen.at(-1)! });
        await conn.request({ op: 'ping', rid: rid() });
        acked = seen.at(-1)!;
        conn.close();
        if (seen.at(-1)! >= N) break;
      }
      await sending;
      assert.ok(seen.at(-1)! >= Math.min(N, 120));
      sender.close();
    } finally {
      await c.stop();
    }
  });
});

describe('inbox limits', () => {
  it('maxInbox trims oldest first: first moves, seq never goes back; loginPush cuts the backlog', async () => {
    const c = await startTestCluster({ msgServers: 1, settings: { maxInbox: 5, loginPush: 2 } });
    try {
      const { conn: a } = await login(c, c.ms(0), 'a');
      for (let i = 1; i <= 8; i++) await sendBody(a, 'b', i);
      const { conn: b, ok } = await login(c, c.ms(0), 'b');
      assert.deepEqual([ok.seq, ok.first, ok.acked], [8, 4, 0]);
      // backlog: only loginPush (2) messages from first
      const backlog = await b.msgs(2);
      assert.deepEqual(
        backlog.map((m) => m.seq),
        [4, 5],
      );
      // live pushes carry what comes after the login seq
      await sendBody(a, 'b', 9);
      const live = await b.msgs(1);
      assert.equal(live[0]!.seq, 9);
      // the rest up to the login seq comes with sync; after below first-1 starts at first
      b.send({ op: 'sync', rid: 3, after: 0, limit: 1000 });
      const synced: number[] = [];
      for (;;) {
        const f = await b.next();
        if (f.op === 'ok') {
          assert.equal(f.first, 5, 'the 9th append trimmed seq 4');
          assert.equal(f.more, false);
          break;
        }
        synced.push(f.seq as number);
      }
      assert.deepEqual(synced, [5, 6, 7, 8, 9]);
      a.close();
      b.close();
    } finally {
      await c.stop();
    }
  });
});

describe('sessions', () => {
  it('an idle connection is closed after 2.5 × heartbeat and its directory entry removed', async () => {
    const c = await startTestCluster({ msgServers: 1, settings: { heartbeat: 200 } });
    try {
      const { conn } = await login(c, c.ms(0), 'idle');
      assert.equal((await c.store.sessions('idle')).length, 1);
      const t0 = Date.now();
      await conn.waitClosed(3000);
      assert.ok(Date.now() - t0 >= 450, 'not before 2.5 × heartbeat');
      await until(async () => (await c.store.sessions('idle')).length === 0, 2000, 'directory cleanup');
      // a pinging connection stays
      const { conn: live } = await login(c, c.ms(0), 'live');
      for (let i = 0; i < 8; i++) {
        await sleep(100);
        await live.request({ op: 'ping', rid: rid() });
      }
      assert.equal(live.closed, false);
      live.close();
    } finally {
      await c.stop();
    }
  });

  it('a msg_server whose lease expired re-registers its sessions', async () => {
    const c = await startTestCluster({ msgServers: 1, settings: { beat: 100 } });
    try {
      const { conn } = await login(c, c.ms(0), 'leased');
      const [entry] = await c.store.sessions('leased');
      assert.ok(entry);
      // what the manager does for an expired lease
      await c.store.removeServerSessions(entry.server, entry.boot);
      assert.equal((await c.store.sessions('leased')).length, 0);
      await until(async () => (await c.store.sessions('leased')).length === 1, 3000, 're-registration');
      // and messages still arrive by push
      const { conn: s } = await login(c, c.ms(0), 'someone');
      await sendBody(s, 'leased', 'still here');
      assert.equal((await conn.msgs(1))[0]!.body, 'still here');
      conn.close();
      s.close();
    } finally {
      await c.stop();
    }
  });

  it('a newer login elsewhere is noticed at ping even if the kick push was lost', async () => {
    const c = await startTestCluster({ msgServers: 1 });
    try {
      const { conn } = await login(c, c.ms(0), 'twin');
      // a login of the same device that this server never hears about
      await c.store.login({ user: 'twin', device: 'default', server: 'elsewhere', boot: 'b', push: true });
      conn.send({ op: 'ping', rid: 1 });
      assert.deepEqual(await conn.next(3000, (f) => f.op === 'kick'), { op: 'kick', reason: 'replaced' });
      await conn.waitClosed();
    } finally {
      await c.stop();
    }
  });

  it('stopping a msg_server kicks its clients with draining; nothing is lost', async () => {
    const c = await startTestCluster({ msgServers: 2 });
    try {
      const { conn: a } = await login(c, c.ms(0), 'drainer');
      const { conn: b } = await login(c, c.ms(1), 'stayer');
      await c.msgServers[0]!.stop();
      assert.deepEqual(await a.next(3000, (f) => f.op === 'kick'), { op: 'kick', reason: 'draining' });
      await a.waitClosed();
      assert.equal((await c.store.sessions('drainer')).length, 0);
      await sendBody(b, 'drainer', 'while away');
      const { conn: a2, ok } = await login(c, c.ms(1), 'drainer');
      assert.equal(ok.seq, 1);
      assert.equal((await a2.msgs(1))[0]!.body, 'while away');
      a2.close();
      b.close();
    } finally {
      await c.stop();
    }
  });
});

describe('durability', () => {
  it('a restart on the same directory keeps unacked messages and continues seq and epoch', async () => {
    let c = await startTestCluster({ msgServers: 2, secret: 'fixed-secret' });
    const dir = c.dir;
    const { conn: a } = await login(c, c.ms(0), 'writer');
    const oks = [];
    for (let i = 1; i <= 10; i++) oks.push(await sendBody(a, 'reader', `before ${i}`));
    const { conn: r, ok: first } = await login(c, c.ms(1), 'reader');
    await r.msgs(10);
    r.send({ op: 'ack', seq: 4 });
    await r.request({ op: 'ping', rid: 1 });
    a.close();
    r.close();
    await c.stop(false);

    c = await startTestCluster({ msgServers: 2, dir, secret: 'fixed-secret' });
    try {
      const { conn: r2, ok } = await login(c, c.ms(0), 'reader');
      assert.deepEqual([ok.seq, ok.acked, ok.epoch], [10, 4, first.epoch]);
      const again = await r2.msgs(6);
      assert.deepEqual(
        again.map((m) => m.seq),
        [5, 6, 7, 8, 9, 10],
      );
      assert.deepEqual(
        again.map((m) => m.mid),
        oks.slice(4).map((o) => o.mid),
      );
      const { conn: a2 } = await login(c, c.ms(1), 'writer');
      const next = await sendBody(a2, 'reader', 'after');
      assert.equal(next.seq, 11, 'seq continues, never reused');
      // cid records survive too
      const dup = await sendBody(a2, 'reader', 'x', 'cid-z');
      const dup2 = await sendBody(a2, 'reader', 'x', 'cid-z');
      assert.equal(dup.seq, dup2.seq);
      r2.close();
      a2.close();
    } finally {
      await c.stop();
    }
  });
});
