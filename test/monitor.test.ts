/**
 * The monitor role over real HTTP on 127.0.0.1 (Node: @hono/node-server,
 * Bun: Bun.serve): beats → /status up and down, /metrics checked line by line
 * by a Prometheus text parser, /events read as a stream, admin auth.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ReadableStreamDefaultReader } from 'node:stream/web';
import { after, before, describe, it } from 'node:test';
import { Hono } from 'hono';
import { channels } from '../runtime/bus/bus.js';
import { createMemoryBus } from '../runtime/bus/memory.js';
import { encodeItems, type Beat, type ClientStatusItem, type TopicStatusItem } from '../runtime/bus/payloads.js';
import { DEFAULT_SETTINGS, type Settings } from '../runtime/cluster/config.js';
import type { RoleContext, RoleHandle } from '../runtime/contract/context.js';
import { getPlatform } from '../runtime/platform/index.js';
import { signToken } from '../runtime/protocol/token.js';
import { startMonitor } from '../runtime/roles/monitor/index.js';
import { EventHub } from '../runtime/roles/monitor/events.js';
import { escapeLabelValue, writeMetrics } from '../runtime/metrics/prometheus.js';
import { openSqliteStore } from '../runtime/store/sqlite/index.js';
import type { Store } from '../runtime/store/store.js';
import { sleep, untilValue } from './helpers/wait.js';

const BEAT = 100;
const SECRET = 'monitor-test-secret';
const ADMIN = signToken(SECRET, 'admin', { admin: true });

let dir: string;
let store: Store;
let ctx: RoleContext;
let monitor: RoleHandle;
let base: string;

/** GET with an admin token by default; `null`: no token. */
function get(path: string, token: string | null = ADMIN, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(base + path, { headers: token === null ? headers : { authorization: `Bearer ${token}`, ...headers } });
}

function beat(role: string, id: string, extra: Partial<Beat> = {}): Beat {
  return {
    role,
    id,
    pid: 4242,
    boot: 'b1',
    uptime: 7,
    conns: 3,
    inRate: 10,
    outRate: 20,
    p50: 1.5,
    p99: 9.25,
    rss: 123456,
    loop: 0.5,
    ts: Date.now(),
    ...extra,
  };
}

function publish(channel: string, ...items: unknown[]): void {
  ctx.bus.publish(channel, encodeItems(items));
}

interface StatusRole {
  role: string;
  id: string;
  up: boolean;
  lastBeat: number;
  conns: number;
  addr?: string;
  p99: number;
}

async function status(): Promise<{ cluster: string; ts: number; roles: StatusRole[] }> {
  const res = await get('/status');
  assert.equal(res.status, 200);
  return (await res.json()) as { cluster: string; ts: number; roles: StatusRole[] };
}

async function roleState(role: string, id: string): Promise<StatusRole | undefined> {
  return (await status()).roles.find((r) => r.role === role && r.id === id);
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fishchat-monitor-'));
  const platform = await getPlatform();
  const settings: Settings = { ...DEFAULT_SETTINGS, beat: BEAT };
  store = await openSqliteStore(platform.openSqlite(join(dir, 'fishchat.db')));
  const log = { info: () => {}, warn: () => {}, error: () => {} };
  ctx = {
    cluster: 'mon',
    channels: channels('mon'),
    settings,
    auth: { mode: 'token', secret: SECRET },
    bus: createMemoryBus(),
    store,
    platform,
    log,
  };
  monitor = await startMonitor(ctx, { role: 'monitor', id: 'monitor', httpHost: '127.0.0.1', httpPort: 0 });
  base = `http://${monitor.addresses.http}`;
});

