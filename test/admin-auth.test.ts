/**
 * Admin auth of the HTTP APIs (docs/architecture.md "Security") and client auth of the
 * msg_server (docs/protocol.md §4.1), against an in-process cluster plus a manager
 * and a monitor started from the default role config:
 *
 * - the manager and the monitor bind 127.0.0.1 unless configured otherwise;
 * - every endpoint but /health and /metrics answers 401 `auth_failed` (JSON)
 *   to every way a token can be wrong: missing, not Bearer, garbage, tampered
 *   payload or signature, another algorithm, `alg: none`, expired, a user
 *   (non-admin) token, another cluster's secret; an admin token gets through;
 * - a msg_server login with the same bad tokens gets `auth_failed` and a close.
 */
import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, sign as rsaSign } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RoleHandle } from '../runtime/contract/context.js';
import { DEFAULT_HOST, loadCluster } from '../runtime/cluster/index.js';
import { signToken } from '../runtime/protocol/token.js';
import { startManager } from '../runtime/roles/manager/index.js';
import { startMonitor } from '../runtime/roles/monitor/index.js';
import { startTestCluster, type TestCluster } from './helpers/cluster.js';
import { RawConn, rid } from './helpers/raw.js';

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

/** A JWT with any header and claims, HMAC-signed with `hash` (sha256 = HS256). */
function hmacJwt(secret: string, header: object, claims: object, hash = 'sha256'): string {
  const input = `${b64(header)}.${b64(claims)}`;
  return `${input}.${createHmac(hash, secret).update(input).digest('base64url')}`;
}

/** Replaces the signature's character at `i` with another base64url character that changes the decoded bytes. */
function flipSigChar(token: string, i: number): string {
  const [h, p, s] = token.split('.') as [string, string, string];
  const c = s[i]!;
  const other = c === 'A' ? 'g' : 'A'; // 'A' = 0b000000, 'g' = 0b100000: the high bit differs, never only padding bits
  return `${h}.${p}.${s.slice(0, i)}${other}${s.slice(i + 1)}`;
}

function reClaim(token: string, patch: Record<string, unknown>): string {
  const [h, p, s] = token.split('.') as [string, string, string];
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
  return `${h}.${b64({ ...claims, ...patch })}.${s}`;
}

interface BadCase {
  what: string;
  /** the full Authorization header (undefined: none sent) */
  header: (admin: string) => string | undefined;
}

