/**
 * A client host's load: many FishChat clients in one process, run inside a
 * namespace by test/multihost.test.ts (`node --import tsx netns-agent.ts`).
 * It reaches the msg_servers only through what the gateway hands out
 * (GATEWAY, GATEWAY_HTTP), signs tokens with SECRET, takes one JSON command
 * per stdin line and writes one JSON event per stdout line.
 *
 * Two kinds of client:
 * - "client": the library's FishChatClient over TCP or WebSocket (routes
 *   through the gateway at every (re)connect — over WebSocket with GET
 *   /v1/route, as a browser does — heartbeat, reconnect with the gateway's
 *   backoff, catch-up after a reconnect, autoAck).
 * - "raw": the wire protocol by hand over TCP or WebSocket, logged in on the
 *   route entry with a given id (`pick`) — so a test knows which host it is on.
 *
 * Commands (each may carry an `id`, answered with {ev:"done", id} or
 * {ev:"fail", id, error}):
 *   {cmd:"login", users, kind: "client"|"raw", transport?: "tcp"|"ws"|"alternate", pick?, spacingMs?, requestTimeoutMs?}
 *   {cmd:"send", from, to, n, tag}             n messages, one after the other, each acked
 *   {cmd:"load", pairs:[[from,to]…], tag, intervalMs}   until {cmd:"stop"}; then {ev:"loaded"}
 *   {cmd:"topic", user, op:"create"|"join"|"send", topic, n?, tag?}
 *   {cmd:"report"}                             {ev:"report", got:{user:[[from, tag, i, seq, topic]…]}, where}
 *   {cmd:"exit"}
 * Unasked events: {ev:"login"|"reconnect", user, server, t}, {ev:"disconnect", user, reason, t}, {ev:"kick", user, reason, t}.
 * Every send carries the cid `tag:from:i`, and is retried with it until
 * acked (at most RETRY_FOR_MS), so a retry after a lost reply stores nothing twice.
 */
import { createInterface } from 'node:readline';
import WebSocket from 'ws';
import { Connection, FishChatClient, type Frame, type Msg } from '../../runtime/client/index.js';
import { RawCbor } from '../../runtime/protocol/cbor.js';
import { decodeFrame, encodeBody } from '../../runtime/protocol/decode.js';
import { encodeFrame } from '../../runtime/protocol/frame.js';
import { signToken } from '../../runtime/protocol/token.js';

const GATEWAY = process.env.GATEWAY!;
const GATEWAY_HTTP = process.env.GATEWAY_HTTP!;
const SECRET = process.env.SECRET!;
const RETRY_FOR_MS = 30_000;
const REQUEST_MS = 3000;
const RAW_PING_MS = 400;

