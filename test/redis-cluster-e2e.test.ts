/**
 * Redis Cluster end to end (issue 13): the CLI as an operator runs it, every
 * role its own process, against a private Redis Cluster of 3 masters with one
 * replica each (6 redis-server processes on ports from the OS, appendonly,
 * data in temp directories, cluster-node-timeout 1 s, stopped by PID).
 *
 * 1. `fishchat init DIR --redis 'redis://127.0.0.1:PORT?cluster=1'`, then
 *    `fishchat up DIR` with no edit but the ports (0: this machine is shared):
 *    the protocol essentials over TCP and over WebSocket (login, p2p across
 *    the msg_servers, offline backlog, ack, sync, cid idempotency, topics
 *    create/join/send/leave across the msg_servers); the keys spread over
 *    the three masters.
 * 2. `fishchat serve ROLE` per role (six processes), the clients routed by
 *    the gateway: the same essentials over TCP and WebSocket.
 * 3. The chaos run (test/helpers/chaos.ts) on the cluster: kill -9 of a
 *    msg_server every 4 s under p2p load; nothing acknowledged lost, each
 *    delivered once, in order.
 * 4. A master failover under the same load: kill -9 of a master (not the
 *    seed node) that has a replica; the replica takes over; then every
 *    acknowledged message is there (sync from each recipient on a fresh
 *    connection), each once, and no seq went back (per recipient the oks'
 *    seqs grow by one in send order, the login head is the last ok's seq).
 *
 * Needs the compiled dist/ (`npm run build`), redis-server and redis-cli.
 * Skipped under Bun: every role runs as a Node child process either way, the
 * runs take about two minutes, and what they test is the server.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { signToken } from '../runtime/protocol/token.js';
import { haveDist, runChaos, summaryLine, type ChaosResult, type ChaosVerify } from './helpers/chaos.js';
import { CliProcess, fishchat } from './helpers/cli.js';
import { RawConn, type Frame } from './helpers/raw.js';
import { available as haveRedisServer, RedisCluster } from './helpers/redis-server.js';
import { RawWs } from './helpers/ws.js';
import { untilSome } from './helpers/wait.js';

const UNDER_BUN = (process.versions as { bun?: string }).bun !== undefined;
const HAVE_CLI = spawnSync('redis-cli', ['--version']).status === 0;
const SKIP: string | false = UNDER_BUN
  ? 'Redis Cluster end to end runs on Node only (`node --import tsx --test test/redis-cluster-e2e.test.ts`): the roles are Node child processes either way'
  : !haveRedisServer() || !HAVE_CLI
    ? 'redis-server or redis-cli is not on PATH'
    : false;
if (SKIP) console.warn(`test/redis-cluster-e2e.test.ts: skipped, ${SKIP}`);

const READY_MS = 60_000;

// ---------------------------------------------------------------- the protocol essentials

/** A raw protocol connection: TCP (RawConn) or WebSocket (RawWs), the same shape. */
type Conn = RawConn | RawWs;

/** Where one msg_server listens. */
interface Server {
  id: string;
  tcp: string;
  ws: string;
}

type Transport = 'tcp' | 'ws';

let ridSeq = 1;
const rid = () => ridSeq++;

async function open(s: Server, t: Transport): Promise<Conn> {
  return t === 'tcp' ? RawConn.connect(s.tcp) : RawWs.connect(s.ws, { timeoutMs: 10_000 });
}

/** Logs `user` in on `s`; the login ok. */
async function login(
  s: Server,
  t: Transport,
  secret: string,
  user: string,
  extra: Record<string, string | boolean> = {},
): Promise<{ c: Conn; ok: Frame }> {
  const c = await open(s, t);
  const ok = await c.request({ op: 'login', rid: rid(), user, token: signToken(secret, user), ...extra }, 10_000);
  assert.equal(ok.op, 'ok', `login ${user} on ${s.id} over ${t}: ${JSON.stringify(ok)}`);
  assert.equal(ok.server, s.id);
  return { c, ok };
}

