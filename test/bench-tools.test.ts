/**
 * The pure parts of the benchmark tools: exact percentiles and /proc parsing
 * (bench/peers/stats.ts), the JSONL merge rule and the SVG chart (bench/chart.ts).
 * No servers; runs on Node and on Bun.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  buildSeries,
  logTicks,
  mergeLatest,
  niceTicks,
  parseJsonl,
  renderSvg,
  type BenchResult,
} from '../bench/chart.js';
import { MsgScanner, opOf, OP_MSG } from '../cli/bench/wire.js';
import { encodeFrame, RawCbor } from '../runtime/protocol/index.js';
import {
  parseProcStatCpu,
  parseProcStatTicks,
  parseProcStatusRss,
  percentile,
  Samples,
  summarize,
} from '../bench/peers/stats.js';

describe('percentile (nearest rank, exact)', () => {
  const sorted = Float64Array.from({ length: 1000 }, (_, i) => i + 1); // 1..1000

  test('ranks over 1..1000', () => {
    assert.equal(percentile(sorted, 0.5), 500);
    assert.equal(percentile(sorted, 0.9), 900);
    assert.equal(percentile(sorted, 0.99), 990);
    assert.equal(percentile(sorted, 0.999), 999);
    assert.equal(percentile(sorted, 1), 1000);
    assert.equal(percentile(sorted, 0), 1);
  });

  test('small and edge inputs', () => {
    assert.ok(Number.isNaN(percentile(new Float64Array(0), 0.5)));
    assert.equal(percentile([7], 0.999), 7);
    assert.equal(percentile([1, 2], 0.5), 1);
    assert.equal(percentile([1, 2, 3, 4], 0.75), 3);
    assert.equal(percentile([1, 2, 3, 4], 0.76), 4);
    assert.throws(() => percentile([1], 1.5), RangeError);
  });

  test('summarize sorts numerically and leaves its input alone', () => {
    const raw = Float64Array.from([10, 9, 100, 2, 1, 3, 8, 7, 6, 5, 4]);
    const before = Array.from(raw);
    const s = summarize(raw)!;
    assert.deepEqual(Array.from(raw), before);
    assert.equal(s.p50, 6);
    assert.equal(s.max, 100);
    assert.equal(s.p99, 100);
    assert.equal(summarize(new Float64Array(0)), null);
  });

  test('Samples grows past its initial size', () => {
    const s = new Samples(4);
    for (let i = 0; i < 1000; i++) s.push(i);
    assert.equal(s.length, 1000);
    assert.equal(s.view()[999], 999);
    assert.equal(s.view().length, 1000);
  });
});

describe('/proc parsing', () => {
  test('utime + stime after a comm with spaces and parentheses', () => {
    // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
    const stat = '1234 (node (a) b) S 1 1234 1234 0 -1 4194304 100 0 0 0 250 75 0 0 20 0 11 0 500 1000 2000';
    assert.equal(parseProcStatTicks(stat), 325);
  });
  test('machine CPU from /proc/stat', () => {
    const stat = 'cpu  100 5 50 800 20 3 2 0 0 0\ncpu0 50 2 25 400 10 1 1 0 0 0\nintr 1\n';
    assert.deepEqual(parseProcStatCpu(stat), { busy: 160, total: 980 });
    assert.throws(() => parseProcStatCpu('intr 1\n'));
  });
  test('VmRSS', () => {
    assert.equal(parseProcStatusRss('Name:\tnode\nVmPeak:\t 9 kB\nVmRSS:\t  2048 kB\nThreads:\t11\n'), 2048 * 1024);
    assert.ok(Number.isNaN(parseProcStatusRss('Name:\tnode\n')));
  });
});

function result(
  system: string,
  runtime: string | null,
  pairs: number,
  msgsPerSec: number,
  p99: number,
  at: string,
  extra: Partial<BenchResult> = {},
): BenchResult {
  return {
    system,
    runtime,
    mode: 'redis',
    workload: 'p2p',
    pairs,
    cross: true,
    size: 100,
    inflight: 1,
    duration: 10,
    warmup: 2,
    msgsPerSec,
    latencyMs: { p50: p99 / 2, p90: p99 * 0.8, p99, p999: p99 * 1.5, max: p99 * 2 },
    machine: { cpus: 2, model: 'AMD EPYC <test> & co', memGiB: 24, os: 'linux', node: 'v20' },
    at,
    ...extra,
  };
}

describe('JSONL merge rule', () => {
  test('newest `at` per (system, runtime, mode, workload, pairs) wins; ties go to the later line', () => {
    const rs = [
      result('fishchat', 'node', 100, 1, 10, '2026-01-02T00:00:00Z'),
      result('fishchat', 'node', 100, 2, 10, '2026-01-01T00:00:00Z'), // older: loses
      result('fishchat', 'bun', 100, 3, 10, '2026-01-01T00:00:00Z'), // other runtime: kept
      result('fishchat', 'node', 100, 4, 10, '2026-01-01T00:00:00Z', { mode: 'embedded' }), // other mode: kept
      result('fishchat', 'node', 100, 5, 10, '2026-01-01T00:00:00Z', { workload: 'topic' }), // other workload: kept
      result('socketio', 'node', 100, 6, 10, '2026-01-03T00:00:00Z'),
      result('socketio', 'node', 100, 7, 10, '2026-01-03T00:00:00Z'), // same at, later line: wins
      result('socketio', 'node', 500, 8, 10, 'not a date'),
      result('socketio', 'node', 500, 9, 10, '2020-01-01T00:00:00Z'), // a real date beats an unparsable one
    ];
    const merged = mergeLatest(rs);
    assert.deepEqual(
      merged.map((r) => r.msgsPerSec),
      [1, 3, 4, 5, 7, 9],
    );
  });

  test('parseJsonl skips blank lines and names a bad line', () => {
    const ok = parseJsonl(
      `${JSON.stringify(result('socketio', 'node', 100, 1, 1, '2026-01-01T00:00:00Z'))}\n\n`,
      'a.jsonl',
    );
    assert.equal(ok.length, 1);
    assert.throws(() => parseJsonl('{"system":"x"}\nnot json\n', 'b.jsonl'), /b\.jsonl:1: not a bench result/);
    assert.throws(() => parseJsonl('\nnot json\n', 'c.jsonl'), /c\.jsonl:2: not JSON/);
  });
});

/** A small well-formedness check: balanced tags, quoted attributes, known entities only. */
function assertWellFormedXml(xml: string): void {
  const stack: string[] = [];
  const re =
    /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|<!--[\s\S]*?-->|<\?[\s\S]*?\?>|(<)|(&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);))/g;
  let m: RegExpExecArray | null;
  let roots = 0;
  while ((m = re.exec(xml))) {
    if (m[5])
      assert.fail(`stray "<" or malformed tag at ${m.index}: ${JSON.stringify(xml.slice(m.index, m.index + 60))}`);
    if (m[6]) assert.fail(`unescaped "&" at ${m.index}: ${JSON.stringify(xml.slice(m.index, m.index + 30))}`);
    if (!m[2]) continue;
    const [, close, name, , selfClose] = m;
    if (close) assert.equal(stack.pop(), name, `closing </${name}> at ${m.index} does not match`);
    else if (!selfClose) {
      if (stack.length === 0) roots++;
      stack.push(name!);
    } else if (stack.length === 0) roots++;
  }
  assert.deepEqual(stack, [], 'unclosed tags');
  assert.equal(roots, 1, 'exactly one root element');
}

