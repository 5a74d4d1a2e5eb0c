/**
 * Baseline p2p throughput, before the hot-path work
 * (`fishchat bench`).
 *
 *   node --import tsx bench/p2p-baseline.ts [pairs=100] [seconds=5] [inflight=8] [cross=1]
 *   FISHCHAT_BENCH_REDIS=redis://127.0.0.1:6379 node --import tsx bench/p2p-baseline.ts ...
 *
 * Starts `fishchat up` (embedded, or on the given Redis with one process per
 * role; ports from the OS, a cluster name of its own) as a child process, then
 * runs `pairs` sender/receiver pairs from this process with the client
 * library: each sender keeps `inflight` sends outstanding; a send counts when
 * its receiver got it. Prints delivered msgs/s and end-to-end latency
 * percentiles (exact, from every sample).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FishClient } from '../runtime/client/index.js';
import { signToken } from '../runtime/protocol/token.js';
import { deleteKeysWithPrefix } from '../runtime/redis/index.js';
import { initCluster } from '../test/helpers/cli.js';

const [pairs = 100, seconds = 5, inflight = 8, cross = 1] = process.argv.slice(2).map(Number);
const dir = mkdtempSync(join(tmpdir(), 'fishchat-bench-'));
const bin = join(import.meta.dirname, '..', 'bin', 'run.js');

await initCluster(dir, ['--force']); // every port from the OS
{
  const f = join(dir, 'fishchat.json');
  const j = JSON.parse(readFileSync(f, 'utf8'));
  j.cluster = `bench${process.pid}`;
  // The benchmark measures the server, not the per-connection send limit.
  j.settings = { ...(j.settings ?? {}), sendRate: { rate: 1_000_000, burst: 1_000_000 } };
  writeFileSync(f, JSON.stringify(j));
}
const up = spawn(
  process.execPath,
  [
    ...(process.env.FISHCHAT_BENCH_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.FISHCHAT_BENCH_PROF] : []),
    bin,
    'up',
    dir,
    ...(process.env.FISHCHAT_BENCH_REDIS ? ['--redis', process.env.FISHCHAT_BENCH_REDIS] : ['--embedded']),
  ],
  { stdio: ['ignore', 'pipe', 'inherit'] },
);
let out = '';
await new Promise<void>((resolve, reject) => {
  const t = setTimeout(() => reject(new Error('up not ready in 20 s')), 20_000);
  up.stdout!.on('data', (d) => {
    out += d;
    if (/cluster ready/.test(out)) {
      clearTimeout(t);
      resolve();
    }
  });
});
const run = JSON.parse(readFileSync(join(dir, '.fishchat', 'run.json'), 'utf8'));
const secret = readFileSync(join(dir, '.fishchat', 'secret'), 'utf8').trim();
const servers: string[] = run.roles
  .filter((r: { role: string }) => r.role === 'msg_server')
  .map((r: { addresses: { tcp: string } }) => r.addresses.tcp);

const latencies: number[] = [];
let delivered = 0;
let measuring = false;
const body = 'x'.repeat(100);
const clients: FishClient[] = [];
const stopAt = { t: 0 };

async function pair(i: number): Promise<void> {
  const s = servers[i % servers.length]!;
  const r = servers[(i + (cross ? 1 : 0)) % servers.length]!;
  const sender = await FishClient.connect({ server: s, user: `s${i}`, token: signToken(secret, `s${i}`), push: false });
  const receiver = await FishClient.connect({
    server: r,
    user: `r${i}`,
    token: signToken(secret, `r${i}`),
    autoAck: true,
  });
  clients.push(sender, receiver);
  // Fresh users: the k-th send to r<i> gets seq k in its inbox.
  const sentAt: number[] = [0];
  let release: (() => void) | null = null;
  let outstanding = 0;
  receiver.on('message', (m) => {
    const t0 = sentAt[m.seq];
    if (t0 === undefined) return;
    outstanding--;
    if (measuring) {
      delivered++;
      latencies.push(performance.now() - t0);
    }
    release?.();
  });
  while (Date.now() < stopAt.t) {
    if (outstanding >= inflight) {
      await new Promise<void>((r) => (release = r));
      release = null;
      continue;
    }
    outstanding++;
    sentAt.push(performance.now());
    sender.send(`r${i}`, body).catch(() => undefined);
  }
}

const warm = 1000;
stopAt.t = Date.now() + warm + seconds * 1000;
const runs = Array.from({ length: pairs }, (_, i) => pair(i));
await new Promise((r) => setTimeout(r, warm));
measuring = true;
const t0 = Date.now();
await new Promise((r) => setTimeout(r, seconds * 1000));
measuring = false;
const secs = (Date.now() - t0) / 1000;
await Promise.allSettled(runs);
latencies.sort((a, b) => a - b);
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]?.toFixed(2);
console.log(
  JSON.stringify({
    pairs,
    inflight,
    cross: !!cross,
    seconds,
    delivered,
    msgsPerSec: Math.round(delivered / secs),
    p50: pct(0.5),
    p99: pct(0.99),
    p999: pct(0.999),
  }),
);
await Promise.allSettled(clients.map((c) => c.close()));
up.kill('SIGTERM');
await new Promise((r) => up.on('exit', r));
rmSync(dir, { recursive: true, force: true });
if (process.env.FISHCHAT_BENCH_REDIS)
  await deleteKeysWithPrefix(process.env.FISHCHAT_BENCH_REDIS, `fishchat:bench${process.pid}:`);
