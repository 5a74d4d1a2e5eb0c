/**
 * `fishchat up --detach` and `fishchat down`, and `fishchat init --redis`, as
 * a user runs them: `node bin/run.js …` child processes (the compiled dist/,
 * so `npm run build` first), real sockets, ports from the OS.
 *
 * - embedded: `up --detach` returns at once with the ready lines; `status`
 *   sees every role; a client on a msg_server is kicked with `draining` by
 *   `down`; `down` leaves no process and no run.json; a second `down` says
 *   nothing runs; a stale run.json is removed;
 * - Redis (the Redis at 127.0.0.1:6379 or FISHCHAT_TEST_REDIS, a unique
 *   cluster name whose keys are deleted afterwards): `down` leaves no role
 *   process behind. Skipped, with the reason, when that Redis is not there.
 *
 * The CLI always runs on Node, also when this file runs under Bun.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FishClient } from '../runtime/client/index.js';
import { processRunning } from '../runtime/cluster/detach.js';
import { signToken } from '../runtime/protocol/token.js';
import { deleteKeysWithPrefix } from '../runtime/redis/index.js';
import { fishchat as runFishchat, initCluster, NODE, ROOT, type CliOptions } from './helpers/cli.js';
import { takenPort } from './helpers/net.js';
import { redisReachable } from './helpers/redis.js';

const REDIS_URL = process.env.FISHCHAT_TEST_REDIS ?? 'redis://127.0.0.1:6379';

/** Runs `node bin/run.js ...args` to its end (killed after 90 s unless `timeoutMs` says otherwise). */
const fishchat = (args: string[], opts: CliOptions = {}) => runFishchat(args, { timeoutMs: 90_000, ...opts });

const NO_REDIS = (await redisReachable(REDIS_URL)) ? false : `no Redis at ${REDIS_URL} (set FISHCHAT_TEST_REDIS)`;

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fishchat-detach-'));
  dirs.push(dir);
  return dir;
}

/** A cluster directory from `init`, every listener on port 0 (any free port). */
async function initPortZero(extra: string[] = []): Promise<string> {
  return initCluster(await tempDir(), extra);
}

interface Run {
  pid: number;
  mode: string;
  gateway: string;
  roles: { role: string; id: string; addresses: { tcp?: string; http?: string }; pid?: number }[];
}

async function readRun(dir: string): Promise<Run> {
  return JSON.parse(await readFile(join(dir, '.fishchat', 'run.json'), 'utf8')) as Run;
}

/** Resolves once `check()` is true; fails with `what` after `timeoutMs`. */
async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Whatever a failed test left running in `dir`: stopped. */
async function forceDown(dir: string): Promise<void> {
  if (!existsSync(join(dir, '.fishchat', 'run.json')) && !existsSync(join(dir, '.fishchat', 'up.pid'))) return;
  await fishchat(['down', dir, '--timeout', '10'], { timeoutMs: 30_000 }).catch(() => {});
}

const READY_LINE = /^ready {2}(\S+)\s+(\S+)\s+(.*)$/gm;
const ROLES = [
  'gateway/gateway',
  'manager/manager',
  'monitor/monitor',
  'msg_server/ms-19000',
  'msg_server/ms-19001',
  'router/router',
];

before(() => {
  assert.ok(
    existsSync(join(ROOT, 'dist', 'cli', 'commands', 'down.js')),
    'dist/ is missing: run `npm run build` first (`npm test` does)',
  );
});

