/**
 * The public client: `route` asks a gateway for msg_servers; `FishChatClient`
 * holds one logged-in session and keeps it alive (heartbeat, reconnect,
 * catch-up after a reconnect), delivering each inbox message to the app once.
 * It runs over TCP (Node, Bun, Deno) or WebSocket (everywhere, the browser
 * included): see wire.ts.
 *
 * Delivery rules (docs/protocol.md §4):
 * - The client tracks the highest seq handed to the app in the inbox's epoch
 *   and drops any message at or below it, so a redelivered backlog or a
 *   repeated push never reaches the app twice. A new epoch (a wiped store)
 *   resets that state.
 * - After a login whose backlog the server cut at `loginPush`, the client
 *   fetches the rest up to the login `seq` with `sync`, holding live pushes
 *   back meanwhile, so the app still sees seq order.
 * - It reconnects (through the gateway, so to another msg_server when the
 *   old one is gone) with the gateway's backoff, except after a `replaced`
 *   kick, after close(), or with `reconnect: false`.
 * - Requests in flight when a connection is lost, or made while there is
 *   none, reject with FishError code `internal` (local `disconnected`). The
 *   caller decides whether to retry: `send`/`topicSend` with a `cid` are safe
 *   to retry; without one a retry may store the message twice.
 *   `sendWithRetry`/`topicSendWithRetry` do it: one cid, tried again across
 *   reconnects until the server says ok or a deadline passes.
 * - Acks: `ack(seq)` is cumulative; with `autoAck` the client acks each
 *   message as it hands it to the app. An ack made while disconnected is
 *   sent after the next login.
 */
import { RawCbor } from '../protocol/cbor.js';
import { encodeBody } from '../protocol/decode.js';
import type { InboxMessage } from '../protocol/types.js';
import { Backoff, DEFAULT_BACKOFF, type BackoffSettings } from './backoff.js';
import { Connection, type Fields, type Frame } from './connection.js';
import { FishError } from './errors.js';
import { Queue } from './queue.js';
import { hasTcp, isWebSocketUrl, type Transport, type WireClose } from './wire.js';

/** An inbox message as the app sees it: `body` decoded with cbor-x (map keys become strings; byte strings are Uint8Array). */
export type Msg = InboxMessage<unknown>;

/** The fields of the `login` reply. */
export interface LoginInfo {
  user: string;
  device: string;
  /** the msg_server's id */
  server: string;
  /** newest seq of the user's inbox at login */
  seq: number;
  /** newest seq this device had acknowledged */
  acked: number;
  /** oldest seq still kept */
  first: number;
  epoch: string;
}

/** One msg_server of a route reply. */
export interface RouteServer {
  id: string;
  /** `host:port` of its TCP client port */
  addr: string;
  /** the URL of its WebSocket endpoint (`ws://host:port/v1/ws`); absent when it serves none */
  ws?: string;
}

export interface RouteInfo {
  servers: RouteServer[];
  /** ping interval, ms */
  heartbeat: number;
  backoff: BackoffSettings;
}

export interface ConnectOptions {
  /**
   * The gateway the client routes through at each (re)connect: `host:port`
   * (its TCP port, the `route` op) or an `http://`/`https://` URL of its HTTP
   * port (`GET /v1/route`, the only way in a browser).
   */
  gateway?: string;
  /**
   * A msg_server to use directly (first, before what the gateway lists):
   * `host:port` (TCP) or its WebSocket URL (`ws://host:port/v1/ws`).
   */
  server?: string;
  /**
   * Which address of each msg_server the gateway lists is dialled: `ws` (its
   * WebSocket URL) or `tcp` (its `host:port`). Default: `tcp` where the
   * runtime has TCP (Node, Bun, Deno), `ws` where it has not (a browser).
   */
  transport?: Transport;
  user: string;
  device?: string;
  /** a token, or a function minting one per login (tokens may expire between reconnects) */
  token?: string | (() => string);
  /** false: a send-only session, no backlog and no pushes (default true) */
  push?: boolean;
  /** reconnect after a lost connection (default true) */
  reconnect?: boolean;
  /** ack each message when it is handed to the app (default false) */
  autoAck?: boolean;
  /** per-request timeout, ms (default 10000) */
  requestTimeoutMs?: number;
  /** ping interval when no gateway tells one, ms (default 20000) */
  heartbeatMs?: number;
  /** reconnect backoff when no gateway tells one (default {base: 1000, max: 30000}) */
  backoff?: BackoffSettings;
}

