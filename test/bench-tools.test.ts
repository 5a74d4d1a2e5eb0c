/**
 * The parts of the benchmark tools below a cluster: exact percentiles and
 * /proc parsing (bench/peers/stats.ts), the JSONL merge rule and the SVG chart
 * (bench/chart.ts), the CPU-µs per message of bench:compare, the bench's wire
 * scanner, route-reply parsing, and its WebSocket link against a real
 * WebSocket server (the `ws` package's, on 127.0.0.1, port from the OS) that
 * speaks the frames of docs/protocol.md §1a. Runs on Node and on Bun.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { WebSocketServer, type WebSocket as WsSocket } from 'ws';
import { BenchConn, webSocketImpl } from '../cli/bench/conn.js';
import { isWebSocketUrl, routeServers } from '../cli/bench/cluster.js';
import {
  configKey,
  cpuUsPerMsg,
  formatRounds,
  formatTable,
  lostCount,
  median,
  otherCpu,
  parseFlags as compareFlags,
  runsFor,
  summarizeRounds,
  type Config,
  type Outcome,
  type Result as CompareResult,
} from '../bench/compare.js';
import { openFilesLimit, parseFlags as peerFlags } from '../bench/peers/socketio/bench.js';
import {
  buildSeries,
  logTicks,
  mergeLatest,
  niceTicks,
  parseJsonl,
  renderSvg,
  type BenchResult,
} from '../bench/chart.js';
import { MsgScanner, opOf, OP_MSG, RequestTemplate, readTime } from '../cli/bench/wire.js';
import { decodeFrame, encodeFrame, RawCbor } from '../runtime/protocol/index.js';
import { until } from './helpers/wait.js';
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

  test('transport is part of the key; a line without one is tcp (FishChat) or ws (socket.io)', () => {
    const rs = [
      result('fishchat', 'node', 100, 1, 10, '2026-01-02T00:00:00Z'),
      result('fishchat', 'node', 100, 2, 10, '2026-01-01T00:00:00Z', { transport: 'ws' }), // other transport: kept
      result('fishchat', 'node', 100, 3, 10, '2026-01-03T00:00:00Z', { transport: 'tcp' }), // = no transport: wins
      result('socketio', 'node', 100, 4, 10, '2026-01-01T00:00:00Z'),
      result('socketio', 'node', 100, 5, 10, '2026-01-02T00:00:00Z', { transport: 'ws' }), // = no transport: wins
    ];
    assert.deepEqual(
      mergeLatest(rs).map((r) => r.msgsPerSec),
      [3, 2, 5],
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
      s.map((x) => [x.label, x.points.map((p) => p.x)]),
      [
        ['FishChat on Node', [100, 500, 1000]],
        ['FishChat on Bun', [100, 1000]],
        ['socket.io', [100, 1000]],
      ],
    );
    assert.equal(new Set(s.map((x) => x.color)).size, 3);
  });

  test('FishChat over WebSocket is a series of its own, beside the TCP one', () => {
    const s = buildSeries([
      ...fixture,
      result('fishchat', 'node', 100, 8000, 14, '2026-01-01T00:00:00Z', { transport: 'ws' }),
      result('fishchat', 'node', 1000, 9000, 140, '2026-01-01T00:00:00Z', { transport: 'ws' }),
      result('socketio', 'node', 500, 6000, 90, '2026-01-01T00:00:00Z', { transport: 'ws' }),
    ]);
    assert.deepEqual(
      s.map((x) => [x.label, x.points.map((p) => p.x)]),
      [
        ['FishChat on Node', [100, 500, 1000]],
        ['FishChat on Node over WebSocket', [100, 1000]],
        ['FishChat on Bun', [100, 1000]],
        ['socket.io', [100, 500, 1000]],
      ],
    );
    assert.equal(new Set(s.map((x) => x.color)).size, 4);
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

  test('a bench:compare run: the median of its rounds, per key, of the newest run', () => {
    const round = (v: number, p99: number, run: string, r: number, extra: Partial<BenchResult> = {}) =>
      result('fishchat', 'node', 1000, v, p99, `2026-01-0${r}T00:00:00Z`, { run, round: r, ...extra });
    const merged = mergeLatest([
      round(1, 1, 'old', 1),
      round(2, 2, 'old', 2),
      round(10, 40, 'new', 3),
      round(30, 10, 'new', 4),
      round(20, 20, 'new', 5),
      round(7, 7, 'new', 5, { inflight: 32 }), // another key: its own
      result('socketio', 'node', 1000, 5, 5, '2026-01-01T00:00:00Z'), // no run: the newest line, as before
    ]);
    assert.deepEqual(
      merged.map((r) => [r.inflight, r.msgsPerSec, r.latencyMs?.p99, r.medianOf]),
      [
        [1, 20, 20, 3],
        [32, 7, 7, undefined],
        [1, 5, 5, undefined],
      ],
    );
  });

  test('topic results get a row of their own (x: members), FishChat beside socket.io; inflight values split p2p series', () => {
    const rs = [
      result('fishchat', 'node', 1000, 9000, 100, '2026-01-01T00:00:00Z'),
      result('fishchat', 'node', 1000, 20000, 900, '2026-01-01T00:00:00Z', { inflight: 32 }),
      result('socketio', 'node', 1000, 8000, 120, '2026-01-01T00:00:00Z', { transport: 'ws' }),
      result('socketio', 'node', 1000, 15000, 1500, '2026-01-01T00:00:00Z', { transport: 'ws', inflight: 32 }),
      result('fishchat', 'node', 0, 25000, 800, '2026-01-01T00:00:00Z', {
        workload: 'topic',
        topicMembers: 10000,
        publishers: 2,
        cross: false,
      }),
      result('socketio', 'node', 0, 90000, 200, '2026-01-01T00:00:00Z', {
        workload: 'topic',
        topicMembers: 10000,
        publishers: 2,
        cross: false,
        transport: 'ws',
      }),
    ];
    const p2p = buildSeries(rs);
    assert.deepEqual(
      p2p.map((x) => [x.label, x.dashed, x.points.map((p) => p.msgsPerSec)]),
      [
        ['FishChat on Node, inflight 1', false, [9000]],
        ['socket.io, inflight 1', false, [8000]],
        ['FishChat on Node, inflight 32', true, [20000]],
        ['socket.io, inflight 32', true, [15000]],
      ],
    );
    const topic = buildSeries(rs, 'topic');
    assert.deepEqual(
      topic.map((x) => [x.label, x.points.map((p) => [p.x, p.msgsPerSec])]),
      [
        ['FishChat on Node', [[10000, 25000]]],
        ['socket.io', [[10000, 90000]]],
      ],
    );
    assert.equal(topic[0]!.color, p2p[0]!.color, 'one colour per system in every row');
    const svg = renderSvg(rs);
    assertWellFormedXml(svg);
    const ids = [...svg.matchAll(/<g class="panel" data-panel="([\w-]+)"/g)].map((m) => m[1]);
    assert.deepEqual(ids, ['throughput', 'p99', 'topic-throughput', 'topic-p99']);
    const topicPanel = svg.split('data-panel="topic-throughput"')[1]!.split('data-panel="topic-p99"')[0]!;
    assert.deepEqual(
      [...topicPanel.matchAll(/class="point" data-x="(\d+)" data-y="([\d.]+)"/g)].map((m) => [m[1], m[2]]),
      [
        ['10000', '25000'],
        ['10000', '90000'],
      ],
    );
    assert.match(svg, /topic members/);
    // one pairs value: grouped bars, a group per inflight value, the values written on them
    assert.match(svg, />inflight 1, 1,000 pairs<\/text>/);
    assert.match(svg, />inflight 32, 1,000 pairs<\/text>/);
    assert.match(svg, /<rect class="point" data-x="1000" data-y="20000" /);
    assert.match(svg, />20k<\/text>/);
    assert.doesNotMatch(svg, /other work on the machine/);
    assert.match(
      renderSvg(rs.map((r, i) => ({ ...r, otherCpuPct: 10 * i }))),
      /other work on the machine 0–50% of one core/,
    );
    assert.doesNotMatch(svg, /stroke-dasharray/, 'no dashed lines without lines');
    // several pairs values: lines, inflight 32 dashed
    const lines = renderSvg([
      ...rs,
      result('fishchat', 'node', 100, 5000, 10, '2026-01-01T00:00:00Z'),
      result('fishchat', 'node', 100, 9000, 80, '2026-01-01T00:00:00Z', { inflight: 32 }),
    ]);
    assertWellFormedXml(lines);
    assert.match(lines, /<polyline [^>]*stroke-dasharray="6 4"/);
    assert.match(lines, />p2p inflight 32<\/text>/);
    // topic only: one row, the topic one
    const only = renderSvg(rs.filter((r) => r.workload === 'topic'));
    assert.deepEqual(
      [...only.matchAll(/data-panel="([\w-]+)"/g)].map((m) => m[1]),
      ['topic-throughput', 'topic-p99'],
    );
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

describe('route reply: servers and their WebSocket URLs', () => {
  test('keeps well-formed entries, sorted by id; ws only when it is a ws:// or wss:// URL', () => {
    const servers = routeServers({
      servers: [
        { id: 'ms-2', addr: '127.0.0.1:19001', ws: 'ws://127.0.0.1:19101/v1/ws' },
        { id: 'ms-1', addr: '127.0.0.1:19000', ws: 'wss://chat.example:443/v1/ws' },
        { id: 'ms-3', addr: '127.0.0.1:19002', ws: 'http://127.0.0.1:19102/v1/ws' }, // not a ws URL: dropped
        { id: 'ms-4', addr: '127.0.0.1:19003', ws: 42 },
        { id: 'ms-5', addr: '127.0.0.1:19004' }, // no WebSocket: still a TCP server
        { id: 'bad', addr: 'nowhere' },
        { addr: '127.0.0.1:1' },
        null,
        'ms-6',
      ],
    });
    assert.deepEqual(servers, [
      { id: 'ms-1', addr: '127.0.0.1:19000', ws: 'wss://chat.example:443/v1/ws' },
      { id: 'ms-2', addr: '127.0.0.1:19001', ws: 'ws://127.0.0.1:19101/v1/ws' },
      { id: 'ms-3', addr: '127.0.0.1:19002' },
      { id: 'ms-4', addr: '127.0.0.1:19003' },
      { id: 'ms-5', addr: '127.0.0.1:19004' },
    ]);
    assert.deepEqual(routeServers({}), []);
    assert.deepEqual(routeServers({ servers: 'x' }), []);
    assert.equal(isWebSocketUrl('ws://[::1]:80/v1/ws'), true);
    assert.equal(isWebSocketUrl('ws://'), false);
    assert.equal(isWebSocketUrl('not a url'), false);
  });
});

describe('BenchConn over WebSocket (docs/protocol.md §1a)', () => {
  let wss: WebSocketServer;
  let url: string;
  /** every message the server got: its bytes, and whether it came as binary */
  const got: { bytes: Uint8Array; binary: boolean }[] = [];
  const reply = (ws: WsSocket, fields: Record<string, unknown>) =>
    ws.send(encodeFrame(fields as Parameters<typeof encodeFrame>[0]).subarray(4));

  before(async () => {
    wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/v1/ws' });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/v1/ws`;
    wss.on('connection', (ws) => {
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        const bytes = new Uint8Array(data);
        got.push({ bytes, binary: isBinary });
        const f = decodeFrame(bytes) as Record<string, unknown>;
        switch (f.op) {
          case 'login':
            // the reply and the backlog: two messages, one map each
            reply(ws, { op: 'ok', rid: f.rid, user: f.user, seq: 0 });
            reply(ws, { op: 'msg', seq: 7, from: 'x', body: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]) });
            break;
          case 'send':
            reply(ws, { op: 'ok', rid: f.rid, seq: 1 });
            reply(ws, { op: 'msg', seq: 8, from: 'me', body: f.body });
            break;
          case 'text':
            ws.send('a text message');
            break;
          case 'kickme':
            reply(ws, { op: 'kick', reason: 'replaced' });
            ws.close(1008, 'replaced');
            break;
        }
      });
    });
  });
  after(async () => {
    for (const c of wss.clients) c.terminate();
    await new Promise<void>((r) => wss.close(() => r()));
  });

  test('the standard WebSocket where the runtime has one, else the ws package', async () => {
    const impl = await webSocketImpl();
    assert.equal(impl.native, typeof (globalThis as { WebSocket?: unknown }).WebSocket === 'function');
  });

  test('requests go as one binary message per map, without the length prefix; replies and pushes come back', async () => {
    got.length = 0;
    const conn = await BenchConn.openWs(url);
    assert.equal(conn.addr, url);
    const pushes: { seq: number; body: Uint8Array }[] = [];
    conn.onMsg = (p, seq, at, len) => pushes.push({ seq, body: p.slice(at, at + len) });
    let oks = 0;
    conn.onOk = () => oks++;
    const r = await conn.request({ op: 'login', user: 'alice', device: 'bench', push: true }, 5000);
    assert.equal(r.op, 'ok');
    assert.equal(r.user, 'alice');
    await until(() => pushes.length === 1, 5000, 'the backlog push');
    assert.equal(pushes[0]!.seq, 7);
    assert.deepEqual([...pushes[0]!.body], [1, 2, 3, 4, 5, 6, 7, 8, 9]);

    // A run's send: the template's frame minus its 4-byte length
    const tpl = new RequestTemplate('send', 'to', 'bob', 100);
    const frame = tpl.make(5, 1234.5);
    conn.write(frame);
    conn.ping();
    await until(() => pushes.length === 2 && got.length === 3, 5000, 'the echo of the send and the ping');
    assert.equal(oks, 1, 'the ok of a run request goes to onOk');
    assert.equal(got[1]!.binary, true);
    assert.deepEqual([...got[1]!.bytes], [...frame.subarray(4)], 'the send, as sent over TCP without its length');
    assert.equal(got[1]!.bytes[0], 0xa4, 'a CBOR map of 4 entries first, no length prefix');
    assert.deepEqual(decodeFrame(got[2]!.bytes), { op: 'ping' });
    assert.equal(pushes[1]!.seq, 8);
    assert.equal(readTime(pushes[1]!.body, 0), 1234.5);
    assert.equal(pushes[1]!.body.length, 100);
    conn.close();
    await until(() => conn.closed, 5000, 'the close');
  });

  test('a kick and the close status are the close reason; a pending request fails', async () => {
    const conn = await BenchConn.openWs(url);
    await conn.request({ op: 'login', user: 'bob' }, 5000);
    let closed = 0;
    conn.onClose = () => closed++;
    conn.write(encodeFrame({ op: 'kickme' }));
    const pending = conn.request({ op: 'sync', after: 0 }, 5000);
    await assert.rejects(pending, /closed the connection \(kicked: replaced\)/);
    assert.equal(closed, 1);
    assert.equal(conn.closeReason, 'kicked: replaced');
    // writes after the close are dropped, not thrown
    conn.write(encodeFrame({ op: 'ping' }));
  });

  test('a text message from the server is a protocol error: the connection closes with that reason', async () => {
    const conn = await BenchConn.openWs(url);
    conn.write(encodeFrame({ op: 'text' }));
    await until(() => conn.closed, 5000, 'the close');
    assert.match(conn.closeReason ?? '', /text message/);
  });

  test('nothing listening: the open fails with the reason', async () => {
    const probe = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((r) => probe.once('listening', () => r()));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    await assert.rejects(BenchConn.openWs(`ws://127.0.0.1:${port}/v1/ws`));
  });
});

