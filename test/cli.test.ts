/**
 * The CLI end to end, as a user runs it: `node bin/run.js …` child processes
 * (the compiled dist/, so `npm run build` first; `npm test` does), real
 * sockets, ports from the OS. The CLI always runs on Node, also when this
 * file runs under Bun.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { verifyToken } from '../runtime/protocol/token.js';
import { CliProcess, fishchat, initCluster, ROOT, type CliResult } from './helpers/cli.js';
import { closedPort, takenPort } from './helpers/net.js';

const READY_TIMEOUT_MS = 20_000;

/** `fishchat up dir --embedded` as a child process. */
class Up extends CliProcess {
  constructor(dir: string) {
    // --embedded: with redis-server on PATH, a bare `up` would run managed Redis (test/redis-mode.test.ts covers that).
    super(['up', dir, '--embedded'], { waitMs: READY_TIMEOUT_MS });
  }
}

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fishchat-cli-'));
  dirs.push(dir);
  return dir;
}

/** A cluster directory from `init`, every listener on port 0 (any free port). */
async function initPortZero(): Promise<string> {
  return initCluster(await tempDir());
}

const READY_LINE = /^ready {2}(\S+)\s+(\S+)\s+(.*)$/gm;

before(() => {
  assert.ok(
    existsSync(join(ROOT, 'dist', 'cli', 'commands', 'up.js')),
    'dist/ is missing: run `npm run build` first (`npm test` does)',
  );
});