export interface ClientEvents {
  /** a message for the app (also available through messages()) */
  message: (msg: Msg) => void;
  /** the server kicked this session; a `replaced` kick ends the client */
  kick: (info: { reason: string }) => void;
  /** logged in again after a disconnect; `epochChanged`: the inbox was created anew */
  reconnect: (info: LoginInfo & { epochChanged: boolean }) => void;
  /** the connection is gone; `willReconnect` tells whether the client tries again */
  disconnect: (info: { reason: string; willReconnect: boolean }) => void;
  /** an error not tied to a request (a server error without rid, a failed reconnect, ...) */
  error: (err: Error) => void;
}

export interface SendResult {
  mid: string;
  seq: number;
  ts: number;
}

export interface TopicSendResult {
  mid: string;
  tseq: number;
  ts: number;
}

export interface SyncResult {
  messages: Msg[];
  last: number;
  more: boolean;
  first: number;
  epoch: string;
}

const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
const DEFAULT_HEARTBEAT_MS = 20_000;
const DEFAULT_ROUTE_TIMEOUT_MS = 5000;
const LOGOUT_TIMEOUT_MS = 2000;
const SYNC_PAGE = 1000;
/** How long sendWithRetry keeps trying by default, ms. */
const DEFAULT_RETRY_DEADLINE_MS = 30_000;
/** error codes after which a send may be tried again (the others are final) */
const RETRYABLE: ReadonlySet<string> = new Set(['internal', 'rate_limited', 'overloaded']);
/** error codes without rid after which a msg_server closes the connection */
const CLOSING: ReadonlySet<string> = new Set(['bad_frame', 'frame_too_large', 'auth_failed', 'overloaded']);

// --- reading server frames ---------------------------------------------------

function num(frame: Frame, key: string): number {
  const v = frame[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new FishError('internal', `server reply to ${frame.op} has no number ${key}`);
  }
  return v;
}

function str(frame: Frame, key: string): string {
  const v = frame[key];
  if (typeof v !== 'string') throw new FishError('internal', `server reply to ${frame.op} has no text ${key}`);
  return v;
}

function toMsg(frame: Frame): Msg {
  const msg: Msg = {
    seq: num(frame, 'seq'),
    mid: str(frame, 'mid'),
    from: str(frame, 'from'),
    body: frame.body,
    ts: num(frame, 'ts'),
  };
  if (typeof frame.to === 'string') msg.to = frame.to;
  if (typeof frame.topic === 'string') msg.topic = frame.topic;
  if (typeof frame.tseq === 'number') msg.tseq = frame.tseq;
  return msg;
}

function toLogin(frame: Frame): LoginInfo {
  return {
    user: str(frame, 'user'),
    device: str(frame, 'device'),
    server: str(frame, 'server'),
    seq: num(frame, 'seq'),
    acked: num(frame, 'acked'),
    first: num(frame, 'first'),
    epoch: str(frame, 'epoch'),
  };
}

function toRoute(frame: { [k: string]: unknown }): RouteInfo {
  const servers: RouteInfo['servers'] = [];
  if (Array.isArray(frame.servers)) {
    for (const s of frame.servers as unknown[]) {
      const r = s as { id?: unknown; addr?: unknown; ws?: unknown } | null;
      if (r === null || typeof r !== 'object') continue;
      const addr = typeof r.addr === 'string' ? r.addr : undefined;
      const ws = typeof r.ws === 'string' && isWebSocketUrl(r.ws) ? r.ws : undefined;
      if (addr === undefined && ws === undefined) continue;
      const server: RouteServer = { id: typeof r.id === 'string' ? r.id : (addr ?? ws)!, addr: addr ?? '' };
      if (ws !== undefined) server.ws = ws;
      servers.push(server);
    }
  }
  const heartbeat = typeof frame.heartbeat === 'number' && frame.heartbeat > 0 ? frame.heartbeat : DEFAULT_HEARTBEAT_MS;
  const b = frame.backoff as { base?: unknown; max?: unknown } | undefined;
  const base = typeof b?.base === 'number' && b.base >= 0 ? b.base : DEFAULT_BACKOFF.base;
  const max = typeof b?.max === 'number' && b.max >= base ? b.max : Math.max(base, DEFAULT_BACKOFF.max);
  return { servers, heartbeat, backoff: { base, max } };
}

/** A body as sent: RawCbor is passed as is (already-encoded CBOR), anything else is encoded with cbor-x. */
function bodyOf(body: unknown): RawCbor {
  return body instanceof RawCbor ? body : new RawCbor(encodeBody(body));
}

