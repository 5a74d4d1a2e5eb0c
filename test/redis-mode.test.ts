/**
 * Redis modes end to end (docs/architecture.md "Three ways to run, one code path", 1 and 2): `fishchat
 * up` as a user runs it (`node bin/run.js`, the compiled dist/, so `npm run
 * build` first), every role its own child process, real sockets, ports from
 * the OS.
 *
 * - external Redis (`--redis`, the Redis at 127.0.0.1:6379 or
 *   FISHCHAT_TEST_REDIS), under a unique cluster name whose keys are deleted
 *   afterwards: separate processes, messages across the two msg_servers, a
 *   killed msg_server restarted, a clean stop that leaves no process behind;
 * - managed Redis (no URL, redis-server on PATH): the private redis-server
 *   with appendonly under DIR/.fishchat/redis, gone after the stop;
 * - the role processes on Deno and on Bun: login, send, receive.
 *
 * Skipped, with the reason, when Redis, redis-server, deno or bun is missing.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, readdir, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { FishClient, route } from '../runtime/client/index.js';
import { signToken } from '../runtime/protocol/token.js';
import { deleteKeysWithPrefix } from '../runtime/redis/index.js';
import { processAlive as alive } from '../runtime/cluster/run-file.js';
import { BIN, CLEAN_ENV, CliProcess, fishchat, NODE, ROOT } from './helpers/cli.js';
import { take } from './helpers/messages.js';
import { redisReachable } from './helpers/redis.js';
import { RawWs } from './helpers/ws.js';
import { untilSome } from './helpers/wait.js';

const REDIS_URL = process.env.FISHCHAT_TEST_REDIS ?? 'redis://127.0.0.1:6379';
const READY_TIMEOUT_MS = 60_000;
/** Deno compiles the role code on its first start. */
const DENO_READY_TIMEOUT_MS = 120_000;

// ---------------------------------------------------------------- what is there

function onPath(name: string): string | undefined {
  for (const d of (process.env.PATH ?? '').split(delimiter)) {
    if (d && existsSync(join(d, name))) return join(d, name);
  }
  return undefined;
}

function localBin(name: string): string | undefined {
  const p = join(ROOT, 'node_modules', '.bin', name);
  return existsSync(p) ? p : onPath(name);
}

const HAVE_REDIS = await redisReachable(REDIS_URL);
const NO_REDIS = HAVE_REDIS ? false : `no Redis at ${REDIS_URL} (set FISHCHAT_TEST_REDIS)`;
const NO_REDIS_SERVER = onPath('redis-server') ? false : 'redis-server is not on PATH';
const NO_DENO = NO_REDIS || (localBin('deno') ? false : 'deno is not installed (npm install deno)');
const NO_BUN = NO_REDIS || (localBin('bun') ? false : 'bun is not installed (npm install bun)');

// ---------------------------------------------------------------- helpers

/** `fishchat up …args` as a child process. */
class Up extends CliProcess {
  constructor(args: string[]) {
    super(['up', ...args], { waitMs: READY_TIMEOUT_MS, killAfterMs: 60_000 });
  }
}