/** No pushed msg frame arrives before the pong of a ping (a pong means "you have everything"). */
async function noMoreMsgs(c: Conn, what: string): Promise<void> {
  const pong = await c.request({ op: 'ping', rid: rid() }, 10_000);
  assert.equal(pong.op, 'pong');
  const extra = await c.next(200, (f) => f.op === 'msg' && f.rid === undefined).catch(() => undefined);
  assert.equal(extra, undefined, `${what}: an unexpected msg ${JSON.stringify(extra)}`);
}

/** Every message of a sync after `after`, paged; the final ok. */
async function syncAll(c: Conn, after: number, limit = 2): Promise<{ msgs: Frame[]; ok: Frame }> {
  const msgs: Frame[] = [];
  for (;;) {
    const r = rid();
    const ok = await c.request({ op: 'sync', rid: r, after, limit }, 10_000);
    assert.equal(ok.op, 'ok', JSON.stringify(ok));
    for (;;) {
      const m = await c.next(0, (f) => f.op === 'msg' && f.rid === r).catch(() => undefined);
      if (!m) break;
      msgs.push(m);
    }
    if (!ok.more) return { msgs, ok };
    after = ok.last as number;
  }
}

/**
 * Login, p2p across the two msg_servers both ways, cid idempotency, offline
 * backlog, ack, sync, and a topic across the two (create, join, send, leave):
 * users of their own (`tag`), every frame checked.
 */
