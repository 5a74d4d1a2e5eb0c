/**
 * FishChat on separate hosts (network namespaces, test/helpers/netns.ts), run
 * the way an operator runs it: one cluster directory, `fishchat serve ROLE`
 * per role, each binding its own host's address.
 *
 *   host a  198.18.N.1  redis-server (appendonly yes), gateway, router, manager, monitor
 *   host b  198.18.N.2  msg_server ms-b (binds and advertises its address)
 *   host c  198.18.N.3  msg_server ms-c
 *   host d  198.18.N.4  the clients (test/helpers/netns-agent.ts), which reach
 *                       the msg_servers only through what the gateway hands out
 *   host e  198.18.N.5  msg_server ms-e, added while clients send (binds 0.0.0.0, advertises its address)
 *
 * The test process itself sits in the root namespace on the bridge
 * (198.18.N.254): it reads the gateway's GET /v1/route and the manager's
 * /v1/sessions as an operator would, and cuts hosts off the bridge.
 *
 * In order: p2p and topics across b and c over TCP and WebSocket;
 * `fishchat status` on a; a msg_server added during load; a drain (SIGTERM)
 * during load; a host cut during load and brought back; new logins after it.
 * The load tests' clients are the library's FishChatClient, every other one
 * over WebSocket (routing with GET /v1/route), the rest over TCP. Every load
 * checks that each acknowledged message reached its recipient exactly once
 * and in order. Timings are printed as one JSON line
 * (`multihost timings: …`).
 *
 * Needs root, `ip`, redis-server on PATH and the compiled dist/; otherwise
 * skipped with the reason. Skipped under Bun: every role and client is a
 * Node child process either way, and the suite takes a minute.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { signToken } from '../runtime/protocol/token.js';
import { BIN, CLEAN_ENV, NODE, ROOT } from './helpers/cli.js';
import { Lab, unavailable, type HostProcess } from './helpers/netns.js';
import { HostCluster, PORTS } from './helpers/netns-cluster.js';
import { available as haveRedisServer } from './helpers/redis-server.js';
import { sleep } from './helpers/wait.js';

const UNDER_BUN = (process.versions as { bun?: string }).bun !== undefined;
const SKIP: string | false = UNDER_BUN
  ? 'the multi-host suite runs on Node only (`node --import tsx --test test/multihost.test.ts`): its roles and clients are Node processes either way'
  : (unavailable() ??
    (!haveRedisServer()
      ? 'redis-server is not on PATH'
      : !existsSync(join(ROOT, 'dist', 'cli', 'commands', 'serve.js'))
        ? 'no dist/ (run `npm run build`)'
        : false));
if (SKIP) console.warn(`test/multihost.test.ts: skipped: ${SKIP}`);

/** Short beats so the suite is quick: a lease lasts 3 beats (1.5 s); clients ping every heartbeat. */
const BEAT = 500;
const HEARTBEAT = 1000;
const BACKOFF = { base: 1000, max: 4000 };
/** The client library's request (and so ping) timeout in the agent. */
const CLIENT_TIMEOUT = 1500;

type Ev = { ev: string; t: number; [k: string]: unknown };

/** The client host's agent: one command per line, one JSON event per line. */
class Agent {
  readonly events: Ev[] = [];
  private nextId = 1;
  constructor(readonly proc: HostProcess) {
    proc.onLine((l) => {
      try {
        this.events.push(JSON.parse(l) as Ev);
      } catch {
        // not an event
      }
    });
  }

  async wait(pred: (e: Ev) => boolean, timeoutMs: number, what: string, from = 0): Promise<Ev> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const e = this.events.slice(from).find(pred);
      if (e) return e;
      if (this.proc.done) throw new Error(`the agent exited waiting for ${what}:\n${this.proc.output}`);
      if (Date.now() > end) throw new Error(`no ${what} from the agent within ${timeoutMs} ms:\n${this.proc.stderr}`);
      await sleep(10);
    }
  }

  /** Sends a command and waits for its done (throws on fail); returns the events it produced. */
  async cmd(c: Record<string, unknown>, timeoutMs = 20_000): Promise<Ev[]> {
    const id = this.nextId++;
    const from = this.events.length;
    this.proc.write(JSON.stringify({ ...c, id }));
    const end = await this.wait(
      (e) => (e.ev === 'done' || e.ev === 'fail') && e.id === id,
      timeoutMs,
      `${c.cmd} #${id}`,
      from,
    );
    if (end.ev === 'fail') throw new Error(`agent ${c.cmd}: ${String(end.error)}`);
    return this.events.slice(from);
  }

  async report(): Promise<{
    got: Record<string, [string, string, number, number, string | null][]>;
    where: Record<string, string>;
  }> {
    const evs = await this.cmd({ cmd: 'report' });
    return evs.find((e) => e.ev === 'report') as never;
  }

  /** Logs `users` in; returns user → server. */
  async login(users: string[], opts: Record<string, unknown> = {}): Promise<Map<string, string>> {
    const evs = await this.cmd(
      { cmd: 'login', users, kind: 'client', transport: 'alternate', requestTimeoutMs: CLIENT_TIMEOUT, ...opts },
      60_000,
    );
    return new Map(evs.filter((e) => e.ev === 'login').map((e) => [String(e.user), String(e.server)]));
  }
}