describe('bench:compare: CPU-µs per message and the table', () => {
  const line = (
    system: string,
    transport: string,
    msgsPerSec: number,
    processes: { name: string; cpuPct: number | null }[],
  ): CompareResult => ({
    system,
    runtime: 'node',
    mode: 'redis',
    transport,
    workload: 'p2p',
    pairs: 100,
    msgsPerSec,
    sent: msgsPerSec * 10,
    delivered: msgsPerSec * 10,
    errors: 0,
    latencyMs: { p50: 1, p90: 2, p99: 4, p999: 8, max: 9 },
    processes: processes.map((p, i) => ({ ...p, pid: 100 + i, rssMiB: 50 })),
    at: '2026-01-01T00:00:00Z',
  });

  test('server processes and redis-server count, the `up` supervisor does not', () => {
    // 2 msg_servers at 50% + router 10% + redis 40% = 1.5 cores for 10,000 msgs/s = 150 µs each
    const r = line('fishchat', 'ws', 10_000, [
      { name: 'msg_server.ms-1', cpuPct: 50 },
      { name: 'msg_server.ms-2', cpuPct: 50 },
      { name: 'router', cpuPct: 10 },
      { name: 'up', cpuPct: 30 },
      { name: 'redis-server', cpuPct: 40 },
    ]);
    assert.equal(cpuUsPerMsg(r), 150);
    assert.equal(cpuUsPerMsg({ ...r, msgsPerSec: 0 }), undefined);
    assert.equal(cpuUsPerMsg({ ...r, processes: [] }), undefined);
    // an unknown CPU figure is left out, not taken as 0 of a known process
    assert.equal(
      cpuUsPerMsg(
        line('socketio', 'ws', 1000, [
          { name: 'socketio.1', cpuPct: 20 },
          { name: 'socketio.2', cpuPct: null },
        ]),
      ),
      200,
    );
  });

  test("the other work's CPU, from either benchmark's stderr", () => {
    assert.equal(
      otherCpu("x\nmachine CPU over the window: 199% of one core busy, of which 99% not this benchmark's\n"),
      99,
    );
    assert.equal(
      otherCpu("socketio-bench: machine CPU over the window: 50% of one core busy, of which 0% not this benchmark's"),
      0,
    );
    assert.equal(otherCpu('measuring 10 s …'), undefined);
  });

  test("the lost count, from either benchmark's stderr", () => {
    assert.equal(lostCount('x\n12 message(s) were not delivered within 15 s and were given up on\n'), 12);
    assert.equal(
      lostCount(
        'socketio-bench: 3 message(s) were not delivered within 15 s and were given up on (not every member had it)',
      ),
      3,
    );
    assert.equal(lostCount('measuring 10 s …'), 0);
  });

  test('median: odd and even counts, undefined and NaN left out', () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.equal(median([undefined, 5, null, Number.NaN]), 5);
    assert.equal(median([]), undefined);
  });

  const p2p: Config = { workload: 'p2p', pairs: 100, members: 0, publishers: 0, inflight: 1 };
  const topic: Config = { workload: 'topic', pairs: 0, members: 1000, publishers: 2, inflight: 1 };
  const procs = (server: number, redis: number) => [
    { name: 'msg_server.ms-1', cpuPct: server / 2 },
    { name: 'msg_server.ms-2', cpuPct: server / 2 },
    { name: 'redis-server', cpuPct: redis },
  ];

  test('rows: the median of the rounds per (comparison, system), ratios to socket.io from the medians', () => {
    const o = (config: Config, label: string, system: string, round: number, r: CompareResult | null): Outcome => ({
      config,
      label,
      system,
      round,
      r,
    });
    const tcp = 'FishChat on node, TCP';
    const ws = 'FishChat on node, WebSocket';
    const sio = 'socket.io (WebSocket)';
    // round-major, as bench:compare runs them
    const outcomes: Outcome[] = [
      // tcp: 10k (125 µs), 12k, 8k msgs/s → median 10k; µs/msg 125/104.2/156.3 → 125
      o(p2p, tcp, 'fishchat', 1, { ...line('fishchat', 'tcp', 10_000, procs(100, 25)), otherCpuPct: 37, lost: 0 }),
      o(p2p, ws, 'fishchat', 1, { ...line('fishchat', 'ws', 7500, procs(100, 50)), lost: 2 }),
      o(p2p, sio, 'socketio', 1, { ...line('socketio', 'ws', 5000, procs(100, 25)), lost: 0 }),
      o(topic, tcp, 'fishchat', 1, { ...line('fishchat', 'tcp', 20_000, procs(100, 0)), workload: 'topic' }),
      o(topic, sio, 'socketio', 1, { ...line('socketio', 'ws', 40_000, procs(100, 0)), workload: 'topic' }),
      o(p2p, tcp, 'fishchat', 2, { ...line('fishchat', 'tcp', 12_000, procs(100, 25)), otherCpuPct: 10 }),
      o(p2p, ws, 'fishchat', 2, null),
      o(p2p, sio, 'socketio', 2, line('socketio', 'ws', 4000, procs(100, 25))),
      o(topic, tcp, 'fishchat', 2, null),
      o(topic, sio, 'socketio', 2, null),
      o(p2p, tcp, 'fishchat', 3, { ...line('fishchat', 'tcp', 8000, procs(100, 25)), otherCpuPct: 20 }),
      o(p2p, ws, 'fishchat', 3, { ...line('fishchat', 'ws', 8500, procs(100, 50)), lost: 1 }),
      o(p2p, sio, 'socketio', 3, line('socketio', 'ws', 6000, procs(100, 25))),
      o(topic, tcp, 'fishchat', 3, null),
      o(topic, sio, 'socketio', 3, null),
    ];
    const rows = summarizeRounds(outcomes);
    assert.deepEqual(
      rows.map((r) => [configKey(r.config), r.label, r.ok, r.msgsPerSec]),
      [
        ['p2p, 100 pairs, inflight 1', tcp, 3, 10_000],
        ['p2p, 100 pairs, inflight 1', ws, 2, 8000],
        ['p2p, 100 pairs, inflight 1', sio, 3, 5000],
        ['topic, 1000 members, 2 pub, inflight 1', tcp, 1, 20_000],
        ['topic, 1000 members, 2 pub, inflight 1', sio, 1, 40_000],
      ],
    );
    const [t, w, s] = rows;
    assert.equal(t!.cpuUs, 125);
    assert.equal(t!.otherCpu, 20);
    assert.equal(s!.cpuUs, 250);
    assert.deepEqual(t!.vsSio, { msgsPerSec: 2, p99: 1, cpuUs: 0.5 });
    // ws: 7500 and 8500 → 8000; µs/msg 200 and 176.5 → 188.2; lost summed
    assert.equal(w!.lost, 3);
    assert.ok(Math.abs(w!.cpuUs! - (200 + 1.5e6 / 8500) / 2) < 1e-9);
    assert.equal(w!.vsSio!.msgsPerSec, 1.6);
    assert.equal(rows[3]!.vsSio!.msgsPerSec, 0.5, 'topic compares with the topic socket.io row');
    assert.equal(s!.vsSio, undefined);

    const table = formatTable(rows).trim().split('\n');
    assert.match(table[0]!, /CPU µs\/msg +msgs\/s vs sio +p99 vs sio +µs\/msg vs sio +lost +errors +other CPU %$/);
    const cells = (i: number) => table[i + 2]!.split(/ {2,}/).map((c) => c.trim());
    assert.deepEqual(cells(0).slice(2, 4), ['3/3', '10,000']);
    assert.deepEqual(cells(0).slice(-7), ['125', '2.00×', '1.00×', '0.50×', '0', '0', '20']);
    assert.deepEqual(cells(1).slice(2, 4), ['2/3', '8,000']);
    assert.deepEqual(cells(1).slice(-7), ['188', '1.60×', '1.00×', '0.75×', '3', '0', '-']);
    assert.deepEqual(cells(2).slice(-7), ['250', '1.00×', '1.00×', '1.00×', '0', '0', '-']);
    assert.match(table[5]!, /^topic, 1000 members/);

    const per = formatRounds(rows).trim().split('\n');
    assert.match(per[2]!, /10,000 \/ 12,000 \/ 8,000 +4\.00 \/ 4\.00 \/ 4\.00 +125 \/ 104 \/ 156 +37 \/ 10 \/ 20$/);
    assert.match(per[3]!, /7,500 \/ FAILED \/ 8,500/);
    assert.match(per[5]!, /20,000 \/ FAILED \/ FAILED/);
  });

  test('flags: lists of pairs and inflight, workloads, rounds; runs interleaved round after round', () => {
    const f = compareFlags(['--workloads', 'p2p,topic', '--pairs', '100', '--topic-members', '1000', '--rounds', '2']);
    assert.deepEqual(f.configs.map(configKey), [
      'p2p, 100 pairs, inflight 1',
      'p2p, 100 pairs, inflight 32',
      'topic, 1000 members, 2 pub, inflight 1',
    ]);
    const runs = runsFor(f);
    assert.equal(runs.length, 2 * 3 * 3);
    assert.deepEqual(
      runs.slice(0, 4).map((r) => [r.round, r.system, r.transport, configKey(r.config)]),
      [
        [1, 'fishchat', 'tcp', 'p2p, 100 pairs, inflight 1'],
        [1, 'fishchat', 'ws', 'p2p, 100 pairs, inflight 1'],
        [1, 'socketio', 'ws', 'p2p, 100 pairs, inflight 1'],
        [1, 'fishchat', 'tcp', 'p2p, 100 pairs, inflight 32'],
      ],
    );
    assert.equal(runs[9]!.round, 2);
    const topicRun = runs.find((r) => r.config.workload === 'topic' && r.system === 'socketio')!;
    assert.ok(topicRun.argv.join(' ').includes('--topic-members 1000 --publishers 2'));
    assert.ok(!topicRun.argv.includes('--cross') && !topicRun.argv.includes('--pairs'));
    const p2pRun = runs.find((r) => r.config.workload === 'p2p' && r.system === 'fishchat')!;
    assert.ok(p2pRun.argv.join(' ').includes('--cross --pairs 100'));
    assert.deepEqual(
      compareFlags([]).configs.map(configKey),
      ['p2p, 1000 pairs, inflight 1', 'p2p, 1000 pairs, inflight 32'],
      'the default: the goal rows (1000 pairs, inflight 1 and 32)',
    );
    assert.equal(compareFlags([]).rounds, 3);
    assert.throws(() => compareFlags(['--workloads', 'p2p,idle']), /--workloads: p2p or topic, found "idle"/);
    assert.throws(() => compareFlags(['--inflight', '1,x']), /--inflight: a positive integer/);
    assert.throws(() => compareFlags(['--rounds', '0']), /--rounds/);
    assert.throws(() => compareFlags(['--topic-members', '3', '--publishers', '4']), /publishers are members/);
    const soft = openFilesLimit()?.soft;
    if (soft !== undefined && Number.isFinite(soft) && soft < 100_000)
      assert.throws(
        () => compareFlags(['--workloads', 'topic', '--topic-members', String(soft)]),
        /open files per benchmark process/,
      );
  });
});

