/**
 * The manager role over real HTTP on 127.0.0.1 against the SQLite store:
 * user records from client-status, lease cleanup after a msg_server stops
 * renewing, trimming, fan-out resume, and the admin JSON API (paging,
 * validation, auth).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Encoder } from 'cbor-x/index-no-eval';
import { channels } from '../runtime/bus/bus.js';
import { createMemoryBus } from '../runtime/bus/memory.js';
import { decodeItems, encodeItems, type ClientStatusItem, type TopicSyncItem } from '../runtime/bus/payloads.js';
import { DEFAULT_SETTINGS, type Settings } from '../runtime/cluster/config.js';
import type { RoleContext, RoleHandle } from '../runtime/contract/context.js';
import { getPlatform } from '../runtime/platform/index.js';
import { signToken } from '../runtime/protocol/token.js';
import { startManager } from '../runtime/roles/manager/index.js';
import { Housekeeping } from '../runtime/roles/manager/housekeeping.js';
import { openSqliteStore } from '../runtime/store/sqlite/index.js';
import type { Store } from '../runtime/store/store.js';
import { sleep, untilValue } from './helpers/wait.js';

type Ctx = RoleContext;

const BEAT = 100;
const SECRET = 'manager-test-secret';
const ADMIN = signToken(SECRET, 'admin', { admin: true });
const cbor = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false });

let dir: string;
let store: Store;
let ctx: Ctx;
let manager: RoleHandle;
let base: string;
const logs: string[] = [];
/** store method name → calls seen through the spy */
const calls = new Map<string, number>();

let n = 0;
const uniq = (p: string) => `${p}${++n}_${Math.random().toString(36).slice(2, 7)}`;

/** GET with an admin token by default; `null`: no token. */
async function get(path: string, token: string | null = ADMIN): Promise<{ status: number; body: any }> {
  const res = await fetch(base + path, { headers: token === null ? {} : { authorization: `Bearer ${token}` } });
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/, path);
  return { status: res.status, body: await res.json() };
}

async function ok(path: string): Promise<any> {
  const r = await get(path);
  assert.equal(r.status, 200, `${path}: ${JSON.stringify(r.body)}`);
  return r.body;
}

/** The store as the manager sees it, counting calls (it changes nothing). */
function spy<T extends object>(target: T): T {
  return new Proxy(target, {
    get(t, prop, recv) {
      const v = Reflect.get(t, prop, recv);
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        calls.set(String(prop), (calls.get(String(prop)) ?? 0) + 1);
        return (v as (...a: unknown[]) => unknown).apply(t, args);
      };
    },
  });
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fishchat-manager-'));
  const platform = await getPlatform();
  const settings: Settings = { ...DEFAULT_SETTINGS, beat: BEAT };
  store = (await openSqliteStore(platform.openSqlite(join(dir, 'fishchat.db')))) as Store;
  const log = {
    info: (m: string) => logs.push(m),
    warn: (m: string) => logs.push(m),
    error: (m: string) => logs.push(m),
  };
  ctx = {
    cluster: 'mgr',
    channels: channels('mgr'),
    settings,
    auth: { mode: 'token', secret: SECRET },
    bus: createMemoryBus(),
    store: spy(store),
    platform,
    log,
  };
  manager = await startManager(ctx, { role: 'manager', id: 'manager', httpHost: '127.0.0.1', httpPort: 0 });
  base = `http://${manager.addresses.http}`;
});