async function essentials(servers: [Server, Server], t: Transport, secret: string, tag: string): Promise<number> {
  const [A, B] = servers;
  const u = (n: string) => `${n}-${tag}-${t}`;
  const conns: Conn[] = [];
  let checked = 0;
  try {
    // ---- login and p2p across the msg_servers
    const bob = await login(A, t, secret, u('bob'));
    conns.push(bob.c);
    assert.deepEqual([bob.ok.seq, bob.ok.acked, bob.ok.first], [0, 0, 1]);
    const alice = await login(B, t, secret, u('alice'));
    conns.push(alice.c);
    const s1 = await alice.c.request({ op: 'send', rid: rid(), to: u('bob'), body: 'hi bob', cid: 'c1' }, 10_000);
    assert.equal(s1.op, 'ok', JSON.stringify(s1));
    assert.equal(s1.seq, 1);
    const [m1] = await bob.c.msgs(1, 10_000);
    assert.deepEqual([m1!.seq, m1!.mid, m1!.from, m1!.to, m1!.body], [1, s1.mid, u('alice'), u('bob'), 'hi bob']);
    checked++;
    // the same cid again: the first mid and seq, nothing stored or delivered
    const again = await alice.c.request({ op: 'send', rid: rid(), to: u('bob'), body: 'ignored', cid: 'c1' }, 10_000);
    assert.deepEqual([again.op, again.mid, again.seq, again.ts], ['ok', s1.mid, 1, s1.ts]);
    await noMoreMsgs(bob.c, 'a repeated cid');
    const back = await bob.c.request({ op: 'send', rid: rid(), to: u('alice'), body: { n: 1 } }, 10_000);
    assert.equal(back.op, 'ok');
    const [m2] = await alice.c.msgs(1, 10_000);
    assert.deepEqual([m2!.mid, m2!.from, m2!.body], [back.mid, u('bob'), { n: 1 }]);
    checked++;

    // ---- offline backlog (carol never logged in), ack, backlog after the ack, sync
    const sent: Frame[] = [];
    for (let i = 1; i <= 3; i++) {
      const ok = await alice.c.request({ op: 'send', rid: rid(), to: u('carol'), body: `m${i}` }, 10_000);
      assert.equal(ok.seq, i);
      sent.push(ok);
    }
    const carol = await login(A, t, secret, u('carol'));
    conns.push(carol.c);
    assert.deepEqual([carol.ok.seq, carol.ok.acked, carol.ok.first], [3, 0, 1]);
    const backlog = await carol.c.msgs(3, 10_000);
    assert.deepEqual(
      backlog.map((m) => [m.seq, m.mid, m.body]),
      sent.map((s, i) => [i + 1, s.mid, `m${i + 1}`]),
    );
    checked += 3;
    carol.c.send({ op: 'ack', seq: 2 });
    await noMoreMsgs(carol.c, 'after the backlog');
    carol.c.close();
    // on the other msg_server: the cursor holds; the backlog is what is after it
    const carol2 = await login(B, t, secret, u('carol'));
    conns.push(carol2.c);
    assert.deepEqual([carol2.ok.seq, carol2.ok.acked], [3, 2]);
    const [rest] = await carol2.c.msgs(1, 10_000);
    assert.deepEqual([rest!.seq, rest!.mid], [3, sent[2]!.mid]);
    const { msgs, ok: syncOk } = await syncAll(carol2.c, 0);
    assert.deepEqual(
      msgs.map((m) => [m.seq, m.mid]),
      sent.map((s, i) => [i + 1, s.mid]),
    );
    assert.deepEqual([syncOk.last, syncOk.more, syncOk.first, syncOk.epoch], [3, false, 1, carol.ok.epoch]);
    checked += 3;

    // ---- topics across the msg_servers
    const topic = `room-${tag}-${t}`;
    assert.equal((await alice.c.request({ op: 'topic_create', rid: rid(), topic }, 10_000)).op, 'ok');
    const j1 = await bob.c.request({ op: 'topic_join', rid: rid(), topic }, 10_000);
    assert.deepEqual([j1.op, j1.members], ['ok', 2]);
    const j2 = await carol2.c.request({ op: 'topic_join', rid: rid(), topic }, 10_000);
    assert.deepEqual([j2.op, j2.members], ['ok', 3]);
    const ts1 = await bob.c.request({ op: 'topic_send', rid: rid(), topic, body: 'to all', cid: 't1' }, 10_000);
    assert.deepEqual([ts1.op, ts1.tseq], ['ok', 1], JSON.stringify(ts1));
    const dup = await bob.c.request({ op: 'topic_send', rid: rid(), topic, body: 'x', cid: 't1' }, 10_000);
    assert.deepEqual([dup.mid, dup.tseq], [ts1.mid, 1]);
    for (const [who, c] of [
      ['alice', alice.c],
      ['bob', bob.c],
      ['carol', carol2.c],
    ] as const) {
      const [m] = await c.msgs(1, 10_000);
      assert.deepEqual([m!.topic, m!.tseq, m!.mid, m!.from, m!.body], [topic, 1, ts1.mid, u('bob'), 'to all'], who);
      await noMoreMsgs(c, `${who}: one copy of a topic message`);
      checked++;
    }
    const members = await alice.c.request({ op: 'topic_members', rid: rid(), topic }, 10_000);
    assert.deepEqual(members.members, [u('alice'), u('bob'), u('carol')].sort());
    assert.equal((await carol2.c.request({ op: 'topic_leave', rid: rid(), topic }, 10_000)).op, 'ok');
    const ts2 = await alice.c.request({ op: 'topic_send', rid: rid(), topic, body: 'after carol left' }, 10_000);
    assert.equal(ts2.tseq, 2);
    for (const c of [alice.c, bob.c]) {
      const [m] = await c.msgs(1, 10_000);
      assert.deepEqual([m!.tseq, m!.mid], [2, ts2.mid]);
      checked++;
    }
    await noMoreMsgs(carol2.c, 'carol left the topic');
    const notMember = await carol2.c.request({ op: 'topic_send', rid: rid(), topic, body: 'no' }, 10_000);
    assert.deepEqual([notMember.op, notMember.code], ['error', 'not_a_member']);
  } finally {
    for (const c of conns) c.close();
  }
  return checked;
}

// ---------------------------------------------------------------- cluster directories

const dirs: string[] = [];

