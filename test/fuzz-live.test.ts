/**
 * Live fuzzing, bounded for CI (the long version is bench/fuzz.ts,
 * whose engine this test shares): an in-process cluster over real TCP takes
 * random and mutated frames of every op on K connections to the gateway and
 * both msg_servers (truncated, oversized and lying lengths, deep nesting,
 * huge declared CBOR lengths, split at random points) while two users hold a
 * normal conversation across the two msg_servers. Asserts: no crash (every
 * listener still answers a ping), every error carries a documented code and
 * every sure expectation holds (bad_frame, frame_too_large, a pong for a
 * frame at the nesting limit), the conversation got every message exactly
 * once and in order, and RSS stays bounded.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { encodeFrame } from '../runtime/protocol/index.js';
import {
  Conversation,
  HUGE_TAILS,
  Wire,
  hugeDeclared,
  nested,
  pingAll,
  prefixed,
  runFuzz,
  tagChain,
  type FuzzReport,
} from '../bench/fuzz.js';
import { startTestCluster, type TestCluster } from './helpers/cluster.js';

const SEED = Number(process.env.FUZZ_SEED ?? 0xf15f) >>> 0;
const FRAMES = Number(process.env.FUZZ_FRAMES ?? 20_000);
const CONNS = 8;
/** the fuzzing stops at FRAMES or after this long, whichever first */
const BUDGET_MS = 20_000;
/** and must have sent at least this many frames by then (not vacuous on a slow machine) */
const MIN_FRAMES = 3_000;
const MAX_RSS_GROWTH = 150 * 1024 * 1024;

