/**
 * `fishchat chat` as a user runs it: the compiled CLI (`npm run build` first)
 * in a real pseudo-terminal made by tmux, driven with send-keys and read with
 * capture-pane, against `fishchat up --embedded` on ports from the OS. Bob is
 * the test itself (a FishClient) and `fishchat send`. Skipped when tmux is
 * not installed. The CLI always runs on Node, also when this file runs under
 * Bun.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { FishClient, type Msg } from '../runtime/client/index.js';
import { signToken } from '../runtime/protocol/token.js';
import { BIN, CLEAN_ENV, fishchat, initCluster, NODE, ROOT } from './helpers/cli.js';

/** The CLI's environment: a UTF-8 locale, whatever the test run's. */
const ENV = { ...CLEAN_ENV, LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8' };
const READY_TIMEOUT_MS = 20_000;
const STEP_TIMEOUT_MS = 15_000;

const HAVE_TMUX = spawnSync('tmux', ['-V'], { stdio: 'ignore' }).status === 0;
const skip = HAVE_TMUX
  ? false
  : 'tmux is not installed (apt-get install tmux): the chat pseudo-terminal test is skipped';
if (skip) console.log(`chat-tmux: ${skip}`);

/** A shell word. */
const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

async function until<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = STEP_TIMEOUT_MS,
  detail?: () => string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${detail ? `\n${detail()}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const run = (args: string[]) => fishchat(args, { env: ENV });

/** tmux on a socket of its own: a server of this test only, with this test's environment. */
class Tmux {
  readonly socket = `fishchat-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  readonly session = `chat-${Math.random().toString(36).slice(2, 8)}`;

  cmd(...args: string[]): string {
    return execFileSync('tmux', ['-u', '-L', this.socket, ...args], {
      encoding: 'utf8',
      timeout: 10_000,
      env: { ...process.env, ...ENV },
    });
  }

  capture(): string {
    try {
      return this.cmd('capture-pane', '-p', '-t', this.session);
    } catch (err) {
      return `(capture-pane failed: ${err instanceof Error ? err.message : String(err)})`;
    }
  }

  kill(): void {
    try {
      this.cmd('kill-server');
    } catch {
      // already gone
    }
  }
}

describe('fishchat chat in a terminal (tmux)', { skip, timeout: 120_000 }, () => {
  test('shows an incoming message, sends a typed line (acked ✓, received by bob), and exits 0 on Ctrl-C', {
    timeout: 120_000,
  }, async () => {
    assert.ok(
      existsSync(join(ROOT, 'dist', 'cli', 'commands', 'chat.js')),
      'dist/ is missing: run `npm run build` first (`npm test` does)',
    );
    const dir = await mkdtemp(join(tmpdir(), 'fishchat-chat-'));
    const tmux = new Tmux();
    let up: ChildProcess | undefined;
    let upOut = '';
    let bob: FishClient | undefined;
    try {
      // a cluster directory, every listener on a port from the OS
      await initCluster(dir);

      up = spawn(NODE, [BIN, 'up', '--embedded', dir], {
        cwd: ROOT,
        env: { ...process.env, ...ENV },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      up.stdout!.on('data', (d: Buffer) => (upOut += d.toString()));
      up.stderr!.on('data', (d: Buffer) => (upOut += d.toString()));
      const upProc = up;
      await until(
        'fishchat up: "cluster ready"',
        () =>
          /cluster ready/.test(upOut) ||
          (upProc.exitCode !== null ? Promise.reject(new Error(`up exited:\n${upOut}`)) : false),
        READY_TIMEOUT_MS,
        () => upOut,
      );
      const runInfo = JSON.parse(await readFile(join(dir, '.fishchat', 'run.json'), 'utf8')) as { gateway: string };
      const secret = (await readFile(join(dir, '.fishchat', 'secret'), 'utf8')).trim();

      // bob, logged in with a token signed by the cluster secret
      const toBob: Msg[] = [];
      bob = await FishClient.connect({
        gateway: runInfo.gateway,
        user: 'bob',
        device: 'tmux-test',
        token: () => signToken(secret, 'bob', { ttlSeconds: 300 }),
      });
      bob.on('message', (m) => toBob.push(m));

      // alice's chat in a 100x30 terminal; the shell line stays to report the exit code
      const chat = `env -u CI -u CONTINUOUS_INTEGRATION ${q(NODE)} ${q(BIN)} chat --dir ${q(dir)} --as alice --to bob`;
      tmux.cmd(
        'new-session',
        '-d',
        '-s',
        tmux.session,
        '-x',
        '100',
        '-y',
        '30',
        '-c',
        ROOT,
        `${chat}; echo "chat exited $?"; sleep 60`,
      );
      const screen = () => `screen:\n${tmux.capture()}\nup:\n${upOut}`;
      await until(
        'the chat header',
        () => /alice → bob · ms-\S+ · ● connected/.test(tmux.capture()),
        STEP_TIMEOUT_MS,
        screen,
      );

      // bob → alice with `fishchat send`: it appears on alice's screen, with sender and time
      const sent = await run(['send', '--dir', dir, '--as', 'bob', '--to', 'alice', 'hello alice']);
      assert.equal(sent.code, 0, sent.stderr);
      await until(
        'the incoming message',
        () => /\d\d:\d\d:\d\d bob: hello alice/.test(tmux.capture()),
        STEP_TIMEOUT_MS,
        screen,
      );

      // alice types a line: bob receives it, and the line is marked acked
      tmux.cmd('send-keys', '-t', tmux.session, 'hi bob', 'Enter');
      const got = await until(
        'bob receives "hi bob"',
        () => toBob.find((m) => m.from === 'alice' && m.body === 'hi bob'),
        STEP_TIMEOUT_MS,
        screen,
      );
      assert.equal(got.to, 'bob');
      await until('the acked mark', () => /alice: hi bob ✓/.test(tmux.capture()), STEP_TIMEOUT_MS, screen);
      assert.equal(toBob.filter((m) => m.body === 'hi bob').length, 1, 'stored once');

      // Ctrl-C: logs out, leaves the screen, exits 0
      tmux.cmd('send-keys', '-t', tmux.session, 'C-c');
      const after = await until(
        'chat exits',
        () => {
          const s = tmux.capture();
          return /chat exited \d+/.test(s) ? s : undefined;
        },
        STEP_TIMEOUT_MS,
        screen,
      );
      assert.match(after, /chat exited 0/);
      assert.match(after, /left the chat with bob: 1 sent, 1 received/);
    } finally {
      tmux.kill();
      await bob?.close().catch(() => {});
      if (up && up.exitCode === null && up.signalCode === null) {
        const exited = new Promise((r) => up!.once('exit', r));
        up.kill('SIGTERM');
        const timer = setTimeout(() => up!.kill('SIGKILL'), 20_000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    }
  });
});
