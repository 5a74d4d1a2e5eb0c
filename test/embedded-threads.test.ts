/**
 * Embedded mode on several threads (runtime/cluster/embedded.ts, threads > 1):
 * the msg_servers in worker threads over the port Bus and Store
 * (runtime/bus/port.ts, runtime/store/port/), the SQLite store, the
 * in-process bus and the other roles on the main thread.
 *
 * 1. In this process (startEmbedded): sends on one msg_server and across
 *    the two are stored, answered and pushed, a cid repeat answers the first
 *    mid, a kick crosses the bus; stop is clean, and the file, opened again
 *    on one thread, holds every message. A msg_server that cannot listen
 *    fails the start as on one thread.
 * 2. `fishchat up --embedded --threads 3` as a child process: the ready line
 *    and run.json as on one thread, `fishchat status` sees every role;
 *    kill -9 after N acknowledged sends; `up` (default threads) on the same
 *    directory then has all N, and stops cleanly on SIGTERM.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { MessageChannel } from 'node:worker_threads';
import { createMemoryBus } from '../runtime/bus/memory.js';
import { BusRelay, PortBus } from '../runtime/bus/port.js';
import { getPlatform } from '../runtime/platform/index.js';
import { createPortStore, storeCall, ThreadLink, type PortLike } from '../runtime/store/port/index.js';
import { openSqliteStore } from '../runtime/store/sqlite/index.js';
import { initCluster, loadCluster, startEmbedded, type EmbeddedCluster } from '../runtime/cluster/index.js';
import { encodeBody, RawCbor } from '../runtime/protocol/index.js';
import { signToken } from '../runtime/protocol/token.js';
import { UpProcess } from './helpers/chaos.js';
import { BIN, fishchat } from './helpers/cli.js';
import { RawConn, rid, type Frame } from './helpers/raw.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** A cluster directory (2 msg_servers), every port 0 (or `ports`, by role file). */
async function clusterDir(ports?: Record<string, { port?: number; httpPort?: number }>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fishchat-threads-'));
  dirs.push(dir);
  await initCluster(dir, { msgServers: 2 });
  const cluster = JSON.parse(await readFile(join(dir, 'fishchat.json'), 'utf8')) as { roles: string[] };
  for (const file of cluster.roles) {
    const role = JSON.parse(await readFile(join(dir, file), 'utf8')) as Record<string, unknown>;
    if ('port' in role) role.port = ports?.[file]?.port ?? 0;
    if ('httpPort' in role) role.httpPort = ports?.[file]?.httpPort ?? 0;
    await writeFile(join(dir, file), JSON.stringify(role, null, 2));
  }
  return dir;
}

async function login(addr: string, secret: string, user: string, push = true): Promise<{ conn: RawConn; ok: Frame }> {
  const conn = await RawConn.connect(addr);
  const ok = await conn.request({ op: 'login', rid: rid(), user, token: signToken(secret, user), push }, 10_000);
  assert.equal(ok.op, 'ok', JSON.stringify(ok));
  return { conn, ok };
}

function send(conn: RawConn, to: string, body: unknown, cid?: string): Promise<Frame> {
  return conn.request({ op: 'send', rid: rid(), to, body: new RawCbor(encodeBody(body)), cid }, 10_000);
}

/** Every message of `user`'s inbox, by `sync` from 0. */
async function syncAll(conn: RawConn): Promise<Frame[]> {
  const r = rid();
  conn.send({ op: 'sync', rid: r, after: 0, limit: 1000 });
  const out: Frame[] = [];
  for (;;) {
    const f = await conn.next(10_000, (x) => x.rid === r);
    if (f.op !== 'msg') {
      assert.equal(f.op, 'ok', JSON.stringify(f));
      return out;
    }
    out.push(f);
  }
}