after(async () => {
  await monitor.stop();
  await ctx.bus.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------
// A Prometheus text format 0.0.4 parser strict enough to catch a bad line.

interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}
interface PromFamily {
  help?: string;
  type?: string;
  samples: PromSample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const FLOAT = /^[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|Inf|NaN)$/;

function parseValue(s: string, line: number): number {
  assert.match(s, FLOAT, `line ${line}: bad value ${JSON.stringify(s)}`);
  if (s === 'NaN') return NaN;
  if (s.endsWith('Inf')) return s.startsWith('-') ? -Infinity : Infinity;
  return Number(s);
}

function unescapeSse(s: string, allowQuote: boolean, line: number): string {
  return s.replace(/\\(.)/g, (_m, c: string) => {
    if (c === 'n') return '\n';
    if (c === '\\') return '\\';
    if (c === '"' && allowQuote) return '"';
    assert.fail(`line ${line}: bad escape \\${c}`);
  });
}

function parseSample(text: string, line: number): PromSample {
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(text);
  assert.ok(m, `line ${line}: no metric name: ${text}`);
  const name = m[1]!;
  let i = name.length;
  const labels: Record<string, string> = {};
  if (text[i] === '{') {
    i++;
    while (text[i] !== '}') {
      const lm = /^([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(text.slice(i));
      assert.ok(lm, `line ${line}: bad label at ${JSON.stringify(text.slice(i))}`);
      const lname = lm[1]!;
      assert.ok(!(lname in labels), `line ${line}: label ${lname} repeated`);
      i += lm[0].length;
      let raw = '';
      for (;;) {
        const c = text[i];
        assert.ok(c !== undefined, `line ${line}: unterminated label value`);
        if (c === '"') break;
        if (c === '\\') {
          raw += c + (text[i + 1] ?? '');
          i += 2;
        } else {
          raw += c;
          i++;
        }
      }
      i++; // closing quote
      labels[lname] = unescapeSse(raw, true, line);
      if (text[i] === ',') i++;
      else assert.equal(text[i], '}', `line ${line}: expected , or } after a label`);
    }
    i++;
  }
  const rest = text.slice(i);
  const vm = /^ (\S+)(?: (-?\d+))?$/.exec(rest);
  assert.ok(vm, `line ${line}: bad value/timestamp part ${JSON.stringify(rest)}`);
  return { name, labels, value: parseValue(vm[1]!, line) };
}

/** Parses an exposition body, asserting every line is valid; returns the families. */
function parseProm(body: string): Map<string, PromFamily> {
  assert.ok(body.endsWith('\n'), 'the body ends with a line feed');
  const fams = new Map<string, PromFamily>();
  const done = new Set<string>();
  let current: string | undefined;
  const fam = (name: string) => {
    let f = fams.get(name);
    if (!f) fams.set(name, (f = { samples: [] }));
    return f;
  };
  const enter = (name: string, line: number) => {
    if (current === name) return;
    assert.ok(!done.has(name), `line ${line}: family ${name} is not contiguous`);
    if (current !== undefined) done.add(current);
    current = name;
  };
  body
    .slice(0, -1)
    .split('\n')
    .forEach((text, idx) => {
      const line = idx + 1;
      assert.ok(!text.includes('\r'), `line ${line}: carriage return`);
      assert.notEqual(text.trim(), '', `line ${line}: blank line`);
      if (text.startsWith('#')) {
        const hm = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(text);
        if (!hm) return; // a plain comment
        const [, kind, name, rest] = hm as unknown as [string, string, string, string];
        assert.match(name, METRIC_NAME, `line ${line}: bad metric name`);
        enter(name, line);
        const f = fam(name);
        if (kind === 'HELP') {
          assert.equal(f.help, undefined, `line ${line}: second HELP for ${name}`);
          f.help = unescapeSse(rest, false, line);
        } else {
          assert.equal(f.type, undefined, `line ${line}: second TYPE for ${name}`);
          assert.equal(f.samples.length, 0, `line ${line}: TYPE after samples of ${name}`);
          assert.match(rest, /^(counter|gauge|histogram|summary|untyped)$/, `line ${line}: bad type`);
          f.type = rest;
        }
        return;
      }
      const s = parseSample(text, line);
      for (const k of Object.keys(s.labels)) assert.match(k, LABEL_NAME);
      enter(s.name, line);
      fam(s.name).samples.push(s);
    });
  return fams;
}

function sampleOf(f: PromFamily | undefined, labels: Record<string, string>): number | undefined {
  return f?.samples.find(
    (s) =>
      Object.entries(labels).every(([k, v]) => s.labels[k] === v) &&
      Object.keys(s.labels).length === Object.keys(labels).length,
  )?.value;
}

// ---------------------------------------------------------------------------

describe('admin auth', () => {
  for (const [what, token, header] of [
    ['no token', null, undefined],
    ['a token signed with another secret', signToken('not-the-secret', 'admin', { admin: true }), undefined],
    ['a non-admin token', signToken(SECRET, 'alice'), undefined],
    ['an expired admin token', signToken(SECRET, 'admin', { admin: true, ttlSeconds: -3600 }), undefined],
    ['a Basic header', null, 'Basic YWRtaW46YWRtaW4='],
  ] as const) {
    it(`refuses ${what} with 401 auth_failed`, async () => {
      for (const path of ['/status', '/events']) {
        const res = await get(path, token, header ? { authorization: header } : {});
        assert.equal(res.status, 401, path);
        const body = (await res.json()) as { error: { code: string; message: string } };
        assert.equal(body.error.code, 'auth_failed');
        assert.equal(typeof body.error.message, 'string');
        assert.ok(body.error.message.length > 0);
      }
    });
  }

  it('lets an admin token through; /health and /metrics are open', async () => {
    assert.equal((await get('/status')).status, 200);
    const health = await get('/health', null);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { ok: true, role: 'monitor', id: 'monitor' });
    const metrics = await get('/metrics', null);
    assert.equal(metrics.status, 200);
    await metrics.text();
  });

  it('answers an unknown path with a JSON 404', async () => {
    const res = await get('/nope', null);
    assert.equal(res.status, 404);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'not_found');
  });
});

describe('/status', () => {
  it('shows beating roles up, itself included, and a silent one down within 3 beats', async () => {
    const ch = ctx.channels.monitor;
    let beating = true;
    const timer = setInterval(() => {
      publish(
        ch,
        beat('gateway', 'gw-1', { addr: '127.0.0.1:17000' }),
        ...(beating ? [beat('msg_server', 'ms-a', { addr: '127.0.0.1:19000', conns: 5 })] : []),
      );
    }, BEAT);
    try {
      const s = await untilValue(
        async () => {
          const st = await status();
          const ok = ['gateway/gw-1', 'msg_server/ms-a', 'monitor/monitor'].every(
            (k) => st.roles.find((r) => `${r.role}/${r.id}` === k)?.up,
          );
          return ok && st;
        },
        2000,
        'three roles up',
      );
      assert.equal(s.cluster, 'mon');
      assert.ok(Math.abs(s.ts - Date.now()) < 5000);
      const ms = s.roles.find((r) => r.id === 'ms-a')!;
      assert.equal(ms.conns, 5);
      assert.equal(ms.addr, '127.0.0.1:19000');
      assert.equal(ms.p99, 9.25);
      for (const key of [
        'role',
        'id',
        'up',
        'lastBeat',
        'pid',
        'uptime',
        'conns',
        'inRate',
        'outRate',
        'p50',
        'p99',
        'rss',
        'loop',
      ]) {
        assert.ok(key in ms, `status role has ${key}`);
      }

      beating = false;
      const stoppedAt = Date.now();
      await sleep(BEAT);
      assert.equal((await roleState('msg_server', 'ms-a'))?.up, true, 'still up one beat after its last');
      await untilValue(async () => (await roleState('msg_server', 'ms-a'))?.up === false, 2000, 'ms-a down');
      const took = Date.now() - stoppedAt;
      assert.ok(took <= 3 * BEAT + 2 * BEAT, `down after ${took} ms (3 beats = ${3 * BEAT} ms)`);
      // The others stay up, and the silent one stays listed.
      const st = await status();
      assert.equal(st.roles.find((r) => r.id === 'gw-1')?.up, true);
      assert.equal(st.roles.find((r) => r.id === 'monitor')?.up, true);
      assert.ok(st.roles.some((r) => r.id === 'ms-a' && !r.up));
    } finally {
      clearInterval(timer);
    }
  });

  it('ignores items that are not beats', async () => {
    publish(ctx.channels.monitor, 'junk', 42, null, { role: 'x' }, { id: 'y' }, { role: '', id: 'z' });
    ctx.bus.publish(ctx.channels.monitor, Uint8Array.of(0xff, 0x00, 0x13));
    await sleep(20);
    const st = await status();
    assert.ok(!st.roles.some((r) => r.role === 'x' || r.id === 'y' || r.id === 'z'));
  });
});

describe('/metrics', () => {
  it('is valid Prometheus text 0.0.4 with every fishchat_ gauge, labels escaped', async () => {
    const weird = 'we"ird\\id\nnext';
    publish(
      ctx.channels.monitor,
      beat('msg_server', weird, {
        conns: 11,
        inRate: 3,
        outRate: 4,
        p50: 0.25,
        p99: 7,
        rss: 99,
        loop: 1.25,
        uptime: 60,
      }),
      beat('router', 'r-1'),
    );
    await untilValue(async () => (await roleState('msg_server', weird))?.up, 2000, 'weird beat');
    const res = await get('/metrics', null);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const body = await res.text();
    const fams = parseProm(body);

    const names = [
      'fishchat_up',
      'fishchat_connections',
      'fishchat_messages_in_per_second',
      'fishchat_messages_out_per_second',
      'fishchat_latency_ms',
      'fishchat_rss_bytes',
      'fishchat_event_loop_delay_ms',
      'fishchat_uptime_seconds',
    ];
    for (const n of names) {
      const f = fams.get(n);
      assert.ok(f, `family ${n}`);
      assert.ok(f.help && f.help.length > 0, `HELP of ${n}`);
      assert.equal(f.type, 'gauge', `TYPE of ${n}`);
      assert.ok(f.samples.length > 0, `samples of ${n}`);
      for (const s of f.samples)
        assert.ok(typeof s.labels.role === 'string' && typeof s.labels.id === 'string', `${n} has role and id labels`);
    }
    const w = { role: 'msg_server', id: weird };
    assert.equal(sampleOf(fams.get('fishchat_up'), w), 1);
    assert.equal(sampleOf(fams.get('fishchat_connections'), w), 11);
    assert.equal(sampleOf(fams.get('fishchat_messages_in_per_second'), w), 3);
    assert.equal(sampleOf(fams.get('fishchat_messages_out_per_second'), w), 4);
    assert.equal(sampleOf(fams.get('fishchat_latency_ms'), { ...w, quantile: '0.5' }), 0.25);
    assert.equal(sampleOf(fams.get('fishchat_latency_ms'), { ...w, quantile: '0.99' }), 7);
    assert.equal(sampleOf(fams.get('fishchat_rss_bytes'), w), 99);
    assert.equal(sampleOf(fams.get('fishchat_event_loop_delay_ms'), w), 1.25);
    assert.equal(sampleOf(fams.get('fishchat_uptime_seconds'), w), 60);
    assert.ok(body.includes(`id="${escapeLabelValue(weird)}"`));
    assert.ok(body.includes('id="we\\"ird\\\\id\\nnext"'));
    // ms-a stopped beating in the /status test: listed as down, with no stale numbers.
    assert.equal(sampleOf(fams.get('fishchat_up'), { role: 'msg_server', id: 'ms-a' }), 0);
    assert.equal(sampleOf(fams.get('fishchat_connections'), { role: 'msg_server', id: 'ms-a' }), undefined);
  });

  it('the writer escapes HELP text and writes special values', () => {
    const text = writeMetrics([
      {
        name: 'x_total',
        help: 'a \\ back\nslash',
        type: 'counter',
        samples: [{ value: NaN }, { labels: { a: '"' }, value: Infinity }, { labels: { a: 'b' }, value: -Infinity }],
      },
    ]);
    assert.equal(
      text,
      '# HELP x_total a \\\\ back\\nslash\n# TYPE x_total counter\nx_total NaN\nx_total{a="\\""} +Inf\nx_total{a="b"} -Inf\n',
    );
    const f = parseProm(text).get('x_total')!;
    assert.equal(f.help, 'a \\ back\nslash');
    assert.equal(f.samples[1]!.labels.a, '"');
    assert.throws(() => writeMetrics([{ name: 'bad-name', help: '', type: 'gauge', samples: [] }]));
    assert.throws(() =>
      writeMetrics([{ name: 'ok', help: '', type: 'gauge', samples: [{ labels: { 'bad-label': 'v' }, value: 1 }] }]),
    );
  });
});

// ---------------------------------------------------------------------------

/** Reads server-sent events off a fetch() body. */
class SseReader {
  private buf = '';
  private readonly decoder = new TextDecoder();
  readonly comments: string[] = [];

  constructor(private readonly reader: ReadableStreamDefaultReader<Uint8Array>) {}

  /** The next event (comments are collected on the side). */
  async next(ms = 3000): Promise<{ event: string; data: string }> {
    const end = Date.now() + ms;
    for (;;) {
      const cut = this.buf.indexOf('\n\n');
      if (cut >= 0) {
        const block = this.buf.slice(0, cut);
        this.buf = this.buf.slice(cut + 2);
        let event = 'message';
        const data: string[] = [];
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) this.comments.push(line.slice(1).trim());
          else if (line.startsWith('event: ')) event = line.slice(7);
          else if (line.startsWith('data: ')) data.push(line.slice(6));
        }
        if (data.length > 0) return { event, data: data.join('\n') };
        continue;
      }
      const left = end - Date.now();
      if (left <= 0) throw new Error('timed out waiting for an event');
      let timer: ReturnType<typeof setTimeout> | undefined;
      const r = await Promise.race([
        this.reader.read(),
        new Promise<never>((_, rej) => {
          timer = setTimeout(() => rej(new Error('timed out waiting for an event')), left);
        }),
      ]).finally(() => clearTimeout(timer));
      if (r.done) throw new Error('the event stream ended');
      this.buf += this.decoder.decode(r.value, { stream: true });
    }
  }

  /** The next event named `event` whose data passes `match`. */
  async find(
    event: string,
    match: (data: Record<string, unknown>) => boolean,
    ms = 3000,
  ): Promise<Record<string, unknown>> {
    const end = Date.now() + ms;
    for (;;) {
      const e = await this.next(Math.max(1, end - Date.now()));
      if (e.event !== event) continue;
      const data = JSON.parse(e.data) as Record<string, unknown>;
      if (match(data)) return data;
    }
  }
}