describe('live fuzz', () => {
  let c: TestCluster;
  let conv: Conversation | undefined;
  let sampler: ReturnType<typeof setInterval> | undefined;

  before(async () => {
    c = await startTestCluster({ msgServers: 2 });
  });

  after(async () => {
    if (sampler) clearInterval(sampler);
    conv?.abort();
    await c?.stop();
  });

  it('edge frames get exactly the documented answer, on the gateway and a msg_server', async () => {
    const maxFrame = c.ctx.settings.maxFrame;
    type Want = { pong: number } | { close: 'bad_frame' | 'frame_too_large' };
    const cases: [string, Uint8Array, Want, number?][] = [
      ['nesting 64 (arrays)', prefixed(nested(11, 63, 'array')), { pong: 11 }],
      ['nesting 64 (maps)', prefixed(nested(12, 63, 'map')), { pong: 12 }],
      ['nesting 64 (indefinite arrays)', prefixed(nested(13, 63, 'indef')), { pong: 13 }],
      ['nesting 65 (arrays)', prefixed(nested(14, 64, 'array')), { close: 'bad_frame' }],
      ['nesting 65 (maps)', prefixed(nested(15, 64, 'map')), { close: 'bad_frame' }],
      ['nesting 65 (indefinite arrays)', prefixed(nested(16, 64, 'indef')), { close: 'bad_frame' }],
      ['nesting 30,000', prefixed(nested(17, 30_000, 'array')), { close: 'bad_frame' }],
      [`${(maxFrame - 40) >> 1} tags (tags do not nest)`, prefixed(tagChain(18, (maxFrame - 40) >> 1)), { pong: 18 }],
      ['a frame of exactly maxFrame bytes', prefixed(padTo(maxFrame, 19)), { pong: 19 }],
      [
        'length maxFrame + 1, header only (never buffered)',
        prefixed(new Uint8Array(0), maxFrame + 1),
        { close: 'frame_too_large' },
      ],
      ['length 2^32 - 1, header only', prefixed(new Uint8Array(0), 0xffffffff), { close: 'frame_too_large' }],
      ['length 0', prefixed(new Uint8Array(0)), { close: 'bad_frame' }],
      [
        'trailing byte after the map',
        prefixed(new Uint8Array([...encodeFrame({ op: 'ping', rid: 20 }).slice(4), 0x00])),
        { close: 'bad_frame' },
      ],
      [
        'two maps in one frame',
        prefixed(
          new Uint8Array([
            ...encodeFrame({ op: 'ping', rid: 21 }).slice(4),
            ...encodeFrame({ op: 'ping', rid: 22 }).slice(4),
          ]),
        ),
        { close: 'bad_frame' },
      ],
      ['a ping written one byte at a time', encodeFrame({ op: 'ping', rid: 23 }).slice(), { pong: 23 }, 1],
      ...HUGE_TAILS.map((t, i): [string, Uint8Array, Want] => [
        `body ${Buffer.from(t).toString('hex')}`,
        prefixed(hugeDeclared(30 + i, t)),
        { close: 'bad_frame' },
      ]),
    ];
    const failures: string[] = [];
    for (const addr of [c.gateway, c.ms(0)]) {
      for (const [what, bytes, want, step] of cases) {
        const w = await Wire.connect(addr);
        try {
          if (step) for (let i = 0; i < bytes.length; i += step) w.write(bytes.subarray(i, i + step));
          else w.write(bytes);
          await w.until(() => w.frames.length > 0, 5000, what).catch(() => undefined);
          const f = w.frames[0];
          const hex = Buffer.from(bytes.subarray(0, 48)).toString('hex') + (bytes.length > 48 ? '…' : '');
          if ('pong' in want) {
            if (f?.op !== 'pong' || f.rid !== want.pong)
              failures.push(`${addr} ${what} (${hex}): ${JSON.stringify(f ?? null)}`);
          } else {
            if (f?.op !== 'error' || f.code !== want.close || f.rid !== undefined)
              failures.push(`${addr} ${what} (${hex}): ${JSON.stringify(f ?? null)}`);
            else if (
              !(await w
                .until(() => false, 3000, 'close')
                .then(
                  () => true,
                  () => false,
                ))
            )
              failures.push(`${addr} ${what}: not closed`);
          }
        } finally {
          w.close();
        }
      }
    }
    assert.deepEqual(failures, [], failures.join('\n'));
  });

  it(`${FRAMES} fuzz frames on ${CONNS} connections during a conversation: no crash, documented codes, nothing lost, RSS bounded (seed ${SEED})`, async () => {
    const maxFrame = c.ctx.settings.maxFrame;
    // warm up (JIT, store, sockets) before the RSS baseline
    const warm = await runFuzz({
      targets: [{ kind: 'msg_server', addr: c.ms(0) }],
      conns: 2,
      frames: 300,
      seed: SEED ^ 1,
      maxFrame,
      token: (u) => c.token(u),
    });
    assert.deepEqual(warm.violations, []);
    // Bun runs every test file in one process: collect what the files before this one left, so that the
    // bound measures this test's growth (and keep collecting, as Node's collector does on its own).
    collectGarbage(true);
    const base = process.memoryUsage().rss;
    let maxRss = base;
    sampler = setInterval(() => {
      collectGarbage(false);
      maxRss = Math.max(maxRss, process.memoryUsage().rss);
    }, 100);

    conv = new Conversation(
      { user: 'conv-a', addr: c.ms(0), token: c.token('conv-a') },
      { user: 'conv-b', addr: c.ms(1), token: c.token('conv-b') },
      10,
    );
    await conv.start();
    const report: FuzzReport = await runFuzz({
      targets: [
        { kind: 'gateway', addr: c.gateway },
        { kind: 'msg_server', addr: c.ms(0) },
        { kind: 'msg_server', addr: c.ms(1) },
        { kind: 'msg_server', addr: c.ms(0) },
        { kind: 'msg_server', addr: c.ms(1) },
      ],
      conns: CONNS,
      frames: FRAMES,
      deadline: Date.now() + BUDGET_MS,
      seed: SEED,
      maxFrame,
      token: (u) => c.token(u),
      sessionTimeoutMs: 15_000,
    });
    const pings = await pingAll([c.gateway, c.ms(0), c.ms(1)]);
    const talk = await conv.stop();
    conv = undefined;
    clearInterval(sampler);
    sampler = undefined;
    maxRss = Math.max(maxRss, process.memoryUsage().rss);

    if (process.env.FUZZ_STATS) {
      console.log(
        JSON.stringify(
          { ...report, violations: report.violations.length, talk, rssGrowthMiB: (maxRss - base) / 1048576 },
          null,
          2,
        ),
      );
    }
    assert.deepEqual(
      report.violations,
      [],
      `${report.violations.length} protocol violations:\n${report.violations.slice(0, 5).join('\n\n')}`,
    );
    assert.deepEqual(pings, [], 'every listener still answers a ping');
    assert.deepEqual(talk.problems, [], 'the conversation was not disturbed');
    assert.ok(talk.sent[0] > 20 && talk.sent[1] > 20, `the conversation ran: ${JSON.stringify(talk)}`);
    assert.deepEqual(talk.received, [talk.sent[1], talk.sent[0]]);
    assert.ok(report.frames >= Math.min(FRAMES, MIN_FRAMES), `only ${report.frames} frames fuzzed`);
    // every kind of answer happened
    for (const code of ['bad_frame', 'frame_too_large', 'bad_request', 'unknown_op', 'not_logged_in', 'auth_failed']) {
      assert.ok((report.errors[code] ?? 0) > 0, `no ${code} seen: ${JSON.stringify(report.errors)}`);
    }
    assert.ok((report.replies.ok ?? 0) > 0 && (report.replies.pong ?? 0) > 0, JSON.stringify(report.replies));
    assert.ok(report.checked > 100, `only ${report.checked} sure expectations checked`);
    assert.ok(maxRss - base < MAX_RSS_GROWTH, `RSS grew by ${((maxRss - base) / 1048576).toFixed(1)} MiB`);
  });
});

/** Bun's collector, run now (`sync`) or soon; nothing on Node, whose collector needs no help here. */
function collectGarbage(sync: boolean): void {
  (globalThis as { Bun?: { gc(sync: boolean): void } }).Bun?.gc(sync);
}

/** A ping with an `x` byte string that makes the payload exactly `size` bytes. */
function padTo(size: number, rid: number): Uint8Array {
  for (let n = size - 30; n < size; n++) {
    const p = encodeFrame({ op: 'ping', rid, x: new Uint8Array(n) }).slice(4);
    if (p.length === size) return p;
  }
  throw new Error(`cannot pad a ping to ${size} bytes`);
}
