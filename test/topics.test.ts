/**
 * docs/protocol.md §4.3 over real TCP: topics across two msg_servers, online and
 * offline members, paging, idempotency, and membership across restarts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { encodeBody, RawCbor } from '../runtime/protocol/index.js';
import { RawConn, rid, type Frame } from './helpers/raw.js';
import { startTestCluster, type TestCluster } from './helpers/cluster.js';

let c: TestCluster;
let n = 0;
const uniq = (p: string) => `${p}${++n}_${Math.random().toString(36).slice(2, 7)}`;

async function login(addr: string, user: string, extra: Record<string, unknown> = {}) {
  const conn = await RawConn.connect(addr);
  const ok = await conn.request({ op: 'login', rid: rid(), user, token: c.token(user), ...(extra as object) });
  assert.equal(ok.op, 'ok', JSON.stringify(ok));
  return conn;
}
const req = (conn: RawConn, op: string, fields: Record<string, unknown>): Promise<Frame> =>
  conn.request({ op, rid: rid(), ...(fields as object) });
const tsend = (conn: RawConn, topic: string, body: unknown, cid?: string) =>
  conn.request({ op: 'topic_send', rid: rid(), topic, body: new RawCbor(encodeBody(body)), cid });

before(async () => {
  c = await startTestCluster({ msgServers: 2 });
});
after(async () => {
  await c.stop();
});

describe('topics (§4.3)', () => {
  it('create, join, members, leave and their errors', async () => {
    const t = uniq('room');
    const a = uniq('a');
    const b = uniq('b');
    const ca = await login(c.ms(0), a);
    const cb = await login(c.ms(1), b);
    assert.deepEqual(await req(ca, 'topic_join', { topic: t }).then((f) => f.code), 'no_such_topic');
    assert.equal((await req(ca, 'topic_members', { topic: t })).code, 'no_such_topic');
    assert.equal((await tsend(ca, t, 'x')).code, 'no_such_topic');
    assert.equal((await req(ca, 'topic_leave', { topic: t })).code, 'no_such_topic');
    const created = await req(ca, 'topic_create', { topic: t });
    assert.equal(created.op, 'ok');
    assert.equal((await req(cb, 'topic_create', { topic: t })).code, 'topic_exists');
    const joined = await req(cb, 'topic_join', { topic: t });
    assert.deepEqual([joined.op, joined.members], ['ok', 2]);
    assert.equal((await req(cb, 'topic_join', { topic: t })).members, 2, 'joining twice changes nothing');
    const m = await req(cb, 'topic_members', { topic: t });
    assert.deepEqual(m.members, [a, b].sort());
    assert.equal(m.more, false);
    assert.equal((await req(cb, 'topic_leave', { topic: t })).op, 'ok');
    assert.equal((await req(cb, 'topic_leave', { topic: t })).code, 'not_a_member');
    assert.equal((await tsend(cb, t, 'x')).code, 'not_a_member');
    for (const bad of [
      { topic: 'bad topic' },
      { topic: t, limit: 0 },
      { topic: t, limit: 1001 },
      { topic: t, after: 'no spaces!' },
    ]) {
      assert.equal((await req(ca, 'topic_members', bad)).code, 'bad_request', JSON.stringify(bad));
    }
    ca.close();
    cb.close();
  });

  it('topic_members pages in byte order of names', async () => {
    const t = uniq('big');
    const owner = await login(c.ms(0), 'Zed');
    assert.equal((await req(owner, 'topic_create', { topic: t })).op, 'ok');
    const names = ['alice', 'Bob', 'carol', '_x', '0zero', 'dave.d', 'e@e', 'f-f'];
    for (const u of names) {
      const conn = await login(c.ms(1), u, { push: false });
      assert.equal((await req(conn, 'topic_join', { topic: t })).op, 'ok');
      conn.close();
    }
    const all = [...names, 'Zed'].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    const got: string[] = [];
    let afterName: string | undefined;
    for (;;) {
      const page = await req(owner, 'topic_members', { topic: t, limit: 3, after: afterName });
      got.push(...(page.members as string[]));
      if (!page.more) break;
      afterName = got.at(-1);
    }
    assert.deepEqual(got, all);
    const fromMid = await req(owner, 'topic_members', { topic: t, after: 'b' });
    assert.deepEqual(
      fromMid.members,
      all.filter((x) => Buffer.compare(Buffer.from(x), Buffer.from('b')) > 0),
    );
    owner.close();
  });

  it('topic_send reaches every member once, sender included, across msg_servers, online and offline', async () => {
    const t = uniq('chat');
    const [a, b, d, off] = [uniq('a'), uniq('b'), uniq('d'), uniq('off')];
    const ca = await login(c.ms(0), a);
    const cb = await login(c.ms(1), b);
    const cd = await login(c.ms(0), d);
    assert.equal((await req(ca, 'topic_create', { topic: t })).op, 'ok');
    assert.equal((await req(cb, 'topic_join', { topic: t })).op, 'ok');
    assert.equal((await req(cd, 'topic_join', { topic: t })).op, 'ok');
    const coff = await login(c.ms(1), off, { push: false });
    assert.equal((await req(coff, 'topic_join', { topic: t })).op, 'ok');
    coff.close();
    const oks: Frame[] = [];
    for (let i = 1; i <= 5; i++) {
      const ok = await tsend(i % 2 ? ca : cb, t, { i });
      assert.equal(ok.op, 'ok');
      assert.equal(ok.tseq, i);
      oks.push(ok);
    }
    for (const conn of [ca, cb, cd]) {
      const got = await conn.msgs(5);
      assert.deepEqual(
        got.map((m) => m.tseq),
        [1, 2, 3, 4, 5],
      );
      assert.deepEqual(
        got.map((m) => m.mid),
        oks.map((o) => o.mid),
      );
      assert.deepEqual(
        got.map((m) => m.seq),
        [1, 2, 3, 4, 5],
      );
      for (const m of got) assert.equal(m.topic, t);
      assert.deepEqual(
        got.map((m) => m.from),
        [a, b, a, b, a],
      );
    }
    // the offline member finds them in its inbox at login
    const back = await login(c.ms(0), off);
    const got = await back.msgs(5);
    assert.deepEqual(
      got.map((m) => (m.body as { i: number }).i),
      [1, 2, 3, 4, 5],
    );
    // a topic message and a p2p message share the member's seq
    await ca.request({ op: 'send', rid: rid(), to: off, body: new RawCbor(encodeBody('direct')) });
    const [p2p] = await back.msgs(1);
    assert.equal(p2p!.seq, 6);
    assert.equal(p2p!.topic, undefined);
    for (const conn of [ca, cb, cd, back]) conn.close();
  });

  it('members of the moment: a later member does not get older messages, a leaver stops getting new ones', async () => {
    const t = uniq('moment');
    const [a, late] = [uniq('a'), uniq('late')];
    const ca = await login(c.ms(0), a);
    await req(ca, 'topic_create', { topic: t });
    await tsend(ca, t, 'before');
    const cl = await login(c.ms(1), late);
    await req(cl, 'topic_join', { topic: t });
    await tsend(ca, t, 'after');
    const [m] = await cl.msgs(1);
    assert.equal(m!.body, 'after');
    assert.equal(m!.tseq, 2);
    await req(cl, 'topic_leave', { topic: t });
    await tsend(ca, t, 'gone');
    assert.equal((await ca.msgs(3)).at(-1)!.body, 'gone');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(cl.pending().filter((f) => f.op === 'msg').length, 0);
    ca.close();
    cl.close();
  });

  it('cid on topic_send is scoped to (sender, topic)', async () => {
    const t = uniq('idem');
    const [a, b] = [uniq('a'), uniq('b')];
    const ca = await login(c.ms(0), a);
    const cb = await login(c.ms(1), b);
    await req(ca, 'topic_create', { topic: t });
    await req(cb, 'topic_join', { topic: t });
    const one = await tsend(ca, t, 'once', 'k1');
    const two = await tsend(ca, t, 'again', 'k1');
    assert.deepEqual([two.mid, two.tseq, two.ts], [one.mid, one.tseq, one.ts]);
    const other = await tsend(cb, t, 'other sender', 'k1');
    assert.equal(other.tseq, 2);
    const got = await cb.msgs(2);
    assert.deepEqual(
      got.map((m) => m.body),
      ['once', 'other sender'],
    );
    ca.close();
    cb.close();
  });
});

describe('topics across restarts', () => {
  it('membership and the topic log survive a restart', async () => {
    let cl = await startTestCluster({ msgServers: 1, secret: 's' });
    const dir = cl.dir;
    const prev = c;
    c = cl;
    try {
      const a = await login(cl.ms(0), 'ann');
      await req(a, 'topic_create', { topic: 'persist' });
      const b = await login(cl.ms(0), 'ben', { push: false });
      await req(b, 'topic_join', { topic: 'persist' });
      await tsend(a, 'persist', 'one');
      a.close();
      b.close();
      await cl.stop(false);
      cl = await startTestCluster({ msgServers: 1, dir, secret: 's' });
      c = cl;
      const b2 = await login(cl.ms(0), 'ben');
      assert.equal((await b2.msgs(1))[0]!.body, 'one');
      const ok = await tsend(b2, 'persist', 'two');
      assert.equal(ok.tseq, 2);
      assert.deepEqual((await req(b2, 'topic_members', { topic: 'persist' })).members, ['ann', 'ben']);
      b2.close();
    } finally {
      await cl.stop();
      c = prev;
    }
  });
});
