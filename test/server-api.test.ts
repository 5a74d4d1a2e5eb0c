/**
 * The server API for backends (README "Server API") over real HTTP on every
 * msg_server of a test cluster (embedded, or Redis with FISHCHAT_TEST_REDIS):
 * sends reach online users (pushed, on either msg_server) and offline ones
 * (at login), cid idempotency across msg_servers, topics, inbox and sessions,
 * kicks across msg_servers, a JSON error naming the field for every bad
 * request, 401 without an admin token. `fishchat send --http` through the CLI.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadCluster } from '../runtime/cluster/index.js';
import { signToken } from '../runtime/protocol/token.js';
import { CliProcess, fishchat, initCluster, ROOT } from './helpers/cli.js';
import { startTestCluster, type TestCluster } from './helpers/cluster.js';
import { closedPort } from './helpers/net.js';
import { type Frame, RawConn, rid } from './helpers/raw.js';
import { RawWs } from './helpers/ws.js';

const MAX_TOPIC_MEMBERS = 3;
const MAX_FRAME = 4096;

let c: TestCluster;
let admin: string;
/** the server API base URL of msg_server i */
let api: (i: number) => string;
let n = 0;
const uniq = (p: string) => `${p}${++n}_${Math.random().toString(36).slice(2, 7)}`;

/** A JSON answer, checked field by field. */
// biome-ignore lint/suspicious/noExplicitAny: JSON from the wire
type Json = any;

interface Answer {
  status: number;
  body: Json;
  headers: Headers;
}

/** One request to msg_server i's API, with the admin token unless `token` says otherwise (null: none). */
async function call(
  i: number,
  method: string,
  path: string,
  body?: unknown,
  token: string | null = admin,
  raw?: string,
): Promise<Answer> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  const res = await fetch(api(i) + path, {
    method,
    headers,
    body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
  });
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/, `${method} ${path}`);
  return { status: res.status, body: await res.json(), headers: res.headers };
}

async function ok(i: number, method: string, path: string, body?: unknown, status = 200): Promise<Json> {
  const r = await call(i, method, path, body);
  assert.equal(r.status, status, `${method} ${path}: ${JSON.stringify(r.body)}`);
  return r.body;
}

async function login(i: number, user: string, extra: Record<string, unknown> = {}): Promise<RawConn> {
  const conn = await RawConn.connect(c.ms(i));
  const r = await conn.request({ op: 'login', rid: rid(), user, token: c.token(user), ...(extra as object) });
  assert.equal(r.op, 'ok', JSON.stringify(r));
  return conn;
}

/** A received frame's bytes as the server sent them (the body's bytes are in there unchanged). */
function rawFrame(f: Frame): Buffer {
  return Buffer.from((f as unknown as { raw: Uint8Array }).raw);
}

before(async () => {
  c = await startTestCluster({
    msgServers: 2,
    settings: { maxTopicMembers: MAX_TOPIC_MEMBERS, maxFrame: MAX_FRAME },
  });
  admin = signToken(c.secret, 'backend', { admin: true });
  api = (i) => `http://${c.msgServers[i]!.addresses.http}`;
});
after(async () => {
  await c.stop();
});

