/**
 * The long chaos runs (test/chaos.test.ts runs short ones in CI).
 *
 *   npm run build
 *   node --import tsx bench/chaos.ts [--mode all|kill-ms|restart-redis|kill-up]
 *       [--duration 60] [--pairs 20] [--interval 20] [--every 5] [--max-events N]
 *       [--redis-down 1] [--redis-signal SIGTERM] [--delivery-timeout 30] [--out FILE] [--verbose]
 *
 * --duration, --every and --redis-down (how long Redis stays down) are seconds, --interval milliseconds (the pause
 * between one sender's ok and its next send).
 *
 * - kill-ms: `fishchat up --redis` on a private redis-server (appendonly yes,
 *   appendfsync always), 2 msg_servers; kill -9 one msg_server every
 *   --every s, alternating; the supervisor restarts it.
 * - restart-redis: the same; the redis-server gets SIGTERM and is started
 *   again on its AOF (after --redis-down s) every --every s (--redis-signal
 *   SIGKILL: killed instead, so only what appendfsync always wrote is left).
 * - kill-up: `fishchat up --embedded` (fixed ports); the whole process gets
 *   kill -9 every --every s and is started again on the same directory.
 *
 * Each run: --pairs senders and receivers through the gateway with the client
 * library's reconnect and catch-up; every send has a cid and is retried with
 * it until ok. Then it waits for delivery and checks: every acknowledged
 * message received (by mid), none handed to the app twice, nothing stored
 * twice, the seqs received exactly those of the oks. Prints one JSON line per
 * run and appends it to --out (default: a file in the temp directory, named on
 * stderr); with --verbose, the timeline as it happens. Exit code 1 when a run
 * found a problem (they are listed, with the timeline, on stderr).
 */
import { appendFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { haveDist, runChaos, summaryLine, type ChaosMode } from '../test/helpers/chaos.js';
import { available as haveRedisServer } from '../test/helpers/redis-server.js';

const { values } = parseArgs({
  options: {
    mode: { type: 'string', default: 'all' },
    duration: { type: 'string', default: '60' },
    pairs: { type: 'string', default: '20' },
    interval: { type: 'string', default: '20' },
    every: { type: 'string', default: '5' },
    'max-events': { type: 'string' },
    'redis-down': { type: 'string', default: '1' },
    'redis-signal': { type: 'string', default: 'SIGTERM' },
    'delivery-timeout': { type: 'string', default: '30' },
    out: { type: 'string' },
    verbose: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (values.help) {
  console.log(
    'node --import tsx bench/chaos.ts [--mode all|kill-ms|restart-redis|kill-up] [--duration 60] [--pairs 20] [--interval 20] [--every 5] [--max-events N] [--redis-down 1] [--redis-signal SIGTERM] [--delivery-timeout 30] [--out FILE] [--verbose]',
  );
  process.exit(0);
}

const num = (name: string, v: string | undefined, min: number): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) {
    console.error(`--${name}: a number ≥ ${min}, not ${JSON.stringify(v)}`);
    process.exit(2);
  }
  return n;
};
const ALL: ChaosMode[] = ['kill-ms', 'restart-redis', 'kill-up'];
const modes = values.mode === 'all' ? ALL : [values.mode as ChaosMode];
if (!modes.every((m) => ALL.includes(m))) {
  console.error(`--mode: one of all, ${ALL.join(', ')}; not ${values.mode}`);
  process.exit(2);
}
const durationMs = num('duration', values.duration, 1) * 1000;
const pairs = num('pairs', values.pairs, 1);
const intervalMs = num('interval', values.interval, 0);
const everyMs = num('every', values.every, 0.5) * 1000;
const maxEvents = values['max-events'] !== undefined ? num('max-events', values['max-events'], 0) : undefined;
const redisDownMs = num('redis-down', values['redis-down'], 0) * 1000;
const deliveryTimeoutMs = num('delivery-timeout', values['delivery-timeout'], 1) * 1000;
const out = values.out ?? join(tmpdir(), `fishchat-chaos-${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl`);

if (!haveDist()) {
  console.error('dist/ is missing: run `npm run build` first');
  process.exit(2);
}
console.error(
  `machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; results → ${out}`,
);

let failed = false;
for (const mode of modes) {
  if (mode !== 'kill-up' && !haveRedisServer()) {
    console.error(`${mode}: skipped, redis-server is not on PATH`);
    continue;
  }
  console.error(
    `--- ${mode}: ${pairs} pairs, ${durationMs / 1000} s, interval ${intervalMs} ms, an event every ${everyMs / 1000} s`,
  );
  const r = await runChaos({
    mode,
    durationMs,
    pairs,
    intervalMs,
    everyMs,
    maxEvents,
    redisDownMs,
    redisSignal: values['redis-signal'] as NodeJS.Signals,
    deliveryTimeoutMs,
    log: values.verbose ? (l) => console.error(l) : undefined,
  });
  const line = summaryLine(r);
  console.log(line);
  appendFileSync(out, line + '\n');
  if (!r.ok) {
    failed = true;
    console.error(
      `${mode}: FAILED\n${r.problems.join('\n')}\ntimeline:\n${r.timeline.map((e) => `  ${(e.t / 1000).toFixed(2)} s  ${e.what}`).join('\n')}`,
    );
  }
}
process.exit(failed ? 1 : 0);
