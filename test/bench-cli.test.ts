/**
 * `fishchat bench` end to end: `node bin/run.js bench …` child processes (the
 * compiled dist/, so `npm run build` first), each starting a cluster of its
 * own (or loading one this file starts), short runs. The CLI always runs on
 * Node, also when this file runs under Bun.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { BenchResult } from '../cli/bench/report.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin', 'run.js');
/** Node itself: under `bun test`, process.execPath is bun. */
const NODE = (process.versions as { bun?: string }).bun ? 'node' : process.execPath;
const CLEAN_ENV = { FISHCHAT_SECRET: '', NODE_ENV: '', DEBUG: '', npm_command: '' };
const REDIS = process.env.FISHCHAT_TEST_REDIS ?? 'redis://127.0.0.1:6379';
/** Short runs: one second measured after a short warmup. */
const SHORT = ['--duration', '1', '--warmup', '0.3', '--json'];
/** Per test (bun test's default is 5 s). */
const T = { timeout: 45_000 };

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function fishchat(args: string[], timeoutMs = 40_000): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(NODE, [BIN, ...args], {
      cwd: ROOT,
      env: { ...process.env, ...CLEAN_ENV },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGINT'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A `fishchat bench --json` line (bench/FORMAT.md). */
type BenchJson = BenchResult;

/** Runs bench with --json; exit 0 and exactly one JSON line on stdout. */
async function bench(args: string[]): Promise<BenchJson> {
  const r = await fishchat(['bench', ...args]);
  assert.equal(r.code, 0, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 1, `one line on stdout:\n${r.stdout}`);
  return JSON.parse(lines[0]!) as BenchJson;
}

function assertTraffic(j: BenchJson): void {
  assert.equal(j.system, 'fishchat');
  assert.ok(j.delivered > 0, `delivered ${j.delivered}`);
  assert.ok(j.sent > 0);
  assert.equal(j.errors, 0);
  assert.ok(j.msgsPerSec > 0);
  assert.ok(j.latencyMs, 'latency samples');
  const l = j.latencyMs!;
  assert.ok(l.p50 > 0 && l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max, JSON.stringify(l));
  assert.ok(j.client.cpuPct >= 0 && j.client.rssMiB > 0);
  assert.ok(!Number.isNaN(Date.parse(j.at)));
}

function assertProcesses(j: BenchJson): void {
  assert.ok(j.processes.length > 0);
  for (const p of j.processes) {
    assert.ok(Number.isInteger(p.pid) && p.pid > 0, JSON.stringify(p));
    assert.ok(typeof p.rssMiB === 'number' && p.rssMiB > 0, JSON.stringify(p));
    assert.ok(typeof p.cpuPct === 'number' && p.cpuPct >= 0, JSON.stringify(p));
  }
}

function redisUp(url: string): Promise<boolean> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = connect({ host: u.hostname, port: Number(u.port || 6379) });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1000, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

const redisOk = await redisUp(REDIS);
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('fishchat bench', () => {
  test('p2p on the same msg_server: JSON as the contract says', T, async () => {
    const j = await bench(['--pairs', '4', ...SHORT]);
    assert.equal(j.workload, 'p2p');
    assert.equal(j.mode, 'embedded');
    assert.equal(j.transport, 'tcp');
    assert.equal(j.runtime, 'node');
    assert.equal(j.pairs, 4);
    assert.equal(j.cross, false);
    assert.equal(j.rssPerConnBytes, null);
    assert.equal(j.serverMemory, null);
    assertTraffic(j);
    assertProcesses(j);
    assert.deepEqual(Object.keys(j), [
      'system',
      'version',
      'runtime',
      'mode',
      'transport',
      'workload',
      'pairs',
      'cross',
      'topicMembers',
      'idle',
      'size',
      'inflight',
      'duration',
      'warmup',
      'sent',
      'delivered',
      'errors',
      'msgsPerSec',
      'latencyMs',
      'processes',
      'client',
      'rssPerConnBytes',
      'serverMemory',
      'machine',
      'at',
    ]);
  });

  test('p2p --cross, inflight 4', T, async () => {
    const j = await bench(['--pairs', '4', '--cross', '--inflight', '4', ...SHORT]);
    assert.equal(j.cross, true);
    assertTraffic(j);
    assertProcesses(j);
  });

  test('--transport ws: p2p across msg_servers over WebSocket, inflight 4', T, async () => {
    const j = await bench(['--pairs', '4', '--cross', '--inflight', '4', '--transport', 'ws', ...SHORT]);
    assert.equal(j.transport, 'ws');
    assert.equal(j.cross, true);
    assertTraffic(j);
    assertProcesses(j);
  });

  test('--transport ws: idle WebSocket connections, RSS per connection', T, async () => {
    const j = await bench(['--idle', '300', '--transport', 'ws', '--duration', '0.5', '--warmup', '0.5', '--json']);
    assert.equal(j.transport, 'ws');
    assert.equal(j.idle, 300);
    assert.equal(j.errors, 0);
    assert.ok(j.rssPerConnBytes! > 0, `rssPerConnBytes ${j.rssPerConnBytes}`);
  });

  test('--transport ws, text report: says WebSocket', T, async () => {
    const r = await fishchat(['bench', '--pairs', '2', '--transport', 'ws', '--duration', '0.5', '--warmup', '0.2']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /clients over WebSocket/);
    assert.match(r.stderr, /over WebSocket/);
    assert.match(r.stdout, /msgs\/s +[1-9]/);
  });

  test('topic: 6 members, 2 publishers; every member gets every message', T, async () => {
    const j = await bench(['--topic-members', '6', '--publishers', '2', ...SHORT]);
    assert.equal(j.workload, 'topic');
    assert.equal(j.topicMembers, 6);
    assert.equal(j.pairs, 0);
    assertTraffic(j);
    // Deliveries in the window: about 6 per message sent in it.
    assert.ok(
      j.delivered >= j.sent * 6 - 12 * 2 && j.delivered <= j.sent * 6 + 12 * 2,
      `${j.sent} sent, ${j.delivered} delivered`,
    );
  });

  test('idle: 300 connections, RSS per connection', T, async () => {
    const j = await bench(['--idle', '300', '--duration', '0.5', '--warmup', '0.5', '--json']);
    assert.equal(j.workload, 'idle');
    assert.equal(j.idle, 300);
    assert.equal(j.errors, 0);
    assert.equal(j.latencyMs, null);
    assert.equal(typeof j.rssPerConnBytes, 'number');
    assert.ok(j.rssPerConnBytes! > 0, `rssPerConnBytes ${j.rssPerConnBytes}`);
    // The msg_server's own figure, after a full GC before and after the connections.
    const m = j.serverMemory!;
    assert.equal(m.afterGc, true);
    assert.equal(m.before.afterGc, true);
    assert.ok(m.heapUsedPerConnBytes > 0, `heapUsedPerConnBytes ${m.heapUsedPerConnBytes}`);
    assert.ok(m.after.heapUsed > m.before.heapUsed && m.before.rss > 0, JSON.stringify(m));
    assertProcesses(j);
  });

  test('--gateway: loads a running cluster, secret from --dir; processes unknown', T, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fishchat-bench-test-'));
    dirs.push(dir);
    const init = await fishchat(['init', dir]);
    assert.equal(init.code, 0, init.stderr);
    const cluster = JSON.parse(await readFile(join(dir, 'fishchat.json'), 'utf8')) as {
      roles: string[];
      settings: Record<string, unknown>;
    };
    cluster.settings.sendRate = { rate: 100000, burst: 100000 };
    await writeFile(join(dir, 'fishchat.json'), JSON.stringify(cluster));
    for (const file of cluster.roles) {
      const role = JSON.parse(await readFile(join(dir, file), 'utf8')) as Record<string, unknown>;
      if ('port' in role) role.port = 0;
      role.httpPort = 0;
      await writeFile(join(dir, file), JSON.stringify(role));
    }
    const up: ChildProcess = spawn(NODE, [BIN, 'up', dir, '--embedded'], {
      cwd: ROOT,
      env: { ...process.env, ...CLEAN_ENV },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      let out = '';
      up.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      const deadline = Date.now() + 20_000;
      while (!/cluster ready/.test(out)) {
        assert.ok(Date.now() < deadline && up.exitCode === null, `up not ready:\n${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const run = JSON.parse(await readFile(join(dir, '.fishchat', 'run.json'), 'utf8')) as { gateway: string };
      // The gateway lists msg_servers from their beats: wait for both.
      await new Promise((r) => setTimeout(r, 500));
      const j = await bench(['--gateway', run.gateway, '--dir', dir, '--pairs', '3', ...SHORT]);
      assert.equal(j.mode, 'external');
      assert.equal(j.runtime, null);
      assert.deepEqual(j.processes, []);
      assertTraffic(j);
      // The same cluster over WebSocket: the URLs come from the gateway's route reply.
      const w = await bench(['--gateway', run.gateway, '--dir', dir, '--pairs', '3', '--transport', 'ws', ...SHORT]);
      assert.equal(w.transport, 'ws');
      assertTraffic(w);
      // A wrong secret: the login is refused, exit 1.
      const bad = await fishchat([
        'bench',
        '--gateway',
        run.gateway,
        '--secret',
        'x'.repeat(40),
        '--pairs',
        '1',
        ...SHORT,
      ]);
      assert.equal(bad.code, 1, bad.stdout + bad.stderr);
      assert.match(bad.stderr, /auth_failed/);
    } finally {
      up.kill('SIGTERM');
      await new Promise((r) => (up.exitCode !== null ? r(undefined) : up.once('exit', r)));
    }
  });

  test('bad flags: exit 2, naming the flag', T, async () => {
    const cases: [string[], RegExp][] = [
      [['--pairs', '0'], /--pairs must be at least 1/],
      [['--pairs', '3', '--idle', '3'], /--pairs and --idle pick different workloads/],
      [['--size', '4'], /--size must be at least 8/],
      [['--duration', '0'], /--duration must be a number of seconds above 0/],
      [['--idle', '5', '--cross'], /--cross is for the p2p workload/],
      [['--idle', '1000000'], /--idle 1000000 needs about .* open files/],
      [['--gateway', 'nope'], /--gateway must be HOST:PORT/],
      [['--runtime', 'deno'], /--runtime deno runs the Redis modes only/],
      [['--transport', 'quic'], /Expected --transport=quic to be one of: tcp, ws/],
    ];
    const results = await Promise.all(cases.map(([args]) => fishchat(['bench', ...args])));
    for (const [i, r] of results.entries()) {
      const [args, pattern] = cases[i]!;
      assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
      assert.match(r.stderr, pattern, args.join(' '));
      assert.equal(r.stdout, '', args.join(' '));
    }
  });

  test('a gateway nobody listens on: exit 3', T, async () => {
    const r = await fishchat([
      'bench',
      '--gateway',
      '127.0.0.1:1',
      '--secret',
      'x'.repeat(40),
      '--pairs',
      '1',
      ...SHORT,
    ]);
    assert.equal(r.code, 3, r.stdout + r.stderr);
    assert.match(r.stderr, /127\.0\.0\.1:1/);
  });

  test('a bench killed with SIGKILL leaves no cluster running: its `up` stops by itself', T, async () => {
    const child = spawn(NODE, [BIN, 'bench', '--pairs', '2', '--duration', '60', '--warmup', '0.3'], {
      cwd: ROOT,
      env: { ...process.env, ...CLEAN_ENV },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.resume();
    const deadline = Date.now() + 30_000;
    while (!/measuring/.test(stderr) && child.exitCode === null && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    assert.match(stderr, /measuring/, stderr);
    const dir = /bin\/run\.js up (\S+)/.exec(stderr)?.[1];
    assert.ok(dir, stderr);
    dirs.push(dir);
    const run = JSON.parse(await readFile(join(dir, '.fishchat', 'run.json'), 'utf8')) as { pid: number };
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
      } catch {
        return false;
      }
      // an exited process not yet reaped (a zombie) is gone too
      return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    };
    assert.ok(alive(run.pid), 'the cluster runs while the bench does');
    child.kill('SIGKILL');
    const until = Date.now() + 15_000;
    while (alive(run.pid) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    assert.equal(alive(run.pid), false, `fishchat up (pid ${run.pid}) still runs after its bench was killed`);
  });

  test('--help shows the workloads and examples', T, async () => {
    const r = await fishchat(['bench', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /--topic-members/);
    assert.match(r.stdout, /EXAMPLES/);
  });

  test('--redis: one process per role over Redis', {
    ...T,
    skip: redisOk ? false : `no Redis at ${REDIS}`,
  }, async () => {
    const j = await bench(['--pairs', '3', '--cross', '--redis', REDIS, ...SHORT]);
    assert.equal(j.mode, 'redis');
    assertTraffic(j);
    assertProcesses(j);
    const names = j.processes.map((p) => p.name);
    for (const n of ['router', 'gateway', 'manager', 'monitor']) assert.ok(names.includes(n), names.join(', '));
    assert.equal(names.filter((n) => n.startsWith('msg_server.')).length, 2, names.join(', '));
  });

  test('--redis --transport ws: WebSocket clients, one process per role, redis-server measured', {
    ...T,
    skip: redisOk ? false : `no Redis at ${REDIS}`,
  }, async () => {
    const j = await bench(['--pairs', '3', '--cross', '--redis', REDIS, '--transport', 'ws', ...SHORT]);
    assert.equal(j.mode, 'redis');
    assert.equal(j.transport, 'ws');
    assertTraffic(j);
    assertProcesses(j);
    assert.equal(j.processes.filter((p) => p.name.startsWith('msg_server.')).length, 2);
  });
});