describe('POST /v1/messages', () => {
  it('reaches online users, pushed, on the other msg_server and on this one', async () => {
    const bob = uniq('bob');
    const far = await login(1, bob, { device: 'phone' });
    const near = await login(0, bob, { device: 'laptop' });
    const sent = await ok(0, 'POST', '/v1/messages', { from: 'alice', to: bob, body: { text: 'hi', n: 1 } });
    assert.equal(typeof sent.mid, 'string');
    assert.equal(sent.seq, 1);
    assert.ok(Math.abs(sent.ts - Date.now()) < 10_000);
    for (const conn of [far, near]) {
      const [m] = await conn.msgs(1);
      assert.deepEqual(
        { seq: m!.seq, mid: m!.mid, from: m!.from, to: m!.to, body: m!.body, ts: m!.ts },
        { seq: 1, mid: sent.mid, from: 'alice', to: bob, body: { text: 'hi', n: 1 }, ts: sent.ts },
      );
    }
    // Text stays text.
    const second = await ok(1, 'POST', '/v1/messages', { from: 'carol', to: bob, body: 'plain text' });
    assert.equal(second.seq, 2);
    for (const conn of [far, near]) {
      const [m] = await conn.msgs(1);
      assert.deepEqual([m!.seq, m!.from, m!.body], [2, 'carol', 'plain text']);
    }
    far.close();
    near.close();
  });

  it('reaches an offline user at login; bodyCbor passes bytes and integer keys unchanged', async () => {
    const dave = uniq('dave');
    // {1: h'010203', "k": [true, null]}
    const cbor = Buffer.from([0xa2, 0x01, 0x43, 1, 2, 3, 0x61, 0x6b, 0x82, 0xf5, 0xf6]);
    const a = await ok(0, 'POST', '/v1/messages', { from: 'erin', to: dave, body: ['a', 1.5, -3] });
    const b = await ok(1, 'POST', '/v1/messages', { from: 'erin', to: dave, bodyCbor: cbor.toString('base64') });
    assert.deepEqual([a.seq, b.seq], [1, 2]);
    const conn = await login(1, dave);
    const [m1, m2] = await conn.msgs(2);
    assert.deepEqual([m1!.seq, m1!.mid, m1!.body], [1, a.mid, ['a', 1.5, -3]]);
    assert.deepEqual([m2!.seq, m2!.mid], [2, b.mid]);
    assert.ok(rawFrame(m2!).includes(cbor), 'the body bytes are passed on as sent');
    const inbox = await ok(0, 'GET', `/v1/users/${dave}/inbox`);
    assert.equal(inbox.messages[1].bodyCbor, cbor.toString('base64'));
    assert.deepEqual(inbox.messages[0].body, ['a', 1.5, -3]);
    conn.close();
  });

  it('a repeated cid is stored once (same mid and seq), on either msg_server; another cid is another message', async () => {
    const frank = uniq('frank');
    const msg = { from: 'gina', to: frank, body: 'once', cid: 'job-1' };
    const first = await ok(0, 'POST', '/v1/messages', msg);
    const again = await ok(1, 'POST', '/v1/messages', { ...msg, body: 'the body is not compared' });
    assert.deepEqual(again, first);
    const other = await ok(0, 'POST', '/v1/messages', { ...msg, cid: 'job-2' });
    assert.equal(other.seq, first.seq + 1);
    // The same cid from another sender is another message too.
    const otherSender = await ok(0, 'POST', '/v1/messages', { ...msg, from: 'hank' });
    assert.equal(otherSender.seq, first.seq + 2);
    const inbox = await ok(1, 'GET', `/v1/users/${frank}/inbox`);
    assert.deepEqual(
      inbox.messages.map((m: Json) => [m.seq, m.from, m.body]),
      [
        [1, 'gina', 'once'],
        [2, 'gina', 'once'],
        [3, 'hank', 'once'],
      ],
    );
    // A TCP client's send with that cid, as that sender, gets the first result too.
    const gina = await login(0, 'gina', { push: false, device: uniq('d') });
    const r = await gina.request({ op: 'send', rid: rid(), to: frank, body: 'x', cid: 'job-1' });
    assert.deepEqual([r.op, r.mid, r.seq], ['ok', first.mid, first.seq]);
    gina.close();
  });
});