describe('/events', () => {
  it('streams beats, client-status and topic-status as server-sent events, and lets go on disconnect', async () => {
    const res = await get('/events');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const sse = new SseReader(res.body!.getReader());

    const login: ClientStatusItem = {
      k: 'login',
      user: 'alice',
      device: 'phone',
      server: 'ms-0',
      gen: 3,
      ts: Date.now(),
    };
    const join: TopicStatusItem = { k: 'join', topic: 'general', user: 'alice', server: 'ms-0', ts: Date.now() };
    // Beats arrive on their own (the monitor's own at least); events once published.
    const b = await sse.find('beat', (d) => d.role === 'monitor');
    assert.equal(b.id, 'monitor');
    assert.equal(typeof b.lastBeat, 'number');
    publish(ctx.channels.clientStatus, login);
    publish(ctx.channels.topicStatus, join);
    publish(ctx.channels.monitor, beat('gateway', 'gw-sse'));
    assert.deepEqual(await sse.find('client-status', (d) => d.user === 'alice'), login);
    assert.deepEqual(await sse.find('topic-status', (d) => d.topic === 'general'), join);
    const gw = await sse.find('beat', (d) => d.id === 'gw-sse');
    assert.equal(gw.role, 'gateway');
    assert.ok(sse.comments.length >= 1, 'an opening comment');

    // The monitor counts its readers in its beat's conns: 1 now, 0 once we go.
    await untilValue(async () => (await roleState('monitor', 'monitor'))?.conns === 1, 2000, 'monitor conns = 1');
    await (sse as unknown as { reader: ReadableStreamDefaultReader }).reader.cancel();
    const gone = async () => (await roleState('monitor', 'monitor'))?.conns === 0;
    await untilValue(gone, 3000, 'monitor conns = 0 after disconnect');
  });

  it('a slow reader loses its oldest events, is told so, and its queue stays bounded', async () => {
    const hub = new EventHub(60_000, 5);
    const app = new Hono();
    app.get('/e', (c) => hub.serve(c));
    const res = await app.request('/e');
    const sse = new SseReader(res.body!.getReader());
    // Wait until the stream loop is waiting for events.
    await untilValue(async () => hub.size === 1 && (await sleep(20), true), 1000, 'reader registered');
    for (let i = 1; i <= 50; i++) hub.publish('beat', { i });
    const got: number[] = [];
    while (got.length < 5) got.push((JSON.parse((await sse.next()).data) as { i: number }).i);
    assert.deepEqual(got, [46, 47, 48, 49, 50]);
    assert.ok(
      sse.comments.some((c) => /45 events dropped/.test(c)),
      JSON.stringify(sse.comments),
    );
    await (sse as unknown as { reader: ReadableStreamDefaultReader }).reader.cancel();
    await untilValue(async () => hub.size === 0, 1000, 'reader removed after cancel');
  });

  it('sends a heartbeat comment when there is nothing to say', async () => {
    const hub = new EventHub(50, 5);
    const app = new Hono();
    app.get('/e', (c) => hub.serve(c));
    const res = await app.request('/e');
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    let text = '';
    const end = Date.now() + 2000;
    while (!text.includes(': heartbeat\n\n') && Date.now() < end) {
      const r = await reader.read();
      if (r.done) break;
      text += dec.decode(r.value, { stream: true });
    }
    assert.ok(text.includes(': heartbeat\n\n'), text);
    await reader.cancel();
    await untilValue(async () => hub.size === 0, 1000, 'reader removed');
    hub.closeAll();
  });
});
