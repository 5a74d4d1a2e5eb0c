/**
 * The public client: `route` asks a gateway for msg_servers; `FishClient`
 * holds one logged-in session and keeps it alive (heartbeat, reconnect,
 * catch-up after a reconnect), delivering each inbox message to the app once.
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

export interface RouteInfo {
  servers: { id: string; addr: string }[];
  /** ping interval, ms */
  heartbeat: number;
  backoff: BackoffSettings;
}

export interface ConnectOptions {
  /** gateway `host:port`; the client routes through it at each (re)connect */
  gateway?: string;
  /** a msg_server `host:port` to use directly (when no gateway is given) */
  server?: string;
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

function toRoute(frame: Frame): RouteInfo {
  const servers: RouteInfo['servers'] = [];
  if (Array.isArray(frame.servers)) {
    for (const s of frame.servers as unknown[]) {
      const r = s as { id?: unknown; addr?: unknown } | null;
      if (r && typeof r.addr === 'string') servers.push({ id: typeof r.id === 'string' ? r.id : r.addr, addr: r.addr });
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
 * Asks a gateway (`host:port`) for the live msg_servers, best first, and the
 * heartbeat and backoff to use. Rejects with FishError `overloaded` when no
 * msg_server is alive.
 */
export async function route(gateway: string, opts: { user?: string; timeoutMs?: number } = {}): Promise<RouteInfo> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_ROUTE_TIMEOUT_MS;
  const conn = await openWithin(gateway, timeoutMs, { requestTimeoutMs: timeoutMs });
  try {
    return toRoute(await conn.request('route', { user: opts.user }));
  } finally {
    conn.end();
  }
}

type Listener = (...args: never[]) => void;

export class FishClient {
  readonly #opts: {
    gateway?: string;
    server?: string;
    user: string;
    device?: string;
    token?: string | (() => string);
    push: boolean;
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
      throw new FishError('bad_request', 'FishClient.connect needs a gateway or a server address');
    this.#opts = {
      gateway: opts.gateway,
      server: opts.server,
      user: opts.user,
      device: opts.device,
      token: opts.token,
      push: opts.push ?? true,
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
  static async connect(opts: ConnectOptions): Promise<FishClient> {
    const client = new FishClient(opts);
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

  /** Routes (when there is a gateway) and logs in on the first msg_server that takes it. */
  async #establish(): Promise<void> {
    let addrs: string[];
    if (this.#opts.gateway) {
      const r = await route(this.#opts.gateway, { user: this.#opts.user, timeoutMs: this.#opts.requestTimeoutMs });
      this.#heartbeatMs = r.heartbeat;
      this.#backoff.settings = r.backoff;
      addrs = r.servers.map((s) => s.addr);
      if (addrs.length === 0)
        throw new FishError('overloaded', `the gateway ${this.#opts.gateway} lists no msg_server`);
    } else {
      addrs = [this.#opts.server!];
    }
    let last: unknown = new FishError('overloaded', 'no msg_server to try');
    for (const addr of addrs) {
      if (this.#closing) throw new FishError('internal', 'the client is closed', 'disconnected');
      try {
        await this.#loginAt(addr);
        return;
      } catch (err) {
        last = err;
        if (err instanceof FishError && err.code === 'auth_failed') throw err;
      }
    }
    throw last;
  }

  async #loginAt(addr: string): Promise<void> {
    let conn: Connection | undefined;
    conn = await openWithin(addr, this.#opts.requestTimeoutMs, {
      requestTimeoutMs: this.#opts.requestTimeoutMs,
      onPush: (frame) => this.#onPush(conn, frame),
      onError: (err) => this.#onConnError(conn, err),
      onClose: () => this.#onConnClosed(conn),
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

  #onConnClosed(conn: Connection | undefined): void {
    if (conn !== this.#conn) return;
    const wasLive = this.#live;
    this.#conn = null;
    this.#live = false;
    this.#catchingUp = false;
    this.#held = [];
    this.#stopHeartbeat();
    // A login in progress, or connect() not done yet: #loginAt/#establish see it.
    if (!wasLive || !this.#started) return;
    const reason = this.#dropReason ?? 'connection lost';
    const willReconnect =
      !this.#closing && this.#opts.reconnect && reason !== 'kick:replaced' && reason !== 'auth_failed';
    this.#emit('disconnect', { reason, willReconnect });
    if (!willReconnect) {
      this.#shutdown();
      return;
    }
    if (this.#reconnecting) return; // the running loop checks the connection it made
    const delay = reason === 'kick:draining' ? this.#backoff.afterDraining() : this.#backoff.next();
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

  /** Final: no more reconnects, timers stopped, messages() ends. */
  #shutdown(): void {
    this.#closed = true;
    this.#closing = true;
    this.#live = false;
    this.#stopHeartbeat();
    this.#wake?.();
    this.#queue.end();
  }
}