describe('topics', () => {
  it('create, join, send, leave: members get the messages, online and offline; the errors', async () => {
    const t = uniq('room');
    const owner = uniq('own');
    const bob = uniq('bob');
    const dave = uniq('dave');
    const bobConn = await login(1, bob);
    assert.deepEqual(await ok(0, 'POST', '/v1/topics', { topic: t, owner }, 201), { topic: t, owner, members: 1 });
    const exists = await call(1, 'POST', '/v1/topics', { topic: t, owner: bob });
    assert.deepEqual([exists.status, exists.body.error.code, exists.body.error.field], [409, 'topic_exists', 'topic']);
    assert.deepEqual(await ok(1, 'POST', `/v1/topics/${t}/members`, { user: bob }), {
      topic: t,
      user: bob,
      members: 2,
    });
    assert.equal((await ok(0, 'POST', `/v1/topics/${t}/members`, { user: bob })).members, 2, 'joining twice');
    assert.equal((await ok(0, 'POST', `/v1/topics/${t}/members`, { user: dave })).members, 3);
    // maxTopicMembers: no one else gets in.
    const full = await call(0, 'POST', `/v1/topics/${t}/members`, { user: uniq('late') });
    assert.deepEqual([full.status, full.body.error.code, full.body.error.field], [400, 'bad_request', 'topic']);
    assert.match(full.body.error.message, /full/);
    // A TCP client sees the members the API added.
    const m = await bobConn.request({ op: 'topic_members', rid: rid(), topic: t });
    assert.deepEqual(m.members, [owner, bob, dave].sort());

    const notMember = await call(0, 'POST', `/v1/topics/${t}/messages`, { from: uniq('x'), body: 'x' });
    assert.deepEqual(
      [notMember.status, notMember.body.error.code, notMember.body.error.field],
      [403, 'not_a_member', 'from'],
    );
    const sent = await ok(0, 'POST', `/v1/topics/${t}/messages`, { from: owner, body: { hello: 'room' }, cid: 'c1' });
    assert.equal(sent.tseq, 1);
    const [pushed] = await bobConn.msgs(1);
    assert.deepEqual(
      [pushed!.topic, pushed!.tseq, pushed!.mid, pushed!.from, pushed!.body],
      [t, 1, sent.mid, owner, { hello: 'room' }],
    );
    assert.deepEqual(await ok(1, 'POST', `/v1/topics/${t}/messages`, { from: owner, body: 'again', cid: 'c1' }), sent);
    const daveConn = await login(0, dave);
    const [offline] = await daveConn.msgs(1);
    assert.deepEqual([offline!.topic, offline!.tseq, offline!.mid], [t, 1, sent.mid]);

    assert.deepEqual(await ok(1, 'DELETE', `/v1/topics/${t}/members/${bob}`), { topic: t, user: bob });
    const left = await call(1, 'DELETE', `/v1/topics/${t}/members/${bob}`);
    assert.deepEqual([left.status, left.body.error.code, left.body.error.field], [404, 'not_a_member', 'user']);
    const s2 = await ok(0, 'POST', `/v1/topics/${t}/messages`, { from: dave, body: 'after bob left' });
    assert.equal(s2.tseq, 2);
    const [d2] = await daveConn.msgs(1);
    assert.deepEqual([d2!.tseq, d2!.body], [2, 'after bob left']);
    // bob got nothing more: a ping answers after any push it is owed.
    const pong = await bobConn.request({ op: 'ping', rid: rid() });
    assert.equal(pong.op, 'pong');
    assert.deepEqual(
      bobConn.pending().filter((f) => f.op === 'msg'),
      [],
    );
    const bobInbox = await ok(0, 'GET', `/v1/users/${bob}/inbox`);
    assert.deepEqual(
      bobInbox.messages.map((x: Json) => x.tseq),
      [1],
    );

    for (const [method, path, body] of [
      ['POST', `/v1/topics/${uniq('none')}/members`, { user: bob }],
      ['DELETE', `/v1/topics/${uniq('none')}/members/${bob}`, undefined],
      ['POST', `/v1/topics/${uniq('none')}/messages`, { from: bob, body: 'x' }],
    ] as const) {
      const r = await call(0, method, path, body);
      assert.deepEqual([r.status, r.body.error.code, r.body.error.field], [404, 'no_such_topic', 'topic'], path);
    }
    bobConn.close();
    daveConn.close();
  });
});

