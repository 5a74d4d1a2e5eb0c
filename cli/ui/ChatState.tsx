/**
 * The state of a `fishchat chat` session, as plain data and pure updates: the
 * command changes it from the client's events, the Chat view renders it.
 * No Ink and no client in here, so it is tested on its own.
 */

/** Whom the session talks with: one user (p2p) or a topic. */
export interface Peer {
  kind: 'user' | 'topic';
  name: string;
}

export type ConnState = 'connecting' | 'connected' | 'reconnecting' | 'closed';

/**
 * A line this session sent: `pending` until the server's ok, `waiting` for a
 * reconnect to retry it (it keeps its cid, so the retry is stored once),
 * then `acked`, or `failed` with the error code.
 */
export type SendState = 'pending' | 'waiting' | 'acked' | 'failed';

export type Tone = 'info' | 'warn' | 'error';

/** A message from the inbox. */
export interface InLine {
  kind: 'in';
  key: string;
  mid: string;
  seq: number;
  from: string;
  /** server time, ms */
  ts: number;
  body: unknown;
}

/** A line typed here and sent. */
export interface OutLine {
  kind: 'out';
  key: string;
  cid: string;
  from: string;
  text: string;
  /** local time when typed; the server's `ts` once acked */
  ts: number;
  state: SendState;
  mid?: string;
  /** the error code when failed */
  code?: string;
}

/** A line of the session itself: reconnects, errors, ... */
export interface NoteLine {
  kind: 'note';
  key: string;
  ts: number;
  text: string;
  tone: Tone;
}

export type ChatLine = InLine | OutLine | NoteLine;

export interface Banner {
  text: string;
  tone: Tone;
}

export interface ChatState {
  me: string;
  peer: Peer;
  /** the gateway address the session routes through */
  gateway?: string;
  /** the msg_server id of the current session */
  server?: string;
  conn: ConnState;
  /** one line above the input: what the connection is doing now */
  banner?: Banner;
  /** messages from elsewhere (other senders, other topics) not shown */
  others: number;
  /** topic sessions: the member count when joined */
  members?: number;
  lines: ChatLine[];
}

/** Lines kept in the scrollback; older ones are dropped. */
export const MAX_LINES = 2000;

export function initialChat(init: { me: string; peer: Peer; gateway?: string }): ChatState {
  return { me: init.me, peer: init.peer, gateway: init.gateway, conn: 'connecting', others: 0, lines: [] };
}

function capped(lines: ChatLine[]): ChatLine[] {
  return lines.length > MAX_LINES ? lines.slice(lines.length - MAX_LINES) : lines;
}

function hasMid(lines: readonly ChatLine[], mid: string): boolean {
  return lines.some((l) => (l.kind === 'in' || l.kind === 'out') && l.mid === mid);
}

export interface IncomingMsg {
  seq: number;
  mid: string;
  from: string;
  ts: number;
  body: unknown;
}

function inLine(m: IncomingMsg): InLine {
  return { kind: 'in', key: `m:${m.mid}`, mid: m.mid, seq: m.seq, from: m.from, ts: m.ts, body: m.body };
}

/**
 * A message of this conversation arrived. A message already shown (the same
 * mid: a repeat, or this session's own send coming back through a topic or a
 * chat with oneself) changes nothing.
 */
export function withIncoming(s: ChatState, m: IncomingMsg): ChatState {
  if (hasMid(s.lines, m.mid)) return s;
  return { ...s, lines: capped([...s.lines, inLine(m)]) };
}

/**
 * Earlier messages of the conversation (from `sync` at start), oldest first:
 * they go above everything shown so far, except those already shown.
 */
export function withHistory(s: ChatState, msgs: readonly IncomingMsg[]): ChatState {
  const fresh = msgs.filter((m, i) => !hasMid(s.lines, m.mid) && msgs.findIndex((o) => o.mid === m.mid) === i);
  if (fresh.length === 0) return s;
  return { ...s, lines: capped([...fresh.map(inLine), ...s.lines]) };
}

/** A message that is not part of this conversation: counted, not shown. */
export function withOther(s: ChatState): ChatState {
  return { ...s, others: s.others + 1 };
}

/** A line typed here, pending. */
export function withSending(
  s: ChatState,
  line: { cid: string; text: string; ts: number; state?: SendState },
): ChatState {
  const out: OutLine = {
    kind: 'out',
    key: `c:${line.cid}`,
    cid: line.cid,
    from: s.me,
    text: line.text,
    ts: line.ts,
    state: line.state ?? 'pending',
  };
  return { ...s, lines: capped([...s.lines, out]) };
}