async function tempDir(): Promise<string> {
  const d = await realpath(await mkdtemp(join(tmpdir(), 'fishchat-rcluster-')));
  dirs.push(d);
  return d;
}

/** Every listener of a cluster directory on port 0; the beat quicker when asked. */
async function portsFromTheOs(dir: string, settings?: Record<string, unknown>): Promise<Record<string, unknown>> {
  const file = JSON.parse(await readFile(join(dir, 'fishchat.json'), 'utf8')) as {
    roles: string[];
    settings: Record<string, unknown>;
  };
  if (settings) {
    file.settings = { ...file.settings, ...settings };
    await writeFile(join(dir, 'fishchat.json'), JSON.stringify(file, null, 2));
  }
  for (const f of file.roles) {
    const role = JSON.parse(await readFile(join(dir, f), 'utf8')) as Record<string, unknown>;
    if ('port' in role) role.port = 0;
    role.httpPort = 0;
    await writeFile(join(dir, f), JSON.stringify(role, null, 2));
  }
  return file;
}

/** How many keys under `prefix` each running master holds (by port). */
async function keysPerMaster(rc: RedisCluster, prefix: string): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  for (const m of await rc.masters()) {
    let n = 0;
    let cursor = '0';
    do {
      const reply = await scan(rc, m.port, cursor, `${prefix}*`);
      cursor = reply.cursor;
      n += reply.keys;
    } while (cursor !== '0');
    out.set(m.port, n);
  }
  return out;
}

/** One SCAN page through redis-cli (its reply: the cursor line, then one key a line). */
async function scan(rc: RedisCluster, port: number, cursor: string, match: string) {
  const r = spawnSync('redis-cli', ['-p', String(port), 'SCAN', cursor, 'MATCH', match, 'COUNT', '1000'], {
    encoding: 'utf8',
    timeout: 5000,
  });
  void rc;
  const lines = r.stdout.split('\n').filter(Boolean);
  return { cursor: lines[0] ?? '0', keys: lines.length - 1 };
}

// ---------------------------------------------------------------- the suite

let rc: RedisCluster | undefined;

before(async () => {
  if (SKIP) return;
  assert.ok(haveDist(), 'dist/ is missing: run `npm run build` first (`npm test` does)');
  const t0 = Date.now();
  rc = await RedisCluster.start({ replicas: 1, appendonly: true, nodeTimeoutMs: 1000 });
  console.log(`# Redis Cluster of 3 masters + 3 replicas up in ${Date.now() - t0} ms: ${rc.clusterUrl}`);
});