describe('users', () => {
  it('inbox pages with after, limit and next; sessions list the directory', async () => {
    const ivy = uniq('ivy');
    for (let i = 1; i <= 5; i++) await ok(i % 2, 'POST', '/v1/messages', { from: 'jack', to: ivy, body: `m${i}` });
    const p1 = await ok(0, 'GET', `/v1/users/${ivy}/inbox?limit=2`);
    assert.deepEqual(
      p1.messages.map((m: Json) => [m.seq, m.body, m.from, m.to]),
      [
        [1, 'm1', 'jack', ivy],
        [2, 'm2', 'jack', ivy],
      ],
    );
    assert.equal(p1.head.seq, 5);
    assert.equal(p1.next, 2);
    const p2 = await ok(1, 'GET', `/v1/users/${ivy}/inbox?after=${p1.next}&limit=1000`);
    assert.deepEqual(
      p2.messages.map((m: Json) => m.seq),
      [3, 4, 5],
    );
    assert.equal(p2.next, null);

    assert.deepEqual(await ok(0, 'GET', `/v1/users/${ivy}/sessions`), { user: ivy, sessions: [] });
    const phone = await login(1, ivy, { device: 'phone' });
    const laptop = await login(0, ivy, { device: 'laptop' });
    const s = await ok(0, 'GET', `/v1/users/${ivy}/sessions`);
    assert.deepEqual(s.sessions.map((x: Json) => [x.device, x.server]).sort(), [
      ['laptop', 'ms-0'],
      ['phone', 'ms-1'],
    ]);
    for (const x of s.sessions) assert.ok(x.gen > 0 && typeof x.boot === 'string');
    phone.close();
    laptop.close();
  });

  it('kick closes the sessions of a device on another msg_server, then every session of the user', async () => {
    const kim = uniq('kim');
    const phone = await login(1, kim, { device: 'phone' });
    const laptop = await login(1, kim, { device: 'laptop' });
    const here = await login(0, kim, { device: 'tablet' });
    const one = await ok(0, 'POST', `/v1/users/${kim}/kick`, { device: 'phone' });
    assert.deepEqual(one, { user: kim, device: 'phone', local: 0, servers: ['ms-1'] });
    const kick = await phone.next(3000, (f) => f.op === 'kick');
    assert.equal(kick.reason, 'admin');
    await phone.waitClosed();
    // The others are untouched.
    assert.equal((await laptop.request({ op: 'ping', rid: rid() })).op, 'pong');
    assert.equal((await here.request({ op: 'ping', rid: rid() })).op, 'pong');

    const all = await ok(0, 'POST', `/v1/users/${kim}/kick`);
    assert.deepEqual([all.local, all.servers], [1, ['ms-1']]);
    for (const conn of [laptop, here]) {
      assert.equal((await conn.next(3000, (f) => f.op === 'kick')).reason, 'admin');
      await conn.waitClosed();
    }
    // The closes remove the directory entries.
    const deadline = Date.now() + 3000;
    for (;;) {
      const s = await ok(1, 'GET', `/v1/users/${kim}/sessions`);
      if (s.sessions.length === 0) break;
      if (Date.now() > deadline) assert.fail(`sessions left: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    // A user with no session: nothing to kick.
    const nobody = uniq('nobody');
    assert.deepEqual(await ok(1, 'POST', `/v1/users/${nobody}/kick`, {}), { user: nobody, local: 0, servers: [] });
  });
});

describe('over WebSocket', () => {
  it('a WebSocket client gets a backend send pushed; a kick closes it with status 1008', async () => {
    const wes = uniq('wes');
    const ws = await RawWs.connect(c.ws(1));
    const r = await ws.request({ op: 'login', rid: rid(), user: wes, token: c.token(wes) });
    assert.equal(r.op, 'ok', JSON.stringify(r));
    const sent = await ok(0, 'POST', '/v1/messages', { from: 'backend', to: wes, body: { n: 7 } });
    const [m] = await ws.msgs(1);
    assert.deepEqual([m!.seq, m!.mid, m!.body], [sent.seq, sent.mid, { n: 7 }]);
    assert.deepEqual((await ok(0, 'POST', `/v1/users/${wes}/kick`, {})).servers, ['ms-1']);
    assert.equal((await ws.next(3000, (f) => f.op === 'kick')).reason, 'admin');
    await ws.waitClosed();
    assert.equal(ws.closeCode, 1008);
  });
});

describe('bad requests', () => {
  it('every one gets a JSON error with the field at fault, and stores nothing', async () => {
    const to = uniq('victim');
    const big = 'x'.repeat(MAX_FRAME);
    let deep: unknown = 'leaf';
    for (let i = 0; i < 64; i++) deep = [deep];
    const cases: [string, string, unknown, number, string, string?][] = [
      // [method, path, JSON body (a string: sent as is), status, field, code]
      ['POST', '/v1/messages', '{not json', 400, 'request'],
      ['POST', '/v1/messages', '[1,2]', 400, 'request'],
      ['POST', '/v1/messages', 'null', 400, 'request'],
      ['POST', '/v1/messages', { to, body: 'x' }, 400, 'from'],
      ['POST', '/v1/messages', { from: 'a b', to, body: 'x' }, 400, 'from'],
      ['POST', '/v1/messages', { from: 7, to, body: 'x' }, 400, 'from'],
      ['POST', '/v1/messages', { from: 'x'.repeat(65), to, body: 'x' }, 400, 'from'],
      ['POST', '/v1/messages', { from: 'al', body: 'x' }, 400, 'to'],
      ['POST', '/v1/messages', { from: 'al', to: 12, body: 'x' }, 400, 'to'],
      ['POST', '/v1/messages', { from: 'al', to: 'bö', body: 'x' }, 400, 'to'],
      ['POST', '/v1/messages', { from: 'al', to: '', body: 'x' }, 400, 'to'],
      ['POST', '/v1/messages', { from: 'al', to }, 400, 'body'],
      ['POST', '/v1/messages', { from: 'al', to, body: 'x', bodyCbor: 'YQ==' }, 400, 'body'],
      ['POST', '/v1/messages', { from: 'al', to, body: big }, 400, 'body'],
      ['POST', '/v1/messages', { from: 'al', to, body: deep }, 400, 'body'],
      ['POST', '/v1/messages', { from: 'al', to, bodyCbor: 'not base64!' }, 400, 'bodyCbor'],
      ['POST', '/v1/messages', { from: 'al', to, bodyCbor: 5 }, 400, 'bodyCbor'],
      ['POST', '/v1/messages', { from: 'al', to, bodyCbor: '' }, 400, 'bodyCbor'],
      // 0x82 0x01: an array of 2 with one item (truncated); 0x01 0x01: two items
      ['POST', '/v1/messages', { from: 'al', to, bodyCbor: 'ggE=' }, 400, 'bodyCbor'],
      ['POST', '/v1/messages', { from: 'al', to, bodyCbor: 'AQE=' }, 400, 'bodyCbor'],
      ['POST', '/v1/messages', { from: 'al', to, bodyCbor: Buffer.from(big).toString('base64') }, 400, 'bodyCbor'],
      ['POST', '/v1/messages', { from: 'al', to, body: 'x', cid: '' }, 400, 'cid'],
      ['POST', '/v1/messages', { from: 'al', to, body: 'x', cid: 'c'.repeat(65) }, 400, 'cid'],
      ['POST', '/v1/messages', { from: 'al', to, body: 'x', cid: 42 }, 400, 'cid'],
      ['POST', '/v1/messages', JSON.stringify({ from: 'al', to, body: 'x'.repeat(9 * MAX_FRAME) }), 413, 'request'],
      ['POST', '/v1/topics', { owner: 'al' }, 400, 'topic'],
      ['POST', '/v1/topics', { topic: 'a/b', owner: 'al' }, 400, 'topic'],
      ['POST', '/v1/topics', { topic: uniq('t') }, 400, 'owner'],
      ['POST', '/v1/topics', { topic: uniq('t'), owner: ['al'] }, 400, 'owner'],
      ['POST', '/v1/topics/ok/members', {}, 400, 'user'],
      ['POST', '/v1/topics/ok/members', { user: 'no way' }, 400, 'user'],
      ['POST', '/v1/topics/b%20d/members', { user: 'al' }, 400, 'topic'],
      ['DELETE', '/v1/topics/ok/members/b%20d', undefined, 400, 'user'],
      ['POST', '/v1/topics/ok/messages', { body: 'x' }, 400, 'from'],
      ['POST', '/v1/topics/ok/messages', { from: 'al' }, 400, 'body'],
      ['POST', '/v1/topics/ok/messages', { from: 'al', body: 'x', cid: '' }, 400, 'cid'],
      ['POST', `/v1/topics/${'t'.repeat(65)}/messages`, { from: 'al', body: 'x' }, 400, 'topic'],
      ['GET', `/v1/users/${to}/inbox?after=-1`, undefined, 400, 'after'],
      ['GET', `/v1/users/${to}/inbox?after=1.5`, undefined, 400, 'after'],
      ['GET', `/v1/users/${to}/inbox?limit=0`, undefined, 400, 'limit'],
      ['GET', `/v1/users/${to}/inbox?limit=1001`, undefined, 400, 'limit'],
      ['GET', `/v1/users/${to}/inbox?limit=ten`, undefined, 400, 'limit'],
      ['GET', '/v1/users/a%20b/inbox', undefined, 400, 'user'],
      ['GET', '/v1/users/a%20b/sessions', undefined, 400, 'user'],
      ['POST', '/v1/users/a%20b/kick', {}, 400, 'user'],
      ['POST', `/v1/users/${to}/kick`, { device: '' }, 400, 'device'],
      ['POST', `/v1/users/${to}/kick`, '{"device":', 400, 'request'],
    ];
    for (const [method, path, body, status, field] of cases) {
      const r =
        typeof body === 'string'
          ? await call(0, method, path, undefined, admin, body)
          : await call(0, method, path, body);
      const what = `${method} ${path} ${typeof body === 'string' ? body.slice(0, 40) : JSON.stringify(body)?.slice(0, 80)}`;
      assert.equal(r.status, status, `${what}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error?.code, 'bad_request', what);
      assert.equal(r.body.error.field, field, `${what}: ${JSON.stringify(r.body)}`);
      assert.ok(typeof r.body.error.message === 'string' && r.body.error.message.length > 0, what);
    }
    const inbox = await ok(0, 'GET', `/v1/users/${to}/inbox`);
    assert.deepEqual([inbox.head.seq, inbox.messages], [0, []], 'no bad send was stored');
    // At the limit (maxFrame − 512 bytes of CBOR) a body is taken: 3 bytes of text head.
    const atLimit = await ok(0, 'POST', '/v1/messages', { from: 'al', to, body: 'x'.repeat(MAX_FRAME - 512 - 3) });
    assert.equal(atLimit.seq, 1);
    const over = await call(0, 'POST', '/v1/messages', { from: 'al', to, body: 'x'.repeat(MAX_FRAME - 512 - 2) });
    assert.deepEqual([over.status, over.body.error.field], [400, 'body']);
  });

  it('a wrong method or an unknown endpoint under the API: a JSON 405 or 404', async () => {
    const r = await call(0, 'GET', '/v1/messages');
    assert.deepEqual([r.status, r.body.error.code, r.headers.get('allow')], [405, 'method_not_allowed', 'POST']);
    const u = await call(0, 'GET', '/v1/users/al/nothing');
    assert.deepEqual([u.status, u.body.error.code], [404, 'not_found']);
  });
});