/**
 * The send with `cid` changed state. Once acked with its mid, a copy of it
 * that came in through the inbox first (topics deliver to the sender too) is
 * folded into it.
 */
export function withSendUpdate(
  s: ChatState,
  cid: string,
  patch: { state: SendState; mid?: string; ts?: number; code?: string },
): ChatState {
  let lines = s.lines.map((l) => {
    if (l.kind !== 'out' || l.cid !== cid) return l;
    const next: OutLine = { ...l, state: patch.state };
    if (patch.mid !== undefined) next.mid = patch.mid;
    if (patch.ts !== undefined) next.ts = patch.ts;
    if (patch.code !== undefined) next.code = patch.code;
    else if (patch.state !== 'failed') delete next.code;
    return next;
  });
  if (patch.mid !== undefined) lines = lines.filter((l) => !(l.kind === 'in' && l.mid === patch.mid));
  return { ...s, lines };
}

export function withConn(
  s: ChatState,
  conn: ConnState,
  opts: { server?: string; banner?: Banner | null } = {},
): ChatState {
  const next: ChatState = { ...s, conn };
  if (opts.server !== undefined) next.server = opts.server;
  if (opts.banner === null) delete next.banner;
  else if (opts.banner !== undefined) next.banner = opts.banner;
  return next;
}

export function withBanner(s: ChatState, banner: Banner | null): ChatState {
  const next: ChatState = { ...s };
  if (banner === null) delete next.banner;
  else next.banner = banner;
  return next;
}

let noteCounter = 0;

export function withNote(s: ChatState, text: string, tone: Tone = 'info', ts = Date.now()): ChatState {
  const note: NoteLine = { kind: 'note', key: `n:${++noteCounter}`, ts, text, tone };
  return { ...s, lines: capped([...s.lines, note]) };
}

export function withMembers(s: ChatState, members: number): ChatState {
  return { ...s, members };
}

/** The state, with subscribers: what the command updates and the view reads (useSyncExternalStore). */
export class ChatStore {
  #state: ChatState;
  readonly #subs = new Set<() => void>();

  constructor(initial: ChatState) {
    this.#state = initial;
  }

  get = (): ChatState => this.#state;

  subscribe = (fn: () => void): (() => void) => {
    this.#subs.add(fn);
    return () => this.#subs.delete(fn);
  };

  update(fn: (s: ChatState) => ChatState): void {
    const next = fn(this.#state);
    if (next === this.#state) return;
    this.#state = next;
    for (const sub of [...this.#subs]) sub();
  }
}

// --- showing values ----------------------------------------------------------

const pad2 = (n: number): string => String(n).padStart(2, '0');

/** Local time: `HH:MM:SS` today, `MM-DD HH:MM` on another day. */
export function formatTime(ts: number, now = Date.now()): string {
  const d = new Date(ts);
  const today = new Date(now);
  if (d.getFullYear() === today.getFullYear() && d.getMonth() === today.getMonth() && d.getDate() === today.getDate()) {
    return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
  }
  return `${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
}

/**
 * Text that is safe to put on a terminal: control characters (escape
 * sequences a peer could send to move the cursor or change colours) become
 * visible `\xNN`; tabs become spaces; line breaks stay.
 */
export function safeText(s: string): string {
  return s
    .replace(/\r\n?/g, '\n')
    .replace(/\t/g, '    ')
    .replace(
      /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/g,
      (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
    );
}

/** A message body as one line of text: strings as they are, anything else as compact JSON. */
export function formatBody(body: unknown): string {
  if (typeof body === 'string') return safeText(body);
  let json: string | undefined;
  try {
    json = JSON.stringify(body, function (this: Record<string, unknown>, key: string, v: unknown) {
      // The raw value: a Buffer's toJSON has already run on `v`.
      const raw = this[key];
      if (raw instanceof Uint8Array) return `<${raw.length} bytes>`;
      if (typeof v === 'bigint') return v.toString();
      if (v instanceof Map) return Object.fromEntries(v);
      if (v instanceof Set) return [...v];
      if (v === undefined) return null;
      return v;
    });
  } catch {
    json = undefined;
  }
  return safeText(json ?? String(body));
}
