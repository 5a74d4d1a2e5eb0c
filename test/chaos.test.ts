/**
 * Chaos: a real cluster from `fishchat up` under steady p2p traffic
 * (20 pairs through the gateway, the client library's reconnect and catch-up,
 * every send with a cid and retried with it until ok), while:
 *
 * 1. Redis mode, 2 msg_servers: one msg_server process gets kill -9 every 5 s
 *    (alternating), the supervisor restarts it;
 * 2. Redis mode: the redis-server (appendonly yes, appendfsync always) is
 *    restarted twice (SIGTERM, down for 1 s, then started again on its AOF);
 * 3. embedded mode: the whole `fishchat up --embedded` process gets kill -9
 *    twice and is started again on the same directory and ports.
 *
 * Each run then waits (bounded) for delivery and requires: 0 acknowledged
 * messages lost, no mid handed to the app twice, nothing stored twice, and
 * per receiver the seqs received exactly the seqs of the oks (no gap left).
 * Each prints its one-line JSON result (also appended to $FISHCHAT_CHAOS_OUT
 * when set). The long versions: bench/chaos.ts.
 *
 * Needs the compiled dist/ (`npm run build`) and, for 1 and 2, redis-server
 * on PATH. Skipped under Bun: the runs take a minute and a half on Node
 * already, and what they test is the server (whose processes run on Node
 * either way), not the test runner.
 */
import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import { before, describe, test } from 'node:test';
import { haveDist, runChaos, summaryLine, type ChaosOptions, type ChaosResult } from './helpers/chaos.js';
import { available as haveRedisServer } from './helpers/redis-server.js';

const UNDER_BUN = (process.versions as { bun?: string }).bun !== undefined;
const SKIP_ALL = UNDER_BUN
  ? 'chaos runs on Node only (`node --import tsx --test test/chaos.test.ts`); too slow for bun test'
  : false;
const NO_REDIS_SERVER = SKIP_ALL || (haveRedisServer() ? false : 'redis-server is not on PATH');
if (UNDER_BUN) console.warn(`test/chaos.test.ts: skipped, ${SKIP_ALL}`);
const PAIRS = Number(process.env.FISHCHAT_CHAOS_PAIRS ?? 20);

function report(r: ChaosResult): void {
  const line = summaryLine(r);
  console.log(line);
  if (process.env.FISHCHAT_CHAOS_OUT) appendFileSync(process.env.FISHCHAT_CHAOS_OUT, line + '\n');
}

function check(r: ChaosResult): void {
  const detail = `\n${r.problems.join('\n')}\ntimeline:\n${r.timeline.map((e) => `  ${(e.t / 1000).toFixed(2)} s  ${e.what}`).join('\n')}`;
  assert.ok(r.events >= 1, `no chaos event happened${detail}`);
  assert.ok(r.acked > 0, `no message acknowledged${detail}`);
  assert.equal(r.lost, 0, `acknowledged messages lost${detail}`);
  assert.equal(r.duplicatesAtApp, 0, `mids handed to the app twice${detail}`);
  assert.equal(r.storedTwice, 0, `messages stored twice${detail}`);
  assert.equal(r.gaps, 0, `seq gaps left unfilled${detail}`);
  assert.equal(r.unexpected, 0, `messages received that no ok named${detail}`);
  assert.equal(r.unconfirmed, 0, `sends that never got an ok${detail}`);
  assert.equal(r.received, r.acked, detail);
  assert.deepEqual(r.problems, [], detail);
}

async function chaos(opts: Omit<ChaosOptions, 'log' | 'pairs'>): Promise<ChaosResult> {
  const r = await runChaos({
    ...opts,
    pairs: PAIRS,
    log: process.env.FISHCHAT_CHAOS_VERBOSE ? (l) => console.log(l) : undefined,
  });
  report(r);
  return r;
}

before(() => {
  if (SKIP_ALL) return;
  assert.ok(haveDist(), 'dist/ is missing: run `npm run build` first (`npm test` does)');
});

describe('chaos', { skip: SKIP_ALL, concurrency: false }, () => {
  test('Redis mode: kill -9 one msg_server every 5 s (alternating), the supervisor restarts it; nothing acknowledged is lost', {
    skip: NO_REDIS_SERVER,
    timeout: 90_000,
  }, async () => {
    const r = await chaos({
      mode: 'kill-ms',
      durationMs: 20_000,
      intervalMs: 20,
      everyMs: 5000,
      deliveryTimeoutMs: 12_000,
    });
    check(r);
    assert.ok(r.events >= 3, `at least 3 kills in 20 s (${r.events})`);
  });

  test('Redis mode: the redis-server restarted twice on its AOF under traffic; nothing acknowledged is lost', {
    skip: NO_REDIS_SERVER,
    timeout: 90_000,
  }, async () => {
    const r = await chaos({
      mode: 'restart-redis',
      durationMs: 15_000,
      intervalMs: 20,
      everyMs: 5000,
      maxEvents: 2,
      redisDownMs: 1000,
      deliveryTimeoutMs: 12_000,
    });
    check(r);
    assert.equal(r.events, 2);
  });

  test('embedded: kill -9 of the whole `fishchat up` process, started again on the same directory; nothing acknowledged is lost', {
    timeout: 90_000,
  }, async () => {
    const r = await chaos({
      mode: 'kill-up',
      durationMs: 15_000,
      intervalMs: 20,
      everyMs: 5000,
      maxEvents: 2,
      deliveryTimeoutMs: 12_000,
    });
    check(r);
    assert.equal(r.events, 2);
  });
});