describe('auth', () => {
  it('no token, a user token, a token of another secret, a malformed header: 401 auth_failed', async () => {
    const user = uniq('u');
    const endpoints: [string, string, unknown][] = [
      ['POST', '/v1/messages', { from: 'a', to: user, body: 'x' }],
      ['POST', '/v1/topics', { topic: uniq('t'), owner: 'a' }],
      ['POST', '/v1/topics/t/members', { user: 'a' }],
      ['DELETE', '/v1/topics/t/members/a', undefined],
      ['POST', '/v1/topics/t/messages', { from: 'a', body: 'x' }],
      ['GET', `/v1/users/${user}/inbox`, undefined],
      ['GET', `/v1/users/${user}/sessions`, undefined],
      ['POST', `/v1/users/${user}/kick`, {}],
      // even a bad request: auth comes first
      ['POST', '/v1/messages', { from: 'no way' }],
    ];
    const tokens: (string | null)[] = [
      null,
      c.token('alice'),
      signToken('another-secret-entirely', 'backend', { admin: true }),
      signToken(c.secret, 'backend', { admin: true, ttlSeconds: -120 }),
      'not-a-jwt',
    ];
    for (const [method, path, body] of endpoints) {
      for (const token of tokens) {
        const r = await call(0, method, path, body, token);
        const what = `${method} ${path} with ${token === null ? 'no token' : token.slice(0, 12)}`;
        assert.equal(r.status, 401, `${what}: ${JSON.stringify(r.body)}`);
        assert.equal(r.body.error.code, 'auth_failed', what);
        assert.equal(r.body.error.field, 'authorization', what);
        assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer/);
      }
    }
    const inbox = await ok(0, 'GET', `/v1/users/${user}/inbox`);
    assert.equal(inbox.head.seq, 0, 'nothing was stored without a token');
    // /health stays open.
    const health = await fetch(`${api(1)}/health`);
    assert.equal(health.status, 200);
    assert.equal(((await health.json()) as { id: string }).id, 'ms-1');
  });
});