/** Connection.open with an overall time limit (a late connection is closed). */
async function openWithin(
  addr: string,
  ms: number,
  opts: ConstructorParameters<typeof Connection>[2],
): Promise<Connection> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let late = false;
  const opening = Connection.open(addr, opts);
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      late = true;
      reject(new FishError('internal', `no connection to ${addr} within ${ms} ms`, 'timeout'));
    }, ms);
  });
  opening.then(
    (c) => {
      if (late) c.destroy();
    },
    () => {},
  );
  try {
    return await Promise.race([opening, limit]);
  } catch (err) {
    if (err instanceof FishError) throw err;
    const code = (err as { code?: unknown }).code;
    throw new FishError('internal', `cannot connect to ${addr}: ${code ?? String(err)}`, 'disconnected');
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Asks a gateway for the live msg_servers, best first (each with its TCP
 * `addr` and, when it serves WebSocket, its `ws` URL), and the heartbeat and
 * backoff to use. `gateway` is `host:port` (the TCP `route` op) or an
 * `http(s)://host:port` URL (`GET /v1/route?user=U`, what a browser can do).
 * Rejects with FishError `overloaded` when no msg_server is alive.
 */
export async function route(gateway: string, opts: { user?: string; timeoutMs?: number } = {}): Promise<RouteInfo> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_ROUTE_TIMEOUT_MS;
  if (/^https?:\/\//i.test(gateway)) return routeOverHttp(gateway, opts.user, timeoutMs);
  const conn = await openWithin(gateway, timeoutMs, { requestTimeoutMs: timeoutMs });
  try {
    return toRoute(await conn.request('route', { user: opts.user }));
  } finally {
    conn.end();
  }
}

/** `GET /v1/route` on the gateway's HTTP port. */
async function routeOverHttp(gateway: string, user: string | undefined, timeoutMs: number): Promise<RouteInfo> {
  let url: URL;
  try {
    url = new URL('/v1/route', gateway);
  } catch {
    throw new FishError('bad_request', `not a gateway URL: ${JSON.stringify(gateway)}`);
  }
  if (user !== undefined) url.searchParams.set('user', user);
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    let res: Response;
    try {
      res = await fetch(url, { signal: abort.signal, headers: { accept: 'application/json' } });
    } catch (err) {
      if (abort.signal.aborted) {
        throw new FishError('internal', `no route from ${url.origin} within ${timeoutMs} ms`, 'timeout');
      }
      throw new FishError('internal', `cannot reach the gateway ${url.origin}: ${errorText(err)}`, 'disconnected');
    }
    let body: unknown;
    try {
      body = await res.json();
    } catch {
      body = undefined;
    }
    const fields =
      body !== null && typeof body === 'object' && !Array.isArray(body) ? (body as { [k: string]: unknown }) : {};
    if (res.status === 503 || (!res.ok && fields.code === 'overloaded')) {
      const message = typeof fields.message === 'string' ? fields.message : 'no msg_server is alive';
      throw new FishError('overloaded', message);
    }
    if (!res.ok) {
      const code = typeof fields.code === 'string' ? fields.code : 'internal';
      const message = typeof fields.message === 'string' ? fields.message : `HTTP ${res.status}`;
      throw new FishError(code, `the gateway ${url.origin} answered ${res.status}: ${message}`);
    }
    if (body === undefined) throw new FishError('internal', `the gateway ${url.origin} sent a route that is not JSON`);
    return toRoute(fields);
  } finally {
    clearTimeout(timer);
  }
}

function errorText(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } } | null)?.cause;
  if (typeof cause?.code === 'string') return cause.code;
  if (typeof cause?.message === 'string') return cause.message;
  return err instanceof Error ? err.message : String(err);
}

/** A fresh client message id (`cid`): 32 hex digits from the runtime's CSPRNG (works in a browser page over plain http too). */
export function newCid(): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

/** Why a connection closed, from a WebSocket's close status (none on TCP). */
function closeReason(info: WireClose): string {
  switch (info.code) {
    case 1001:
      return 'going away'; // a server shutting down: treated as draining
    case 1008:
      return info.reason ? `refused: ${info.reason}` : 'refused by the server';
    case 1009:
      return 'frame_too_large';
    case 1003:
    case 1007:
      return 'bad_frame';
    default:
      return 'connection lost';
  }
}

function isRetryable(err: unknown): boolean {
  return err instanceof FishError && (err.local !== undefined || RETRYABLE.has(err.code));
}

type Listener = (...args: never[]) => void;

