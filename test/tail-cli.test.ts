/**
 * `fishchat tail` end to end, as a script runs it: `node bin/run.js tail
 * --json` (the compiled dist/, so `npm run build` first; `npm test` does)
 * against `fishchat up --embedded` on OS-chosen ports, its stdout a pipe.
 * A real client logs in and joins a topic; the JSON lines must say so. The
 * CLI always runs on Node, also when this file runs under Bun.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FishClient } from '../runtime/client/index.js';
import { signToken } from '../runtime/protocol/token.js';
import { CliProcess, fishchat as runFishchat, initCluster, ROOT } from './helpers/cli.js';
import { closedPort } from './helpers/net.js';

const READY_TIMEOUT_MS = 20_000;
/** Beats come every 2 s by default: a few of them fit. */
const LINE_TIMEOUT_MS = 15_000;

type Line = Record<string, unknown> & { event: string };

/** A `fishchat …` child process whose output is collected as it comes, read as JSON lines. */
class Proc extends CliProcess {
  /** stdout's complete lines, parsed. */
  lines(): Line[] {
    return this.stdout
      .split('\n')
      .slice(0, -1)
      .map((l) => JSON.parse(l) as Line);
  }

  /** Waits until `test` holds of the output; rejects on exit or timeout. */
  async until(test: () => boolean, what: string, timeoutMs = LINE_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!test()) {
      if (this.done) throw new Error(`the process exited before ${what}:\n${this.stdout}\n${this.stderr}`);
      if (Date.now() > deadline)
        throw new Error(`no ${what} within ${timeoutMs} ms:\n${this.stdout.slice(-3000)}\n${this.stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** The first JSON line matching `pred` (waiting for it). */
  async line(pred: (l: Line) => boolean, what: string, timeoutMs?: number): Promise<Line> {
    let found: Line | undefined;
    await this.until(() => (found = this.lines().find(pred)) !== undefined, what, timeoutMs);
    return found!;
  }
}

/** Runs `fishchat …args` to its end (killed after 30 s). */
const fishchat = (args: string[]) => runFishchat(args, { timeoutMs: 30_000 });

const dirs: string[] = [];
const procs: Proc[] = [];

/** A cluster directory from `init`, every listener on port 0 (any free port). */
async function initPortZero(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fishchat-tail-'));
  dirs.push(dir);
  return initCluster(dir);
}

before(() => {
  assert.ok(
    existsSync(join(ROOT, 'dist', 'cli', 'commands', 'tail.js')),
    'dist/ is missing: run `npm run build` first (`npm test` does)',
  );
});

after(async () => {
  await Promise.all(procs.map((p) => p.stop('SIGKILL')));
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('fishchat tail', () => {
  test('--help has usage, the keys and examples', async () => {
    const r = await fishchat(['tail', '--help']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /USAGE/);
    assert.match(r.stdout, /EXAMPLES/);
    assert.match(r.stdout, /--json/);
    assert.match(r.stdout, /--filter/);
    assert.match(r.stdout, /q or Ctrl-C quit/);
  });

  test('exit 3 with what to do when the monitor cannot be reached', async () => {
    const dir = await initPortZero();
    const port = await closedPort();
    const r = await fishchat(['tail', '--dir', dir, '--monitor', `127.0.0.1:${port}`]);
    assert.equal(r.code, 3, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(`cannot reach the monitor at 127\\.0\\.0\\.1:${port} .*— is \`fishchat up\` running in `),
    );
    assert.equal(r.stdout, '');
    assert.doesNotMatch(r.stderr, /\n\s+at /);
    // no cluster running and the monitor port is 0: nothing to ask
    const none = await fishchat(['tail', '--dir', dir, '--json']);
    assert.equal(none.code, 3, none.stderr);
    assert.match(none.stderr, /no cluster is running .*fishchat up/);
  });

  describe('against a running cluster', () => {
    let dir: string;
    let up: Proc;
    let secret: string;
    let gateway: string;

    before(async () => {
      dir = await initPortZero();
      // --embedded: with redis-server on PATH, a bare `up` would run managed Redis.
      up = new Proc(['up', dir, '--embedded']);
      procs.push(up);
      await up.until(() => /^cluster ready/m.test(up.stdout), 'cluster ready', READY_TIMEOUT_MS);
      secret = (await readFile(join(dir, '.fishchat', 'secret'), 'utf8')).trim();
      gateway = JSON.parse(await readFile(join(dir, '.fishchat', 'run.json'), 'utf8')).gateway;
    });

    after(async () => {
      await up?.stop();
    });

    test('--json on a pipe: the status, beats, then logins and topic events as JSON lines; exit 0 on SIGTERM', async () => {
      const tail = new Proc(['tail', '--json', '--dir', dir]);
      procs.push(tail);
      const status = await tail.line((l) => l.event === 'status', 'the status line');
      assert.equal(tail.lines()[0]!.event, 'status', 'the status comes first');
      assert.equal(status.cluster, 'local');
      const roles = status.roles as { role: string; id: string; up: boolean }[];
      assert.deepEqual(roles.map((r) => r.role).sort(), [
        'gateway',
        'manager',
        'monitor',
        'msg_server',
        'msg_server',
        'router',
      ]);

      const b = await tail.line((l) => l.event === 'beat' && l.role === 'msg_server', 'a msg_server beat');
      assert.match(String(b.id), /^ms-/);
      for (const k of ['conns', 'inRate', 'outRate', 'p50', 'p99', 'rss', 'uptime'])
        assert.equal(typeof b[k], 'number', k);

      const client = await FishClient.connect({
        gateway,
        user: 'alice',
        device: 'tail-test',
        token: signToken(secret, 'alice'),
        reconnect: false,
      });
      try {
        const login = await tail.line(
          (l) => l.event === 'client-status' && l.k === 'login' && l.user === 'alice',
          'the login line',
        );
        assert.equal(login.device, 'tail-test');
        assert.match(String(login.server), /^ms-/);
        await client.topicCreate('tailtest');
        await tail.line(
          (l) => l.event === 'topic-status' && l.k === 'create' && l.topic === 'tailtest' && l.user === 'alice',
          'the topic create line',
        );
      } finally {
        await client.close();
      }
      await tail.line((l) => l.event === 'client-status' && l.k === 'logout' && l.user === 'alice', 'the logout line');
      // every line is one JSON object
      for (const l of tail.lines()) assert.equal(typeof l.event, 'string');

      const { code, signal } = await tail.stop('SIGTERM');
      assert.equal(signal, null);
      assert.equal(code, 0, tail.stderr);
      assert.equal(tail.stderr, '');
    });

    test('--filter keeps the matching event lines only', async () => {
      const tail = new Proc(['tail', '--json', '--dir', dir, '--filter', 'BOB']);
      procs.push(tail);
      await tail.line((l) => l.event === 'status', 'the status line');
      // the stream is open once the status line is out
      const carol = await FishClient.connect({
        gateway,
        user: 'carol',
        device: 'd',
        token: signToken(secret, 'carol'),
        reconnect: false,
      });
      const bob = await FishClient.connect({
        gateway,
        user: 'bob',
        device: 'd',
        token: signToken(secret, 'bob'),
        reconnect: false,
      });
      try {
        await tail.line((l) => l.event === 'client-status' && l.user === 'bob', 'bob’s login');
      } finally {
        await carol.close();
        await bob.close();
      }
      const events = tail.lines().slice(1);
      assert.ok(
        events.every((l) => JSON.stringify(l).toLowerCase().includes('bob')),
        JSON.stringify(events),
      );
      assert.ok(!events.some((l) => l.event === 'beat'), 'no beats (they do not mention bob)');
      assert.equal((await tail.stop('SIGINT')).code, 0);
    });

    test('exits 0, quietly, when the reader of its pipe goes away', async () => {
      const tail = new Proc(['tail', '--dir', dir]); // stdout is a pipe: JSON lines without --json
      procs.push(tail);
      await tail.line((l) => l.event === 'status', 'the status line');
      tail.child.stdout!.destroy();
      const timer = setTimeout(() => tail.child.kill('SIGKILL'), LINE_TIMEOUT_MS);
      const { code, signal } = await tail.exited;
      clearTimeout(timer);
      assert.equal(signal, null, 'not killed: it ended by itself at the next write');
      assert.equal(code, 0);
      assert.equal(tail.stderr, '');
    });

    test('says on stderr that it lost the monitor and keeps trying (the last test: it stops the cluster)', async () => {
      const tail = new Proc(['tail', '--json', '--dir', dir]);
      procs.push(tail);
      await tail.line((l) => l.event === 'beat', 'a beat');
      const stopped = await up.stop('SIGTERM');
      assert.equal(stopped.code, 0, up.stderr);
      await tail.until(
        () => /tail: lost the monitor at 127\.0\.0\.1:\d+ \(.*\); reconnecting in [\d.]+ s/.test(tail.stderr),
        'the reconnecting line',
      );
      // still running, still trying
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(tail.child.exitCode, null);
      assert.equal((await tail.stop('SIGTERM')).code, 0);
    });
  });
});