/**
 * After a load stopped: every acknowledged message of every pair reached its
 * recipient exactly once and in order (polled until they all arrived, bounded).
 */
async function checkDelivered(agent: Agent, tag: string, acked: Record<string, number>, timeoutMs = 15_000) {
  const end = Date.now() + timeoutMs;
  let problems: string[] = [];
  for (;;) {
    const { got } = await agent.report();
    problems = [];
    for (const [pair, n] of Object.entries(acked)) {
      const [from, to] = pair.split('>') as [string, string];
      const seen = (got[to] ?? [])
        .filter(([f, t, , , topic]) => f === from && t === tag && topic === null)
        .map((g) => g[2]);
      const want = Array.from({ length: n }, (_, i) => i);
      if (JSON.stringify(seen) !== JSON.stringify(want)) {
        const dup = seen.length - new Set(seen).size;
        problems.push(
          `${pair}: ${n} acked, got ${seen.length} (${dup} twice), first differences at ${seen.findIndex((v, i) => v !== i)}`,
        );
      }
    }
    if (problems.length === 0 || Date.now() > end) break;
    await sleep(200);
  }
  assert.deepEqual(problems, [], `tag ${tag}: acknowledged messages not delivered exactly once in order`);
}

function pct(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

describe('multi-host: roles on separate hosts (network namespaces)', { skip: SKIP, concurrency: false }, () => {
  let lab: Lab;
  let cl: HostCluster;
  let agent: Agent;
  const timings: Record<string, unknown> = {};
  let A: string;

  const adminToken = () => signToken(cl.secret, 'multihost-test', { admin: true, ttlSeconds: 600 });
  const route = () => cl.route();
  const waitRoute = (pred: (ids: string[]) => boolean, ms: number, what: string) => cl.waitRoute(pred, ms, what);
  /** The directory (every session's user, device, server, gen), from the manager's admin API. */
  const directory = async (): Promise<{ user: string; device: string; server: string; gen: number }[]> => {
    const out: { user: string; device: string; server: string; gen: number }[] = [];
    let after = '';
    for (let page = 0; page < 20; page++) {
      const r = await fetch(`http://${A}:${PORTS.manager}/v1/sessions?limit=1000${after ? `&after=${after}` : ''}`, {
        headers: { authorization: `Bearer ${adminToken()}` },
        signal: AbortSignal.timeout(2000),
      });
      assert.equal(r.status, 200, await r.clone().text());
      const body = (await r.json()) as { sessions: typeof out; next: string | null };
      out.push(...body.sessions);
      if (!body.next) break;
      after = encodeURIComponent(body.next);
    }
    return out;
  };

  before(async () => {
    lab = Lab.create(['a', 'b', 'c', 'd']);
    A = lab.addr('a');
    cl = await HostCluster.start(lab, {
      msgServers: ['b', 'c'],
      laterServers: ['e'],
      settings: { beat: BEAT, heartbeat: HEARTBEAT, backoff: BACKOFF },
    });
    timings.startMs = cl.startMs;
    agent = new Agent(
      lab.spawn('d', NODE, ['--import', 'tsx', join(ROOT, 'test', 'helpers', 'netns-agent.ts')], {
        cwd: ROOT,
        stdin: true,
        env: { GATEWAY: cl.gateway, GATEWAY_HTTP: cl.gatewayHttp, SECRET: cl.secret },
      }),
    );
    await agent.wait((e) => e.ev === 'ready', 30_000, 'ready');
  });

  after(async () => {
    console.log(`multihost timings: ${JSON.stringify(timings)}`);
    for (const [name, p] of cl?.roles ?? [])
      if (p.stderr.trim()) console.log(`${name} stderr:\n${p.stderr.slice(-2000)}`);
    await cl?.stop();
    await lab?.destroy();
  });

  test('the gateway hands out each msg_server at its own host address, TCP and WebSocket', async () => {
    const servers = await route();
    const by = new Map(servers.map((s) => [s.id, s]));
    for (const h of ['b', 'c']) {
      assert.equal(by.get(`ms-${h}`)?.addr, `${lab.addr(h)}:${PORTS.ms}`, JSON.stringify(servers));
      assert.equal(by.get(`ms-${h}`)?.ws, `ws://${lab.addr(h)}:${PORTS.msHttp}/v1/ws`, JSON.stringify(servers));
    }
  });

  for (const transport of ['tcp', 'ws'] as const) {
    test(`p2p and a topic across hosts b and c over ${transport === 'tcp' ? 'TCP' : 'WebSocket'}`, async () => {
      const [ub, uc, uc2] = [`${transport}-b`, `${transport}-c`, `${transport}-c2`];
      await agent.cmd({ cmd: 'login', users: [ub], kind: 'raw', transport, pick: 'ms-b' });
      await agent.cmd({ cmd: 'login', users: [uc, uc2], kind: 'raw', transport, pick: 'ms-c' });
      const { where } = await agent.report();
      assert.equal(where[ub], 'ms-b');
      assert.equal(where[uc], 'ms-c');
      const tag = `p2p-${transport}`;
      await Promise.all([
        agent.cmd({ cmd: 'send', from: ub, to: uc, n: 20, tag }),
        agent.cmd({ cmd: 'send', from: uc, to: ub, n: 20, tag }),
      ]);
      await checkDelivered(agent, tag, { [`${ub}>${uc}`]: 20, [`${uc}>${ub}`]: 20 });

      const topic = `room-${transport}`;
      const ttag = `topic-${transport}`;
      await agent.cmd({ cmd: 'topic', user: ub, op: 'create', topic });
      await agent.cmd({ cmd: 'topic', user: uc, op: 'join', topic });
      await agent.cmd({ cmd: 'topic', user: uc2, op: 'join', topic });
      await agent.cmd({ cmd: 'topic', user: ub, op: 'send', topic, n: 10, tag: ttag });
      await agent.cmd({ cmd: 'topic', user: uc, op: 'send', topic, n: 10, tag: ttag });
      const end = Date.now() + 10_000;
      let problems: string[];
      for (;;) {
        const { got } = await agent.report();
        problems = [];
        for (const member of [ub, uc, uc2]) {
          for (const from of [ub, uc]) {
            const seen = (got[member] ?? [])
              .filter((g) => g[4] === topic && g[0] === from && g[1] === ttag)
              .map((g) => g[2]);
            if (JSON.stringify(seen) !== JSON.stringify([...Array(10).keys()]))
              problems.push(`${member} got from ${from}: ${JSON.stringify(seen)}`);
          }
        }
        if (problems.length === 0 || Date.now() > end) break;
        await sleep(100);
      }
      assert.deepEqual(problems, [], 'every member (the senders included) gets each topic message once, in order');
    });
  }

  test('`fishchat status` on host a lists every role at its host address', async () => {
    const p = lab.spawn('a', NODE, [BIN, 'status', '--dir', cl.dir], { env: CLEAN_ENV, cwd: ROOT });
    const { code } = await Promise.race([
      p.exited,
      sleep(30_000).then(() => {
        p.kill('SIGKILL');
        return { code: -1 };
      }),
    ]);
    assert.equal(code, 0, p.output);
    const rows = new Map(
      p.stdout
        .trim()
        .split('\n')
        .slice(1)
        .map((l) => l.split(/\s+/))
        .map((c) => [c[1]!, { role: c[0], addr: c[2], state: c[3] }]),
    );
    const want: Record<string, [string, string]> = {
      gateway: ['gateway', `${A}:${PORTS.gw}`],
      router: ['router', `${A}:${PORTS.router}`],
      manager: ['manager', `${A}:${PORTS.manager}`],
      monitor: ['monitor', `${A}:${PORTS.monitor}`],
      'ms-b': ['msg_server', `${lab.addr('b')}:${PORTS.ms}`],
      'ms-c': ['msg_server', `${lab.addr('c')}:${PORTS.ms}`],
    };
    for (const [id, [role, addr]] of Object.entries(want))
      assert.deepEqual(rows.get(id), { role, addr, state: 'up' }, `${id} in:\n${p.stdout}`);
    assert.equal(rows.size, Object.keys(want).length, p.stdout);
  });

  // Users u0..u19 (the library's client, every other one over WebSocket: reconnects through the gateway) for the load tests.
  const USERS = Array.from({ length: 20 }, (_, i) => `u${i}`);
  /** Pairs each user with the one half the list away: across msg_servers about half the time. */
  const pairsOf = (users: string[]) =>
    users.map((u, i) => [u, users[(i + Math.floor(users.length / 2)) % users.length]!]);

  test('a msg_server added on a new host while clients send: listed within a beat, new logins land there, nothing lost', async () => {
    const placed = await agent.login(USERS, { spacingMs: 60 });
    const onB = [...placed.values()].filter((s) => s === 'ms-b').length;
    assert.ok(
      onB > 0 && onB < USERS.length,
      `logins spread over b and c as the beats tell the load: ${JSON.stringify([...placed])}`,
    );
    await agent.cmd({ cmd: 'load', pairs: pairsOf(USERS), tag: 'scale', intervalMs: 20 });
    await sleep(1000);

    const tSpawn = Date.now();
    const e = cl.addMsgServer('e');
    await e.waitFor(/^ready /m, 30_000);
    const tReady = Date.now();
    await waitRoute((ids) => ids.includes('ms-e'), BEAT + 1000, 'ms-e');
    const tListed = Date.now();
    const fresh = Array.from({ length: 10 }, (_, i) => `e${i}`);
    const onE = await agent.login(fresh);
    const first = agent.events.find((ev) => ev.ev === 'login' && ev.server === 'ms-e');
    timings.newServer = {
      spawnToReadyMs: tReady - tSpawn,
      readyToListedMs: tListed - tReady,
      readyToFirstLoginMs: first ? first.t - tReady : null,
    };
    assert.ok(tListed - tReady <= BEAT, `listed ${tListed - tReady} ms after its ready line (a beat is ${BEAT} ms)`);
    assert.deepEqual(
      [...new Set(onE.values())],
      ['ms-e'],
      `new logins prefer the empty msg_server: ${JSON.stringify([...onE])}`,
    );
    const servers = (await route()).find((s) => s.id === 'ms-e');
    assert.equal(servers?.addr, `${lab.addr('e')}:${PORTS.ms}`, 'ms-e binds 0.0.0.0 and advertises its address');
    assert.equal(servers?.ws, `ws://${lab.addr('e')}:${PORTS.msHttp}/v1/ws`);

    await sleep(1000);
    const loaded = (await agent.cmd({ cmd: 'stop' }, 60_000)).find((ev) => ev.ev === 'loaded')!;
    const acked = loaded.acked as Record<string, number>;
    assert.ok(
      Object.values(acked).every((n) => n > 10),
      JSON.stringify(acked),
    );
    await checkDelivered(agent, 'scale', acked);
  });

  test('SIGTERM drains a msg_server: its clients move with the draining jitter, nothing lost', async () => {
    const all = [...USERS, ...Array.from({ length: 10 }, (_, i) => `e${i}`)];
    const { where } = await agent.report();
    const onE = all.filter((u) => where[u] === 'ms-e');
    assert.ok(onE.length >= 5, JSON.stringify(where));
    await agent.cmd({ cmd: 'load', pairs: pairsOf(all), tag: 'drain', intervalMs: 20 });
    await sleep(500);
    const from = agent.events.length;
    const tTerm = Date.now();
    const e = cl.roles.get('ms-e')!;
    e.kill('SIGTERM');
    const moved = await Promise.all(
      onE.map((u) => agent.wait((ev) => ev.ev === 'reconnect' && ev.user === u, 15_000, `${u} reconnected`, from)),
    );
    const exit = await Promise.race([e.exited, sleep(20_000).then(() => ({ code: 'timeout' }))]);
    assert.equal(exit.code, 0, e.output);
    const kicks = agent.events.slice(from).filter((ev) => ev.ev === 'kick' && ev.reason === 'draining');
    assert.equal(kicks.length, onE.length, 'each client of ms-e was kicked "draining"');
    const at = moved.map((ev) => ev.t - tTerm).sort((a, b) => a - b);
    const spread = at.at(-1)! - at[0]!;
    timings.drain = {
      clients: at.length,
      firstMs: at[0],
      lastMs: at.at(-1),
      spreadMs: spread,
      backoffBase: BACKOFF.base,
    };
    for (const ev of moved) assert.notEqual(ev.server, 'ms-e');
    // Uniform in [0, base]: ten of them spread well over a fifth of it unless the jitter is missing.
    assert.ok(
      spread >= BACKOFF.base / 5,
      `reconnects spread over ${spread} ms, expected the draining jitter of up to ${BACKOFF.base} ms`,
    );
    assert.ok(at.at(-1)! <= BACKOFF.base + 3000, `the last reconnect took ${at.at(-1)} ms`);
    await sleep(500);
    const loaded = (await agent.cmd({ cmd: 'stop' }, 60_000)).find((ev) => ev.ev === 'loaded')!;
    await checkDelivered(agent, 'drain', loaded.acked as Record<string, number>);
  });

  test('a msg_server host cut off during load: its sessions leave the directory, its clients move and lose nothing; back, it touches none of them', async () => {
    const all = [...USERS, ...Array.from({ length: 10 }, (_, i) => `e${i}`)];
    const before0 = await agent.report();
    const onB = all.filter((u) => before0.where[u] === 'ms-b');
    assert.ok(onB.length >= 3, `clients on ms-b: ${JSON.stringify(before0.where)}`);
    // Every other user (odd number) is a WebSocket client: both kinds must move.
    const overWs = (u: string) => Number(u.slice(1)) % 2 === 1;
    assert.ok(onB.some(overWs) && onB.some((u) => !overWs(u)), `TCP and WebSocket clients on ms-b: ${onB.join(', ')}`);
    await agent.cmd({ cmd: 'load', pairs: pairsOf(all), tag: 'cut', intervalMs: 20 });
    await sleep(1000);

    const from = agent.events.length;
    const tCut = Date.now();
    lab.cut('b');
    // Within 2.5 heartbeats no directory entry names ms-b (the lease expired, or the client logged in elsewhere).
    let tDirClean = 0;
    const end = Date.now() + 10_000;
    while (Date.now() < end) {
      const dirNow = await directory();
      if (!dirNow.some((s) => s.server === 'ms-b')) {
        tDirClean = Date.now();
        break;
      }
      await sleep(20);
    }
    const moved = await Promise.all(
      onB.map((u) => agent.wait((ev) => ev.ev === 'reconnect' && ev.user === u, 20_000, `${u} reconnected`, from)),
    );
    const at = moved.map((ev) => ev.t - tCut);
    timings.cut = {
      clients: at.length,
      directoryCleanMs: tDirClean ? tDirClean - tCut : null,
      reloginP50Ms: pct(at, 50),
      reloginMaxMs: Math.max(...at),
      heartbeat: HEARTBEAT,
    };
    assert.ok(tDirClean > 0, 'directory entries of ms-b never left');
    assert.ok(
      tDirClean - tCut <= 2.5 * HEARTBEAT,
      `ms-b's entries left the directory ${tDirClean - tCut} ms after the cut`,
    );
    for (const ev of moved) assert.notEqual(ev.server, 'ms-b');
    await sleep(1000);
    const loaded = (await agent.cmd({ cmd: 'stop' }, 60_000)).find((ev) => ev.ev === 'loaded')!;
    await checkDelivered(agent, 'cut', loaded.acked as Record<string, number>);
    timings.cut = { ...(timings.cut as object), sendsRetried: loaded.retried };

    // Back on the network: ms-b beats again and is handed out; every session that moved stays where it is.
    const placedBefore = await directory();
    const fromBack = agent.events.length;
    lab.restore('b');
    const tBack = Date.now();
    await waitRoute((ids) => ids.includes('ms-b'), 10_000, 'ms-b back');
    timings.rejoinListedMs = Date.now() - tBack;
    await sleep(4 * BEAT); // its lease renewal and sweep have run
    const placedAfter = await directory();
    const key = (s: { user: string; device: string; server: string; gen: number }) =>
      `${s.user}/${s.device} ${s.server} ${s.gen}`;
    assert.deepEqual(
      placedAfter.map(key).sort(),
      placedBefore.map(key).sort(),
      'the directory is as the moved clients left it',
    );
    assert.ok(!placedAfter.some((s) => s.server === 'ms-b'));
    // (The raw sessions of the first tests, which never reconnect, were still on ms-b: those it may close.)
    const disturbed = agent.events
      .slice(fromBack)
      .filter((ev) => (ev.ev === 'disconnect' || ev.ev === 'kick') && all.includes(String(ev.user)));
    assert.deepEqual(disturbed, [], 'no client that moved was disturbed by ms-b coming back');
    assert.equal(cl.roles.get('ms-b')!.done, false, 'ms-b kept running through the cut');

    // Rebalance: ms-b is now the least loaded, so new logins go there.
    const fresh = Array.from({ length: 5 }, (_, i) => `n${i}`);
    const placed = await agent.login(fresh);
    assert.deepEqual(
      [...new Set(placed.values())],
      ['ms-b'],
      `new logins after the failover: ${JSON.stringify([...placed])}`,
    );
  });
});