interface RunJson {
  pid: number;
  mode: string;
  runtime?: string;
  redis?: { url: string; pid?: number; dir?: string };
  gateway: string;
  monitor?: string;
  roles: { role: string; id: string; pid?: number; addresses: { tcp?: string; http?: string; ws?: string } }[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const dirs: string[] = [];
const clusters: string[] = [];

/** A cluster directory from `init`: every listener on port 0, a unique cluster name, quick beats. */
async function initCluster(): Promise<{ dir: string; cluster: string; secret: string }> {
  const dir = await realpath(await mkdtemp(join(tmpdir(), 'fishchat-redis-')));
  dirs.push(dir);
  const r = await fishchat(['init', dir]);
  assert.equal(r.code, 0, r.stderr);
  const cluster = `test-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  clusters.push(cluster);
  const file = JSON.parse(await readFile(join(dir, 'fishchat.json'), 'utf8')) as {
    cluster: string;
    roles: string[];
    settings: Record<string, unknown>;
  };
  file.cluster = cluster;
  file.settings = { ...file.settings, beat: 300 };
  await writeFile(join(dir, 'fishchat.json'), JSON.stringify(file, null, 2));
  for (const f of file.roles) {
    const role = JSON.parse(await readFile(join(dir, f), 'utf8')) as Record<string, unknown>;
    if ('port' in role) role.port = 0;
    role.httpPort = 0;
    await writeFile(join(dir, f), JSON.stringify(role, null, 2));
  }
  const secret = (await readFile(join(dir, '.fishchat', 'secret'), 'utf8')).trim();
  return { dir, cluster, secret };
}

async function readRun(dir: string): Promise<RunJson> {
  return JSON.parse(await readFile(join(dir, '.fishchat', 'run.json'), 'utf8')) as RunJson;
}

function msAddr(run: RunJson, id: string): string {
  const r = run.roles.find((x) => x.id === id);
  assert.ok(r?.addresses.tcp, `${id} in run.json`);
  return r.addresses.tcp;
}

/** Over WebSocket (§1a): a raw client on each msg_server's ws URL, a message each way across them. */
async function wsExchange(run: RunJson, secret: string, tag: string): Promise<void> {
  const url = (id: string) => {
    const r = run.roles.find((x) => x.id === id);
    assert.ok(r?.addresses.ws, `${id}'s ws URL in run.json`);
    return r.addresses.ws;
  };
  const login = async (id: string, user: string) => {
    const ws = await RawWs.connect(url(id), { timeoutMs: 10_000 });
    const ok = await ws.request({ op: 'login', rid: 1, user, token: signToken(secret, user) }, 10_000);
    assert.equal(ok.op, 'ok', JSON.stringify(ok));
    assert.equal(ok.server, id);
    return ws;
  };
  const bob = await login('ms-19000', `wsbob-${tag}`);
  const alice = await login('ms-19001', `wsalice-${tag}`);
  try {
    assert.equal((await alice.request({ op: 'send', rid: 2, to: `wsbob-${tag}`, body: 'over ws' }, 10_000)).op, 'ok');
    const [m] = await bob.msgs(1, 10_000);
    assert.deepEqual([m!.from, m!.body], [`wsalice-${tag}`, 'over ws']);
    assert.equal((await bob.request({ op: 'send', rid: 3, to: `wsalice-${tag}`, body: { back: 1 } }, 10_000)).op, 'ok');
    const [n] = await alice.msgs(1, 10_000);
    assert.deepEqual(n!.body, { back: 1 });
    assert.equal((await alice.request({ op: 'logout', rid: 4 }, 10_000)).op, 'ok');
    assert.equal(await alice.waitClosed(10_000), 1000);
  } finally {
    alice.close();
    bob.close();
  }
}

/** bob on one msg_server, alice on the other: alice → bob and bob → alice arrive, each once. */
async function crossServerExchange(run: RunJson, secret: string, tag: string): Promise<void> {
  const token = (u: string) => () => signToken(secret, u, { ttlSeconds: 300 });
  const bob = await FishClient.connect({
    server: msAddr(run, 'ms-19000'),
    user: `bob-${tag}`,
    token: token(`bob-${tag}`),
    autoAck: true,
  });
  const alice = await FishClient.connect({
    server: msAddr(run, 'ms-19001'),
    user: `alice-${tag}`,
    token: token(`alice-${tag}`),
    autoAck: true,
  });
  try {
    assert.equal(bob.login.server, 'ms-19000');
    assert.equal(alice.login.server, 'ms-19001');
    const bobInbox = bob.messages()[Symbol.asyncIterator]();
    const aliceInbox = alice.messages()[Symbol.asyncIterator]();
    const sent = [await alice.send(`bob-${tag}`, 'hello bob'), await alice.send(`bob-${tag}`, { n: 2 })];
    const got = await take(bobInbox, 2, 10_000);
    assert.deepEqual(
      got.map((m) => [m.seq, m.mid, m.from, m.body]),
      [
        [sent[0]!.seq, sent[0]!.mid, `alice-${tag}`, 'hello bob'],
        [sent[1]!.seq, sent[1]!.mid, `alice-${tag}`, { n: 2 }],
      ],
    );
    const back = await bob.send(`alice-${tag}`, 'hi alice');
    const [m] = await take(aliceInbox, 1, 10_000);
    assert.deepEqual([m!.mid, m!.from, m!.body], [back.mid, `bob-${tag}`, 'hi alice']);
  } finally {
    await alice.close();
    await bob.close();
  }
}

after(async () => {
  if (HAVE_REDIS && clusters.length > 0) {
    for (const c of clusters) await deleteKeysWithPrefix(REDIS_URL, `fishchat:${c}:`);
  }
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

before(() => {
  assert.ok(
    existsSync(join(ROOT, 'dist', 'cli', 'commands', 'up.js')),
    'dist/ is missing: run `npm run build` first (`npm test` does)',
  );
});

// ---------------------------------------------------------------- external Redis

describe('fishchat up --redis: every role its own process', { skip: NO_REDIS, timeout: 180_000 }, () => {
  let c: { dir: string; cluster: string; secret: string };
  let up: Up;

  before(async () => {
    c = await initCluster();
    up = new Up([c.dir, '--redis', REDIS_URL]);
  });

  after(async () => {
    await up?.stop('SIGKILL');
  });

  test('says the mode and why; five roles in six processes of their own, in run.json', async () => {
    const out = await up.waitFor(/^cluster ready in \d+ ms/m);
    assert.match(
      out,
      /^mode: Redis at redis:\/\/127\.0\.0\.1:6379 \(from --redis: every role in its own node process.*\)$/m,
    );
    const ready = [...out.matchAll(/^ready {2}(\S+)\s+(\S+)\s+(.*)$/gm)].map((m) => [m[1], m[2]]);
    // In start order; the msg_servers start side by side.
    assert.deepEqual(ready.slice(0, 3), [
      ['monitor', 'monitor'],
      ['router', 'router'],
      ['manager', 'manager'],
    ]);
    assert.deepEqual(
      ready
        .slice(3, 5)
        .map((r) => r.join('/'))
        .sort(),
      ['msg_server/ms-19000', 'msg_server/ms-19001'],
    );
    assert.equal(ready.length, 6);
    assert.deepEqual(ready[0], ['monitor', 'monitor'], 'the monitor starts first');
    assert.deepEqual(ready[5], ['gateway', 'gateway'], 'the gateway starts last');

    const run = await readRun(c.dir);
    assert.equal(run.pid, up.child.pid);
    assert.equal(run.mode, 'redis');
    assert.equal(run.runtime, 'node');
    assert.equal(run.roles.length, 6);
    const pids = run.roles.map((r) => r.pid!);
    assert.equal(new Set(pids).size, 6, `six different pids: ${pids}`);
    for (const pid of pids) {
      assert.ok(Number.isInteger(pid) && pid !== up.child.pid && alive(pid), `role pid ${pid} alive`);
    }
    for (const r of run.roles) {
      assert.match(r.addresses.http!, /^127\.0\.0\.1:[1-9]\d*$/);
      if (r.role === 'gateway' || r.role === 'msg_server') assert.match(r.addresses.tcp!, /^127\.0\.0\.1:[1-9]\d*$/);
    }
    assert.equal(run.gateway, run.roles.find((r) => r.role === 'gateway')!.addresses.tcp);
    assert.equal(run.monitor, run.roles.find((r) => r.role === 'monitor')!.addresses.http);
  });

  test('status --json: every role up, each with its own pid', async () => {
    await up.waitFor(/^cluster ready/m);
    const run = await readRun(c.dir);
    const report = await untilSome('every role up in status', async () => {
      const r = await fishchat(['status', '--dir', c.dir, '--json']);
      if (r.code !== 0) return undefined;
      const rep = JSON.parse(r.stdout) as {
        cluster: string;
        roles: { role: string; id: string; up: boolean; pid: number }[];
      };
      return rep.roles.filter((x) => x.up).length === 6 ? rep : undefined;
    });
    assert.equal(report.cluster, c.cluster);
    for (const r of report.roles) {
      assert.equal(
        r.pid,
        run.roles.find((x) => x.id === r.id)!.pid,
        `${r.role} ${r.id}: the pid the monitor heard is its process`,
      );
    }
  });

  test('login, send and receive across the two msg_servers; the gateway routes to both', async () => {
    await up.waitFor(/^cluster ready/m);
    const run = await readRun(c.dir);
    await crossServerExchange(run, c.secret, 'a');
    const servers = await untilSome('both msg_servers routed', async () => {
      const r = await route(run.gateway).catch(() => undefined);
      return r && r.servers.length === 2 ? r.servers : undefined;
    });
    assert.deepEqual(servers.map((s) => s.id).sort(), ['ms-19000', 'ms-19001']);
    const send = await fishchat(['send', '--dir', c.dir, '--as', 'carol', '--to', 'dave', '--json', 'through the CLI']);
    assert.equal(send.code, 0, send.stdout + send.stderr);
    assert.equal(JSON.parse(send.stdout).seq, 1);
  });

  test('kill -9 of a msg_server: the supervisor restarts it, and it serves again', async () => {
    await up.waitFor(/^cluster ready/m);
    const before = await readRun(c.dir);
    const victim = before.roles.find((r) => r.id === 'ms-19000')!;
    process.kill(victim.pid!, 'SIGKILL');
    await up.waitFor(/ms-19000 +killed by SIGKILL; restarting in \d+ ms/m, 10_000);
    const run = await untilSome('ms-19000 back with a new pid in run.json', async () => {
      const r = await readRun(c.dir).catch(() => undefined);
      const ms = r?.roles.find((x) => x.id === 'ms-19000');
      return ms && ms.pid !== victim.pid && alive(ms.pid!) ? r : undefined;
    });
    assert.ok(!alive(victim.pid!));
    // The other roles kept their processes.
    for (const r of before.roles.filter((x) => x.id !== 'ms-19000')) {
      assert.equal(run.roles.find((x) => x.id === r.id)!.pid, r.pid);
    }
    await crossServerExchange(run, c.secret, 'b');
  });

  test('SIGTERM stops every role process, then up exits 0 and removes run.json', async () => {
    await up.waitFor(/^cluster ready/m);
    const run = await readRun(c.dir);
    const pids = run.roles.map((r) => r.pid!);
    const { code, signal } = await up.stop('SIGTERM');
    assert.equal(signal, null, up.output);
    assert.equal(code, 0, up.output);
    assert.match(up.stdout, /^stopped$/m);
    // Reverse start order: the gateway stops first, the monitor last.
    const order = [...up.stdout.matchAll(/^(\S+)\s+(\S+)\s+stopping \(SIGTERM\)$/gm)].map((m) => m[1]);
    assert.equal(order[0], 'gateway', up.stdout);
    assert.equal(order[order.length - 1], 'monitor', up.stdout);
    await untilSome('no role process left', () => pids.every((p) => !alive(p)) || undefined, 5000);
    assert.ok(!existsSync(join(c.dir, '.fishchat', 'run.json')), 'run.json removed');
  });
});

// ---------------------------------------------------------------- fishchat serve

describe('fishchat serve: one role in this process', { skip: NO_REDIS, timeout: 120_000 }, () => {
  test('a msg_server from its own file, Redis and cluster name from the environment; SIGTERM: draining, exit 0', async () => {
    const c = await initCluster();
    // The cluster name comes from FISHCHAT_CLUSTER, not from fishchat.json.
    const cluster = `${c.cluster}-env`;
    clusters.push(cluster);
    const child = spawn(NODE, [BIN, 'serve', 'msg_server', '--config', join(c.dir, 'msg_server.19000.json')], {
      cwd: ROOT,
      env: { ...process.env, ...CLEAN_ENV, FISHCHAT_REDIS: REDIS_URL, FISHCHAT_CLUSTER: cluster },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
      child.on('exit', (code, signal) => res({ code, signal })),
    );
    try {
      const m = await untilSome(
        'the ready line',
        () =>
          /^ready msg_server ms-19000 tcp=(\S+) http=(\S+) ws=(ws:\/\/\S+\/v1\/ws) pid=(\d+)$/m.exec(stdout) ??
          undefined,
        30_000,
      ).catch((err: Error) => {
        throw new Error(`${err.message}\n${stdout}\n${stderr}`);
      });
      assert.equal(Number(m[4]), child.pid);
      assert.match(
        stdout,
        new RegExp(
          `^serving msg_server ms-19000 of cluster "${cluster}" .* over Redis at redis://127\\.0\\.0\\.1:6379`,
          'm',
        ),
      );
      const token = (u: string) => () => signToken(c.secret, u, { ttlSeconds: 300 });
      const bob = await FishClient.connect({ server: m[1]!, user: 'bob', token: token('bob'), reconnect: false });
      const kicked = new Promise<string>((res) => bob.on('kick', (k) => res(k.reason)));
      const alice = await FishClient.connect({ server: m[1]!, user: 'alice', token: token('alice'), reconnect: false });
      const ok = await alice.send('bob', 'same server');
      const [got] = await take(bob.messages()[Symbol.asyncIterator](), 1, 10_000);
      assert.equal(got!.mid, ok.mid);
      const r = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
      try {
        const [, keys] = await r.scan('0', 'MATCH', `fishchat:${cluster}:*`, 'COUNT', 10_000);
        assert.ok(keys.length > 0, 'the store is under the cluster name of FISHCHAT_CLUSTER');
      } finally {
        r.disconnect();
      }
      await alice.close();
      child.kill('SIGTERM');
      assert.equal(await Promise.race([kicked, sleep(10_000).then(() => 'no kick')]), 'draining');
      const { code, signal } = await Promise.race([exited, sleep(20_000).then(() => ({ code: -1, signal: null }))]);
      assert.equal(signal, null, stdout + stderr);
      assert.equal(code, 0, stdout + stderr);
      assert.match(stdout, /^stopped$/m);
      await bob.close();
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
});

// ---------------------------------------------------------------- managed Redis

describe('fishchat up with redis-server on PATH: managed Redis', { skip: NO_REDIS_SERVER, timeout: 180_000 }, () => {
  let c: { dir: string; cluster: string; secret: string };
  let up: Up;

  before(async () => {
    c = await initCluster();
    up = new Up([c.dir]);
  });

  after(async () => {
    await up?.stop('SIGKILL');
  });

  test('a private redis-server with appendonly under DIR/.fishchat/redis; the roles use it', async () => {
    const out = await up.waitFor(/^cluster ready in \d+ ms/m);
    assert.match(out, /^mode: managed Redis \(no Redis URL given, and redis-server is on PATH .*appendonly on.*\)$/m);
    const run = await readRun(c.dir);
    assert.equal(run.mode, 'managed');
    const redisDir = join(c.dir, '.fishchat', 'redis');
    assert.equal(run.redis?.dir, redisDir);
    assert.ok(run.redis?.pid && alive(run.redis.pid), 'redis-server runs');
    assert.match(run.redis!.url, /^redis:\/\/127\.0\.0\.1:[1-9]\d*$/);
    assert.notEqual(run.redis!.url, REDIS_URL);
    const pids = run.roles.map((r) => r.pid);
    assert.equal(new Set([...pids, run.redis.pid, run.pid]).size, 8);

    const r = new Redis(run.redis!.url, { maxRetriesPerRequest: 1 });
    try {
      assert.deepEqual(await r.config('GET', 'appendonly'), ['appendonly', 'yes']);
      assert.deepEqual(await r.config('GET', 'dir'), ['dir', redisDir]);
      assert.deepEqual(await r.config('GET', 'save'), ['save', '']);
      await crossServerExchange(run, c.secret, 'm');
      const keys = await r.keys(`fishchat:${c.cluster}:*`);
      assert.ok(keys.length > 0, 'the store is in the managed redis-server');
    } finally {
      r.disconnect();
    }
    const files = await readdir(redisDir, { recursive: true });
    assert.ok(
      files.some((f) => String(f).includes('appendonly')),
      `an AOF in ${redisDir}: ${files}`,
    );
  });

  test('SIGTERM: the roles stop, then the redis-server; none is left', async () => {
    await up.waitFor(/^cluster ready/m);
    const run = await readRun(c.dir);
    const pids = [...run.roles.map((r) => r.pid!), run.redis!.pid!];
    const { code, signal } = await up.stop('SIGTERM');
    assert.equal(signal, null, up.output);
    assert.equal(code, 0, up.output);
    const lines = up.stdout.split('\n');
    const gwStop = lines.findIndex((l) => /^gateway .* stopped$/.test(l));
    const redisStop = lines.findIndex((l) => /^redis .* stopped$/.test(l));
    assert.ok(redisStop > gwStop && gwStop >= 0, `the redis-server stops after the roles:\n${up.stdout}`);
    await untilSome('no process left', () => pids.every((p) => !alive(p)) || undefined, 5000);
    assert.ok(!existsSync(join(c.dir, '.fishchat', 'run.json')));
  });
});

// ---------------------------------------------------------------- other runtimes

for (const [runtime, skip] of [
  ['deno', NO_DENO],
  ['bun', NO_BUN],
] as const) {
  describe(`fishchat up --redis --runtime ${runtime}: smoke`, { skip, timeout: 300_000 }, () => {
    let c: { dir: string; cluster: string; secret: string };
    let up: Up;

    before(async () => {
      c = await initCluster();
      up = new Up([c.dir, '--redis', REDIS_URL, '--runtime', runtime]);
    });

    after(async () => {
      await up?.stop('SIGKILL');
    });

    test(`the roles run on ${runtime}: login, send, receive over TCP and WebSocket; a clean stop`, async () => {
      const out = await up.waitFor(
        /^cluster ready in \d+ ms/m,
        runtime === 'deno' ? DENO_READY_TIMEOUT_MS : READY_TIMEOUT_MS,
      );
      assert.match(out, new RegExp(`^mode: Redis at .* every role in its own ${runtime} process`, 'm'));
      const run = await readRun(c.dir);
      assert.equal(run.runtime, runtime);
      for (const r of run.roles) {
        const cmdline = readFileSync(`/proc/${r.pid}/cmdline`, 'utf8').split('\0');
        assert.ok(cmdline[0]!.includes(runtime), `${r.role} ${r.id} runs on ${runtime}: ${cmdline.join(' ')}`);
      }
      await crossServerExchange(run, c.secret, runtime);
      await wsExchange(run, c.secret, runtime);

      const pids = run.roles.map((r) => r.pid!);
      const { code, signal } = await up.stop('SIGTERM');
      assert.equal(signal, null, up.output);
      assert.equal(code, 0, up.output);
      await untilSome('no role process left', () => pids.every((p) => !alive(p)) || undefined, 5000);
    });
  });
}