after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('fishchat --help', () => {
  test('every command has help with examples', async () => {
    const top = await fishchat(['--help']);
    assert.equal(top.code, 0, top.stderr);
    for (const cmd of ['init', 'up', 'send', 'token', 'status', 'serve']) {
      assert.match(top.stdout, new RegExp(`^\\s+${cmd}\\s`, 'm'), `top-level help lists ${cmd}`);
      const r = await fishchat([cmd, '--help']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /USAGE/);
      assert.match(r.stdout, /EXAMPLES/);
    }
  });

  test('an unknown flag is a usage error without a stack trace', async () => {
    const r = await fishchat(['init', '--nope']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /--nope/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });
});

describe('fishchat init', () => {
  test('writes fishchat.json, the role files and a 0600 secret, and says what to run next', async () => {
    const dir = await tempDir();
    const r = await fishchat(['init', dir]);
    assert.equal(r.code, 0, r.stderr);
    const files = [
      'fishchat.json',
      'gateway.json',
      'msg_server.19000.json',
      'msg_server.19001.json',
      'router.json',
      'manager.json',
      'monitor.json',
    ];
    for (const f of files) {
      assert.ok(existsSync(join(dir, f)), `${f} written`);
      assert.match(r.stdout, new RegExp(`wrote .*${f.replace(/\./g, '\\.')}`));
    }
    const cluster = JSON.parse(await readFile(join(dir, 'fishchat.json'), 'utf8'));
    assert.equal(cluster.auth, 'token');
    assert.deepEqual(cluster.roles, files.slice(1));
    const ms = JSON.parse(await readFile(join(dir, 'msg_server.19001.json'), 'utf8'));
    assert.deepEqual(ms, {
      role: 'msg_server',
      id: 'ms-19001',
      host: '127.0.0.1',
      port: 19001,
      httpHost: '127.0.0.1',
      httpPort: 19101,
    });
    const manager = JSON.parse(await readFile(join(dir, 'manager.json'), 'utf8'));
    assert.deepEqual(manager, { role: 'manager', id: 'manager', httpHost: '127.0.0.1', httpPort: 18000 });
    const monitor = JSON.parse(await readFile(join(dir, 'monitor.json'), 'utf8'));
    assert.deepEqual(monitor, { role: 'monitor', id: 'monitor', httpHost: '127.0.0.1', httpPort: 21000 });

    const secretFile = join(dir, '.fishchat', 'secret');
    assert.equal((await stat(secretFile)).mode & 0o777, 0o600);
    assert.match((await readFile(secretFile, 'utf8')).trim(), /^[A-Za-z0-9_-]{43}$/);
    assert.match(r.stdout, /secret.*0600/);
    assert.match(r.stdout, /next: +fishchat up /);
  });

  test('two inits make two different secrets', async () => {
    const [a, b] = [await tempDir(), await tempDir()];
    await fishchat(['init', a]);
    await fishchat(['init', b]);
    assert.notEqual(
      await readFile(join(a, '.fishchat', 'secret'), 'utf8'),
      await readFile(join(b, '.fishchat', 'secret'), 'utf8'),
    );
  });

  test('refuses to overwrite without --force (exit 2, nothing changed); --force overwrites and keeps the secret', async () => {
    const dir = await tempDir();
    await fishchat(['init', dir]);
    await writeFile(join(dir, 'gateway.json'), '{"edited": true}');
    const secret = await readFile(join(dir, '.fishchat', 'secret'), 'utf8');

    const refused = await fishchat(['init', dir]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /already holds/);
    assert.match(refused.stderr, /--force/);
    assert.doesNotMatch(refused.stderr, /\n\s+at /);
    assert.equal(await readFile(join(dir, 'gateway.json'), 'utf8'), '{"edited": true}');

    const forced = await fishchat(['init', dir, '--force', '--msg-servers', '3']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal(JSON.parse(await readFile(join(dir, 'gateway.json'), 'utf8')).port, 17000);
    assert.ok(existsSync(join(dir, 'msg_server.19002.json')));
    assert.equal(await readFile(join(dir, '.fishchat', 'secret'), 'utf8'), secret);
    assert.match(forced.stdout, /kept/);
  });
});

describe('fishchat token', () => {
  test('prints a token signed with the cluster secret; --admin adds adm', async () => {
    const dir = await tempDir();
    await fishchat(['init', dir]);
    const secret = (await readFile(join(dir, '.fishchat', 'secret'), 'utf8')).trim();
    const r = await fishchat(['token', 'alice', '--dir', dir, '--ttl', '60']);
    assert.equal(r.code, 0, r.stderr);
    const v = verifyToken(secret, r.stdout.trim(), 'alice');
    assert.ok(v.ok, JSON.stringify(v));
    assert.ok(v.claims.exp - Date.now() / 1000 <= 61);
    assert.equal(v.claims.adm, undefined);

    const adm = await fishchat(['token', 'ops', '--admin', '--dir', dir]);
    const va = verifyToken(secret, adm.stdout.trim(), 'ops');
    assert.ok(va.ok && va.claims.adm === true);
  });

  test('without a secret: a clear error, exit 2', async () => {
    const r = await fishchat(['token', 'alice', '--dir', await tempDir()]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /secret/);
    assert.match(r.stderr, /fishchat init/);
  });
});

describe('fishchat up and send', () => {
  let dir: string;
  let up: Up;

  before(async () => {
    dir = await initPortZero();
    up = new Up(dir);
  });

  after(async () => {
    await up?.stop('SIGKILL');
  });

  test('up prints the mode, one ready line per role with its addresses, and is ready fast', async () => {
    const out = await up.waitFor(/^cluster ready in \d+ ms/m);
    assert.match(out, /^mode: embedded \(.+\)$/m);
    const ready = [...out.matchAll(READY_LINE)].map((m) => ({ role: m[1], id: m[2], addrs: m[3] }));
    assert.deepEqual(
      ready.map((r) => [r.role, r.id]),
      [
        ['monitor', 'monitor'],
        ['router', 'router'],
        ['manager', 'manager'],
        ['msg_server', 'ms-19000'],
        ['msg_server', 'ms-19001'],
        ['gateway', 'gateway'],
      ],
    );
    for (const r of ready) {
      if (['router', 'manager', 'monitor'].includes(r.role!)) assert.match(r.addrs!, /^http 127\.0\.0\.1:[1-9]\d*$/);
      else if (r.role === 'gateway')
        assert.match(r.addrs!, /^tcp 127\.0\.0\.1:[1-9]\d* {2}http 127\.0\.0\.1:[1-9]\d*$/);
      else {
        const m =
          /^tcp 127\.0\.0\.1:[1-9]\d* {2}http 127\.0\.0\.1:([1-9]\d*) {2}ws ws:\/\/127\.0\.0\.1:(\d+)\/v1\/ws$/.exec(
            r.addrs!,
          );
        assert.ok(m, r.addrs);
        assert.equal(m[2], m[1], 'the WebSocket endpoint is on the HTTP port');
      }
    }
    const ms = Number(/^cluster ready in (\d+) ms/m.exec(out)![1]);
    assert.ok(ms < 1500, `ready in ${ms} ms`);

    const run = JSON.parse(await readFile(join(dir, '.fishchat', 'run.json'), 'utf8'));
    assert.equal(run.pid, up.child.pid);
    assert.equal(run.mode, 'embedded');
    // At once (before any msg_server's next beat), GET /v1/route names every WebSocket URL.
    const gwHttp = run.roles.find((r: { role: string }) => r.role === 'gateway').addresses.http;
    const routed = (await (await fetch(`http://${gwHttp}/v1/route`)).json()) as { servers: { ws?: string }[] };
    const wsUrls = run.roles
      .filter((r: { role: string }) => r.role === 'msg_server')
      .map((r: { addresses: { ws: string } }) => r.addresses.ws);
    assert.deepEqual(routed.servers.map((x) => x.ws).sort(), wsUrls.sort());
    const gatewayLine = ready.find((r) => r.role === 'gateway')!;
    assert.equal(`tcp ${run.gateway}`, gatewayLine.addrs!.split('  ')[0]);
    assert.deepEqual(
      run.roles.map((r: { role: string; id: string }) => [r.role, r.id]),
      ready.map((r) => [r.role, r.id]),
    );
    for (const [i, r] of ready.entries()) {
      const addrs = run.roles[i].addresses as { tcp?: string; http?: string; ws?: string };
      assert.equal(
        [addrs.tcp && `tcp ${addrs.tcp}`, addrs.http && `http ${addrs.http}`, addrs.ws && `ws ${addrs.ws}`]
          .filter(Boolean)
          .join('  '),
        r.addrs,
      );
    }
    assert.equal(`http ${run.monitor}`, ready.find((r) => r.role === 'monitor')!.addrs);
  });

  test('status --json: every role up, from the monitor', async () => {
    await up.waitFor(/^cluster ready/m);
    const expected = [
      'gateway/gateway',
      'manager/manager',
      'monitor/monitor',
      'msg_server/ms-19000',
      'msg_server/ms-19001',
      'router/router',
    ];
    // The first beats take a moment to arrive: ask again for up to a few seconds.
    const deadline = Date.now() + 8000;
    let r: CliResult;
    let report: {
      cluster: string;
      ts: number;
      roles: { role: string; id: string; up: boolean; addr?: string; http?: string; rss: number }[];
    };
    for (;;) {
      r = await fishchat(['status', '--dir', dir, '--json']);
      assert.ok(r.code === 0 || r.code === 1, r.stdout + r.stderr);
      report = JSON.parse(r.stdout);
      const seen = report.roles
        .filter((x) => x.up)
        .map((x) => `${x.role}/${x.id}`)
        .sort();
      if (r.code === 0 && JSON.stringify(seen) === JSON.stringify(expected)) break;
      if (Date.now() > deadline) assert.fail(`not every role up within 8 s: ${r.stdout}${r.stderr}`);
      await new Promise((res) => setTimeout(res, 250));
    }
    assert.equal(report.cluster, 'local');
    assert.ok(Math.abs(report.ts - Date.now()) < 10_000);
    const run = JSON.parse(await readFile(join(dir, '.fishchat', 'run.json'), 'utf8'));
    for (const role of report.roles) {
      const inRun = run.roles.find((x: { role: string; id: string }) => x.role === role.role && x.id === role.id);
      assert.ok(inRun, `${role.role} ${role.id} is in run.json`);
      assert.equal(role.http, inRun.addresses.http);
      if (inRun.addresses.tcp) assert.equal(role.addr, inRun.addresses.tcp);
      assert.ok(role.rss > 0);
    }
  });

  test('status: one table with every role, up', async () => {
    await up.waitFor(/^cluster ready/m);
    const r = await fishchat(['status', '--dir', dir]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const [header, ...rows] = r.stdout.trimEnd().split('\n');
    assert.match(header!, /^ROLE +ID +ADDRESS +STATE +CONNS +MSGS\/S +MEMORY +UPTIME$/);
    const cells = rows.map((row) => row.trim().split(/ {2,}/));
    assert.deepEqual(cells.map((c) => `${c[0]}/${c[1]}`).sort(), [
      'gateway/gateway',
      'manager/manager',
      'monitor/monitor',
      'msg_server/ms-19000',
      'msg_server/ms-19001',
      'router/router',
    ]);
    for (const c of cells) {
      assert.match(c[2]!, /^127\.0\.0\.1:[1-9]\d*$/);
      assert.equal(c[3], 'up');
      assert.match(c[4]!, /^\d+$/);
      assert.match(c[5]!, /^\d+(\.\d)?$/);
      assert.match(c[6]!, /^\d+(\.\d)? (B|KiB|MiB|GiB)$/);
      assert.match(c[7]!, /^(\d+s|\d+m\d\ds|\d+h\d\dm)$/);
    }
  });

  test('send: exit 0 on ok, --json prints mid, seq, ts, to', async () => {
    await up.waitFor(/^cluster ready/m);
    const before = Date.now();
    const r = await fishchat(['send', '--dir', dir, '--as', 'alice', '--to', 'bob', '--json', 'hello bob']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 1);
    const ok = JSON.parse(lines[0]!);
    assert.deepEqual(Object.keys(ok).sort(), ['mid', 'seq', 'to', 'ts']);
    assert.equal(typeof ok.mid, 'string');
    assert.equal(ok.seq, 1);
    assert.equal(ok.to, 'bob');
    assert.ok(ok.ts >= before - 5000 && ok.ts <= Date.now() + 5000);

    const plain = await fishchat(['send', '--dir', dir, '--as', 'carol', '--to', 'bob', 'hi again']);
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(plain.stdout, /seq 2/);
  });

  test('send --cid: a repeat returns the first mid and seq', async () => {
    await up.waitFor(/^cluster ready/m);
    const args = ['send', '--dir', dir, '--as', 'alice', '--to', 'dave', '--cid', 'job-1', '--json', 'once'];
    const a = JSON.parse((await fishchat(args)).stdout);
    const b = JSON.parse((await fishchat(args)).stdout);
    assert.equal(b.mid, a.mid);
    assert.equal(b.seq, a.seq);
  });

  test('send -: one message per stdin line, in order', async () => {
    await up.waitFor(/^cluster ready/m);
    const r = await fishchat(['send', '--dir', dir, '--as', 'alice', '--to', 'erin', '--json', '-'], {
      input: 'one\ntwo\n\nthree\n',
    });
    assert.equal(r.code, 0, r.stderr);
    const oks = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      oks.map((o) => o.seq),
      [1, 2, 3],
    );
    assert.equal(new Set(oks.map((o) => o.mid)).size, 3);
  });

  test('send: the server error is printed with its code, exit non-zero', async () => {
    await up.waitFor(/^cluster ready/m);
    const r = await fishchat(['send', '--dir', dir, '--as', 'bad id!', '--to', 'bob', 'x']);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /bad_request/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);

    const to = await fishchat(['send', '--dir', dir, '--as', 'alice', '--to', 'bad id!', 'x']);
    assert.equal(to.code, 1, to.stdout + to.stderr);
    assert.match(to.stderr, /bad_request/);
  });

  test('send with a token of another cluster fails with auth_failed', async () => {
    await up.waitFor(/^cluster ready/m);
    const run = JSON.parse(await readFile(join(dir, '.fishchat', 'run.json'), 'utf8'));
    const r = await fishchat(
      ['send', '--dir', await tempDir(), '--gateway', run.gateway, '--as', 'alice', '--to', 'bob', 'x'],
      {
        env: { FISHCHAT_SECRET: 'another-cluster-secret-0123456789' },
      },
    );
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /auth_failed/);
  });

  test('a second up on the same directory is refused', async () => {
    await up.waitFor(/^cluster ready/m);
    const r = await fishchat(['up', dir, '--embedded']);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /already running/);
    // Whatever the mode: a second up is refused before it starts anything.
    const redis = await fishchat(['up', dir, '--redis', 'redis://127.0.0.1:1']);
    assert.equal(redis.code, 2, redis.stdout + redis.stderr);
    assert.match(redis.stderr, /already running/);
  });

  test('SIGTERM stops up cleanly: exit 0, run.json removed', async () => {
    await up.waitFor(/^cluster ready/m);
    const { code, signal } = await up.stop('SIGTERM');
    assert.equal(signal, null, up.stdout + up.stderr);
    assert.equal(code, 0, up.stdout + up.stderr);
    assert.match(up.stdout, /^stopped$/m);
    assert.ok(!existsSync(join(dir, '.fishchat', 'run.json')), 'run.json removed');
  });
});