/** Every way an Authorization header can be wrong; each must get 401 auth_failed. */
function badCases(secret: string): BadCase[] {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const adminClaims = () => ({ sub: 'admin', iat: now(), exp: now() + 3600, adm: true });
  const rs256 = (() => {
    const input = `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64(adminClaims())}`;
    return `${input}.${rsaSign('sha256', Buffer.from(input), rsa.privateKey).toString('base64url')}`;
  })();
  const bearer = (t: string) => `Bearer ${t}`;
  const userToken = signToken(secret, 'admin'); // sub "admin" but no adm claim
  return [
    { what: 'no Authorization header', header: () => undefined },
    { what: 'an empty Authorization header', header: () => '' },
    { what: 'a Basic header', header: () => 'Basic YWRtaW46YWRtaW4=' },
    { what: 'the admin token without "Bearer "', header: (a) => a },
    { what: 'the admin token with another scheme', header: (a) => `Token ${a}` },
    { what: '"Bearer" and no token', header: () => 'Bearer' },
    { what: '"Bearer " and spaces', header: () => 'Bearer    ' },
    { what: 'two tokens', header: (a) => `Bearer ${a} ${a}` },
    { what: 'garbage', header: () => bearer('garbage') },
    { what: 'three empty parts', header: () => bearer('..') },
    { what: 'a.b.c', header: () => bearer('a.b.c') },
    { what: 'four parts', header: (a) => bearer(`${a}.x`) },
    {
      what: 'a 5000-character token',
      header: () => bearer('x'.repeat(2000) + '.' + 'y'.repeat(2000) + '.' + 'z'.repeat(998)),
    },
    { what: 'header and claims that are not JSON', header: () => bearer(`${b64('{nope')}.${b64('[')}.${b64('sig')}`) },
    {
      what: 'tampered payload: adm flipped to true, old signature',
      header: () => bearer(reClaim(userToken, { adm: true })),
    },
    {
      what: 'tampered payload: exp pushed forward on an expired admin token',
      header: () =>
        bearer(reClaim(signToken(secret, 'admin', { admin: true, ttlSeconds: -3600 }), { exp: now() + 3600 })),
    },
    { what: 'tampered signature (first character)', header: (a) => bearer(flipSigChar(a, 0)) },
    { what: 'tampered signature (middle character)', header: (a) => bearer(flipSigChar(a, 21)) },
    { what: 'tampered signature (last character)', header: (a) => bearer(flipSigChar(a, 42)) },
    { what: 'signature with a padding bit set (non-canonical base64url)', header: (a) => bearer(nonCanonicalSig(a)) },
    { what: 'signature with "=" padding appended', header: (a) => bearer(`${a}=`) },
    {
      what: 'signature with a stray non-base64url character inside',
      header: (a) => bearer(`${a.slice(0, -10)}!${a.slice(-10)}`),
    },
    { what: 'signature in standard base64 (+ and /)', header: () => bearer(standardB64Token(secret)) },
    { what: 'signature truncated', header: (a) => bearer(a.slice(0, -4)) },
    { what: 'empty signature', header: (a) => bearer(a.slice(0, a.lastIndexOf('.') + 1)) },
    {
      what: 'HS512 header, re-signed with the secret (HMAC-SHA512)',
      header: () => bearer(hmacJwt(secret, { alg: 'HS512', typ: 'JWT' }, adminClaims(), 'sha512')),
    },
    {
      what: 'HS384 header, re-signed with the secret',
      header: () => bearer(hmacJwt(secret, { alg: 'HS384', typ: 'JWT' }, adminClaims(), 'sha384')),
    },
    {
      what: 'HS512 header over an HS256 signature',
      header: () => bearer(hmacJwt(secret, { alg: 'HS512', typ: 'JWT' }, adminClaims())),
    },
    {
      what: '"hs256" in lower case',
      header: () => bearer(hmacJwt(secret, { alg: 'hs256', typ: 'JWT' }, adminClaims())),
    },
    { what: 'a header without alg', header: () => bearer(hmacJwt(secret, { typ: 'JWT' }, adminClaims())) },
    { what: 'RS256 header, signed with an RSA key', header: () => bearer(rs256) },
    {
      what: 'alg none with an empty signature',
      header: () => bearer(`${b64({ alg: 'none', typ: 'JWT' })}.${b64(adminClaims())}.`),
    },
    {
      what: 'alg None with an empty signature',
      header: () => bearer(`${b64({ alg: 'None' })}.${b64(adminClaims())}.`),
    },
    {
      what: 'alg none with the HS256 signature kept',
      header: () => bearer(hmacJwt(secret, { alg: 'none' }, adminClaims())),
    },
    {
      what: 'expired, beyond the 30 s leeway',
      header: () =>
        bearer(signToken(secret, 'admin', { admin: true, ttlSeconds: 60, now: Date.now() - 60_000 - 45_000 })),
    },
    {
      what: 'expired long ago',
      header: () => bearer(signToken(secret, 'admin', { admin: true, ttlSeconds: -86_400 })),
    },
    {
      what: 'no exp claim',
      header: () => bearer(hmacJwt(secret, { alg: 'HS256', typ: 'JWT' }, { sub: 'admin', adm: true })),
    },
    {
      what: 'exp as a string',
      header: () =>
        bearer(hmacJwt(secret, { alg: 'HS256', typ: 'JWT' }, { sub: 'admin', adm: true, exp: String(now() + 3600) })),
    },
    { what: 'a valid user (non-admin) token', header: () => bearer(userToken) },
    {
      what: 'adm "true" as a string',
      header: () =>
        bearer(hmacJwt(secret, { alg: 'HS256', typ: 'JWT' }, { sub: 'admin', exp: now() + 3600, adm: 'true' })),
    },
    {
      what: 'adm 1',
      header: () => bearer(hmacJwt(secret, { alg: 'HS256', typ: 'JWT' }, { sub: 'admin', exp: now() + 3600, adm: 1 })),
    },
    {
      what: "an admin token signed with another cluster's secret",
      header: () => bearer(signToken(secret + '-other-cluster', 'admin', { admin: true })),
    },
    {
      what: 'an admin token signed with an empty secret',
      header: () => bearer(signToken('', 'admin', { admin: true })),
    },
  ];
}