describe('embedded mode on several threads', { concurrency: false }, () => {
  test('a PortStore and a PortBus over a real MessageChannel: results, bytes, errors, order, subscriptions', {
    timeout: 30_000,
  }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fishchat-port-'));
    dirs.push(dir);
    const platform = await getPlatform();
    const real = await openSqliteStore(platform.openSqlite(join(dir, 'fishchat.db')));
    const memory = createMemoryBus();
    const { port1, port2 } = new MessageChannel();
    const here = new ThreadLink(port1 as unknown as PortLike);
    const there = new ThreadLink(port2 as unknown as PortLike);
    const relay = new BusRelay(memory, here);
    here.onCall = (m, a) => storeCall(real, m, a) ?? relay.call(m, a) ?? Promise.reject(new Error(`no ${m}`));
    here.onEvent = (k, a, b, c) => void relay.event(k, a, b, c);
    const store = createPortStore(there, real.kind);
    const bus = new PortBus(there);
    there.onEvent = (k, a, b) => k === 'bus.deliver' && bus.deliver(a as string, b as Uint8Array);
    try {
      // a body that is a view into a large buffer crosses as its own bytes only
      const big = new Uint8Array(65_536).map((_, i) => i & 0xff);
      const body = big.subarray(1000, 1100);
      await store.login({ user: 'bob', device: 'd1', server: 'ms-1', boot: 'b1', push: true });
      // 200 appends in one turn: one batch, in call order (consecutive seqs), each with bob's session
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          store.appendP2P({
            from: 'alice',
            to: 'bob',
            mid: `m${i}`,
            body,
            ts: 1000 + i,
            cid: i === 0 ? 'c' : undefined,
          }),
        ),
      );
      assert.deepEqual(
        results.map((r) => r.seq),
        Array.from({ length: 200 }, (_, i) => i + 1),
      );
      assert.deepEqual(results[7]!.sessions, [{ user: 'bob', device: 'd1', server: 'ms-1', boot: 'b1', gen: 1 }]);
      const dup = await store.appendP2P({ from: 'alice', to: 'bob', mid: 'x', body, ts: 2000, cid: 'c' });
      assert.equal(dup.duplicate, true);
      assert.equal(dup.mid, 'm0');
      const read = await store.readInbox('bob', 0, 3);
      assert.deepEqual(
        read.messages.map((m) => m.mid),
        ['m0', 'm1', 'm2'],
      );
      assert.deepEqual([...read.messages[2]!.body], [...body]);
      assert.ok(read.messages[2]!.body.buffer.byteLength < 65_536, 'only the bytes crossed, not the buffer');
      assert.equal(read.head.seq, 200);
      assert.equal(await store.ack('bob', 'd1', 150), 150);
      assert.deepEqual(await store.deviceAcks('bob'), [{ device: 'd1', acked: 150 }]);

      // the bus, both ways
      const got: string[] = [];
      const unsub = await bus.subscribe('ch', (p) => got.push(`there:${new TextDecoder().decode(p)}`));
      await memory.subscribe('up', (p) => got.push(`here:${new TextDecoder().decode(p)}`));
      memory.publish('ch', new TextEncoder().encode('1'));
      bus.publish('up', new TextEncoder().encode('2'));
      const until = Date.now() + 5000;
      while (got.length < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(got.sort(), ['here:2', 'there:1']);
      // published on a channel this side subscribed to: delivered here once (not sent back), and there
      const self: string[] = [];
      await bus.subscribe('self', (p) => self.push(`there:${new TextDecoder().decode(p)}`));
      await memory.subscribe('self', (p) => self.push(`here:${new TextDecoder().decode(p)}`));
      bus.publish('self', new TextEncoder().encode('s'));
      const until2 = Date.now() + 5000;
      while (self.length < 2 && Date.now() < until2) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(self.sort(), ['here:s', 'there:s']);
      await unsub();
      memory.publish('ch', new TextEncoder().encode('3'));
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(got.length, 2, 'nothing after the unsubscribe');

      // a failure of the real store crosses as that error
      await real.close();
      await assert.rejects(store.head('bob'), /the store is closed/);
    } finally {
      here.close();
      there.close();
      port1.close();
      await real.close();
    }
  });

  test('msg_servers on worker threads: sends stored, answered and pushed (one msg_server and across), a kick over the bus, clean stop, nothing lost', {
    timeout: 60_000,
  }, async () => {
    const dir = await clusterDir();
    const config = await loadCluster(dir, { createSecret: true });
    const lines: string[] = [];
    const ready: string[] = [];
    let cluster: EmbeddedCluster | undefined = await startEmbedded(config, {
      threads: 3,
      log: (role, id, line) => lines.push(`${role} ${id} ${line}`),
      onReady: (r) => ready.push(`${r.role} ${r.id}`),
    });
    try {
      assert.deepEqual(ready, [
        'monitor monitor',
        'router router',
        'manager manager',
        'msg_server ms-19000',
        'msg_server ms-19001',
        'gateway gateway',
      ]);
      const [a, b] = config.msgServers.map((ms) => cluster!.roles.find((r) => r.id === ms.id)!.addresses.tcp!);
      const run = JSON.parse(await readFile(join(dir, '.fishchat', 'run.json'), 'utf8')) as {
        pid: number;
        mode: string;
        roles: { id: string; addresses: { tcp?: string } }[];
      };
      assert.equal(run.pid, process.pid);
      assert.equal(run.mode, 'embedded');
      assert.deepEqual(
        run.roles.filter((r) => r.id.startsWith('ms-')).map((r) => r.addresses.tcp),
        [a, b],
      );

      const alice = await login(a!, config.secret, 'alice', false);
      const bob = await login(a!, config.secret, 'bob');
      const carol = await login(b!, config.secret, 'carol');
      // one msg_server (alice → bob), across (alice → carol), and a cid repeat
      const oks: Frame[] = [];
      for (let i = 0; i < 50; i++) oks.push(await send(alice.conn, i % 2 === 0 ? 'bob' : 'carol', { i }, `c${i}`));
      for (const ok of oks) assert.equal(ok.op, 'ok', JSON.stringify(ok));
      const again = await send(alice.conn, 'bob', { i: 0 }, 'c0');
      assert.equal(again.op, 'ok');
      assert.equal(again.mid, oks[0]!.mid, 'a cid repeat answers the first mid');
      const toBob = await bob.conn.msgs(25, 10_000);
      const toCarol = await carol.conn.msgs(25, 10_000);
      assert.deepEqual(
        toBob.map((m) => m.seq),
        Array.from({ length: 25 }, (_, i) => i + 1),
      );
      assert.deepEqual(
        toCarol.map((m) => m.seq),
        Array.from({ length: 25 }, (_, i) => i + 1),
      );
      assert.deepEqual(
        toCarol.map((m) => m.body),
        Array.from({ length: 25 }, (_, i) => ({ i: 2 * i + 1 })),
      );
      assert.deepEqual(
        toBob.map((m) => m.mid),
        oks.filter((_, i) => i % 2 === 0).map((o) => o.mid),
      );
      // a bad request is answered, the connection and its worker go on
      const bad = await alice.conn.request({ op: 'send', rid: rid(), to: '', body: new RawCbor(encodeBody(1)) });
      assert.equal(bad.op, 'error');
      // a second login of carol's device on the other msg_server: the first is kicked over the bus
      const carol2 = await login(a!, config.secret, 'carol');
      const kicked = await carol.conn.next(10_000, (f) => f.op === 'kick');
      assert.equal(kicked.op, 'kick');
      carol2.conn.close();
      alice.conn.close();
      bob.conn.close();
      carol.conn.close();
    } finally {
      await cluster.stop();
      cluster = undefined;
    }
    assert.equal(existsSync(join(dir, '.fishchat', 'run.json')), false, 'run.json removed at stop');

    // the same file on one thread: every message there
    cluster = await startEmbedded(config, { threads: 1, log: () => {} });
    try {
      const ms = cluster.roles.find((r) => r.role === 'msg_server')!.addresses.tcp!;
      for (const user of ['bob', 'carol']) {
        const c = await login(ms, config.secret, user, false);
        const all = await syncAll(c.conn);
        assert.equal(all.length, 25, `${user}'s inbox`);
        c.conn.close();
      }
    } finally {
      await cluster.stop();
    }
  });

  test('a msg_server that cannot listen: startEmbedded rejects with the listen error, as on one thread, and what started stops', {
    timeout: 60_000,
  }, async () => {
    const { takenPort } = await import('./helpers/net.js');
    const taken = await takenPort();
    try {
      const dir = await clusterDir({ 'msg_server.19001.json': { port: taken.port } });
      const config = await loadCluster(dir, { createSecret: true });
      const errors: string[] = [];
      for (const threads of [1, 3]) {
        const err = await startEmbedded(config, { threads, log: () => {} }).then(
          () => undefined,
          (e: Error) => e,
        );
        assert.ok(err instanceof Error, `threads ${threads}: rejects`);
        errors.push(err.message);
        assert.equal(existsSync(join(dir, '.fishchat', 'run.json')), false);
      }
      assert.equal(errors[1], errors[0], 'the same error on worker threads');
      // everything stopped: the file opens again (one writer) and the first msg_server's port is free
      const cluster = await startEmbedded(
        { ...config, msgServers: config.msgServers.slice(0, 1) },
        { threads: 3, log: () => {} },
      );
      await cluster.stop();
    } finally {
      await taken.close();
    }
  });

  test('`fishchat up --embedded --threads 3`: ready lines, run.json, status; kill -9 loses nothing acknowledged', {
    skip:
      existsSync(BIN) && existsSync(join(BIN, '..', '..', 'dist', 'runtime', 'cluster', 'embedded-thread.js'))
        ? false
        : 'needs dist/ (npm run build)',
    timeout: 90_000,
  }, async () => {
    const dir = await clusterDir();
    const up = new UpProcess([dir, '--embedded', '--threads', '3']);
    let restarted: UpProcess | undefined;
    try {
      await up.waitReady();
      assert.match(up.output, /^ready {2}msg_server {2}ms-19000 /m);
      assert.match(up.output, /^ready {2}msg_server {2}ms-19001 /m);
      assert.match(up.output, /^cluster ready in \d+ ms: clients connect to the gateway at /m);
      const config = await loadCluster(dir);
      const run = JSON.parse(await readFile(join(dir, '.fishchat', 'run.json'), 'utf8')) as {
        pid: number;
        roles: { role: string; id: string; addresses: { tcp?: string } }[];
      };
      assert.equal(run.pid, up.pid);
      assert.deepEqual(
        run.roles.map((r) => r.role),
        ['monitor', 'router', 'manager', 'msg_server', 'msg_server', 'gateway'],
      );
      const status = await fishchat(['status', '--dir', dir, '--json']);
      assert.equal(status.code, 0, status.stderr);
      for (const id of ['gateway', 'manager', 'monitor', 'router', 'ms-19000', 'ms-19001'])
        assert.ok(status.stdout.includes(`"${id}"`), `status lists ${id}: ${status.stdout}`);

      const [a, b] = run.roles.filter((r) => r.role === 'msg_server').map((r) => r.addresses.tcp!);
      const sender = await login(a!, config.secret, 'dave', false);
      const N = 300;
      // many in flight at once: the appends of a turn cross as one batch
      const oks = await Promise.all(
        Array.from({ length: N }, (_, i) => send(sender.conn, i % 2 === 0 ? 'erin' : 'frank', { i })),
      );
      for (const ok of oks) assert.equal(ok.op, 'ok', JSON.stringify(ok));
      await up.kill9();
      sender.conn.close();
      void b;

      // again on the default threads (2 on Node): it reads what the threaded one committed
      restarted = new UpProcess([dir, '--embedded']);
      await restarted.waitReady();
      const run2 = JSON.parse(await readFile(join(dir, '.fishchat', 'run.json'), 'utf8')) as {
        roles: { role: string; addresses: { tcp?: string } }[];
      };
      const ms = run2.roles.find((r) => r.role === 'msg_server')!.addresses.tcp!;
      for (const [user, n] of [
        ['erin', N / 2],
        ['frank', N / 2],
      ] as const) {
        const c = await login(ms, config.secret, user, false);
        const all = await syncAll(c.conn);
        assert.equal(all.length, n, `${user}: every acknowledged message after kill -9`);
        const mids = new Set(oks.filter((_, i) => (i % 2 === 0) === (user === 'erin')).map((o) => o.mid));
        for (const m of all) assert.ok(mids.has(m.mid as string), `${user}: ${m.mid} was acknowledged`);
        c.conn.close();
      }
      // SIGTERM: the clean stop (gateway, msg_servers with their thread, manager, router, monitor), exit 0
      await restarted.stop();
      assert.match(restarted.output, /^stopping \(SIGTERM\) …$/m);
      assert.match(restarted.output, /^stopped$/m);
      assert.deepEqual(await restarted.exited, { code: 0, signal: null });
      assert.equal(existsSync(join(dir, '.fishchat', 'run.json')), false, 'run.json removed at stop');
    } finally {
      await up.kill9().catch(() => {});
      await restarted?.kill9().catch(() => {});
    }
  });
});