/** A CLI run takes a second or more on a busy machine (bun test's own default is 5 s a test). */
const CLI_TIMEOUT = { timeout: 60_000 };

describe('fishchat send --http (the CLI, against `fishchat up`)', CLI_TIMEOUT, () => {
  let dir: string;
  let up: CliProcess;
  let secret: string;
  let run: { gateway: string; roles: { role: string; id: string; addresses: { tcp?: string; http?: string } }[] };
  const msgServers = () => run.roles.filter((r) => r.role === 'msg_server');

  before(async () => {
    assert.ok(existsSync(join(ROOT, 'dist', 'cli', 'commands', 'send.js')), 'dist/ is missing: run `npm run build`');
    dir = await initCluster(await mkdtemp(join(tmpdir(), 'fishchat-api-cli-')));
    up = new CliProcess(['up', dir, '--embedded'], { waitMs: 30_000 });
    await up.waitFor(/^cluster ready/m);
    run = JSON.parse(await readFile(join(dir, '.fishchat', 'run.json'), 'utf8'));
    secret = (await loadCluster(dir)).secret;
  }, CLI_TIMEOUT);
  after(async () => {
    await up?.stop('SIGKILL');
    if (dir) await rm(dir, { recursive: true, force: true });
  }, CLI_TIMEOUT);

  it(
    'finds a msg_server from run.json, sends through the API; the online user gets it pushed',
    CLI_TIMEOUT,
    async () => {
      const bob = uniq('bob');
      const ms = msgServers()[1]!;
      const conn = await RawConn.connect(ms.addresses.tcp!);
      const login = await conn.request({ op: 'login', rid: rid(), user: bob, token: signToken(secret, bob) });
      assert.equal(login.op, 'ok', JSON.stringify(login));
      const r = await fishchat(['send', '--dir', dir, '--http', '--as', 'alice', '--to', bob, '--json', 'over http']);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const out = JSON.parse(r.stdout.trim());
      assert.deepEqual([out.seq, out.to, typeof out.mid, typeof out.ts], [1, bob, 'string', 'number']);
      const [m] = await conn.msgs(1, 5000);
      assert.deepEqual([m!.seq, m!.mid, m!.from, m!.body], [1, out.mid, 'alice', 'over http']);
      // Plain output, as without --http.
      const plain = await fishchat(['send', '--dir', dir, '--http', '--as', 'carol', '--to', bob, 'again']);
      assert.equal(plain.code, 0, plain.stderr);
      assert.match(plain.stdout, new RegExp(`^sent to ${bob}: seq 2, mid \\S+$`, 'm'));
      conn.close();
    },
  );

  it('--http-url, --cid repeats, stdin lines in order', CLI_TIMEOUT, async () => {
    const dana = uniq('dana');
    const url = `http://${msgServers()[0]!.addresses.http}`;
    const once = ['send', '--dir', dir, '--http-url', url, '--as', 'ci', '--to', dana, '--cid', 'b-1', '--json', 'x'];
    const a = await fishchat(once);
    const b = await fishchat(once);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.stdout, a.stdout, 'a repeated cid answers the first mid and seq');
    const lines = await fishchat(['send', '--dir', dir, '--http', '--as', 'ci', '--to', dana, '--json', '-'], {
      input: 'one\n\ntwo\nthree\n',
    });
    assert.equal(lines.code, 0, lines.stderr);
    assert.deepEqual(
      lines.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).seq),
      [2, 3, 4],
    );
    const res = await fetch(`${url}/v1/users/${dana}/inbox`, {
      headers: { authorization: `Bearer ${signToken(secret, 'test', { admin: true })}` },
    });
    const inbox = (await res.json()) as { messages: { seq: number; body: string }[] };
    assert.deepEqual(
      inbox.messages.map((m) => [m.seq, m.body]),
      [
        [1, 'x'],
        [2, 'one'],
        [3, 'two'],
        [4, 'three'],
      ],
    );
  });

  it(
    'errors: the server answer with its code (exit 1), no server API (exit 3), a bad URL (exit 2)',
    CLI_TIMEOUT,
    async () => {
      const bad = await fishchat(['send', '--dir', dir, '--http', '--as', 'bad id!', '--to', 'bob', 'x']);
      assert.equal(bad.code, 1, bad.stdout + bad.stderr);
      assert.match(bad.stderr, /the server answered bad_request: from must be 1 to 64 characters/);
      const other = await mkdtemp(join(tmpdir(), 'fishchat-api-cli-'));
      try {
        const init = await fishchat(['init', other]);
        assert.equal(init.code, 0, init.stderr);
        const url = `http://${msgServers()[0]!.addresses.http}`;
        const refused = await fishchat(['send', '--dir', other, '--http-url', url, '--as', 'a', '--to', 'b', 'x']);
        assert.equal(refused.code, 1, refused.stdout + refused.stderr);
        assert.match(refused.stderr, /the server answered auth_failed: .*is the secret of/);
        const port = await closedPort();
        const gone = await fishchat([
          'send',
          '--dir',
          dir,
          '--http-url',
          `http://127.0.0.1:${port}`,
          '--as',
          'a',
          '--to',
          'b',
          'x',
        ]);
        assert.equal(gone.code, 3, gone.stdout + gone.stderr);
        assert.match(gone.stderr, new RegExp(`cannot reach the server API at http://127\\.0\\.0\\.1:${port}`));
        assert.doesNotMatch(gone.stderr, /\n\s+at /);
        const notUrl = await fishchat(['send', '--dir', dir, '--http-url', 'ftp://x', '--as', 'a', '--to', 'b', 'x']);
        assert.equal(notUrl.code, 2, notUrl.stdout + notUrl.stderr);
        assert.match(notUrl.stderr, /--http-url must be an http/);
      } finally {
        await rm(other, { recursive: true, force: true });
      }
    },
  );
});