describe('fishchat send without a cluster', () => {
  test('a gateway nobody listens on: exit 3 with a clear message', async () => {
    const dir = await tempDir();
    await fishchat(['init', dir]);
    const port = await closedPort();
    const r = await fishchat([
      'send',
      '--dir',
      dir,
      '--gateway',
      `127.0.0.1:${port}`,
      '--as',
      'alice',
      '--to',
      'bob',
      'x',
    ]);
    assert.equal(r.code, 3, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`cannot reach the gateway at 127\\.0\\.0\\.1:${port}`));
    assert.match(r.stderr, /fishchat up/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });

  test('no TEXT: a usage error', async () => {
    const dir = await tempDir();
    await fishchat(['init', dir]);
    const r = await fishchat(['send', '--dir', dir, '--as', 'alice', '--to', 'bob']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /TEXT/);
  });
});

describe('fishchat status without a cluster', () => {
  test('no run.json and monitor port 0: exit 3, says to start the cluster', async () => {
    const dir = await initPortZero();
    const r = await fishchat(['status', '--dir', dir]);
    assert.equal(r.code, 3, r.stdout + r.stderr);
    assert.match(r.stderr, /is `fishchat up` running in /);
    assert.match(r.stderr, /--monitor/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });

  test('a monitor nobody listens on (from monitor.json, or --monitor): exit 3 naming the address', async () => {
    const dir = await tempDir();
    await fishchat(['init', dir]);
    const port = await closedPort();
    const monitor = JSON.parse(await readFile(join(dir, 'monitor.json'), 'utf8'));
    monitor.httpPort = port;
    await writeFile(join(dir, 'monitor.json'), JSON.stringify(monitor));
    const r = await fishchat(['status', '--dir', dir]);
    assert.equal(r.code, 3, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`cannot reach the monitor at 127\\.0\\.0\\.1:${port}`));
    assert.match(r.stderr, /is `fishchat up` running in /);
    assert.doesNotMatch(r.stderr, /\n\s+at /);

    const other = await closedPort();
    const flag = await fishchat(['status', '--dir', dir, '--json', '--monitor', `127.0.0.1:${other}`]);
    assert.equal(flag.code, 3, flag.stdout + flag.stderr);
    assert.match(flag.stderr, new RegExp(`127\\.0\\.0\\.1:${other}`));
    assert.equal(flag.stdout, '');
  });

  test('a role down: shown as down, exit 1; the request carries an admin token of the cluster', async () => {
    const dir = await tempDir();
    await fishchat(['init', dir]);
    const secret = (await readFile(join(dir, '.fishchat', 'secret'), 'utf8')).trim();
    const now = Date.now();
    const role = (role: string, id: string, up: boolean) => ({
      role,
      id,
      http: '127.0.0.1:1',
      up,
      lastBeat: up ? now : now - 9000,
      pid: 1,
      boot: 'b',
      uptime: 192,
      conns: 3,
      inRate: 12.4,
      outRate: 0,
      p50: 0,
      p99: 0,
      rss: 48.2 * 1024 * 1024,
      loop: 0,
    });
    const body = {
      cluster: 'local',
      ts: now,
      roles: [role('monitor', 'monitor', true), role('msg_server', 'ms-1', false)],
    };
    let auth: string | undefined;
    const server = createHttpServer((req: IncomingMessage, res) => {
      auth = req.headers.authorization;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(req.url === '/status' ? body : {}));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const r = await fishchat(['status', '--dir', dir, '--monitor', `127.0.0.1:${port}`]);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stdout, /^monitor +monitor +127\.0\.0\.1:1 +up +3 +12 +48\.2 MiB +3m12s$/m);
      assert.match(r.stdout, /^msg_server +ms-1 +127\.0\.0\.1:1 +down /m);
      assert.match(r.stderr, /1 role is down: msg_server ms-1 \(last beat \d+s ago\)/);
      const token = /^Bearer (\S+)$/.exec(auth ?? '')?.[1];
      const v = verifyToken(secret, token);
      assert.ok(v.ok && v.claims.adm === true, JSON.stringify(v));

      const json = await fishchat(['status', '--dir', dir, '--monitor', `127.0.0.1:${port}`, '--json']);
      assert.equal(json.code, 1);
      assert.deepEqual(JSON.parse(json.stdout), body);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});

describe('fishchat up errors', () => {
  test('a taken port names the port and the role; exit non-zero', async () => {
    const dir = await initPortZero();
    const { port, close } = await takenPort();
    try {
      const gw = JSON.parse(await readFile(join(dir, 'gateway.json'), 'utf8'));
      gw.port = port;
      await writeFile(join(dir, 'gateway.json'), JSON.stringify(gw));
      const r = await fishchat(['up', dir, '--embedded']);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, new RegExp(`${port}`));
      assert.match(r.stderr, /gateway/);
      assert.match(r.stderr, /in use/);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
      assert.ok(!existsSync(join(dir, '.fishchat', 'run.json')));
    } finally {
      await close();
    }
  });

  test('a bad configuration names the file and the field; exit 2', async () => {
    const dir = await initPortZero();
    const ms = JSON.parse(await readFile(join(dir, 'msg_server.19001.json'), 'utf8'));
    ms.port = 'abc';
    await writeFile(join(dir, 'msg_server.19001.json'), JSON.stringify(ms));
    const r = await fishchat(['up', dir]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /msg_server\.19001\.json: "port" must be an integer 0–65535, found "abc"/);
  });
});

describe('fishchat up: the mode', () => {
  test('--embedded and --redis together: a usage error', async () => {
    const dir = await initPortZero();
    const r = await fishchat(['up', dir, '--embedded', '--redis', 'redis://127.0.0.1:6379']);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /--embedded|--redis/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });

  test('a bad --redis URL names the flag; exit 2', async () => {
    const dir = await initPortZero();
    const r = await fishchat(['up', dir, '--redis', 'http://x']);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /--redis/);
  });
});