const out = (ev: Record<string, unknown>) => process.stdout.write(`${JSON.stringify({ ...ev, t: Date.now() })}\n`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const token = (user: string) => signToken(SECRET, user, { ttlSeconds: 3600 });

/** What every user received: [from, tag, i, seq, topic]. */
const got = new Map<string, [string, string, number, number, string | null][]>();
function record(user: string, m: { from: string; body: unknown; seq: number; topic?: string }): void {
  const b = m.body as { tag?: string; i?: number } | null;
  let list = got.get(user);
  if (!list) got.set(user, (list = []));
  list.push([m.from, String(b?.tag), Number(b?.i), m.seq, m.topic ?? null]);
}

/** One session, whichever kind: what the commands need. */
interface Session {
  user: string;
  server: string;
  request(op: string, fields: Record<string, unknown>): Promise<Frame>;
  /** resolves once the session can take a request again (a FishChatClient reconnecting) */
  ready(deadline: number): Promise<void>;
  close(): Promise<void>;
}
const sessions = new Map<string, Session>();

// --------------------------------------------------------------- FishChatClient

async function loginClient(user: string, transport: 'tcp' | 'ws', requestTimeoutMs: number): Promise<Session> {
  // Over WebSocket the client routes as a browser does: GET /v1/route on the gateway's HTTP port.
  const c = await FishChatClient.connect({
    gateway: transport === 'ws' ? `http://${GATEWAY_HTTP}` : GATEWAY,
    transport,
    user,
    token: () => token(user),
    autoAck: true,
    requestTimeoutMs,
  });
  const s: Session = {
    user,
    server: c.login.server,
    request: (op, fields) => c.request(op, fields as never),
    async ready(deadline) {
      while (!c.connected) {
        if (Date.now() > deadline || c.closed) throw new Error(`${user}: not connected again in time`);
        await sleep(10);
      }
    },
    close: () => c.close(),
  };
  c.on('message', (m: Msg) => record(user, m));
  c.on('disconnect', (d) => out({ ev: 'disconnect', user, reason: d.reason, again: d.willReconnect }));
  c.on('kick', (k) => out({ ev: 'kick', user, reason: k.reason }));
  c.on('reconnect', (info) => {
    s.server = info.server;
    out({ ev: 'reconnect', user, server: info.server });
  });
  c.on('error', () => undefined);
  return s;
}

// --------------------------------------------------------------- the raw protocol

type Entry = { id: string; addr: string; ws?: string };

async function routeEntries(transport: 'tcp' | 'ws', user: string): Promise<Entry[]> {
  if (transport === 'ws') {
    const res = await fetch(`http://${GATEWAY_HTTP}/v1/route?user=${user}`, {
      signal: AbortSignal.timeout(REQUEST_MS),
    });
    if (!res.ok) throw new Error(`GET /v1/route: HTTP ${res.status} ${await res.text()}`);
    return ((await res.json()) as { servers: Entry[] }).servers;
  }
  const conn = await Connection.open(GATEWAY, { requestTimeoutMs: REQUEST_MS });
  try {
    return (await conn.request('route', { user })).servers as Entry[];
  } finally {
    conn.end();
  }
}

async function loginRaw(user: string, transport: 'tcp' | 'ws', pick: string | undefined): Promise<Session> {
  const entries = await routeEntries(transport, user);
  const e = pick === undefined ? entries[0] : entries.find((x) => x.id === pick);
  if (!e) throw new Error(`the gateway's route for ${user} has no ${pick ?? 'server'}: ${JSON.stringify(entries)}`);
  const onPush = (f: Frame, ack: (seq: number) => void) => {
    if (f.op !== 'msg') return;
    record(user, f as unknown as Msg);
    ack(f.seq as number);
  };
  const onClose = () => {
    clearInterval(pinger);
    out({ ev: 'disconnect', user, reason: 'closed' });
  };
  let pinger: ReturnType<typeof setInterval> | undefined;
  let request: Session['request'];
  let close: () => void;
  if (transport === 'ws') {
    if (!e.ws) throw new Error(`the route entry ${e.id} has no ws URL`);
    const url = e.ws;
    const ws = new WebSocket(url, { perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no WebSocket to ${url} in time`)), REQUEST_MS);
      ws.once('open', () => (clearTimeout(t), resolve()));
      ws.once('error', (err) => (clearTimeout(t), reject(err)));
    });
    const pending = new Map<number, { resolve: (f: Frame) => void; reject: (e: Error) => void }>();
    let rid = 1;
    const write = (m: Record<string, unknown>) => ws.send(encodeFrame(m as never).subarray(4), { binary: true });
    ws.on('message', (data: Buffer) => {
      const f = decodeFrame(new Uint8Array(data)) as Frame;
      const p = typeof f.rid === 'number' ? pending.get(f.rid) : undefined;
      if (f.rid === undefined) onPush(f, (seq) => write({ op: 'ack', seq }));
      else if (p && f.op !== 'msg') {
        pending.delete(f.rid);
        if (f.op === 'error') p.reject(new Error(`${f.code}: ${f.message}`));
        else p.resolve(f);
      }
    });
    ws.on('close', () => {
      for (const p of pending.values()) p.reject(new Error('connection closed'));
      pending.clear();
      onClose();
    });
    ws.on('error', () => undefined);
    request = (op, fields) =>
      new Promise<Frame>((resolve, reject) => {
        const r = rid++;
        const t = setTimeout(() => {
          pending.delete(r);
          reject(new Error(`no reply to ${op} in time`));
        }, REQUEST_MS);
        pending.set(r, {
          resolve: (f) => (clearTimeout(t), resolve(f)),
          reject: (err) => (clearTimeout(t), reject(err)),
        });
        write({ ...fields, op, rid: r });
      });
    close = () => ws.close();
  } else {
    let conn: Connection | undefined;
    conn = await Connection.open(e.addr, {
      requestTimeoutMs: REQUEST_MS,
      onPush: (f) => onPush(f, (seq) => conn?.send('ack', { seq })),
      onClose,
    });
    const c = conn;
    request = (op, fields) => c.request(op, fields as never);
    close = () => c.end();
  }
  const ok = await request('login', { user, token: token(user) });
  // The server closes a connection silent for 2.5 heartbeats: ping as the library does.
  pinger = setInterval(() => void request('ping', {}).catch(() => undefined), RAW_PING_MS);
  pinger.unref();
  return {
    user,
    server: String(ok.server),
    request,
    async ready() {},
    async close() {
      clearInterval(pinger);
      await request('logout', {}).catch(() => undefined);
      close();
    },
  };
}

// --------------------------------------------------------------- commands

function session(user: string): Session {
  const s = sessions.get(user);
  if (!s) throw new Error(`no session of ${user}`);
  return s;
}

/** One message, acked: retried with the same cid until it is (or RETRY_FOR_MS passes). */
async function sendAcked(s: Session, op: 'send' | 'topic_send', target: string, tag: string, i: number) {
  const deadline = Date.now() + RETRY_FOR_MS;
  const fields = {
    [op === 'send' ? 'to' : 'topic']: target,
    body: new RawCbor(encodeBody({ tag, i })),
    cid: `${tag}:${s.user}:${i}`,
  };
  let tries = 0;
  for (;;) {
    tries++;
    try {
      await s.ready(deadline);
      const r = await s.request(op, fields);
      return { seq: r.seq ?? r.tseq, tries };
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${s.user} ${op} ${tag}:${i} not acked: ${(err as Error).message}`);
      await sleep(20);
    }
  }
}

interface Load {
  stop: boolean;
  runs: Promise<void>[];
  acked: Map<string, number>;
  retried: number;
}
let loading: Load | undefined;

async function handle(c: Record<string, unknown>): Promise<void> {
  switch (c.cmd) {
    case 'login': {
      const users = c.users as string[];
      for (const [i, user] of users.entries()) {
        // "alternate": every other user over WebSocket
        const transport =
          c.transport === 'alternate' ? (i % 2 ? 'ws' : 'tcp') : ((c.transport as 'tcp' | 'ws') ?? 'tcp');
        const s =
          c.kind === 'raw'
            ? await loginRaw(user, transport, c.pick as string | undefined)
            : await loginClient(user, transport, Number(c.requestTimeoutMs ?? REQUEST_MS));
        sessions.set(user, s);
        out({ ev: 'login', user, server: s.server, transport });
        if (c.spacingMs) await sleep(Number(c.spacingMs));
      }
      return;
    }
    case 'send': {
      const s = session(String(c.from));
      for (let i = 0; i < Number(c.n); i++) await sendAcked(s, 'send', String(c.to), String(c.tag), i);
      return;
    }
    case 'load': {
      const l: Load = { stop: false, runs: [], acked: new Map(), retried: 0 };
      loading = l;
      const interval = Number(c.intervalMs ?? 20);
      for (const [from, to] of c.pairs as [string, string][]) {
        const s = session(from);
        l.runs.push(
          (async () => {
            for (let i = 0; !l.stop; i++) {
              const r = await sendAcked(s, 'send', to, String(c.tag), i);
              if (r.tries > 1) l.retried++;
              l.acked.set(`${from}>${to}`, i + 1);
              await sleep(interval);
            }
          })(),
        );
      }
      return;
    }
    case 'stop': {
      const l = loading;
      if (!l) throw new Error('no load running');
      l.stop = true;
      await Promise.all(l.runs);
      out({ ev: 'loaded', acked: Object.fromEntries(l.acked), retried: l.retried });
      loading = undefined;
      return;
    }
    case 'topic': {
      const s = session(String(c.user));
      const topic = String(c.topic);
      if (c.op === 'create') await s.request('topic_create', { topic });
      else if (c.op === 'join') await s.request('topic_join', { topic });
      else for (let i = 0; i < Number(c.n); i++) await sendAcked(s, 'topic_send', topic, String(c.tag), i);
      return;
    }
    case 'report': {
      out({
        ev: 'report',
        got: Object.fromEntries(got),
        where: Object.fromEntries([...sessions].map(([u, s]) => [u, s.server])),
      });
      return;
    }
    case 'exit': {
      await Promise.all([...sessions.values()].map((s) => s.close().catch(() => undefined)));
      process.exit(0);
      return;
    }
    default:
      throw new Error(`unknown command ${JSON.stringify(c.cmd)}`);
  }
}

createInterface({ input: process.stdin }).on('line', (line) => {
  let c: Record<string, unknown>;
  try {
    c = JSON.parse(line);
  } catch {
    out({ ev: 'fail', error: `not JSON: ${line}` });
    return;
  }
  handle(c).then(
    () => out({ ev: 'done', id: c.id ?? null }),
    (err: Error) => out({ ev: 'fail', id: c.id ?? null, error: err.message }),
  );
});
process.stdin.on('end', () => process.exit(0));
out({ ev: 'ready', pid: process.pid });