describe('socket.io peer: flags, as fishchat bench', () => {
  test('p2p by default, topic with --topic-members, and the mistakes fishchat bench refuses', () => {
    const p = peerFlags([]);
    assert.deepEqual([p.workload, p.pairs, p.topicMembers, p.publishers], ['p2p', 100, 0, 0]);
    const t = peerFlags(['--topic-members', '1000', '--publishers', '2', '--inflight', '4']);
    assert.deepEqual([t.workload, t.pairs, t.topicMembers, t.publishers, t.inflight], ['topic', 0, 1000, 2, 4]);
    assert.equal(peerFlags(['--topic-members', '10']).publishers, 1);
    assert.throws(() => peerFlags(['--pairs', '5', '--topic-members', '5']), /pick different workloads/);
    assert.throws(() => peerFlags(['--topic-members', '5', '--cross']), /--cross is for the p2p workload/);
    assert.throws(() => peerFlags(['--publishers', '2']), /--publishers is for the topic workload/);
    assert.throws(() => peerFlags(['--topic-members', '2', '--publishers', '3']), /publishers are members/);
    assert.throws(() => peerFlags(['--topic-members', 'x']), /--topic-members must be an integer/);
  });

  test('RLIMIT_NOFILE from /proc/self/limits text', () => {
    const text =
      'Limit                     Soft Limit           Hard Limit           Units\nMax open files            20000                40000                files\n';
    assert.deepEqual(openFilesLimit(text), { soft: 20000, hard: 40000 });
    assert.deepEqual(openFilesLimit('Max open files  unlimited  unlimited  files'), { soft: Infinity, hard: Infinity });
    assert.equal(openFilesLimit('nothing here'), undefined);
  });
});