/** The admin token with its signature's last character changed only in the 2 padding bits (same bytes when decoded leniently). */
function nonCanonicalSig(token: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const last = token.at(-1)!;
  const v = alphabet.indexOf(last);
  return token.slice(0, -1) + alphabet[(v & ~3) | ((v & 3) ^ 1)];
}

/** An admin token whose signature is written in standard base64 (some '+' or '/'), found by trying iat values. */
function standardB64Token(secret: string): string {
  for (let i = 0; ; i++) {
    const t = signToken(secret, 'admin', { admin: true, now: Date.now() - i * 1000 });
    const s = t.split('.')[2]!;
    if (/[-_]/.test(s)) return t.slice(0, t.lastIndexOf('.') + 1) + s.replace(/-/g, '+').replace(/_/g, '/');
  }
}

const MANAGER_PATHS = ['/v1/users/x', '/v1/users/x/inbox', '/v1/sessions', '/v1/topics', '/v1/topics/t1', '/v1/nope'];
const MONITOR_PATHS = ['/status', '/events'];

describe('admin auth of the manager and monitor HTTP APIs', () => {
  let c: TestCluster;
  let cfgDir: string;
  let manager: RoleHandle | undefined;
  let monitor: RoleHandle | undefined;
  let admin: string;
  let xConn: RawConn | undefined;
  const managerUrl = () => `http://${manager!.addresses.http}`;
  const monitorUrl = () => `http://${monitor!.addresses.http}`;

  before(async () => {
    c = await startTestCluster({ msgServers: 1 });
    admin = signToken(c.secret, 'admin', { admin: true });
    // The manager and monitor as a cluster directory without any config would run them: the defaults.
    cfgDir = mkdtempSync(join(tmpdir(), 'fishchat-admin-auth-'));
    const config = await loadCluster(cfgDir, { secret: c.secret });
    assert.equal(config.manager.httpHost, DEFAULT_HOST);
    assert.equal(config.monitor.httpHost, DEFAULT_HOST);
    manager = await startManager(c.ctx as Parameters<typeof startManager>[0], { ...config.manager, httpPort: 0 });
    monitor = await startMonitor(c.ctx, { ...config.monitor, httpPort: 0 });
    // A known user "x" (with a live session) and a topic "t1", so the admin requests answer 200.
    xConn = await RawConn.connect(c.ms(0));
    const login = await xConn.request({ op: 'login', rid: rid(), user: 'x', token: c.token('x') });
    assert.equal(login.op, 'ok', JSON.stringify(login));
    const tc = await xConn.request({ op: 'topic_create', rid: rid(), topic: 't1' });
    assert.equal(tc.op, 'ok', JSON.stringify(tc));
  });

  after(async () => {
    xConn?.close();
    await manager?.stop().catch(() => undefined);
    await monitor?.stop().catch(() => undefined);
    await c?.stop();
    if (cfgDir) rmSync(cfgDir, { recursive: true, force: true });
  });

  it('binds 127.0.0.1 by default, and nothing else', async () => {
    for (const h of [manager!, monitor!]) {
      const addr = h.addresses.http!;
      assert.match(addr, /^127\.0\.0\.1:\d+$/, `${h.role} listens on ${addr}`);
      const port = Number(addr.split(':')[1]);
      // Not reachable on any other address of this machine.
      const others = Object.values(networkInterfaces())
        .flat()
        .filter((i) => i && !i.internal)
        .map((i) => i!.address);
      for (const host of others) {
        const reached = await new Promise<boolean>((resolve) => {
          const s = net.connect({ host, port });
          const t = setTimeout(() => (s.destroy(), resolve(false)), 2000);
          s.once('connect', () => (clearTimeout(t), s.destroy(), resolve(true)));
          s.once('error', () => (clearTimeout(t), resolve(false)));
        });
        assert.equal(reached, false, `${h.role} is reachable on ${host}:${port}`);
      }
    }
  });

  /** One GET; the body is read as JSON (or, for a 200 event stream, the request is aborted). */
  async function get(
    url: string,
    header: string | undefined,
  ): Promise<{ status: number; type: string; body: any; www: string | null }> {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 5000);
    try {
      const res = await fetch(url, {
        headers: header === undefined ? {} : { authorization: header },
        signal: ac.signal,
      });
      const type = res.headers.get('content-type') ?? '';
      let body: unknown;
      if (type.startsWith('text/event-stream')) {
        ac.abort();
        await res.body?.cancel().catch(() => undefined);
      } else {
        body = type.startsWith('application/json') ? await res.json() : await res.text();
      }
      return { status: res.status, type, body, www: res.headers.get('www-authenticate') };
    } finally {
      clearTimeout(timer);
    }
  }

  it('refuses every bad token on every protected endpoint with 401 auth_failed (JSON)', async () => {
    const cases = badCases(c.secret);
    const urls = [...MANAGER_PATHS.map((p) => managerUrl() + p), ...MONITOR_PATHS.map((p) => monitorUrl() + p)];
    const failures: string[] = [];
    for (const bc of cases) {
      const header = bc.header(admin);
      for (const url of urls) {
        const r = await get(url, header);
        const where = `${bc.what} → ${url.replace(/^http:\/\/[^/]+/, '')}`;
        if (r.status !== 401)
          failures.push(`${where}: status ${r.status} ${JSON.stringify(r.body ?? null).slice(0, 80)}`);
        else if (!r.type.startsWith('application/json')) failures.push(`${where}: content-type ${r.type}`);
        else if (
          r.body?.error?.code !== 'auth_failed' ||
          typeof r.body.error.message !== 'string' ||
          r.body.error.message === ''
        ) {
          failures.push(`${where}: body ${JSON.stringify(r.body).slice(0, 200)}`);
        } else if (!/^Bearer/.test(r.www ?? '')) failures.push(`${where}: WWW-Authenticate ${r.www}`);
      }
    }
    assert.deepEqual(failures, [], `${failures.length} bad answers:\n${failures.join('\n')}`);
  });

  it('lets an admin token through on every endpoint', async () => {
    for (const header of [`Bearer ${admin}`, `bearer ${admin}`, `Bearer ${admin}  `]) {
      for (const p of MANAGER_PATHS.filter((p) => p !== '/v1/nope')) {
        const r = await get(managerUrl() + p, header);
        assert.equal(r.status, 200, `${p}: ${JSON.stringify(r.body)}`);
        assert.match(r.type, /^application\/json/);
      }
      const nope = await get(managerUrl() + '/v1/nope', header);
      assert.equal(nope.status, 404);
      assert.equal(nope.body.error.code, 'not_found');
      const status = await get(monitorUrl() + '/status', header);
      assert.equal(status.status, 200);
      assert.ok(Array.isArray(status.body.roles));
      const events = await get(monitorUrl() + '/events', header);
      assert.equal(events.status, 200);
      assert.match(events.type, /^text\/event-stream/);
    }
    // Within the 30 s leeway an expired admin token still passes.
    const late = signToken(c.secret, 'admin', { admin: true, ttlSeconds: 60, now: Date.now() - 60_000 - 10_000 });
    assert.equal((await get(managerUrl() + '/v1/sessions', `Bearer ${late}`)).status, 200);
    assert.equal((await get(monitorUrl() + '/status', `Bearer ${late}`)).status, 200);
    // An admin token for any sub works (the claim, not the name, makes it admin).
    assert.equal(
      (await get(monitorUrl() + '/status', `Bearer ${signToken(c.secret, 'ops-bot', { admin: true })}`)).status,
      200,
    );
  });

  it('/health and /metrics are open', async () => {
    const mh = await get(managerUrl() + '/health', undefined);
    assert.equal(mh.status, 200);
    assert.equal(mh.body.ok, true);
    assert.equal(mh.body.role, 'manager');
    const nh = await get(monitorUrl() + '/health', undefined);
    assert.equal(nh.status, 200);
    assert.equal(nh.body.role, 'monitor');
    const metrics = await get(monitorUrl() + '/metrics', 'Bearer garbage');
    assert.equal(metrics.status, 200);
    assert.match(String(metrics.body), /^# (HELP|TYPE) /m);
    // A bad token does not make an open endpoint fail either.
    assert.equal((await get(managerUrl() + '/health', 'Bearer garbage')).status, 200);
  });
});

