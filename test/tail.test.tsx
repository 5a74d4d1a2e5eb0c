/**
 * `fishchat tail` without a cluster: the Ink view (cli/ui/Tail.tsx) rendered
 * with ink-testing-library from a hand-fed TailStore (roles, beats, events,
 * keys, terminal sizes), the sparkline, and the SSE client
 * (runtime/client/events.ts) against a small local HTTP server.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { after, describe, test } from 'node:test';
// tsx and Bun may compile the JSX of test/ classically (React.createElement): React is needed as a value.
// biome-ignore lint/style/useImportType: see above
import React from 'react';
import { render } from 'ink-testing-library';
import { Tail } from '../cli/ui/Tail.js';
import { TailStore, type TailRole } from '../cli/ui/TailStore.js';
import { sparkline } from '../cli/ui/sparkline.js';
import { EventStream, EventStreamError, SseParser, type SseEvent } from '../runtime/client/events.js';
import type { StatusReport } from '../runtime/roles/monitor/roles.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
// eslint-disable-next-line no-control-regex
const strip = (s: string | undefined) => (s ?? '').replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '');

/** Polls until `f` holds (or throws after `ms`). */
async function until(f: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

type Instance = ReturnType<typeof render>;
const frame = (app: Instance) => strip(app.lastFrame());
async function waitFrame(app: Instance, test: (f: string) => boolean, what: string): Promise<string> {
  await until(() => test(frame(app)), `${what}; last frame:\n${frame(app)}`);
  return frame(app);
}

/** A clock tests move by hand. */
function clock(start = Date.UTC(2025, 0, 1, 12, 0, 0)) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

function role(over: Partial<TailRole> & { role: string; id: string }): StatusReport['roles'][number] {
  return {
    up: true,
    lastBeat: 0,
    pid: 100,
    boot: 'b1',
    uptime: 61,
    conns: 0,
    inRate: 0,
    outRate: 0,
    p50: 0.25,
    p99: 1.5,
    rss: 50 * 1024 * 1024,
    loop: 0,
    ...over,
  };
}

function seeded(c = clock()): TailStore {
  const store = new TailStore({ cluster: 'demo', monitor: '127.0.0.1:21000', now: c.now });
  store.seed({
    cluster: 'demo',
    ts: c.now(),
    roles: [
      role({ role: 'gateway', id: 'gateway', addr: '127.0.0.1:17000', lastBeat: c.now() }),
      role({
        role: 'msg_server',
        id: 'ms-19000',
        addr: '127.0.0.1:19000',
        conns: 3,
        inRate: 5,
        outRate: 6,
        lastBeat: c.now(),
      }),
      role({
        role: 'msg_server',
        id: 'ms-19001',
        addr: '127.0.0.1:19001',
        conns: 2,
        inRate: 1,
        outRate: 1,
        lastBeat: c.now(),
      }),
      role({ role: 'monitor', id: 'monitor', http: '127.0.0.1:21000', lastBeat: c.now() }),
    ],
  });
  store.setConnection({ state: 'live' });
  return store;
}

function beat(id: string, over: Record<string, unknown> = {}) {
  return {
    role: 'msg_server',
    id,
    addr: '127.0.0.1:19000',
    pid: 100,
    boot: 'b1',
    uptime: 70,
    conns: 3,
    inRate: 5,
    outRate: 6,
    p50: 0.25,
    p99: 1.5,
    rss: 52428800,
    loop: 0,
    ts: 0,
    ...over,
  };
}

function login(user: string, k = 'login', server = 'ms-19000') {
  return { k, user, device: 'phone', server, gen: 1, ts: Date.now() };
}

const apps: Instance[] = [];
function show(el: React.ReactElement): Instance {
  const app = render(el);
  apps.push(app);
  return app;
}
after(() => {
  for (const a of apps) a.unmount();
});

describe('Tail view', () => {
  test('shows the header, every role with its numbers, and the keys', () => {
    const app = show(<Tail store={seeded()} columns={120} rows={30} />);
    const f = frame(app);
    assert.match(f, /FishChat tail · demo/);
    assert.match(f, /● live/);
    assert.match(f, /4\/4 up · 5 conns/);
    for (const h of ['ROLE', 'ID', 'STATE', 'CONNS', 'IN/S', 'OUT/S', 'P50', 'P99', 'MEM'])
      assert.match(f, new RegExp(`\\b${h.replace('/', '\\/')}`), h);
    const ms = f.split('\n').find((l) => l.includes('ms-19000'))!;
    assert.match(ms, /msg_server\s+ms-19000\s+up\s+3\s+5\.0\b/);
    assert.match(ms, /0\.3ms|0\.2ms/);
    assert.match(ms, /1\.5ms/);
    assert.match(ms, /50\.0 MiB/);
    // gateway first, then the msg_servers, monitor last
    const table = f.slice(f.indexOf('ROLE'));
    const order = ['gateway ', 'ms-19000', 'ms-19001', 'monitor '].map((s) => table.indexOf(s));
    assert.deepEqual(
      [...order].sort((a, b) => a - b),
      order,
    );
    assert.match(f, /q quit\s+p pause\s+f filter/);
  });

  test('new beats change the numbers and grow the sparkline', async () => {
    const store = seeded();
    const app = show(<Tail store={store} columns={120} rows={30} />);
    const line = (f: string) => f.split('\n').find((l) => l.includes('ms-19000'))!;
    const before = line(frame(app));
    for (let i = 1; i <= 10; i++) store.beat(beat('ms-19000', { conns: 40 + i, inRate: i * 10, outRate: i * 12 }));
    const f = await waitFrame(app, (f) => line(f).includes(' 50 '), 'conns 50');
    const after = line(f);
    assert.notEqual(after, before);
    assert.match(after, /ms-19000\s+up\s+50\s+100\s/);
    assert.match(after, /\b120\b/);
    // a rising series: the bars go up to a full block
    const bars = after.match(/[▁▂▃▄▅▆▇█]{5,}/g) ?? [];
    assert.equal(bars.length, 2, `an in and an out sparkline in ${after}`);
    // in and out share a scale: out (120/s) is the top
    assert.match(bars[1]!, /█$/);
    assert.match(bars[0]!, /▇$/);
    for (const b of bars) assert.deepEqual([...b], [...b].sort(), `${b} rises`);
    assert.match(f, /52 conns · 101 in\/s · 121 out\/s/); // the header totals of the msg_servers follow
  });

  test('a new role, logins and topic events appear in the log with their times', async () => {
    const store = seeded();
    const app = show(<Tail store={store} columns={120} rows={30} />);
    store.beat(beat('ms-19002', { addr: '127.0.0.1:19002' }));
    store.clientStatus(login('alice'));
    store.clientStatus({ ...login('bob', 'kick', 'ms-19001'), reason: 'replaced' });
    store.topicStatus({ k: 'create', topic: 'general', user: 'alice', server: 'ms-19000', ts: Date.now() });
    store.topicStatus({ k: 'join', topic: 'general', user: 'carol', server: 'ms-19001', ts: Date.now() });
    const f = await waitFrame(app, (f) => f.includes('carol'), 'the join');
    assert.match(f, /\d\d:\d\d:\d\d {2}up {6}msg_server ms-19002 at 127\.0\.0\.1:19002/);
    assert.match(f, /\d\d:\d\d:\d\d {2}login {3}alice\/phone on ms-19000/);
    assert.match(f, /kick {4}bob\/phone on ms-19001: replaced/);
    assert.match(f, /create {2}#general by alice on ms-19000/);
    assert.match(f, /join {4}carol → #general on ms-19001/);
    assert.match(f, /events \(5\)/);
    // newest last
    assert.ok(f.indexOf('alice/phone') < f.indexOf('carol'));
  });

  test('a role whose beats stop turns down, and back up when they return', async () => {
    const c = clock();
    const store = seeded(c);
    const app = show(<Tail store={store} columns={120} rows={30} />);
    c.advance(2000);
    store.beat(beat('ms-19000'));
    store.beat(beat('ms-19001', { conns: 2 }));
    c.advance(7000);
    store.beat(beat('ms-19000'));
    store.tick();
    let f = await waitFrame(app, (f) => /ms-19001\s+down/.test(f), 'ms-19001 down');
    assert.match(f, /down {4}msg_server ms-19001: no beat for 7 s/);
    assert.match(f, /ms-19000\s+up/);
    store.beat(beat('ms-19001'));
    f = await waitFrame(app, (f) => /ms-19001\s+up/.test(f), 'ms-19001 up again');
    assert.match(f, /msg_server ms-19001 is beating again/);
  });

  test('p pauses the log (new events counted, not shown) and p resumes', async () => {
    const store = seeded();
    const app = show(<Tail store={store} columns={100} rows={24} />);
    store.clientStatus(login('alice'));
    await waitFrame(app, (f) => f.includes('alice/phone'), 'alice');
    app.stdin.write('p');
    await waitFrame(app, (f) => f.includes('paused (0 new)'), 'paused');
    store.clientStatus(login('bob'));
    store.clientStatus(login('carol', 'logout'));
    let f = await waitFrame(app, (f) => f.includes('paused (2 new)'), 'two new');
    assert.doesNotMatch(f, /bob|carol/);
    assert.match(f, /alice\/phone/);
    assert.match(f, /p resume/);
    // beats still update the table while the log is paused
    store.beat(beat('ms-19000', { conns: 77 }));
    f = await waitFrame(app, (f) => /ms-19000\s+up\s+77/.test(f), 'the table moves on');
    app.stdin.write('p');
    f = await waitFrame(app, (f) => f.includes('carol/phone'), 'resumed');
    assert.match(f, /login {3}bob\/phone/);
    assert.doesNotMatch(f, /paused/);
  });

  test('f filters the log: type, Enter applies, Esc clears', async () => {
    const store = seeded();
    const app = show(<Tail store={store} columns={100} rows={24} />);
    store.clientStatus(login('alice'));
    store.clientStatus(login('bob', 'login', 'ms-19001'));
    store.topicStatus({ k: 'join', topic: 'general', user: 'alice', server: 'ms-19000', ts: Date.now() });
    await waitFrame(app, (f) => f.includes('#general'), 'events');
    app.stdin.write('f');
    await waitFrame(app, (f) => f.includes('filter: '), 'the filter prompt');
    for (const ch of 'alicx') app.stdin.write(ch);
    app.stdin.write('\x7f'); // backspace
    app.stdin.write('e');
    await waitFrame(app, (f) => f.includes('filter: alice'), 'typed text');
    // while typing, q and p are text, not keys
    app.stdin.write('\r');
    let f = await waitFrame(app, (f) => f.includes('filter "alice"'), 'the filter applied');
    assert.doesNotMatch(f, /bob\/phone/);
    assert.match(f, /alice\/phone/);
    assert.match(f, /alice → #general/);
    assert.match(f, /Esc clear filter/);
    // a new matching event shows, a new other one does not
    store.clientStatus(login('dave'));
    store.clientStatus(login('alice', 'logout'));
    f = await waitFrame(app, (f) => /logout +alice/.test(f), 'alice logout');
    assert.doesNotMatch(f, /dave/);
    // filter by server
    app.stdin.write('f');
    await waitFrame(app, (f) => f.includes('filter: '), 'the prompt again');
    for (const ch of 'ms-19001') app.stdin.write(ch);
    app.stdin.write('\r');
    f = await waitFrame(app, (f) => f.includes('filter "ms-19001"'), 'the server filter');
    assert.match(f, /bob\/phone/);
    assert.doesNotMatch(f, /alice\/phone/);
    // Esc clears
    app.stdin.write('\x1b');
    f = await waitFrame(app, (f) => !f.includes('filter "'), 'the filter cleared');
    assert.match(f, /alice\/phone/);
    assert.match(f, /bob\/phone/);
    assert.match(f, /dave\/phone/);
  });

  test('Esc while typing a filter clears it; no match says so', async () => {
    const store = seeded();
    const app = show(<Tail store={store} columns={100} rows={24} initialFilter="zed" />);
    store.clientStatus(login('alice'));
    let f = await waitFrame(app, (f) => f.includes('events (1)'), 'the event');
    assert.match(f, /no events match "zed"/);
    app.stdin.write('f');
    await waitFrame(app, (f) => f.includes('filter: '), 'prompt');
    app.stdin.write('x');
    app.stdin.write('\x1b');
    f = await waitFrame(app, (f) => f.includes('alice/phone'), 'cleared');
    assert.doesNotMatch(f, /filter: |filter "|no events match/);
  });

  test('q calls the quit callback', async () => {
    let quit = 0;
    const app = show(<Tail store={seeded()} onQuit={() => quit++} columns={100} rows={24} />);
    app.stdin.write('x');
    app.stdin.write('q');
    await until(() => quit === 1, 'onQuit');
  });

  test('shows the stream state: connecting, reconnecting, live again', async () => {
    const store = new TailStore({ cluster: 'demo', monitor: '127.0.0.1:21000' });
    const app = show(<Tail store={store} columns={100} rows={24} />);
    assert.match(frame(app), /connecting…/);
    assert.match(frame(app), /waiting for the first beat/);
    store.setConnection({ state: 'live' });
    await waitFrame(app, (f) => f.includes('● live'), 'live');
    store.setConnection({ state: 'reconnecting', reason: 'ECONNRESET', retryInMs: 1500, attempt: 1 });
    let f = await waitFrame(app, (f) => f.includes('✕ reconnecting (attempt 1)'), 'reconnecting');
    assert.match(f, /lost the monitor \(ECONNRESET\); reconnecting/);
    store.setConnection({ state: 'live' });
    f = await waitFrame(app, (f) => f.includes('● live'), 'live again');
    assert.match(f, /reconnected to the monitor/);
  });

  test('adapts to the terminal: fewer columns and log lines, never wider than it', async () => {
    const store = seeded();
    for (let i = 0; i < 40; i++) store.clientStatus(login(`user${i}`));
    const sizes: [number, number][] = [
      [160, 50],
      [120, 35],
      [80, 24],
      [60, 16],
      [40, 10],
      [24, 6],
      [10, 3],
    ];
    const heights: number[] = [];
    for (const [columns, rows] of sizes) {
      const app = show(<Tail store={store} columns={columns} rows={rows} />);
      const lines = frame(app).split('\n');
      for (const l of lines)
        assert.ok([...l].length <= Math.max(20, columns), `${columns}x${rows}: "${l}" is ${[...l].length} wide`);
      if (rows >= 8) assert.ok(lines.length <= rows - 1, `${columns}x${rows}: ${lines.length} lines`);
      heights.push(lines.length);
      if (columns >= 120) {
        assert.match(lines[1]!, /P50.*P99.*MEM/);
      }
      if (columns <= 60) assert.doesNotMatch(lines[1]!, /P50/);
      assert.match(frame(app), /ms-19000/);
      app.unmount();
    }
    assert.ok(heights[0]! > heights[2]!, 'a taller terminal shows more log lines');
    // the newest events are the ones kept
    const small = show(<Tail store={store} columns={80} rows={12} />);
    assert.match(frame(small), /user39/);
    assert.doesNotMatch(frame(small), /user30\//);
  });

  test('many roles in a short terminal: the rest are counted', () => {
    const c = clock();
    const store = new TailStore({ cluster: 'big', now: c.now });
    store.seed({
      cluster: 'big',
      ts: c.now(),
      roles: Array.from({ length: 30 }, (_, i) =>
        role({ role: 'msg_server', id: `ms-${19000 + i}`, lastBeat: c.now() }),
      ),
    });
    const app = show(<Tail store={store} columns={100} rows={16} />);
    const f = frame(app);
    assert.match(f, /more roles/);
    assert.ok(f.split('\n').length <= 15);
  });

  test('follows terminal resizes of its output stream', async () => {
    const app = show(<Tail store={seeded()} />);
    // ink-testing-library's stdout is 100 columns wide
    assert.match(frame(app), /P99/);
    Object.defineProperty(app.stdout, 'columns', { get: () => 40, configurable: true });
    app.stdout.emit('resize');
    await waitFrame(app, (f) => !f.includes('P99'), 'the narrow layout');
  });
});

describe('sparkline', () => {
  test('one bar per value, scaled to the largest, right-aligned', () => {
    assert.equal(sparkline([0, 1, 2, 3, 4, 5, 6, 7], 8), '▁▂▃▄▅▆▇█');
    assert.equal(sparkline([5], 4), '   █');
    assert.equal(sparkline([0, 0], 3), ' ▁▁');
    assert.equal(sparkline([1, 100], 2), '▂█', 'a trickle is still above zero');
    assert.equal(sparkline([1, 2, 3, 4], 2), '▆█', 'only the last values');
    assert.equal(sparkline([4, 8], 2, 16), '▃▅', 'a given scale');
    assert.equal(sparkline([NaN, -1, 2], 3), '▁▁█');
    assert.equal(sparkline([1], 0), '');
  });
});

describe('SseParser', () => {
  test('events, multi-line data, comments, ids, any line ending, split chunks', () => {
    const p = new SseParser();
    const text =
      ': hello\n\nevent: beat\ndata: {"a":1}\n\nevent: x\r\ndata: one\r\ndata:two\r\nid: 7\r\n\r\ndata: plain\r\r\n';
    const out: SseEvent[] = [];
    // byte by byte, so every split point is tried
    for (const ch of text) out.push(...p.feed(ch));
    assert.deepEqual(out, [
      { event: 'beat', data: '{"a":1}' },
      { event: 'x', data: 'one\ntwo', id: '7' },
      { event: 'message', data: 'plain', id: '7' },
    ]);
    assert.deepEqual(p.feed('event: half\ndata: 1'), []);
    p.reset();
    assert.deepEqual(p.feed('\n\ndata: 2\n\n'), [{ event: 'message', data: '2', id: '7' }]);
  });
});

describe('EventStream', () => {
  const servers: Server[] = [];
  after(async () => {
    for (const s of servers) {
      s.closeAllConnections?.();
      await new Promise((r) => s.close(r));
    }
  });

  async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
    const server = createServer(handler);
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(server.address() as { port: number }).port}/events`;
  }

  test('reads events, reconnects with fresh headers after a drop, and stops on close()', async () => {
    let connections = 0;
    const auths: string[] = [];
    const url = await serve((req, res) => {
      connections++;
      auths.push(String(req.headers.authorization));
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': hi\n\n');
      res.write(`event: beat\ndata: {"n":${connections}}\n\n`);
      // the first stream drops after its event; the second stays open
      if (connections === 1) setTimeout(() => res.destroy(), 20);
    });
    const got: SseEvent[] = [];
    const opens: boolean[] = [];
    const drops: string[] = [];
    let n = 0;
    const stream = new EventStream(
      { url, headers: () => ({ authorization: `Bearer t${++n}` }), backoff: { base: 50, max: 100 } },
      {
        event: (e) => got.push(e),
        open: ({ reconnect }) => opens.push(reconnect),
        disconnect: ({ reason }) => drops.push(reason),
      },
    );
    await stream.open();
    assert.equal(stream.state, 'open');
    await until(() => got.length === 2, 'two events');
    assert.deepEqual(
      got.map((e) => [e.event, JSON.parse(e.data).n]),
      [
        ['beat', 1],
        ['beat', 2],
      ],
    );
    assert.deepEqual(opens, [false, true]);
    assert.equal(drops.length, 1);
    assert.deepEqual(auths, ['Bearer t1', 'Bearer t2']);
    stream.close();
    assert.equal(stream.state, 'closed');
    await sleep(150);
    assert.equal(connections, 2, 'no reconnect after close()');
  });

  test('the first attempt failing rejects: HTTP status and body, or the network reason', async () => {
    const url = await serve((_req, res) => {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end('{"error":{"code":"unauthorized","message":"admin token required"}}');
    });
    const refused = new EventStream({ url }, { event: () => {} });
    await assert.rejects(refused.open(), (err: unknown) => {
      assert.ok(err instanceof EventStreamError);
      assert.equal(err.status, 401);
      assert.match(err.body ?? '', /admin token required/);
      return true;
    });
    assert.equal(refused.state, 'closed');

    const free = createServer();
    await new Promise<void>((r) => free.listen(0, '127.0.0.1', r));
    const port = (free.address() as { port: number }).port;
    await new Promise((r) => free.close(r));
    const gone = new EventStream({ url: `http://127.0.0.1:${port}/events` }, { event: () => {} });
    await assert.rejects(gone.open(), (err: unknown) => {
      assert.ok(err instanceof EventStreamError);
      assert.equal(err.status, undefined);
      assert.match(err.message, /refused|ECONNREFUSED|connect/i);
      return true;
    });
  });

  test('a silent stream is taken as dead and reconnected', async () => {
    let connections = 0;
    const url = await serve((_req, res) => {
      connections++;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`data: ${connections}\n\n`);
      // then nothing at all
    });
    const drops: string[] = [];
    const stream = new EventStream(
      { url, idleTimeoutMs: 150, backoff: { base: 20, max: 50 } },
      { event: () => {}, disconnect: ({ reason }) => drops.push(reason) },
    );
    await stream.open();
    await until(() => connections >= 2, 'a reconnect after silence');
    stream.close();
    assert.match(drops[0]!, /no data for/);
  });
});