describe('SVG chart', () => {
  const fixture = [
    result('fishchat', 'node', 100, 9000, 12, '2026-01-01T00:00:00Z'),
    result('fishchat', 'node', 500, 12000, 62, '2026-01-01T00:00:00Z'),
    result('fishchat', 'node', 1000, 13000, 102, '2026-01-01T00:00:00Z'),
    result('fishchat', 'bun', 100, 11000, 9, '2026-01-01T00:00:00Z'),
    result('fishchat', 'bun', 1000, 15000, 80, '2026-01-01T00:00:00Z'),
    result('socketio', 'node', 1000, 6000, 460, '2026-01-05T10:00:00Z'),
    result('socketio', 'node', 100, 6000, 30, '2026-01-01T00:00:00Z'),
    result('fishchat', 'node', 0, 100, 1, '2026-01-01T00:00:00Z', { workload: 'idle' }), // not plotted
  ];

  test('series: one per system/runtime/mode, points sorted by pairs', () => {
    const s = buildSeries(fixture);
    assert.deepEqual(
      s.map((x) => [x.label, x.points.map((p) => p.pairs)]),
      [
        ['FishChat on Node', [100, 500, 1000]],
        ['FishChat on Bun', [100, 1000]],
        ['socket.io', [100, 1000]],
      ],
    );
    assert.equal(new Set(s.map((x) => x.color)).size, 3);
  });

  test('well-formed SVG with two panels, each with every series and its points', () => {
    const svg = renderSvg(fixture);
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" /);
    assertWellFormedXml(svg);
    assert.match(
      svg,
      /2 × AMD EPYC &lt;test&gt; &amp; co, 24 GiB · 2026-01-05/,
      'machine and newest date in the title',
    );
    for (const label of ['FishChat on Node', 'FishChat on Bun', 'socket.io'])
      assert.ok(svg.includes(`>${label}</text>`), `legend has ${label}`);
    const panels = svg.split('<g class="panel"').slice(1);
    assert.equal(panels.length, 2);
    for (const [i, panel] of panels.entries()) {
      assert.match(panel, i === 0 ? /^ data-panel="throughput"/ : /^ data-panel="p99"/);
      const series = panel.split('<g class="series"').slice(1);
      assert.equal(series.length, 3);
      const pts = series.map((s) =>
        [...s.matchAll(/class="point" data-x="(\d+)" data-y="([\d.]+)"/g)].map((m) => [Number(m[1]), Number(m[2])]),
      );
      assert.deepEqual(
        pts,
        i === 0
          ? [
              [
                [100, 9000],
                [500, 12000],
                [1000, 13000],
              ],
              [
                [100, 11000],
                [1000, 15000],
              ],
              [
                [100, 6000],
                [1000, 6000],
              ],
            ]
          : [
              [
                [100, 12],
                [500, 62],
                [1000, 102],
              ],
              [
                [100, 9],
                [1000, 80],
              ],
              [
                [100, 30],
                [1000, 460],
              ],
            ],
      );
      assert.equal((panel.match(/<polyline /g) ?? []).length, 3, 'one line per series');
    }
  });

  test('no results still gives a well-formed SVG', () => {
    const svg = renderSvg([]);
    assertWellFormedXml(svg);
    assert.match(svg, /no p2p results/);
  });

  test('ticks', () => {
    assert.deepEqual(niceTicks(0, 1000), [0, 200, 400, 600, 800, 1000]);
    assert.deepEqual(niceTicks(0, 13650), [0, 5000, 10000, 15000]);
    assert.deepEqual(niceTicks(0, 21000), [0, 5000, 10000, 15000, 20000, 25000]);
    assert.deepEqual(logTicks(9, 460), [5, 10, 20, 50, 100, 200, 500]);
    assert.deepEqual(logTicks(0.5, 5000), [0.1, 1, 10, 100, 1000, 10000]);
  });
});

describe('bench wire: MsgScanner', () => {
  test('finds seq and body in a pushed msg; other shapes fall back', () => {
    const body = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const fields = { op: 'msg', seq: 70000, from: 'a', ts: 1764300000000, body, x: [1, { y: 'z' }] };
    const push = encodeFrame(fields).slice(4);
    assert.equal(opOf(push), OP_MSG);
    const m = new MsgScanner();
    assert.equal(m.scan(push), true);
    assert.equal(m.seq, 70000);
    assert.deepEqual(push.subarray(m.bodyAt, m.bodyAt + m.bodyLen), body);
    // body not a byte string, seq missing, a truncated item: false
    assert.equal(m.scan(encodeFrame({ op: 'msg', seq: 1, body: new RawCbor(Uint8Array.of(0x01)) }).slice(4)), false);
    assert.equal(m.scan(encodeFrame({ op: 'msg', body }).slice(4)), false);
    assert.equal(m.scan(push.subarray(0, push.length - 3)), false);
  });
});
