/**
 * FishChat over separate hosts (network namespaces, test/helpers/netns.ts),
 * measured: p2p cross-server throughput with 2 and then 3 msg_servers, the
 * time a new msg_server takes to get its first login, and the time from
 * cutting a msg_server's host off the network to all its clients logged in
 * elsewhere. Needs root, `ip`, redis-server and dist/ (`npm run build`).
 *
 *   node --import tsx bench/multihost.ts [--pairs 200] [--duration 10] [--inflight 4] [--clients 90] [--cuts 3]
 *                                       [--appendfsync everysec|always]
 *
 * Layout: host a runs redis-server and gateway, router, manager, monitor;
 * b, c (and later e) one msg_server each; d the load: `fishchat bench
 * --gateway --cross` for throughput (each receiver on another msg_server than
 * its sender), test/helpers/netns-agent.ts (the client library) for the cut.
 * Prints one JSON object at the end.
 */
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BIN, CLEAN_ENV, NODE, ROOT } from '../test/helpers/cli.js';
import { Lab, unavailable, type HostProcess } from '../test/helpers/netns.js';
import { HostCluster } from '../test/helpers/netns-cluster.js';

const { values: flags } = parseArgs({
  options: {
    pairs: { type: 'string', default: '200' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    inflight: { type: 'string', default: '4' },
    clients: { type: 'string', default: '90' },
    cuts: { type: 'string', default: '3' },
    appendfsync: { type: 'string', default: 'everysec' },
  },
});
const BEAT = 1000;
const HEARTBEAT = 2000;
const log = (m: string) => process.stderr.write(`${m}\n`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function cpuTicks(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return Number(rest[11]) + Number(rest[12]); // utime + stime
  } catch {
    return 0;
  }
}

async function runBench(cl: HostCluster, lab: Lab): Promise<Record<string, unknown>> {
  const procs = [...cl.roles].filter(([, p]) => !p.done);
  const before = procs.map(([, p]) => cpuTicks(p.pid));
  const t0 = Date.now();
  const args = [
    ...[BIN, 'bench', '--gateway', cl.gateway, '--dir', cl.dir, '--pairs', flags.pairs!, '--cross'],
    ...['--duration', flags.duration!, '--warmup', flags.warmup!, '--inflight', flags.inflight!, '--json'],
  ];
  const p = lab.spawn('d', NODE, args, { env: CLEAN_ENV, cwd: ROOT });
  const limit = (Number(flags.duration) + Number(flags.warmup)) * 1000 + 120_000;
  const exit = await Promise.race([p.exited, sleep(limit).then(() => ({ code: 'timeout' }))]);
  if (exit.code !== 0) throw new Error(`fishchat bench failed (${exit.code}):\n${p.output}`);
  const secs = (Date.now() - t0) / 1000;
  const r = JSON.parse(p.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
  const hz = 100; // USER_HZ
  const cpuPct = Object.fromEntries(
    procs.map(([name, q], i) => [name, Math.round(((cpuTicks(q.pid) - before[i]!) / hz / secs) * 100)]),
  );
  return {
    msgServers: (await cl.route()).map((s) => s.id),
    msgsPerSec: r.msgsPerSec,
    latencyMs: r.latencyMs,
    sent: r.sent,
    delivered: r.delivered,
    errors: r.errors,
    client: r.client,
    cpuPctWholeRun: cpuPct,
  };
}

type Ev = { ev: string; t: number; [k: string]: unknown };

function agentOf(lab: Lab, cl: HostCluster): { proc: HostProcess; events: Ev[]; cmd: (c: object) => Promise<Ev[]> } {
  const proc = lab.spawn('d', NODE, ['--import', 'tsx', join(ROOT, 'test', 'helpers', 'netns-agent.ts')], {
    cwd: ROOT,
    stdin: true,
    env: { GATEWAY: cl.gateway, GATEWAY_HTTP: cl.gatewayHttp, SECRET: cl.secret },
  });
  const events: Ev[] = [];
  proc.onLine((l) => {
    try {
      events.push(JSON.parse(l) as Ev);
    } catch {
      // not an event
    }
  });
  let id = 0;
  const cmd = async (c: object): Promise<Ev[]> => {
    const my = ++id;
    const from = events.length;
    proc.write(JSON.stringify({ ...c, id: my }));
    const end = Date.now() + 120_000;
    for (;;) {
      const e = events.slice(from).find((x) => (x.ev === 'done' || x.ev === 'fail') && x.id === my);
      if (e?.ev === 'fail') throw new Error(String(e.error));
      if (e) return events.slice(from);
      if (proc.done || Date.now() > end) throw new Error(`agent: no answer to ${JSON.stringify(c)}:\n${proc.output}`);
      await sleep(10);
    }
  };
  return { proc, events, cmd };
}

function pct(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

async function main(): Promise<void> {
  const why = unavailable();
  if (why) {
    log(`bench/multihost: cannot run: ${why}`);
    process.exit(2);
  }
  const out: Record<string, unknown> = {
    machine: {
      cpus: cpus().length,
      model: cpus()[0]?.model.trim(),
      loadavgAtStart: loadavg().map((x) => x.toFixed(2)),
    },
    flags,
    settings: { beat: BEAT, heartbeat: HEARTBEAT },
  };
  const lab = Lab.create(['a', 'b', 'c', 'd']);
  let cl: HostCluster | undefined;
  const stop = async () => {
    await cl?.stop();
    await lab.destroy();
  };
  process.once('SIGINT', () => void stop().then(() => process.exit(130)));
  try {
    cl = await HostCluster.start(lab, {
      msgServers: ['b', 'c'],
      laterServers: ['e'],
      redisArgs: ['--appendfsync', flags.appendfsync!],
      settings: {
        beat: BEAT,
        heartbeat: HEARTBEAT,
        backoff: { base: 1000, max: 5000 },
        sendRate: { rate: 1_000_000, burst: 2_000_000 },
      },
    });
    log(`cluster up in ${cl.startMs} ms`);

    log('throughput, 2 msg_servers …');
    const two = await runBench(cl, lab);
    log(JSON.stringify(two));

    // A third msg_server: the time to its first login, then the throughput again.
    // Clients stay logged in from here on (spread by the gateway's least-loaded order), as on a
    // cluster in use: a new msg_server, the least loaded, should get the next login.
    const agent = agentOf(lab, cl);
    const users = Array.from({ length: Number(flags.clients) }, (_, i) => `cut${i}`);
    await agent.cmd({ cmd: 'login', users, kind: 'client', requestTimeoutMs: 2000, spacingMs: 30 });
    const tSpawn = Date.now();
    const e = cl.addMsgServer('e');
    await e.waitFor(/^ready /m, 60_000);
    const tReady = Date.now();
    await cl.waitRoute((ids) => ids.includes('ms-e'), 5000, 'ms-e');
    const tListed = Date.now();
    // Logins one after the other (every 20 ms) once it is listed: the first that lands on ms-e.
    let n = 0;
    let firstOnE: number | undefined;
    const tryUntil = Date.now() + 10_000;
    while (firstOnE === undefined && Date.now() < tryUntil) {
      const evs = await agent.cmd({ cmd: 'login', users: [`probe${n++}`], kind: 'client' });
      const l = evs.find((x) => x.ev === 'login');
      if (l?.server === 'ms-e') firstOnE = l.t;
      await sleep(20);
    }
    out.newServer = {
      spawnToReadyMs: tReady - tSpawn,
      readyToListedMs: tListed - tReady,
      readyToFirstLoginMs: firstOnE === undefined ? null : firstOnE - tReady,
      loginsTried: n,
    };
    log(JSON.stringify(out.newServer));
    log('throughput, 3 msg_servers …');
    const three = await runBench(cl, lab);
    log(JSON.stringify(three));
    out.throughput = { two, three };

    // Host cuts: cut the host holding most of the clients, time each of its clients' next login
    // elsewhere; bring it back; again.
    const cuts: Record<string, unknown>[] = [];
    for (let k = 0; k < Number(flags.cuts); k++) {
      const where = (
        (await agent.cmd({ cmd: 'report' })).find((x) => x.ev === 'report') as unknown as {
          where: Record<string, string>;
        }
      ).where;
      const count = new Map<string, string[]>();
      for (const u of users) count.set(where[u]!, [...(count.get(where[u]!) ?? []), u]);
      const [victim, onIt] = [...count].sort((a, b) => b[1].length - a[1].length)[0]!;
      const host = victim.replace(/^ms-/, '');
      const from = agent.events.length;
      const tCut = Date.now();
      lab.cut(host);
      const end = Date.now() + 60_000;
      const at = new Map<string, number>();
      while (at.size < onIt.length && Date.now() < end) {
        for (const ev of agent.events.slice(from))
          if (ev.ev === 'reconnect' && onIt.includes(String(ev.user)) && !at.has(String(ev.user)))
            at.set(String(ev.user), ev.t - tCut);
        await sleep(20);
      }
      const ms = [...at.values()];
      const cut = {
        host: victim,
        clients: onIt.length,
        movedIn60s: ms.length,
        p50Ms: pct(ms, 50),
        p90Ms: pct(ms, 90),
        maxMs: Math.max(...ms),
      };
      cuts.push(cut);
      log(`cut ${JSON.stringify(cut)}`);
      lab.restore(host);
      await cl.waitRoute((ids) => ids.includes(victim), 20_000, `${victim} back`);
      await sleep(3 * BEAT);
    }
    out.cuts = cuts;
    console.log(JSON.stringify(out, null, 2));
  } finally {
    await stop();
  }
}

await main();
// A keep-alive fetch socket to a removed namespace may linger: the run is over.
process.exit(0);