after(async () => {
  await rc?.destroy();
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('Redis Cluster end to end', { skip: SKIP, concurrency: false }, () => {
  test('init --redis URL?cluster=1 writes a directory that `up` runs on the Redis Cluster; the protocol over TCP and WebSocket', {
    timeout: 120_000,
  }, async () => {
    const dir = await tempDir();
    const init = await fishchat(['init', dir, '--redis', rc!.clusterUrl]);
    assert.equal(init.code, 0, init.stdout + init.stderr);
    const file = JSON.parse(await readFile(join(dir, 'fishchat.json'), 'utf8')) as { redis: string; cluster: string };
    assert.equal(file.redis, rc!.clusterUrl, 'fishchat.json "redis" is the URL as given');
    // The only edit: ports from the OS (this machine is shared); Redis, cluster name and settings as init wrote them.
    await portsFromTheOs(dir);
    const up = new CliProcess(['up', dir], { waitMs: READY_MS, killAfterMs: 30_000 });
    try {
      const out = await up.waitFor(/^cluster ready in \d+ ms/m);
      assert.match(out, /^mode: Redis at redis:\/\/127\.0\.0\.1:\d+\?cluster=1 \("redis" in fishchat\.json/m);
      assert.doesNotMatch(up.stdout + up.stderr, /appendonly/, 'no appendonly warning: every node has it on');
      const run = JSON.parse(await readFile(join(dir, '.fishchat', 'run.json'), 'utf8')) as {
        mode: string;
        roles: { role: string; id: string; addresses: { tcp?: string; ws?: string } }[];
      };
      assert.equal(run.mode, 'redis');
      const servers = run.roles
        .filter((r) => r.role === 'msg_server')
        .map((r) => ({ id: r.id, tcp: r.addresses.tcp!, ws: r.addresses.ws! }));
      assert.equal(servers.length, 2);
      for (const s of servers) assert.match(s.ws, /^ws:\/\/127\.0\.0\.1:\d+\/v1\/ws$/);
      let checked = 0;
      for (const t of ['tcp', 'ws'] as const)
        checked += await essentials([servers[0]!, servers[1]!], t, await secretOf(dir), 'up');
      // The CLI's own send, through the gateway.
      const send = await fishchat(['send', '--dir', dir, '--as', 'carl', '--to', 'dora', '--json', 'via the CLI']);
      assert.equal(send.code, 0, send.stdout + send.stderr);
      assert.equal(JSON.parse(send.stdout).seq, 1);
      // The keys are spread over the three masters: a Cluster client, one hash tag per script.
      const spread = await keysPerMaster(rc!, `fishchat:${file.cluster}:`);
      assert.equal(spread.size, 3);
      assert.ok(
        [...spread.values()].every((n) => n > 0),
        `keys on every master: ${JSON.stringify([...spread])}`,
      );
      console.log(
        `# up on the Redis Cluster: ${checked} deliveries checked; keys per master ${JSON.stringify([...spread.values()])}`,
      );
      const stop = await up.stop('SIGTERM');
      assert.equal(stop.code, 0, up.output);
    } finally {
      await up.stop('SIGKILL');
    }
  });

  test('init --redis takes the seed nodes of a Redis Cluster separated by commas (with ?cluster=1 only)', {
    timeout: 60_000,
  }, async () => {
    const seeds = `redis://${rc!.nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}?cluster=1`;
    const dir = await tempDir();
    const ok = await fishchat(['init', dir, '--redis', seeds]);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.equal(JSON.parse(await readFile(join(dir, 'fishchat.json'), 'utf8')).redis, seeds);
    const plain = await fishchat(['init', await tempDir(), '--redis', seeds.replace('?cluster=1', '')]);
    assert.notEqual(plain.code, 0);
    assert.match(plain.stderr, /several host:port separated by commas only for a Redis Cluster \(add \?cluster=1\)/);
    const badPort = await fishchat([
      'init',
      await tempDir(),
      '--redis',
      `redis://127.0.0.1:${rc!.nodes[0]!.port},127.0.0.1:0?cluster=1`,
    ]);
    assert.notEqual(badPort.code, 0);
    assert.match(badPort.stderr, /port 1–65535/);
  });

  test('`fishchat serve ROLE` per role on the Redis Cluster, clients routed by the gateway: the protocol over TCP and WebSocket', {
    timeout: 120_000,
  }, async () => {
    const dir = await tempDir();
    const init = await fishchat(['init', dir]);
    assert.equal(init.code, 0, init.stderr);
    const cluster = `serve-${process.pid}`;
    const file = JSON.parse(await readFile(join(dir, 'fishchat.json'), 'utf8')) as Record<string, unknown>;
    await writeFile(join(dir, 'fishchat.json'), JSON.stringify({ ...file, cluster }, null, 2));
    await portsFromTheOs(dir, { beat: 500 });
    const serve = (args: string[]) =>
      new CliProcess(['serve', ...args, '--dir', dir, '--redis', rc!.clusterUrl], {
        waitMs: READY_MS,
        killAfterMs: 20_000,
      });
    const procs = [
      serve(['monitor']),
      serve(['router']),
      serve(['manager']),
      serve(['msg_server', '--id', 'ms-19000']),
      serve(['msg_server', '--id', 'ms-19001']),
      serve(['gateway']),
    ];
    try {
      const ready = await Promise.all(procs.map((p) => p.waitFor(/^ready \S+ \S+ .*$/m)));
      const line = (i: number) => /^ready (\S+) (\S+)((?: \w+=\S+)*)$/m.exec(ready[i]!)!;
      for (const p of procs) assert.match(p.stdout, /over Redis at redis:\/\/127\.0\.0\.1:\d+\?cluster=1/);
      const gw = /tcp=(\S+)/.exec(line(5)[3]!)![1]!;
      // The gateway hands out both msg_servers (from their beats), each with its ws URL.
      const secret = await secretOf(dir);
      const servers = await untilSome('both msg_servers in the route reply', async () => {
        const c = await RawConn.connect(gw);
        try {
          const r = await c.request({ op: 'route', rid: rid(), user: 'x' }, 5000);
          const list = (r.servers ?? []) as { id: string; addr: string; ws: string }[];
          return list.length === 2 ? list : undefined;
        } finally {
          c.close();
        }
      });
      const byId = servers
        .map((s) => ({ id: s.id, tcp: s.addr, ws: s.ws }))
        .sort((a, b) => a.id.localeCompare(b.id)) as [Server, Server];
      for (const [i, s] of byId.entries()) {
        const own = line(3 + i);
        assert.equal(own[2], s.id);
        assert.match(own[3]!, new RegExp(` tcp=${s.tcp} `), 'the gateway hands out the address the msg_server bound');
        assert.match(own[3]!, new RegExp(` ws=${s.ws.replace(/[/.]/g, '\\$&')}`));
      }
      let checked = 0;
      for (const t of ['tcp', 'ws'] as const) checked += await essentials(byId, t, secret, 'serve');
      console.log(`# serve per role on the Redis Cluster: ${checked} deliveries checked`);
      // SIGTERM: each role stops cleanly.
      for (const p of [...procs].reverse()) {
        const { code, signal } = await p.stop('SIGTERM');
        assert.deepEqual([code, signal], [0, null], p.output);
      }
    } finally {
      await Promise.all(procs.map((p) => p.stop('SIGKILL')));
      await deleteKeys(`fishchat:${cluster}:`);
    }
  });

  test('chaos on the Redis Cluster: kill -9 of a msg_server every 4 s under load; nothing acknowledged lost, each once, in order', {
    timeout: 120_000,
  }, async () => {
    const r = await runChaos({
      mode: 'kill-ms',
      redisUrl: rc!.clusterUrl,
      pairs: 20,
      durationMs: 14_000,
      intervalMs: 20,
      everyMs: 4000,
      deliveryTimeoutMs: 15_000,
      log: process.env.FISHCHAT_CHAOS_VERBOSE ? (l) => console.log(l) : undefined,
    });
    console.log(`# ${summaryLine(r)}`);
    checkChaos(r);
    assert.ok(r.events >= 3, `at least 3 kills (${r.events})`);
  });

  test('a Redis Cluster master failover under load (kill -9 of a master with a replica): every acknowledged message there, each once, no seq back', {
    timeout: 120_000,
  }, async () => {
    const fo: { v?: { killed: number; promoted: number; promotedMs: number; okMs: number; slots: string[] } } = {};
    // Every node as a seed: the victim is the first seed, and a role started after its death connects through the others.
    const rows0 = await rc!.table();
    const victim0 = rows0.find((x) => x.flags.includes('master') && rows0.some((y) => y.master === x.id))!;
    const seeds = [victim0.port, ...rc!.nodes.map((n) => n.port).filter((p) => p !== victim0.port)];
    const url = `redis://${seeds.map((p) => `127.0.0.1:${p}`).join(',')}?cluster=1`;
    const r = await runChaos({
      mode: 'custom',
      redisUrl: url,
      pairs: 20,
      durationMs: 14_000,
      intervalMs: 20,
      everyMs: 4000,
      maxEvents: 2,
      deliveryTimeoutMs: 15_000,
      log: process.env.FISHCHAT_CHAOS_VERBOSE ? (l) => console.log(l) : undefined,
      chaos: async (event, { dir, index }) => {
        if (index === 1) {
          // after the failover: both msg_servers killed (every client must log in again), restarted by
          // the supervisor while the first seed node is dead
          const run = JSON.parse(await readFile(join(dir, '.fishchat', 'run.json'), 'utf8')) as {
            roles: { id: string; role: string; pid: number }[];
          };
          for (const ms of run.roles.filter((x) => x.role === 'msg_server')) {
            process.kill(ms.pid, 'SIGKILL');
            event(`kill -9 ${ms.id} (pid ${ms.pid}) with the first seed node dead`);
          }
          return;
        }
        const rows = await rc!.table();
        const victim = rows.find((x) => x.port === victim0.port && x.flags.includes('master') && x.slots.length > 0);
        assert.ok(victim, `127.0.0.1:${victim0.port} still a master: ${JSON.stringify(rows)}`);
        const replica = rows.find((y) => y.master === victim.id && !y.flags.includes('fail'));
        assert.ok(replica, `127.0.0.1:${victim0.port} has a replica: ${JSON.stringify(rows)}`);
        const node = rc!.node(victim.port);
        const t0 = Date.now();
        event(
          `kill -9 redis master 127.0.0.1:${victim.port} (pid ${node.pid}, slots ${victim.slots.join(' ')}); its replica is 127.0.0.1:${replica.port}`,
        );
        await node.kill9();
        await rc!.waitFor(
          async () => {
            const me = (await rc!.table(replica.port)).find((x) => x.port === replica.port);
            return me?.flags.includes('master') === true && me.slots.join(' ') === victim.slots.join(' ');
          },
          20_000,
          `the replica 127.0.0.1:${replica.port} promoted with slots ${victim.slots.join(' ')}`,
        );
        const promotedMs = Date.now() - t0;
        await rc!.waitOk(20_000);
        fo.v = { killed: victim.port, promoted: replica.port, promotedMs, okMs: Date.now() - t0, slots: victim.slots };
        event(
          `replica 127.0.0.1:${replica.port} promoted after ${promotedMs} ms; cluster_state:ok on every node after ${fo.v.okMs} ms`,
        );
      },
      verify: (v) => verifyAfterFailover(v),
    });
    console.log(`# ${summaryLine(r)}`);
    const failover = fo.v;
    assert.ok(failover, 'the failover happened');
    const onKilled = await usersOnSlots(receiversOf(r), failover.slots);
    console.log(
      `# failover: master 127.0.0.1:${failover.killed} killed, replica 127.0.0.1:${failover.promoted} promoted after ${failover.promotedMs} ms, cluster_state:ok after ${failover.okMs} ms; ${onKilled} of ${r.pairs} receivers had their inbox on the killed master; ${r.acked} acknowledged messages checked by sync (${verified.messages} messages in ${verified.inboxes} inboxes)`,
    );
    checkChaos(r);
    assert.equal(r.events, 3);
    for (const id of ['ms-19000', 'ms-19001']) {
      assert.ok(
        r.timeline.some((e) => e.what.startsWith(`${id} restarted by the supervisor`)),
        `${id} restarted with the first seed node dead`,
      );
    }
    assert.ok(r.reconnects >= 2 * r.pairs, `every client logged in again (${r.reconnects} reconnects)`);
    assert.ok(onKilled > 0, 'some inboxes lived on the killed master');
    assert.equal(verified.messages, r.acked, 'every acknowledged message read back by sync');
  });
});

// ---------------------------------------------------------------- checks

function checkChaos(r: ChaosResult): void {
  const detail = `\n${r.problems.join('\n')}\ntimeline:\n${r.timeline.map((e) => `  ${(e.t / 1000).toFixed(2)} s  ${e.what}`).join('\n')}`;
  assert.ok(r.acked > 0, `no message acknowledged${detail}`);
  assert.equal(r.lost, 0, `acknowledged messages lost${detail}`);
  assert.equal(r.duplicatesAtApp, 0, `mids handed to the app twice${detail}`);
  assert.equal(r.storedTwice, 0, `messages stored twice${detail}`);
  assert.equal(r.gaps, 0, `seq gaps left unfilled${detail}`);
  assert.equal(r.unexpected, 0, `messages received that no ok named${detail}`);
  assert.equal(r.unconfirmed, 0, `sends that never got an ok${detail}`);
  assert.equal(r.received, r.acked, detail);
  assert.deepEqual(r.problems, [], detail);
}

/**
 * On the live cluster, after delivery: each recipient logs in afresh
 * (push: false, a device of its own) through the gateway and syncs from 0.
 * The inbox must be exactly the acknowledged messages (seq 1..n, the mids of
 * the oks), the login head the last ok's seq; and in send order the oks'
 * seqs grow by exactly one (no seq given twice, none went back).
 */
const verified = { inboxes: 0, messages: 0 };

async function verifyAfterFailover(v: ChaosVerify): Promise<string[]> {
  const problems: string[] = [];
  const route = await RawConn.connect(v.gateway);
  let servers: { id: string; addr: string }[];
  try {
    const r = await route.request({ op: 'route', rid: rid(), user: 'verify' }, 10_000);
    servers = r.servers as { id: string; addr: string }[];
  } finally {
    route.close();
  }
  let i = 0;
  for (const [user, oks] of v.oks) {
    for (let j = 1; j < oks.length; j++) {
      if (oks[j]!.seq !== oks[j - 1]!.seq + 1) {
        problems.push(`${user}: ok seq ${oks[j]!.seq} after ok seq ${oks[j - 1]!.seq} (k=${oks[j]!.k})`);
        break;
      }
    }
    const s = servers[i++ % servers.length]!;
    const c = await RawConn.connect(s.addr);
    try {
      const ok = await c.request(
        { op: 'login', rid: rid(), user, token: v.token(user)(), device: 'verify', push: false },
        10_000,
      );
      if (ok.op !== 'ok') {
        problems.push(`${user}: verify login: ${JSON.stringify(ok)}`);
        continue;
      }
      const top = oks.length ? oks[oks.length - 1]!.seq : 0;
      if (ok.seq !== top) problems.push(`${user}: the inbox head is seq ${ok.seq}, the last ok said ${top}`);
      const { msgs } = await syncAll(c, 0, 1000);
      verified.inboxes++;
      verified.messages += msgs.length;
      const want = oks.map((o) => `${o.seq} ${o.mid}`).join(',');
      const have = msgs.map((m) => `${m.seq} ${m.mid}`).join(',');
      if (want !== have) problems.push(`${user}: the synced inbox ≠ the oks\n  oks:  ${want}\n  sync: ${have}`);
    } finally {
      c.close();
    }
  }
  return problems;
}

function receiversOf(r: ChaosResult): string[] {
  const tag = r.run.slice(r.run.lastIndexOf('-') + 1);
  return Array.from({ length: r.pairs }, (_, i) => `r${i}-${tag}`);
}

/** How many of `users` have their keys ({u:user}) in the slot ranges `slots`. */
async function usersOnSlots(users: string[], slots: string[]): Promise<number> {
  const ranges = slots.map((s) => s.split('-').map(Number) as [number, number?]);
  let n = 0;
  for (const u of users) {
    const slot = Number(await rc!.command(rc!.nodes[0]!.port, ['CLUSTER', 'KEYSLOT', `{u:${u}}`]));
    if (ranges.some(([lo, hi]) => slot >= lo && slot <= (hi ?? lo))) n++;
  }
  return n;
}

async function secretOf(dir: string): Promise<string> {
  return (await readFile(join(dir, '.fishchat', 'secret'), 'utf8')).trim();
}

async function deleteKeys(prefix: string): Promise<void> {
  const { deleteKeysWithPrefix } = await import('../runtime/redis/index.js');
  await deleteKeysWithPrefix(rc!.url, prefix, true).catch(() => {});
}