describe('msg_server login with bad tokens', () => {
  let c: TestCluster;
  before(async () => {
    c = await startTestCluster({ msgServers: 1 });
  });
  after(async () => {
    await c?.stop();
  });

  it('answers auth_failed and closes, for every bad token; a good one logs in', async () => {
    const secret = c.secret;
    const good = signToken(secret, 'alice');
    const [h, p] = good.split('.') as [string, string];
    const claims = (extra: object = {}) => ({ sub: 'alice', iat: now(), exp: now() + 3600, ...extra });
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const rsInput = `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64(claims())}`;
    const tokens: [string, unknown][] = [
      ['missing', undefined],
      ['empty', ''],
      ['garbage', 'garbage'],
      ['a.b.c', 'a.b.c'],
      ['5000 characters', 'x'.repeat(5000)],
      [
        'tampered payload: sub changed to bob, old signature',
        `${h}.${b64(claims({ sub: 'bob' }))}.${good.split('.')[2]}`,
      ],
      [
        'tampered payload: exp pushed forward',
        reClaim(signToken(secret, 'alice', { ttlSeconds: -3600 }), { exp: now() + 3600 }),
      ],
      ['tampered signature (middle)', flipSigChar(good, 21)],
      ['tampered signature (last character)', flipSigChar(good, 42)],
      ['signature with a padding bit set', nonCanonicalSig(good)],
      ['signature with "=" appended', `${good}=`],
      ['empty signature', `${h}.${p}.`],
      ['HS512 re-signed', hmacJwt(secret, { alg: 'HS512', typ: 'JWT' }, claims(), 'sha512')],
      ['RS256', `${rsInput}.${rsaSign('sha256', Buffer.from(rsInput), rsa.privateKey).toString('base64url')}`],
      ['alg none, empty signature', `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims())}.`],
      ['expired beyond the leeway', signToken(secret, 'alice', { ttlSeconds: 60, now: Date.now() - 105_000 })],
      ['no exp', hmacJwt(secret, { alg: 'HS256', typ: 'JWT' }, { sub: 'alice' })],
      ['for another user', signToken(secret, 'bob')],
      ['for another user, by case', signToken(secret, 'Alice')],
      ["another cluster's secret", signToken(secret + '-other-cluster', 'alice')],
      ["another cluster's admin token", signToken(secret + '-other-cluster', 'alice', { admin: true })],
    ];
    const failures: string[] = [];
    for (const [what, token] of tokens) {
      const conn = await RawConn.connect(c.ms(0));
      try {
        const r = rid();
        conn.send({ op: 'login', rid: r, user: 'alice', token: token as string | undefined });
        const reply: Record<string, unknown> = await conn
          .next(3000)
          .catch((e: Error) => ({ op: 'none', message: e.message }));
        if (
          reply.op !== 'error' ||
          reply.code !== 'auth_failed' ||
          reply.rid !== r ||
          typeof reply.message !== 'string'
        ) {
          failures.push(`${what}: ${JSON.stringify(reply)}`);
          continue;
        }
        const closed = await conn.waitClosed(3000).then(
          () => true,
          () => false,
        );
        if (!closed) failures.push(`${what}: connection left open`);
        else if (conn.pending().length)
          failures.push(`${what}: frames after auth_failed: ${JSON.stringify(conn.pending())}`);
      } finally {
        conn.close();
      }
    }
    assert.deepEqual(failures, [], failures.join('\n'));

    // A token of the wrong type is a bad field (validated before the token): bad_request, and nobody is logged in.
    {
      const conn = await RawConn.connect(c.ms(0));
      try {
        const r = await conn.request({ op: 'login', rid: rid(), user: 'alice', token: new Uint8Array([1, 2, 3]) });
        assert.equal(r.code, 'bad_request', JSON.stringify(r));
        const sync = await conn.request({ op: 'sync', rid: rid(), after: 0 });
        assert.equal(sync.code, 'not_logged_in', JSON.stringify(sync));
      } finally {
        conn.close();
      }
    }

    // A good token logs in (within the leeway, too), and the session works.
    for (const token of [good, signToken(secret, 'alice', { ttlSeconds: 60, now: Date.now() - 75_000 })]) {
      const conn = await RawConn.connect(c.ms(0));
      try {
        const ok = await conn.request({ op: 'login', rid: rid(), user: 'alice', token, device: 'd' + rid() });
        assert.equal(ok.op, 'ok', JSON.stringify(ok));
        const pong = await conn.request({ op: 'ping', rid: rid() });
        assert.equal(pong.op, 'pong');
      } finally {
        conn.close();
      }
    }
  });
});