after(async () => {
  await manager.stop();
  await ctx.bus.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('basics', () => {
  it('/health is open; /v1 needs an admin token', async () => {
    assert.deepEqual((await get('/health', null)).body, { ok: true, role: 'manager', id: 'manager' });
    for (const token of [null, signToken(SECRET, 'alice'), signToken('other', 'admin', { admin: true })]) {
      const r = await get('/v1/sessions', token);
      assert.equal(r.status, 401);
      assert.equal(r.body.error.code, 'auth_failed');
    }
    assert.equal((await get('/v1/sessions')).status, 200);
    const nf = await get('/v1/nothing');
    assert.equal(nf.status, 404);
    assert.equal(nf.body.error.code, 'not_found');
  });

  it('beats on the monitor channel as role manager', async () => {
    const beats: any[] = [];
    const unsub = await ctx.bus.subscribe(ctx.channels.monitor, (p) => beats.push(...decodeItems(p)));
    try {
      const b = await untilValue(async () => beats.find((x) => x.role === 'manager'), 2000, 'a manager beat');
      assert.equal(b.id, 'manager');
      assert.equal(b.http, manager.addresses.http);
    } finally {
      await unsub();
    }
  });

  it('trims at start', async () => {
    assert.ok((calls.get('trim') ?? 0) >= 1);
  });
});

describe('users', () => {
  it('a client-status login and logout show in GET /v1/users/:user', async () => {
    const user = uniq('alice');
    const t = Date.now();
    const ev = (k: ClientStatusItem['k'], device: string, ts: number): ClientStatusItem => ({
      k,
      user,
      device,
      server: 'ms-0',
      gen: 1,
      ts,
    });
    ctx.bus.publish(ctx.channels.clientStatus, encodeItems([ev('login', 'phone', t), ev('login', 'laptop', t + 1)]));
    const rec = await untilValue(
      async () => {
        const r = await get(`/v1/users/${user}`);
        return r.status === 200 && r.body.record?.devices?.length === 2 && r.body;
      },
      2000,
      'the login recorded',
    );
    assert.equal(rec.user, user);
    assert.equal(rec.record.online, true);
    assert.equal(rec.record.firstSeen, t);
    assert.ok(rec.record.devices.every((d: any) => d.online === true));
    assert.equal(typeof rec.head.epoch, 'string');
    assert.ok(Array.isArray(rec.acks));
    assert.ok(Array.isArray(rec.sessions));

    ctx.bus.publish(
      ctx.channels.clientStatus,
      encodeItems([ev('logout', 'phone', t + 2), ev('kick', 'laptop', t + 3)]),
    );
    const off = await untilValue(
      async () => {
        const r = await ok(`/v1/users/${user}`);
        return r.record.online === false && r;
      },
      2000,
      'the logout recorded',
    );
    assert.ok(off.record.devices.every((d: any) => d.online === false));
    assert.equal(off.record.lastSeen, t + 3);
  });

  it('shows ack cursors and sessions; 404 for an unknown user; 400 for a bad name', async () => {
    const user = uniq('frank');
    const login = await store.login({ user, device: 'tab', server: 'ms-live', boot: 'b', push: true });
    await store.appendP2P({ from: 'x', to: user, mid: uniq('m'), body: cbor.encode('hi'), ts: Date.now() });
    await store.ack(user, 'tab', 1);
    const r = await ok(`/v1/users/${user}`);
    assert.deepEqual(r.acks, [{ device: 'tab', acked: 1 }]);
    assert.deepEqual(r.sessions, [{ device: 'tab', server: 'ms-live', boot: 'b', gen: login.gen }]);
    assert.equal(r.head.seq, 1);
    await store.removeSession(user, 'tab', login.gen);

    const nf = await get(`/v1/users/${uniq('nobody')}`);
    assert.equal(nf.status, 404);
    assert.equal(nf.body.error.code, 'no_such_user');
    for (const bad of ['a%2Fb', 'x'.repeat(65), '%20sp']) {
      const r = await get(`/v1/users/${bad}`);
      assert.equal(r.status, 400, bad);
      assert.equal(r.body.error.code, 'bad_request');
      assert.match(r.body.error.message, /user must be/);
    }
  });
});

describe('inbox', () => {
  it('pages with after/limit and shows bodies as base64 and JSON', async () => {
    const user = uniq('erin');
    const bodies = [
      cbor.encode({ text: 'one', n: 1 }),
      cbor.encode('two'),
      Uint8Array.of(0xff, 0xfe),
      cbor.encode([1, { b: new Uint8Array([7, 8]) }]),
      cbor.encode(5),
    ];
    for (const body of bodies) await store.appendP2P({ from: 'sam', to: user, mid: uniq('m'), body, ts: Date.now() });

    const p1 = await ok(`/v1/users/${user}/inbox?limit=2`);
    assert.equal(p1.user, user);
    assert.equal(p1.head.seq, 5);
    assert.deepEqual(
      p1.messages.map((m: any) => m.seq),
      [1, 2],
    );
    assert.equal(p1.next, 2);
    assert.deepEqual(p1.messages[0].json, { text: 'one', n: 1 });
    assert.equal(p1.messages[0].body, Buffer.from(bodies[0]!).toString('base64'));
    assert.equal(p1.messages[0].from, 'sam');
    assert.equal(p1.messages[0].to, user);
    assert.equal(typeof p1.messages[0].mid, 'string');
    assert.equal(typeof p1.messages[0].ts, 'number');
    assert.equal(p1.messages[1].json, 'two');

    const p2 = await ok(`/v1/users/${user}/inbox?after=${p1.next}&limit=2`);
    assert.deepEqual(
      p2.messages.map((m: any) => m.seq),
      [3, 4],
    );
    assert.equal(p2.messages[0].body, '//4=');
    assert.ok(!('json' in p2.messages[0]), 'a body that is not CBOR has no json');
    assert.deepEqual(p2.messages[1].json, [1, { b: { $bytes: 'Bwg=' } }]);

    const p3 = await ok(`/v1/users/${user}/inbox?after=${p2.next}`);
    assert.deepEqual(
      p3.messages.map((m: any) => m.seq),
      [5],
    );
    assert.equal(p3.messages[0].json, 5);
    assert.equal(p3.next, null);
  });

  it('refuses bad after/limit with 400 and a clear message', async () => {
    for (const q of [
      'limit=0',
      'limit=1001',
      'limit=abc',
      'limit=1.5',
      'limit=-1',
      'after=-1',
      'after=x',
      'after=1e3',
      'after=9999999999999999',
    ]) {
      const r = await get(`/v1/users/someone/inbox?${q}`);
      assert.equal(r.status, 400, q);
      assert.equal(r.body.error.code, 'bad_request', q);
      assert.match(r.body.error.message, /^(limit|after) must be/, q);
    }
  });
});

describe('sessions and leases', () => {
  it('removes the entries of a msg_server whose lease expired, and only those', async () => {
    const bob = uniq('bob');
    const carol = uniq('carol');
    const dave = uniq('dave');
    // ms-x (boot 1) dies: its lease is renewed once, briefly.
    await store.login({ user: bob, device: 'd1', server: 'ms-x', boot: 'x-boot-1', push: true });
    await store.renewLease('ms-x', 'x-boot-1', 250);
    // ms-y lives: renewed every beat.
    await store.login({ user: carol, device: 'd1', server: 'ms-y', boot: 'y-boot', push: true });
    await store.renewLease('ms-y', 'y-boot', 3 * BEAT);
    // ms-x restarted (boot 2): its new sessions must never be touched.
    await store.login({ user: dave, device: 'd1', server: 'ms-x', boot: 'x-boot-2', push: true });
    await store.renewLease('ms-x', 'x-boot-2', 3 * BEAT);
    const renew = setInterval(() => {
      void store.renewLease('ms-y', 'y-boot', 3 * BEAT);
      void store.renewLease('ms-x', 'x-boot-2', 3 * BEAT);
    }, BEAT / 2);
    try {
      const users = async () => {
        const all: any[] = [];
        let after = '';
        for (;;) {
          const page = await ok(`/v1/sessions?limit=1000${after ? `&after=${encodeURIComponent(after)}` : ''}`);
          all.push(...page.sessions);
          if (page.next === null) return all;
          after = page.next;
        }
      };
      const before = await users();
      assert.ok(before.some((s) => s.user === bob && s.server === 'ms-x' && s.boot === 'x-boot-1'));
      await untilValue(async () => !(await users()).some((s) => s.user === bob), 3000, 'the dead ms-x entry removed');
      const left = await users();
      assert.ok(
        left.some((s) => s.user === carol && s.server === 'ms-y'),
        'a live msg_server keeps its entries',
      );
      assert.ok(
        left.some((s) => s.user === dave && s.boot === 'x-boot-2'),
        "a restarted msg_server's new sessions stay",
      );
      assert.ok(
        logs.some((l) => l.includes('ms-x') && l.includes('x-boot-1') && l.includes('lease')),
        logs.join('\n'),
      );
      // bob's later messages wait in his inbox: no session to push to.
      const r = await store.appendP2P({
        from: carol,
        to: bob,
        mid: uniq('m'),
        body: cbor.encode('later'),
        ts: Date.now(),
      });
      assert.deepEqual(r.sessions, []);
      assert.equal((await store.readInbox(bob, 0, 10)).messages.length, 1);
    } finally {
      clearInterval(renew);
    }
  });

  it('pages the directory with a cursor', async () => {
    const user = uniq('pat');
    for (const d of ['a', 'b', 'c']) await store.login({ user, device: d, server: 'ms-live', boot: 'b', push: true });
    await store.renewLease('ms-live', 'b', 60_000);
    const seen: string[] = [];
    let after = '';
    for (let i = 0; i < 1000; i++) {
      const page = await ok(`/v1/sessions?limit=1${after ? `&after=${encodeURIComponent(after)}` : ''}`);
      assert.ok(page.sessions.length <= 1);
      for (const s of page.sessions) seen.push(`${s.user}/${s.device}`);
      if (page.next === null) break;
      after = page.next;
    }
    assert.deepEqual(
      seen.filter((k) => k.startsWith(user + '/')),
      [`${user}/a`, `${user}/b`, `${user}/c`],
    );
    assert.equal(new Set(seen).size, seen.length, 'no entry twice');
    for (const q of ['a/b/c', 'bad%20name/d', 'u/', '/d']) {
      const bad = await get(`/v1/sessions?after=${q}`);
      assert.equal(bad.status, 400, q);
      assert.match(bad.body.error.message, /after must be a session cursor/);
    }
    // a bare user name starts after that user's entries
    const afterUser = await ok(`/v1/sessions?after=${user}&limit=1000`);
    assert.ok(!afterUser.sessions.some((s: any) => s.user === user));
  });
});

describe('topics', () => {
  it('lists topics and shows one with a page of members', async () => {
    const t1 = uniq('general');
    const t2 = uniq('random');
    assert.equal(await store.topicCreate(t1, 'alice', Date.now()), true);
    for (const u of ['bob', 'carol', 'dave']) await store.topicJoin(t1, u);
    assert.equal(await store.topicCreate(t2, 'erin', Date.now()), true);

    const all: any[] = [];
    let after = '';
    for (;;) {
      const page = await ok(`/v1/topics?limit=1${after ? `&after=${after}` : ''}`);
      all.push(...page.topics);
      if (page.next === null) break;
      after = page.next;
    }
    const g = all.find((t) => t.topic === t1);
    assert.ok(g && all.some((t) => t.topic === t2));
    assert.equal(g.creator, 'alice');
    assert.equal(g.members, 4);

    const one = await ok(`/v1/topics/${t1}`);
    assert.equal(one.topic, t1);
    assert.equal(one.info.topic, t1);
    assert.equal(one.info.creator, 'alice');
    assert.equal(one.info.members, 4);
    assert.equal(typeof one.info.created, 'number');
    assert.equal(one.info.tseq, 0);
    assert.deepEqual(one.members, ['alice', 'bob', 'carol', 'dave']);
    assert.equal(one.next, null);
    const page = await ok(`/v1/topics/${t1}?limit=2`);
    assert.deepEqual(page.members, ['alice', 'bob']);
    assert.equal(page.next, 'bob');
    const page2 = await ok(`/v1/topics/${t1}?limit=2&after=${page.next}`);
    assert.deepEqual(page2.members, ['carol', 'dave']);
    assert.equal(page2.next, null);
    const nf = await get(`/v1/topics/${uniq('none')}`);
    assert.equal(nf.status, 404);
    assert.equal(nf.body.error.code, 'no_such_topic');
    assert.equal((await get('/v1/topics?after=bad%20name')).status, 400);
    assert.equal((await get('/v1/topics?limit=5000')).status, 400);
  });

  it('resumes a fan-out left behind and hands its copies to the router', async () => {
    const topic = uniq('crash');
    await store.topicCreate(topic, 'alice', Date.now());
    await store.topicJoin(topic, 'bob');
    const synced: TopicSyncItem[] = [];
    const unsub = await ctx.bus.subscribe(ctx.channels.topicSync, (p) => synced.push(...decodeItems<TopicSyncItem>(p)));
    try {
      // A msg_server appended to the log, said ok, and died before its fan-out.
      const r = await store.topicAppend({
        topic,
        from: 'alice',
        mid: uniq('tm'),
        body: cbor.encode('hello all'),
        ts: Date.now(),
      });
      assert.equal(r.code, 'ok');
      const item = await untilValue(
        async () => synced.find((s) => s.msg.topic === topic),
        3000,
        'a topic-sync from the manager',
      );
      assert.equal(item.origin, 'manager');
      assert.deepEqual(item.msg.copies.map((c) => c.user).sort(), ['alice', 'bob']);
      assert.ok(item.msg.body instanceof Uint8Array);
      const inbox = await ok(`/v1/users/bob/inbox?limit=1000`);
      assert.ok(inbox.messages.some((m: any) => m.topic === topic && m.json === 'hello all'));
      const { info } = await ok(`/v1/topics/${topic}`);
      assert.equal(info.fanned, info.tseq);
    } finally {
      await unsub();
    }
  });

  it('never runs two fan-outs of one topic at once in one process', async () => {
    const topic = uniq('once');
    await store.topicCreate(topic, 'alice', Date.now());
    let inFlight = 0;
    let most = 0;
    const slow = new Proxy(store, {
      get(t, prop, recv) {
        if (prop !== 'topicFanout') return Reflect.get(t, prop, recv);
        return async (tp: string, limit: number) => {
          inFlight++;
          most = Math.max(most, inFlight);
          await sleep(30);
          try {
            return await t.topicFanout(tp, limit);
          } finally {
            inFlight--;
          }
        };
      },
    });
    const hk = new Housekeeping({ ...ctx, store: slow }, 'hk');
    await store.topicAppend({ topic, from: 'alice', mid: uniq('tm'), body: cbor.encode(1), ts: Date.now() });
    hk.fanout(topic);
    hk.fanout(topic);
    hk.tick();
    hk.tick();
    await hk.stop();
    assert.equal(most, 1);
  });

  it('leaves a fan-out that moves between beats to its msg_server; resumes one that stalled for a beat', async () => {
    const topic = uniq('moving');
    let fanned = 0;
    let runs = 0;
    const fake = new Proxy(store, {
      get(t, prop, recv) {
        if (prop === 'topicsBehind') return async () => [topic];
        if (prop === 'topicInfo')
          return async () => ({ topic, creator: 'alice', created: 0, members: 2, tseq: 100, fanned });
        if (prop === 'topicFanout') {
          return async () => {
            runs++;
            return { messages: [], done: true };
          };
        }
        return Reflect.get(t, prop, recv);
      },
    });
    const hk = new Housekeeping({ ...ctx, store: fake }, 'hk');
    for (let beat = 0; beat < 5; beat++) {
      fanned += 10; // a msg_server is running it
      await hk.resumeFanouts();
    }
    assert.equal(runs, 0, 'a moving fan-out is not repeated by the manager');
    await hk.resumeFanouts(); // no progress since the last beat: stalled
    await hk.stop();
    assert.equal(runs, 1);
  });
});