after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('fishchat up --detach and down (embedded)', () => {
  let dir: string;

  before(async () => {
    dir = await initPortZero();
  });

  after(async () => {
    await forceDown(dir);
  });

  test('up --detach returns once ready, with the ready lines, and leaves the cluster running', async () => {
    const r = await fishchat(['up', dir, '--detach', '--embedded'], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.ok(r.ms < 15_000, `took ${r.ms} ms`);
    assert.match(r.stdout, /^mode: embedded \(/m);
    const ready = [...r.stdout.matchAll(READY_LINE)].map((m) => `${m[1]}/${m[2]}`).sort();
    assert.deepEqual(ready, ROLES);
    assert.match(
      r.stdout,
      /^cluster ready in \d+ ms: clients connect to the gateway at 127\.0\.0\.1:\d+; stop with: fishchat down /m,
    );
    assert.ok(r.stdout.includes(`stop with: fishchat down ${dir}`), r.stdout);
    assert.match(r.stdout, /running in the background: pid \d+, logs in .*up\.log/);

    const run = await readRun(dir);
    assert.equal(run.mode, 'embedded');
    assert.ok(processRunning(run.pid), 'the background up runs');
    assert.equal(Number((await readFile(join(dir, '.fishchat', 'up.pid'), 'utf8')).trim()), run.pid);
    assert.match(r.stdout, new RegExp(`pid ${run.pid}\\b`));
    // Its output goes on into the log, prefixed as in the foreground.
    const log = await readFile(join(dir, '.fishchat', 'logs', 'up.log'), 'utf8');
    assert.match(log, /^ready {2}gateway {5}gateway/m);
    assert.match(log, /^cluster ready in /m);
  });

  test('a second up, detached or not, is refused (exit 2) while it runs', async () => {
    const run = await readRun(dir);
    for (const args of [
      ['up', dir, '--detach', '--embedded'],
      ['up', dir, '--embedded'],
    ]) {
      const r = await fishchat(args);
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.match(r.stderr, /already running/);
      assert.match(r.stderr, /fishchat down/);
    }
    assert.equal((await readRun(dir)).pid, run.pid, 'the running cluster is untouched');
  });

  test('status --json: every role up', async () => {
    let seen: string[] = [];
    await until(
      'every role up in status --json',
      async () => {
        const r = await fishchat(['status', '--dir', dir, '--json']);
        if (r.code !== 0 && r.code !== 1) assert.fail(r.stdout + r.stderr);
        const report = JSON.parse(r.stdout) as { roles: { role: string; id: string; up: boolean }[] };
        seen = report.roles
          .filter((x) => x.up)
          .map((x) => `${x.role}/${x.id}`)
          .sort();
        return r.code === 0 && JSON.stringify(seen) === JSON.stringify(ROLES);
      },
      10_000,
    );
  });

  test('down: a connected client is kicked with "draining", the process is gone, run.json removed', async () => {
    const run = await readRun(dir);
    const secret = (await readFile(join(dir, '.fishchat', 'secret'), 'utf8')).trim();
    const client = await FishClient.connect({
      gateway: run.gateway,
      user: 'alice',
      token: () => signToken(secret, 'alice'),
      reconnect: false,
    });
    const kicks: string[] = [];
    client.on('kick', ({ reason }) => kicks.push(reason));
    client.on('error', () => {});
    try {
      const msServers = run.roles.filter((r) => r.role === 'msg_server').map((r) => r.addresses.tcp);
      assert.ok(msServers.length === 2);

      const r = await fishchat(['down', dir]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, new RegExp(`stopping cluster "local" in .*: fishchat up pid ${run.pid} \\(embedded`));
      for (const role of run.roles) assert.match(r.stdout, new RegExp(`^stopped  ${role.role} +${role.id} `, 'm'));
      assert.match(r.stdout, /^cluster "local" stopped in \d+ ms$/m);
      assert.equal(r.stderr, '');

      await until('the draining kick', () => kicks.length > 0, 5000);
      assert.deepEqual(kicks, ['draining']);
      assert.ok(!processRunning(run.pid), `pid ${run.pid} is gone`);
      assert.ok(!existsSync(join(dir, '.fishchat', 'run.json')), 'run.json removed');
      assert.ok(!existsSync(join(dir, '.fishchat', 'up.pid')), 'up.pid removed');
      const log = await readFile(join(dir, '.fishchat', 'logs', 'up.log'), 'utf8');
      assert.match(log, /^stopping \(SIGTERM\) …$/m);
      assert.match(log, /^stopped$/m);
    } finally {
      await client.close().catch(() => {});
    }
  });

  test('a second down: nothing runs, exit 1, says how to start one', async () => {
    const r = await fishchat(['down', dir]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /no cluster is running in /);
    assert.match(r.stderr, /fishchat up .*--detach/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });

  test('up --detach again on the same directory: the log is appended to', async () => {
    const r = await fishchat(['up', dir, '--detach', '--embedded'], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const log = await readFile(join(dir, '.fishchat', 'logs', 'up.log'), 'utf8');
    assert.equal(log.match(/^==> .*started by fishchat up --detach/gm)?.length, 2, log);
    const d = await fishchat(['down', dir]);
    assert.equal(d.code, 0, d.stdout + d.stderr);
  });
});

describe('fishchat down: stale and failing cases', () => {
  test('a run.json whose up is gone: removed, exit 0, "not running"', async () => {
    const dir = await initPortZero();
    // A pid that is surely gone: a child that has exited.
    const gone = spawn(NODE, ['-e', '0']);
    await new Promise((r) => gone.on('exit', r));
    const stale = {
      pid: gone.pid,
      mode: 'embedded',
      gateway: '127.0.0.1:1',
      roles: [],
      startedAt: new Date().toISOString(),
    };
    await writeFile(join(dir, '.fishchat', 'run.json'), JSON.stringify(stale));
    const r = await fishchat(['down', dir]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^not running \(removed a stale .*run\.json/m);
    assert.ok(!existsSync(join(dir, '.fishchat', 'run.json')));
  });

  test('a cluster that fails to start: up --detach exits non-zero with the log tail', async () => {
    const dir = await initPortZero();
    // The gateway on a taken port: the configuration loads, the background up fails at its listen.
    const { port, close } = await takenPort();
    try {
      const gw = JSON.parse(await readFile(join(dir, 'gateway.json'), 'utf8'));
      gw.port = port;
      await writeFile(join(dir, 'gateway.json'), JSON.stringify(gw));
      const r = await fishchat(['up', dir, '--detach', '--embedded'], { timeoutMs: 60_000 });
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, /before the cluster was ready/);
      assert.match(r.stderr, /up\.log/);
      assert.match(r.stderr, new RegExp(`${port}.*in use`));
      assert.ok(!existsSync(join(dir, '.fishchat', 'run.json')));
      assert.ok(!existsSync(join(dir, '.fishchat', 'up.pid')));
    } finally {
      await close();
      await forceDown(dir);
    }
  });

  test('--ready-timeout without --detach: a usage error', async () => {
    const dir = await initPortZero();
    const r = await fishchat(['up', dir, '--ready-timeout', '5', '--embedded']);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /--detach/);
  });
});

describe('fishchat up --detach and down (Redis)', { skip: NO_REDIS }, () => {
  let dir: string;
  const cluster = `detach-${process.pid}-${Date.now().toString(36)}`;

  before(async () => {
    dir = await initPortZero();
    const file = join(dir, 'fishchat.json');
    const cf = JSON.parse(await readFile(file, 'utf8'));
    cf.cluster = cluster;
    await writeFile(file, JSON.stringify(cf, null, 2));
  });

  after(async () => {
    await forceDown(dir);
    await deleteKeysWithPrefix(REDIS_URL, `fishchat:${cluster}:`);
  });

  test('up --detach --redis: every role its own process; down leaves none of them', async () => {
    const r = await fishchat(['up', dir, '--detach', '--redis', REDIS_URL], { timeoutMs: 90_000 });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^mode: Redis at /m);
    assert.deepEqual([...r.stdout.matchAll(READY_LINE)].map((m) => `${m[1]}/${m[2]}`).sort(), ROLES);
    const run = await readRun(dir);
    assert.equal(run.mode, 'redis');
    const pids = run.roles.map((x) => x.pid!);
    assert.equal(pids.length, 6);
    for (const pid of [run.pid, ...pids]) assert.ok(processRunning(pid), `pid ${pid} runs`);

    const secret = (await readFile(join(dir, '.fishchat', 'secret'), 'utf8')).trim();
    const client = await FishClient.connect({
      gateway: run.gateway,
      user: 'bob',
      token: () => signToken(secret, 'bob'),
      reconnect: false,
    });
    const kicks: string[] = [];
    client.on('kick', ({ reason }) => kicks.push(reason));
    client.on('error', () => {});
    try {
      const d = await fishchat(['down', dir]);
      assert.equal(d.code, 0, d.stdout + d.stderr);
      assert.match(d.stdout, /\(Redis at redis:\/\/.*, 6 role processes\)/);
      assert.match(d.stdout, /^cluster ".*" stopped in \d+ ms$/m);
      await until('the draining kick', () => kicks.length > 0, 5000);
      assert.deepEqual(kicks, ['draining']);
    } finally {
      await client.close().catch(() => {});
    }
    for (const pid of [run.pid, ...pids]) assert.ok(!processRunning(pid), `pid ${pid} is gone`);
    assert.ok(!existsSync(join(dir, '.fishchat', 'run.json')));

    const again = await fishchat(['down', dir]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /no cluster is running/);
  });
});

describe('fishchat init --redis', () => {
  test('writes "redis" into fishchat.json and says so', async () => {
    const dir = await tempDir();
    const r = await fishchat(['init', dir, '--redis', 'redis://127.0.0.1:6379']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^redis +redis:\/\/127\.0\.0\.1:6379 +\("redis" in fishchat\.json/m);
    assert.match(r.stdout, /--detach/);
    const cf = JSON.parse(await readFile(join(dir, 'fishchat.json'), 'utf8'));
    assert.equal(cf.redis, 'redis://127.0.0.1:6379');
    assert.equal(cf.cluster, 'local');
  });

  test('rediss:// with a password: written as given, shown without the password', async () => {
    const dir = await tempDir();
    const url = 'rediss://:s3cret@redis.example.com:6380/2';
    const r = await fishchat(['init', dir, '--redis', url]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(await readFile(join(dir, 'fishchat.json'), 'utf8')).redis, url);
    assert.doesNotMatch(r.stdout, /s3cret/);
  });

  for (const bad of ['http://127.0.0.1:6379', 'redis://', 'localhost:6379', 'redis://host:0', 'redis://a b']) {
    test(`a bad URL (${bad}): exit 2 naming --redis, nothing written`, async () => {
      const dir = await tempDir();
      const r = await fishchat(['init', dir, '--redis', bad]);
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.match(r.stderr, /--redis/);
      assert.match(r.stderr, /redis:\/\/host:port/);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
      assert.ok(!existsSync(join(dir, 'fishchat.json')));
    });
  }

  test('without --redis, "redis" stays null; --force --redis rewrites it', async () => {
    const dir = await tempDir();
    assert.equal((await fishchat(['init', dir])).code, 0);
    assert.equal(JSON.parse(await readFile(join(dir, 'fishchat.json'), 'utf8')).redis, null);
    const refused = await fishchat(['init', dir, '--redis', 'redis://127.0.0.1:6379']);
    assert.equal(refused.code, 2);
    assert.equal(JSON.parse(await readFile(join(dir, 'fishchat.json'), 'utf8')).redis, null);
    const forced = await fishchat(['init', dir, '--force', '--redis', 'redis://127.0.0.1:6379']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal(JSON.parse(await readFile(join(dir, 'fishchat.json'), 'utf8')).redis, 'redis://127.0.0.1:6379');
  });

  test('the written cluster loads: up --detach --embedded runs it, and says the URL is not used', async () => {
    const dir = await initPortZero(['--redis', 'redis://127.0.0.1:1']);
    const r = await fishchat(['up', dir, '--embedded', '--detach']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /note: "redis" \(redis:\/\/.*\) is not used in embedded mode/);
    const d = await fishchat(['down', dir]);
    assert.equal(d.code, 0, d.stdout + d.stderr);
  });
});