describe('fishchat serve', () => {
  test('without Redis: refused with a clear message, exit 2', async () => {
    const dir = await initPortZero();
    const r = await fishchat(['serve', 'router', '--dir', dir], { env: { FISHCHAT_REDIS: '' } });
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /needs Redis/);
    assert.match(r.stderr, /FISHCHAT_REDIS/);
    assert.match(r.stderr, /fishchat up --embedded/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });

  test('several msg_servers and no --id: says which ids there are; exit 2', async () => {
    const dir = await initPortZero();
    const r = await fishchat(['serve', 'msg_server', '--dir', dir, '--redis', 'redis://127.0.0.1:1']);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /--id/);
    assert.match(r.stderr, /ms-19000, ms-19001/);
  });

  test('an unknown role: a usage error', async () => {
    const r = await fishchat(['serve', 'nope']);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /nope/);
  });
});

describe('fishchat down and init: help and flags', () => {
  test('down --help and up --help: usage, --detach / --timeout, examples', async () => {
    const top = await fishchat(['--help']);
    assert.match(top.stdout, /^\s+down\s/m, 'top-level help lists down');
    const down = await fishchat(['down', '--help']);
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.stdout, /USAGE/);
    assert.match(down.stdout, /--timeout=SECONDS/);
    assert.match(down.stdout, /EXAMPLES/);
    assert.match(down.stdout, /fishchat down chat/);
    const up = await fishchat(['up', '--help']);
    assert.match(up.stdout, /--detach/);
    assert.match(up.stdout, /--ready-timeout=SECONDS/);
    assert.match(up.stdout, /fishchat up chat --detach/);
    const init = await fishchat(['init', '--help']);
    assert.match(init.stdout, /--redis=URL/);
    assert.match(init.stdout, /--msg-servers=/);
    assert.match(init.stdout, /fishchat init chat --redis redis:\/\/127\.0\.0\.1:6379/);
  });

  test('init --msg-servers 1 writes one msg_server; 0 and 101 are usage errors that write nothing', async () => {
    const dir = await tempDir();
    const r = await fishchat(['init', dir, '--msg-servers', '1']);
    assert.equal(r.code, 0, r.stderr);
    const cluster = JSON.parse(await readFile(join(dir, 'fishchat.json'), 'utf8'));
    assert.deepEqual(cluster.roles, [
      'gateway.json',
      'msg_server.19000.json',
      'router.json',
      'manager.json',
      'monitor.json',
    ]);
    assert.ok(!existsSync(join(dir, 'msg_server.19001.json')));
    for (const n of ['0', '101', 'two']) {
      const other = await tempDir();
      const bad = await fishchat(['init', other, '--msg-servers', n]);
      assert.equal(bad.code, 2, bad.stdout + bad.stderr);
      assert.match(bad.stderr, /msg-servers/);
      assert.ok(!existsSync(join(other, 'fishchat.json')));
    }
  });
});