export class FishChatClient {
  readonly #opts: {
    gateway?: string;
    server?: string;
    user: string;
    device?: string;
    token?: string | (() => string);
    push: boolean;
    transport: Transport;
    reconnect: boolean;
    autoAck: boolean;
    requestTimeoutMs: number;
  };
  #heartbeatMs: number;
  readonly #backoff: Backoff;

  /** the current connection; #live once its login succeeded */
  #conn: Connection | null = null;
  #live = false;
  #login: LoginInfo | null = null;
  /** why the current connection ends (a kick, a failed heartbeat, ...) */
  #dropReason: string | null = null;
  #closing = false;
  #closed = false;
  /** connect() succeeded: from now on a lost connection is reconnected */
  #started = false;
  #reconnecting = false;
  #heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  #pingInFlight = false;
  /** sendWithRetry calls waiting for a login */
  readonly #connectedWaiters = new Set<() => void>();
  /** wakes a reconnect wait early (close()) */
  #wake: (() => void) | null = null;

  // delivery state, per epoch
  #epoch: string | undefined;
  /** the latest login found a new epoch */
  #epochChanged = false;
  /** highest seq handed to the app */
  #lastSeq = 0;
  /** after a cut backlog: pushes above the login seq wait here until the gap is filled */
  #catchingUp = false;
  #target = 0;
  #held: Msg[] = [];
  /** highest seq the app acked (or autoAck did); sent again after a reconnect if needed */
  #ackWanted = 0;
  #ackScheduled = false;

  // the app's side
  readonly #listeners = new Map<keyof ClientEvents, Set<Listener>>();
  readonly #queue = new Queue<Msg>();
  /** before the app says how it reads messages, they wait in #early */
  #mode: 'buffer' | 'listeners' | 'queue' = 'buffer';
  #early: Msg[] = [];

  private constructor(opts: ConnectOptions) {
    if (!opts.gateway && !opts.server)
      throw new FishError('bad_request', 'FishChatClient.connect needs a gateway or a server address');
    const transport = opts.transport ?? (hasTcp() ? 'tcp' : 'ws');
    if (transport !== 'tcp' && transport !== 'ws')
      throw new FishError('bad_request', `transport is 'tcp' or 'ws', not ${JSON.stringify(transport)}`);
    this.#opts = {
      gateway: opts.gateway,
      server: opts.server,
      user: opts.user,
      device: opts.device,
      token: opts.token,
      push: opts.push ?? true,
      transport,
      reconnect: opts.reconnect ?? true,
      autoAck: opts.autoAck ?? false,
      requestTimeoutMs: opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    };
    this.#heartbeatMs = opts.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    this.#backoff = new Backoff(opts.backoff ?? DEFAULT_BACKOFF);
  }

  /**
   * Routes through the gateway (or uses `server`), connects to the first
   * msg_server that takes the login, and logs in. Rejects with the last
   * FishError when none does (at once on `auth_failed`).
   */
  static async connect(opts: ConnectOptions): Promise<FishChatClient> {
    const client = new FishChatClient(opts);
    try {
      await client.#establish();
    } catch (err) {
      client.#shutdown();
      throw err;
    }
    client.#started = true;
    return client;
  }

  /** The reply of the latest login. */
  get login(): LoginInfo {
    return this.#login!;
  }

  get user(): string {
    return this.#opts.user;
  }

  /** Logged in on a live connection now. */
  get connected(): boolean {
    return this.#live && this.#conn !== null && !this.#conn.closed;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The highest seq handed to the app in this epoch. */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** The ping interval in use, ms. */
  get heartbeatMs(): number {
    return this.#heartbeatMs;
  }

  // --- requests ----------------------------------------------------------------

  /**
   * Any request: `{op, rid, ...fields}`; resolves with the reply frame. A
   * `body` field must be given as `new RawCbor(encodeBody(value))`.
   */
  request(
    op: string,
    fields: Fields = {},
    opts: { timeoutMs?: number; onMsg?: (frame: Frame) => void } = {},
  ): Promise<Frame> {
    const conn = this.#conn;
    if (this.#closed || this.#closing)
      return Promise.reject(new FishError('internal', 'the client is closed', 'disconnected'));
    if (conn === null || !this.#live)
      return Promise.reject(new FishError('internal', 'not connected (reconnecting)', 'disconnected'));
    return conn.request(op, fields, opts);
  }

  /** Sends a p2p message; resolves once it is stored in `to`'s inbox. */
  async send(to: string, body: unknown, opts: { cid?: string } = {}): Promise<SendResult> {
    const r = await this.request('send', { to, body: bodyOf(body), cid: opts.cid });
    return { mid: str(r, 'mid'), seq: num(r, 'seq'), ts: num(r, 'ts') };
  }

  /** Acknowledges every message up to `seq` for this device (no reply). */
  ack(seq: number): void {
    if (!Number.isInteger(seq) || seq <= 0) return;
    if (seq > this.#ackWanted) this.#ackWanted = seq;
    if (this.#live) this.#conn?.send('ack', { seq });
  }

  /** Reads inbox messages after `after` (limit 1..1000, default 100). They do not go to the app's stream. */
  async sync(after: number, limit?: number): Promise<SyncResult> {
    const conn = this.#conn;
    if (this.#closed || this.#closing) throw new FishError('internal', 'the client is closed', 'disconnected');
    if (conn === null || !this.#live) throw new FishError('internal', 'not connected (reconnecting)', 'disconnected');
    return this.#sync(conn, after, limit);
  }

  /** Resolves with the pong: `seq` is the newest seq of the inbox. */
  async ping(): Promise<{ seq?: number }> {
    const r = await this.request('ping');
    return typeof r.seq === 'number' ? { seq: r.seq } : {};
  }

  async topicCreate(topic: string): Promise<void> {
    await this.request('topic_create', { topic });
  }

  /** Joins; resolves with the member count. */
  async topicJoin(topic: string): Promise<{ members: number }> {
    const r = await this.request('topic_join', { topic });
    return { members: num(r, 'members') };
  }

  async topicLeave(topic: string): Promise<void> {
    await this.request('topic_leave', { topic });
  }

  async topicSend(topic: string, body: unknown, opts: { cid?: string } = {}): Promise<TopicSendResult> {
    const r = await this.request('topic_send', { topic, body: bodyOf(body), cid: opts.cid });
    return { mid: str(r, 'mid'), tseq: num(r, 'tseq'), ts: num(r, 'ts') };
  }

  /**
   * Sends a p2p message with one `cid` (given, or a fresh one) and tries
   * again, across disconnects and reconnects, until the server says ok or
   * `deadlineMs` (default 30000) has passed: the message is stored once
   * whatever happened to the earlier tries. Rejects at once on a final error
   * (`bad_request`, ...) or when the client closes; after the deadline with
   * the last error.
   */
  async sendWithRetry(
    to: string,
    body: unknown,
    opts: { cid?: string; deadlineMs?: number } = {},
  ): Promise<SendResult & { cid: string }> {
    const cid = opts.cid ?? newCid();
    const encoded = bodyOf(body);
    const r = await this.#retry(() => this.send(to, encoded, { cid }), opts.deadlineMs);
    return { ...r, cid };
  }

  /** topicSend with one `cid` tried again until ok or the deadline, as sendWithRetry. */
  async topicSendWithRetry(
    topic: string,
    body: unknown,
    opts: { cid?: string; deadlineMs?: number } = {},
  ): Promise<TopicSendResult & { cid: string }> {
    const cid = opts.cid ?? newCid();
    const encoded = bodyOf(body);
    const r = await this.#retry(() => this.topicSend(topic, encoded, { cid }), opts.deadlineMs);
    return { ...r, cid };
  }

  /**
   * Resolves once the client is logged in on a live connection (at once if it
   * is); rejects with `internal` (local `timeout`) after `timeoutMs`, or when
   * the client closes.
   */
  async waitConnected(timeoutMs = DEFAULT_RETRY_DEADLINE_MS): Promise<void> {
    if (this.#closed || this.#closing) throw new FishError('internal', 'the client is closed', 'disconnected');
    if (this.connected) return;
    await new Promise<void>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#connectedWaiters.delete(done);
        if (this.connected) resolve();
        else reject(new FishError('internal', 'the client is closed', 'disconnected'));
      };
      const timer = setTimeout(() => {
        this.#connectedWaiters.delete(done);
        reject(new FishError('internal', `not connected within ${timeoutMs} ms`, 'timeout'));
      }, timeoutMs);
      this.#connectedWaiters.add(done);
    });
  }

  async #retry<T>(attempt: () => Promise<T>, deadlineMs = DEFAULT_RETRY_DEADLINE_MS): Promise<T> {
    const deadline = Date.now() + deadlineMs;
    let pause = 50;
    for (;;) {
      if (this.#closed || this.#closing) throw new FishError('internal', 'the client is closed', 'disconnected');
      let err: unknown;
      try {
        if (!this.connected) await this.waitConnected(Math.max(0, deadline - Date.now()));
        return await attempt();
      } catch (e) {
        err = e;
      }
      if (!isRetryable(err) || this.#closed || this.#closing) throw err;
      const left = deadline - Date.now();
      if (left <= 0) throw err;
      // Lost with the connection: go again as soon as it is back. Refused
      // while connected (rate_limited, overloaded, internal): wait a little.
      if (this.connected) {
        await new Promise((resolve) => setTimeout(resolve, Math.min(pause, left)));
        pause = Math.min(pause * 2, 2000);
      }
    }
  }

  /** Members in byte order of their names, after `after`, at most `limit` (default 1000). */
  async topicMembers(
    topic: string,
    opts: { after?: string; limit?: number } = {},
  ): Promise<{ members: string[]; more: boolean }> {
    const r = await this.request('topic_members', { topic, after: opts.after, limit: opts.limit });
    const members = Array.isArray(r.members)
      ? (r.members as unknown[]).filter((m): m is string => typeof m === 'string')
      : [];
    return { members, more: r.more === true };
  }

  // --- the app's side ----------------------------------------------------------

  /**
   * The messages for the app, in seq order, each once. One consumer; the
   * loop ends when the client closes. Messages that arrived before the app
   * called messages() or registered a 'message' listener (the login backlog
   * comes right after the login) are kept and handed to whichever comes first.
   * Messages also wait here while the loop body runs: a consumer that never
   * reads lets them pile up.
   */
  messages(): AsyncIterable<Msg> {
    if (this.#mode !== 'queue') {
      const early = this.#early;
      this.#early = [];
      this.#mode = 'queue';
      for (const m of early) this.#queue.push(m);
    }
    return this.#queue;
  }

  /** Registers a listener; returns a function that removes it. */
  on<E extends keyof ClientEvents>(event: E, fn: ClientEvents[E]): () => void {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(fn as Listener);
    if (event === 'message' && this.#mode === 'buffer') {
      this.#mode = 'listeners';
      const early = this.#early;
      this.#early = [];
      if (early.length > 0) {
        queueMicrotask(() => {
          for (const m of early) this.#emit('message', m);
        });
      }
    }
    return () => this.off(event, fn);
  }

  off<E extends keyof ClientEvents>(event: E, fn: ClientEvents[E]): void {
    this.#listeners.get(event)?.delete(fn as Listener);
  }

  /** Logs out (the server then closes) and stops; messages() ends. */
  async close(): Promise<void> {
    if (this.#closing || this.#closed) return;
    this.#closing = true;
    this.#wake?.();
    this.#notifyConnected();
    const conn = this.#conn;
    if (conn !== null && this.#live && !conn.closed) {
      this.#dropReason = 'closed';
      try {
        await conn.request('logout', {}, { timeoutMs: Math.min(LOGOUT_TIMEOUT_MS, this.#opts.requestTimeoutMs) });
      } catch {
        // closing anyway
      }
      conn.end();
    } else {
      conn?.destroy();
    }
    this.#shutdown();
  }

  // --- sessions --------------------------------------------------------------

  /**
   * Logs in on the first msg_server that takes it: at the first connect the
   * `server` given (if any), then what the gateway lists (the address of the
   * chosen transport of each); at a reconnect, the gateway's list only (the
   * `server` again when there is no gateway).
   */
  async #establish(): Promise<void> {
    const addrs: string[] = [];
    const pinned = this.#opts.server;
    if (pinned && (!this.#started || !this.#opts.gateway)) addrs.push(pinned);
    let last: unknown = new FishError('overloaded', 'no msg_server to try');
    let routed = false;
    for (let i = 0; ; i++) {
      if (i === addrs.length) {
        if (routed || !this.#opts.gateway) break;
        routed = true;
        try {
          addrs.push(...(await this.#route()).filter((a) => !addrs.includes(a)));
        } catch (err) {
          if (addrs.length === 0) throw err;
          last = err;
          break;
        }
        if (i === addrs.length) break;
      }
      if (this.#closing) throw new FishError('internal', 'the client is closed', 'disconnected');
      try {
        await this.#loginAt(addrs[i]!);
        return;
      } catch (err) {
        last = err;
        if (err instanceof FishError && err.code === 'auth_failed') throw err;
      }
    }
    throw last;
  }

  /** The gateway's msg_servers, as addresses of this client's transport; takes its heartbeat and backoff. */
  async #route(): Promise<string[]> {
    const gateway = this.#opts.gateway!;
    const r = await route(gateway, { user: this.#opts.user, timeoutMs: this.#opts.requestTimeoutMs });
    this.#heartbeatMs = r.heartbeat;
    this.#backoff.settings = r.backoff;
    if (r.servers.length === 0) throw new FishError('overloaded', `the gateway ${gateway} lists no msg_server`);
    const ws = this.#opts.transport === 'ws';
    const addrs = r.servers.map((s) => (ws ? s.ws : s.addr)).filter((a): a is string => !!a);
    if (addrs.length === 0) {
      throw new FishError(
        'overloaded',
        ws
          ? `the gateway ${gateway} lists no msg_server that serves WebSocket`
          : `the gateway ${gateway} lists no msg_server with a TCP address`,
      );
    }
    return addrs;
  }

  async #loginAt(addr: string): Promise<void> {
    let conn: Connection | undefined;
    conn = await openWithin(addr, this.#opts.requestTimeoutMs, {
      requestTimeoutMs: this.#opts.requestTimeoutMs,
      onPush: (frame) => this.#onPush(conn, frame),
      onError: (err) => this.#onConnError(conn, err),
      onClose: (info) => this.#onConnClosed(conn, info),
    });
    if (this.#closing) {
      conn.destroy();
      throw new FishError('internal', 'the client is closed', 'disconnected');
    }
    this.#conn = conn;
    this.#live = false;
    this.#dropReason = null;
    const token = typeof this.#opts.token === 'function' ? this.#opts.token() : this.#opts.token;
    try {
      await conn.request(
        'login',
        { user: this.#opts.user, token, device: this.#opts.device, push: this.#opts.push ? undefined : false },
        // Applied before the backlog frames that follow the reply are read.
        { onOk: (frame) => this.#applyLogin(conn, frame) },
      );
    } catch (err) {
      if (this.#conn === conn) {
        this.#conn = null;
        this.#live = false;
      }
      conn.destroy();
      throw err;
    }
    if (this.#conn !== conn || !this.#live) {
      // an unreadable login reply, or the connection died right after it
      conn.destroy();
      throw new FishError('internal', `login at ${addr} did not complete`, 'disconnected');
    }
    if (this.#ackWanted > this.#login!.acked) conn.send('ack', { seq: this.#ackWanted });
    this.#startHeartbeat();
    void this.#catchUp(conn);
    this.#notifyConnected();
  }

  /** The login `ok`, synchronously: state for the backlog that follows. */
  #applyLogin(conn: Connection | undefined, frame: Frame): void {
    if (conn !== this.#conn) return;
    const info = toLogin(frame);
    this.#epochChanged = this.#epoch !== undefined && info.epoch !== this.#epoch;
    if (this.#epochChanged) {
      // A new inbox: forget the seq state of the old one.
      this.#lastSeq = 0;
      this.#ackWanted = 0;
    }
    this.#epoch = info.epoch;
    this.#login = info;
    // The server pushes from max(acked, first − 1) on; nothing below is ours to get.
    this.#lastSeq = Math.max(this.#lastSeq, info.acked, info.first - 1);
    this.#target = info.seq;
    this.#held = [];
    this.#catchingUp = this.#opts.push && info.seq > this.#lastSeq;
    this.#live = true;
  }

  /**
   * After login: a ping, whose reply comes after the whole backlog; if the
   * backlog stopped short of the login seq (cut at loginPush), the rest with
   * sync; then the live pushes held back meanwhile.
   */
  async #catchUp(conn: Connection): Promise<void> {
    try {
      await conn.request('ping');
      if (conn !== this.#conn) return;
      // The session is usable: the next disconnect starts the backoff over.
      this.#backoff.reset();
      if (!this.#catchingUp) return;
      let after = this.#lastSeq;
      while (after < this.#target && conn === this.#conn) {
        const page = await this.#sync(conn, after, SYNC_PAGE);
        if (conn !== this.#conn) return;
        for (const m of page.messages) this.#deliver(m);
        if (!page.more || page.last <= after) break;
        after = page.last;
      }
      if (conn !== this.#conn) return;
      const held = this.#held.sort((a, b) => a.seq - b.seq);
      this.#held = [];
      this.#catchingUp = false;
      for (const m of held) this.#deliver(m);
    } catch (err) {
      if (conn !== this.#conn || conn.closed) return; // the reconnect takes it from here
      this.#emit('error', err instanceof Error ? err : new Error(String(err)));
      // The gap cannot be left open: start over on a new connection.
      this.#dropReason = 'catch-up failed';
      conn.destroy();
    }
  }

  async #sync(conn: Connection, after: number, limit?: number): Promise<SyncResult> {
    const messages: Msg[] = [];
    const r = await conn.request('sync', { after, limit }, { onMsg: (frame) => messages.push(toMsg(frame)) });
    return {
      messages,
      last: num(r, 'last'),
      more: r.more === true,
      first: num(r, 'first'),
      epoch: str(r, 'epoch'),
    };
  }

  #onPush(conn: Connection | undefined, frame: Frame): void {
    if (conn !== this.#conn) return;
    if (frame.op === 'msg') {
      if (!this.#live) return;
      const m = toMsg(frame);
      if (this.#catchingUp && m.seq > this.#target) this.#held.push(m);
      else this.#deliver(m);
    } else if (frame.op === 'kick') {
      const reason = typeof frame.reason === 'string' ? frame.reason : 'unknown';
      this.#dropReason = `kick:${reason}`;
      this.#emit('kick', { reason });
    }
    // other pushed ops: ignored (forward compatibility)
  }

  #onConnError(conn: Connection | undefined, err: FishError): void {
    if (conn !== this.#conn) return;
    // The errors after which the connection closes name the disconnect.
    if (this.#dropReason === null && CLOSING.has(err.code)) this.#dropReason = err.code;
    this.#emit('error', err);
  }

  #onConnClosed(conn: Connection | undefined, info: WireClose): void {
    if (conn !== this.#conn) return;
    const wasLive = this.#live;
    this.#conn = null;
    this.#live = false;
    this.#catchingUp = false;
    this.#held = [];
    this.#stopHeartbeat();
    // A login in progress, or connect() not done yet: #loginAt/#establish see it.
    if (!wasLive || !this.#started) return;
    // A WebSocket's close status names what no map did (the map goes first when there is one).
    const reason = this.#dropReason ?? closeReason(info);
    const willReconnect =
      !this.#closing && this.#opts.reconnect && reason !== 'kick:replaced' && reason !== 'auth_failed';
    this.#emit('disconnect', { reason, willReconnect });
    if (!willReconnect) {
      this.#shutdown();
      return;
    }
    if (this.#reconnecting) return; // the running loop checks the connection it made
    const draining = reason === 'kick:draining' || reason === 'going away';
    const delay = draining ? this.#backoff.afterDraining() : this.#backoff.next();
    void this.#reconnectLoop(delay);
  }

  async #reconnectLoop(firstDelay: number): Promise<void> {
    this.#reconnecting = true;
    let delay = firstDelay;
    try {
      for (;;) {
        await this.#sleep(delay);
        if (this.#closing || this.#closed) return;
        try {
          await this.#establish();
        } catch (err) {
          if (this.#closing || this.#closed) return;
          this.#emit('error', err instanceof Error ? err : new Error(String(err)));
          if (err instanceof FishError && err.code === 'auth_failed') {
            this.#emit('disconnect', { reason: 'auth_failed', willReconnect: false });
            this.#shutdown();
            return;
          }
          delay = this.#backoff.next();
          continue;
        }
        if (!this.connected) {
          // lost again right after the login
          delay = this.#backoff.next();
          continue;
        }
        const login = this.#login!;
        this.#emit('reconnect', { ...login, epochChanged: this.#epochChanged });
        return;
      }
    } finally {
      this.#reconnecting = false;
    }
  }

  #sleep(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        if (this.#wake === done) this.#wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wake = done;
    });
  }

  #startHeartbeat(): void {
    this.#stopHeartbeat();
    this.#heartbeatTimer = setInterval(() => this.#heartbeat(), this.#heartbeatMs);
  }

  #stopHeartbeat(): void {
    clearInterval(this.#heartbeatTimer);
    this.#heartbeatTimer = undefined;
    this.#pingInFlight = false;
  }

  #heartbeat(): void {
    const conn = this.#conn;
    if (conn === null || !this.#live || this.#pingInFlight) return;
    this.#pingInFlight = true;
    // A busy server (a long backlog going out) may answer late: give it at
    // least the request timeout before calling the connection dead.
    conn.request('ping', {}, { timeoutMs: Math.max(this.#heartbeatMs, this.#opts.requestTimeoutMs) }).then(
      () => {
        if (conn === this.#conn) this.#pingInFlight = false;
      },
      (err: FishError) => {
        if (conn !== this.#conn) return;
        this.#pingInFlight = false;
        if (err.local === 'timeout') {
          // No pong in time: the connection is dead.
          this.#dropReason = 'heartbeat timeout';
          conn.destroy();
        }
      },
    );
  }

  // --- delivery --------------------------------------------------------------

  /** Hands a message to the app unless it already had it. */
  #deliver(m: Msg): void {
    if (m.seq <= this.#lastSeq) return;
    this.#lastSeq = m.seq;
    if (this.#opts.autoAck) this.#scheduleAck(m.seq);
    if (this.#mode === 'buffer') this.#early.push(m);
    else if (this.#mode === 'queue') this.#queue.push(m);
    this.#emit('message', m);
  }

  /** autoAck: one ack of the highest seq per burst. */
  #scheduleAck(seq: number): void {
    if (seq > this.#ackWanted) this.#ackWanted = seq;
    if (this.#ackScheduled) return;
    this.#ackScheduled = true;
    queueMicrotask(() => {
      this.#ackScheduled = false;
      if (this.#live) this.#conn?.send('ack', { seq: this.#ackWanted });
    });
  }

  #emit<E extends keyof ClientEvents>(event: E, ...args: Parameters<ClientEvents[E]>): void {
    const set = this.#listeners.get(event);
    if (!set || set.size === 0) return;
    for (const fn of [...set]) {
      try {
        (fn as unknown as (...a: Parameters<ClientEvents[E]>) => void)(...args);
      } catch (err) {
        // A throwing listener must not break delivery to the others.
        if (event === 'error') console.error('fishchat client: an error listener threw:', err);
        else this.#emit('error', err instanceof Error ? err : new Error(String(err)));
      }
    }
  }

  #notifyConnected(): void {
    for (const w of [...this.#connectedWaiters]) w();
  }

  /** Final: no more reconnects, timers stopped, messages() ends. */
  #shutdown(): void {
    this.#closed = true;
    this.#closing = true;
    this.#live = false;
    this.#stopHeartbeat();
    this.#wake?.();
    this.#queue.end();
    this.#notifyConnected();
  }
}

/** @deprecated the old name of FishChatClient */
export { FishChatClient as FishClient };
