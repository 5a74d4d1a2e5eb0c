/**
 * Live fuzzing of a running cluster over real TCP: random and
 * mutated frames against the gateway and the msg_servers while a normal
 * conversation runs, checking every answer against docs/protocol.md §1–2.
 *
 *   node --import tsx bench/fuzz.ts [--frames 1000000] [--conns 16] [--seed 1] [--minutes 30]
 *   bun bench/fuzz.ts ...                (the cluster then runs on Bun too)
 *   node --import tsx bench/fuzz.ts --up-exec node_modules/.bin/bun ...   (cluster on Bun, fuzzer on Node)
 *
 * The script runs `fishchat init` + `fishchat up --embedded` (ports from the
 * OS, read back from .fishchat/run.json) as a child process, samples that
 * process's RSS from /proc/<pid>/status, and prints: frames fuzzed, errors by
 * code, protocol violations (each with its frames in hex), crashes (the child
 * exiting; 0 expected), max RSS, and the conversation's result.
 *
 * The engine (runFuzz, Conversation) is exported: test/fuzz-live.test.ts runs
 * a bounded version of the same against an in-process cluster.
 *
 * What a session is: one TCP connection, maybe logged in with a valid token
 * (fuzz users fz0..fz7 only, never the conversation's users), then a batch of
 * frames written split at random points: valid requests of every op, mutated
 * valid frames (bit flips, bytes, truncation, splices, CBOR length heads,
 * insertions, deletions; the length prefix recomputed so the stream stays in
 * step), random bytes, deep nesting (arrays, maps, tag chains), huge declared
 * CBOR lengths, indefinite items without a break; and maybe one terminal
 * piece that breaks the framing (length 0, over maxFrame up to 2^32-1,
 * truncated, a lying length). A session that did not end in a closing error
 * ends with a `ping` whose `pong` proves the server is still answering it.
 */
import net from 'node:net';
import {
  ERROR_CODES,
  FrameDecoder,
  RawCbor,
  MSG_SERVER_OPS,
  decodeFrame,
  encodeBody,
  scanCbor,
  encodeFrame,
  type WireValue,
} from '../runtime/protocol/index.js';
import { insertAt, prng, RAW_BASICS, randomValue, type Rng, type ValueCorpus } from '../test/helpers/fuzz.js';

// ------------------------------------------------------------------ frames

const DOCUMENTED = new Set<string>(ERROR_CODES);
const CLOSING = new Set(['bad_frame', 'frame_too_large', 'auth_failed', 'overloaded']);
/** Ops a server may send (docs/protocol.md): anything else is a violation. */
const SERVER_OPS = new Set(['ok', 'error', 'pong', 'msg', 'kick']);
/** rids at or above this are the harness's own (login, sentinel ping); fuzz rids stay below. */
const OWN_RID = 0xfff00000;

export const FUZZ_USERS = ['fz0', 'fz1', 'fz2', 'fz3', 'fz4', 'fz5', 'fz6', 'fz7'];
const FUZZ_TOPICS = ['fzt0', 'fzt1', 'fzt2'];
const NAMES = [...FUZZ_USERS, 'a.b@c-d_E9', 'x'.repeat(64), '', 'x'.repeat(65), 'bad name', 'é', '\u0000', 'fzt0'];
const INTS: WireValue[] = [
  0,
  1,
  23,
  24,
  255,
  256,
  65535,
  65536,
  2 ** 32 - 1,
  2 ** 32,
  Number.MAX_SAFE_INTEGER,
  -1,
  -1000,
  1.5,
  5.0,
  2n ** 63n,
  2n ** 64n - 1n,
  1000,
  1001,
  100,
  NaN,
  Infinity,
];
const MSG_OPS: string[] = [...MSG_SERVER_OPS];
const ALL_OPS = [...MSG_OPS, 'route'];
/** Ops that cannot end a connection when well-formed (login and logout can). */
const SAFE_OPS = new Set([
  ...ALL_OPS.filter((op) => op !== 'login' && op !== 'logout'),
  'nope',
  'PING',
  'Ping',
  'ping\u0000',
  '',
]);

const VALUES: ValueCorpus = {
  ints: INTS,
  names: NAMES,
  maxBytes: 12,
  raw: [
    ...RAW_BASICS,
    new Uint8Array([0x7f, 0x61, 0x61, 0x61, 0x62, 0xff]), // chunked text
    new Uint8Array([0xbf, 0x01, 0x02, 0xff]), // indefinite map, integer key
    new Uint8Array([0x9f, 0x01, 0x9f, 0xff, 0xff]), // indefinite arrays
    new Uint8Array([0xf7]), // undefined
    new Uint8Array([0xf9, 0x7e, 0x00]), // half NaN
    new Uint8Array([0xfb, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0]), // +Inf
    new Uint8Array([0xd8, 0x2a, 0x40]), // tag 42 on empty bytes
  ],
  keys: ['a', 'b', 'text', 'n', 'op', 'rid'],
};

/** Every op, login and logout rarer (each ends a session that is not logged in, or logged in). */
function randomOp(r: Rng): string {
  const x = r.next();
  if (x < 0.03) return 'login';
  if (x < 0.05) return 'logout';
  if (x < 0.12) return r.pick(['nope', '', 'PING', 'Ping', 'ping\u0000']);
  return r.pick(ALL_OPS.filter((o) => o !== 'login' && o !== 'logout'));
}

const FIELDS = [
  'user',
  'device',
  'token',
  'push',
  'to',
  'topic',
  'body',
  'cid',
  'seq',
  'after',
  'limit',
  'extra',
] as const;

/** A request: mostly plausible (fuzz users and topics), with random field values mixed in. */
export function randomRequest(r: Rng, op = randomOp(r)): Record<string, WireValue> {
  const m: Record<string, WireValue> = { op };
  if (r.next() < 0.85)
    m.rid = r.next() < 0.9 ? r.int(OWN_RID) : r.pick(INTS.filter((v) => typeof v !== 'number' || v < OWN_RID));
  const good: Record<(typeof FIELDS)[number], () => WireValue> = {
    user: () => r.pick(FUZZ_USERS),
    device: () => 'd' + r.int(4),
    token: () => r.pick(['a.b.c', 'x', '']),
    push: () => r.next() < 0.5,
    to: () => r.pick(FUZZ_USERS),
    topic: () => r.pick(FUZZ_TOPICS),
    body: () => (r.next() < 0.1 ? r.bytes(r.int(3000)) : randomValue(r, VALUES, 0)),
    cid: () => 'cid-' + r.int(100),
    seq: () => r.int(1_000),
    after: () => (op === 'topic_members' ? r.pick(FUZZ_USERS) : r.int(100)),
    limit: () => 1 + r.int(1000),
    extra: () => randomValue(r, VALUES, 0),
  };
  for (const f of FIELDS) {
    if (r.next() < 0.5) continue;
    m[f] = r.next() < 0.85 ? good[f]() : randomValue(r, VALUES, 0);
  }
  return m;
}

export function prefixed(payload: Uint8Array, length = payload.length): Uint8Array {
  const f = new Uint8Array(payload.length + 4);
  new DataView(f.buffer).setUint32(0, length >>> 0);
  f.set(payload, 4);
  return f;
}

function payloadOf(req: Record<string, WireValue>): Uint8Array {
  return encodeFrame(req).slice(4);
}

/** 1 to 3 mutations of a payload (the length prefix is added afterwards). */
export function mutatePayload(r: Rng, payload: Uint8Array, other: Uint8Array): Uint8Array {
  let b: Uint8Array<ArrayBuffer> = new Uint8Array(payload);
  const rounds = 1 + r.int(3);
  for (let k = 0; k < rounds; k++) {
    switch (r.int(8)) {
      case 0:
        if (b.length) b[r.int(b.length)]! ^= 1 << r.int(8);
        break;
      case 1:
        if (b.length)
          b[r.int(b.length)] = r.pick([
            0x00,
            0x18,
            0x1b,
            0x1f,
            0x3b,
            0x5b,
            0x5f,
            0x7b,
            0x7f,
            0x9b,
            0x9f,
            0xbb,
            0xbf,
            0xc0,
            0xdb,
            0xdf,
            0xf8,
            0xfb,
            0xff,
            r.int(256),
          ]);
        break;
      case 2:
        b = b.slice(0, r.int(b.length + 1));
        break;
      case 3: {
        const from = r.int(other.length + 1);
        b = insertAt(b, r.int(b.length + 1), other.subarray(from, from + r.int(32)));
        break;
      }
      case 4: {
        // a CBOR head with a length: another length, up to 8-byte and indefinite
        const heads: number[] = [];
        for (let i = 0; i < b.length; i++) if (b[i]! >> 5 >= 2 && b[i]! >> 5 <= 5) heads.push(i);
        if (heads.length) {
          const i = r.pick(heads);
          b[i] = (b[i]! & 0xe0) | r.pick([0, 1, 23, 24, 25, 26, 27, 28, 31, r.int(32)]);
        }
        break;
      }
      case 5:
        b = insertAt(b, r.int(b.length + 1), r.bytes(1 + r.int(6)));
        break;
      case 6: {
        // the map's entry count
        if (b.length) b[0] = r.pick([0xa0, 0xa1, 0xb7, 0xb8, 0xbf, 0xa0 | r.int(24), r.int(256)]);
        break;
      }
      default: {
        const at = r.int(b.length + 1);
        const n = 1 + r.int(8);
        b = new Uint8Array([...b.subarray(0, at), ...b.subarray(at + n)]);
      }
    }
  }
  if (b.length === 0) b = r.bytes(1);
  return b;
}

/** How the server must answer a frame, when that is known for sure. */
export type Expect = { kind: 'pong'; rid: number } | { kind: 'close'; code: 'bad_frame' | 'frame_too_large' };

interface Piece {
  bytes: Uint8Array;
  /** a well-formed request of an op that cannot close the connection */
  safe: boolean;
  expect?: Expect;
  /** may make the server close without a closing error (a logout, maybe) */
  mayClose: boolean;
  what: string;
}

/** A `ping` whose extra field `x` nests `levels` levels (arrays, maps or both), around an integer. */
export function nested(rid: number, levels: number, style: 'array' | 'map' | 'mixed' | 'indef'): Uint8Array {
  const head = payloadOf({ op: 'ping', rid });
  // head: map(2) | "op" "ping" | "rid" rid  → becomes map(3) + "x": value
  const key = new Uint8Array([0x61, 0x78]);
  const parts: number[] = [];
  for (let i = 0; i < levels; i++) {
    const s = style === 'mixed' ? (i % 2 ? 'array' : 'map') : style;
    if (s === 'array') parts.push(0x81);
    else if (s === 'indef') parts.push(0x9f);
    else parts.push(0xa1, 0x61, 0x6b); // {"k": ...}
  }
  parts.push(0x00);
  if (style === 'indef') for (let i = 0; i < levels; i++) parts.push(0xff);
  const out = new Uint8Array(head.length + key.length + parts.length);
  out.set(head);
  out[0] = 0xa3;
  out.set(key, head.length);
  out.set(parts, head.length + key.length);
  return out;
}

/** A `ping` whose field `x` is `n` tags deep around 0 (tags are not nesting levels). */
export function tagChain(rid: number, n: number): Uint8Array {
  const head = payloadOf({ op: 'ping', rid });
  const out = new Uint8Array(head.length + 2 + 2 * n + 1);
  out.set(head);
  out[0] = 0xa3;
  out.set([0x61, 0x78], head.length);
  for (let i = 0; i < n; i++) out.set([0xd8, 0x64], head.length + 2 + 2 * i); // tag 100
  out[out.length - 1] = 0x00;
  return out;
}

/** Item tails that declare far more than the frame holds, or never finish. */
export const HUGE_TAILS: readonly (readonly number[])[] = [
  [0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // bytes, 2^64-1
  [0x7b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // text, 2^63-1
  [0x9b, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00], // array, 2^32
  [0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // map, 2^64-1
  [0x5a, 0xff, 0xff, 0xff, 0xff], // bytes, 2^32-1
  [0x79, 0xff, 0xff, 0x41], // text, 65535, then 1 byte
  [0x9a, 0x7f, 0xff, 0xff, 0xff, 0x01], // array of 2^31-1, one item
  [0x5f, 0x41, 0x01], // indefinite bytes, no break
  [0x9f, 0x01, 0x02], // indefinite array, no break
  [0xbf, 0x61, 0x61], // indefinite map, half an entry
  [0x5f, 0x61, 0x61, 0xff], // indefinite bytes with a text chunk
  [0x1c], // reserved additional info
  [0xfc], // reserved simple value
  [0xff], // a lone break
];

/** A `send` whose `body` is `tail` (see HUGE_TAILS): bad_frame, always. */
export function hugeDeclared(rid: number, tail: readonly number[]): Uint8Array {
  const b = payloadOf({ op: 'send', rid, to: 'fz1' });
  b[0] = 0xa4; // one more entry: "body": <tail>
  return new Uint8Array([...b, 0x64, 0x62, 0x6f, 0x64, 0x79, ...tail]);
}

/**
 * One session's batch. Non-terminal pieces keep the stream in step (each has
 * a true length prefix); a terminal piece (last, if any) breaks the framing.
 */
function makeBatch(
  r: Rng,
  maxFrame: number,
  pool: Uint8Array[],
  n: number,
): { pieces: Piece[]; terminal?: 'too_large' | 'zero' | 'truncated' | 'lie' } {
  const pieces: Piece[] = [];
  // How dirty this session is: a clean one gets deep into a connection's
  // life (a frame that breaks the framing ends it: the rest is never read).
  const dirt = r.pick([0, 0.02, 0.1, 0.3, 1]);
  for (let i = 0; i < n; i++) {
    const k = r.next() < dirt ? 30 + r.int(70) : r.next() < 0.9 ? 0 : r.pick([83, 90]);
    if (k < 30) {
      // a valid request of any op
      const req = randomRequest(r);
      const p = payloadOf(req);
      if (pool.length < 256) pool.push(p);
      else pool[r.int(pool.length)] = p;
      const safe = SAFE_OPS.has(req.op as string);
      pieces.push({
        bytes: prefixed(p),
        safe,
        mayClose: req.op === 'logout' || req.op === 'login',
        what: `valid ${String(req.op)}`,
      });
    } else if (k < 75) {
      const base = payloadOf(randomRequest(r));
      const m = mutatePayload(r, base, pool.length ? r.pick(pool) : base);
      if (m.length > maxFrame) continue;
      pieces.push({ bytes: prefixed(m), safe: false, mayClose: true, what: 'mutated' });
    } else if (k < 82) {
      pieces.push({
        bytes: prefixed(r.bytes(1 + r.int(r.next() < 0.1 ? 4000 : 64))),
        safe: false,
        mayClose: true,
        what: 'random bytes',
      });
    } else if (k < 89) {
      const rid = r.int(OWN_RID);
      const style = r.pick(['array', 'map', 'mixed', 'indef'] as const);
      // levels counts the frame's own map as 1: `x`'s nesting adds `d` more
      const d = r.pick([62, 63, 64, 65, 66, 100, 1000, 10_000, 20_000]);
      const payload = nested(rid, d, style);
      if (payload.length > maxFrame) continue;
      const expect: Expect = 1 + d <= 64 ? { kind: 'pong', rid } : { kind: 'close', code: 'bad_frame' };
      pieces.push({
        bytes: prefixed(payload),
        safe: expect.kind === 'pong',
        expect,
        mayClose: expect.kind === 'close',
        what: `nesting ${1 + d} (${style})`,
      });
    } else if (k < 92) {
      const rid = r.int(OWN_RID);
      const n = r.pick([1, 10, 1000, Math.floor((maxFrame - 40) / 2)]);
      pieces.push({
        bytes: prefixed(tagChain(rid, n)),
        safe: true,
        expect: { kind: 'pong', rid },
        mayClose: false,
        what: `tag chain ${n}`,
      });
    } else {
      pieces.push({
        bytes: prefixed(hugeDeclared(r.int(OWN_RID), r.pick(HUGE_TAILS))),
        safe: false,
        expect: { kind: 'close', code: 'bad_frame' },
        mayClose: true,
        what: 'huge declared length',
      });
    }
  }
  const t = r.int(100);
  if (t < 8) {
    const len = r.pick([maxFrame + 1, maxFrame + 1 + r.int(1 << 20), 0x7fffffff, 0xffffffff]);
    const bytes = prefixed(r.bytes(r.int(16)), len);
    pieces.push({
      bytes,
      safe: false,
      expect: { kind: 'close', code: 'frame_too_large' },
      mayClose: true,
      what: `length ${len} > maxFrame`,
    });
    return { pieces, terminal: 'too_large' };
  }
  if (t < 11) {
    pieces.push({
      bytes: prefixed(new Uint8Array(0)),
      safe: false,
      expect: { kind: 'close', code: 'bad_frame' },
      mayClose: true,
      what: 'length 0',
    });
    return { pieces, terminal: 'zero' };
  }
  if (t < 16) {
    const p = payloadOf(randomRequest(r));
    const len = r.next() < 0.2 ? maxFrame : p.length;
    const bytes = prefixed(p, len).subarray(0, 4 + r.int(Math.min(p.length, len)));
    pieces.push({ bytes, safe: false, mayClose: true, what: `truncated (length ${len}, ${bytes.length - 4} sent)` });
    return { pieces, terminal: 'truncated' };
  }
  if (t < 20) {
    const p = payloadOf(randomRequest(r));
    const len = Math.max(1, p.length - 1 - r.int(p.length));
    pieces.push({ bytes: prefixed(p, len), safe: false, mayClose: true, what: `length ${len} for ${p.length} bytes` });
    return { pieces, terminal: 'lie' };
  }
  return { pieces };
}

const hex = (b: Uint8Array, max = 512) =>
  Buffer.from(b.subarray(0, max)).toString('hex') + (b.length > max ? `…(+${b.length - max} bytes)` : '');

// ------------------------------------------------------------------ wire

type Frame = Record<string, unknown>;

/** A bare client connection: frames in (decoded), bytes out; never throws on a closed socket. */
export class Wire {
  readonly frames: Frame[] = [];
  closed = false;
  /** the socket failed (ECONNRESET, EPIPE): answers in flight may be lost */
  reset = false;
  resetCode: string | undefined;
  lastDataAt = 0;
  closedAt = 0;
  bytesIn = 0;
  undecodable: string[] = [];
  /** well-formed frames cbor-x could not decode (exotic bodies echoed back) */
  opaque = 0;
  private waiters = new Set<() => void>();
  private readonly dec = new FrameDecoder(16 << 20);
  onFrame?: (f: Frame) => void;

  private constructor(readonly sock: net.Socket) {
    sock.setNoDelay(true);
    sock.on('data', (chunk) => {
      this.lastDataAt = performance.now();
      this.bytesIn += chunk.length;
      const err = this.dec.feed(chunk, (p) => {
        try {
          const f = decodeFrame(p.slice());
          if (this.onFrame) this.onFrame(f);
          else this.frames.push(f);
        } catch (e) {
          // cbor-x cannot read everything a body may hold (it is passed on as sent):
          // only a frame that is not one well-formed CBOR item is the server's fault.
          if (scanCbor(p, 0, p.length, 1000) === p.length) this.opaque++;
          else this.undecodable.push(`${(e as Error).message}: ${hex(p, 64)}`);
        }
      });
      if (err) this.undecodable.push(`server frame: ${err}`);
      this.wake();
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      this.reset = true;
      this.resetCode ??= e.code ?? e.message;
    });
    sock.on('close', () => {
      this.closedAt = performance.now();
      this.closed = true;
      this.wake();
    });
  }

  static connect(addr: string, timeoutMs = 5000): Promise<Wire> {
    const i = addr.lastIndexOf(':');
    const host = addr.slice(0, i).replace(/^\[|\]$/g, '');
    const port = Number(addr.slice(i + 1));
    return new Promise((resolve, reject) => {
      const s = net.connect({ host, port });
      const t = setTimeout(() => {
        s.destroy();
        reject(new Error(`connect to ${addr} timed out`));
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(t);
        resolve(new Wire(s));
      });
      s.once('error', (e) => {
        clearTimeout(t);
        reject(e);
      });
    });
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  write(b: Uint8Array): void {
    if (!this.closed && !this.sock.destroyed && this.sock.writable) this.sock.write(b);
  }

  send(map: Record<string, WireValue | undefined>): void {
    this.write(encodeFrame(map).slice());
  }

  /** Waits until pred() is true or the connection closed (returns pred()); throws on timeout. */
  async until(pred: () => boolean, timeoutMs: number, what: string): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!pred() && !this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(t);
          this.waiters.delete(done);
          resolve();
        };
        const t = setTimeout(done, left);
        this.waiters.add(done);
      });
    }
    return pred();
  }

  /** Sends a request and waits for the ok/error/pong with its rid. */
  async request(map: Record<string, WireValue | undefined>, timeoutMs = 10_000): Promise<Frame> {
    const rid = map.rid;
    let got: Frame | undefined;
    const prev = this.onFrame;
    const seen = (f: Frame) => f.rid === rid && (f.op === 'ok' || f.op === 'error' || f.op === 'pong');
    const idx = () => this.frames.findIndex(seen);
    this.send(map);
    if (prev) {
      // frames go to a handler: catch the reply on the way
      this.onFrame = (f) => (seen(f) && !got ? (got = f) : prev(f));
      try {
        await this.until(() => got !== undefined, timeoutMs, `reply to ${String(map.op)} ${String(rid)}`);
      } finally {
        this.onFrame = prev;
      }
      if (!got) throw new Error(`connection closed before the reply to ${String(map.op)}`);
      return got;
    }
    await this.until(() => idx() >= 0, timeoutMs, `reply to ${String(map.op)} ${String(rid)}`);
    const i = idx();
    if (i < 0) throw new Error(`connection closed before the reply to ${String(map.op)}`);
    return this.frames.splice(i, 1)[0]!;
  }

  close(): void {
    this.sock.destroy();
  }
}

// ------------------------------------------------------------------ fuzzing

export interface FuzzTarget {
  kind: 'gateway' | 'msg_server';
  addr: string;
}

export interface FuzzOptions {
  targets: FuzzTarget[];
  /** connections fuzzing at once */
  conns: number;
  /** stop after this many fuzz frames... */
  frames: number;
  /** ...or at this time (ms since the epoch), whichever first */
  deadline?: number;
  seed: number;
  maxFrame: number;
  /** a valid token for a fuzz user */
  token: (user: string) => string;
  /** called every ~1 s */
  onProgress?: (r: FuzzReport) => void;
  /** a session longer than this is a hang (default 20 s) */
  sessionTimeoutMs?: number;
}

export interface FuzzReport {
  frames: number;
  bytes: number;
  sessions: number;
  loggedIn: number;
  /** error frames received, by code */
  errors: Record<string, number>;
  /** frames received, by op */
  replies: Record<string, number>;
  /** closes: after a closing error, after a kick, after our FIN, ... */
  closes: Record<string, number>;
  /** sure expectations checked (a pong for a valid deep frame, bad_frame, frame_too_large) */
  checked: number;
  /** well-formed server frames the client decoder could not read (exotic echoed bodies) */
  opaque: number;
  violations: string[];
  ms: number;
}

export async function runFuzz(o: FuzzOptions): Promise<FuzzReport> {
  const rep: FuzzReport = {
    frames: 0,
    bytes: 0,
    sessions: 0,
    loggedIn: 0,
    errors: {},
    replies: {},
    closes: {},
    checked: 0,
    opaque: 0,
    violations: [],
    ms: 0,
  };
  const t0 = Date.now();
  const pool: Uint8Array[] = [];
  const root = prng(o.seed);
  let stop = false;
  const more = () => !stop && rep.frames < o.frames && (o.deadline === undefined || Date.now() < o.deadline);
  const progress = o.onProgress ? setInterval(() => o.onProgress!({ ...rep, ms: Date.now() - t0 }), 1000) : undefined;
  const worker = async (w: number) => {
    const r = prng(root.int(2 ** 32) ^ (w * 0x9e3779b9));
    while (more()) {
      try {
        await session(r, o, pool, rep);
      } catch (e) {
        violation(rep, `worker ${w}: ${(e as Error).stack ?? e}`);
        if (rep.violations.length > 200) stop = true;
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: o.conns }, (_, w) => worker(w)));
  } finally {
    if (progress) clearInterval(progress);
  }
  rep.ms = Date.now() - t0;
  return rep;
}

function violation(rep: FuzzReport, s: string): void {
  if (rep.violations.length < 200) rep.violations.push(s);
}

const bump = (m: Record<string, number>, k: string) => (m[k] = (m[k] ?? 0) + 1);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function session(r: Rng, o: FuzzOptions, pool: Uint8Array[], rep: FuzzReport): Promise<void> {
  const target = r.pick(o.targets);
  const timeout = o.sessionTimeoutMs ?? 20_000;
  const wire = await Wire.connect(target.addr);
  rep.sessions++;
  const sent: Piece[] = [];
  const describe = (why: string) =>
    `${why} [${target.kind} ${target.addr}] frames sent (hex):\n` +
    sent.map((p, i) => `  #${i} ${p.what}: ${hex(p.bytes)}`).join('\n') +
    `\n  connection: ${wire.closed ? `closed ${Math.round(wire.closedAt - wire.lastDataAt)} ms after the last data` : 'open'}${wire.reset ? `, reset (${wire.resetCode})` : ''}, ` +
    `${wire.frames.length} frames (${wire.bytesIn} bytes) received; the last ones (bodies cut): ` +
    JSON.stringify(wire.frames.slice(-8), (_k, v) =>
      typeof v === 'bigint'
        ? String(v)
        : v instanceof Uint8Array
          ? hex(v, 16)
          : v && v.type === 'Buffer'
            ? `<${v.data.length} bytes>`
            : v,
    ).slice(-2500);
  try {
    // Maybe log in as a fuzz user, so that the logged-in ops run for real.
    let loggedIn = false;
    if (target.kind === 'msg_server' && r.next() < 0.5) {
      const user = r.pick(FUZZ_USERS);
      const login = await wire.request(
        { op: 'login', rid: OWN_RID, user, token: o.token(user), device: 'd' + r.int(4), push: r.next() < 0.7 },
        timeout,
      );
      if (login.op === 'ok') {
        loggedIn = true;
        rep.loggedIn++;
      } else if (login.op === 'error' && (login.code === 'overloaded' || login.code === 'rate_limited')) {
        bump(rep.errors, String(login.code));
        return;
      } else {
        violation(rep, `login with a valid token failed: ${JSON.stringify(login)}`);
        return;
      }
    }
    void loggedIn;

    const { pieces, terminal } = makeBatch(r, o.maxFrame, pool, 1 + r.int(r.next() < 0.8 ? 24 : 120));
    const body = terminal ? pieces.slice(0, -1) : pieces;
    const term = terminal ? pieces[pieces.length - 1]! : undefined;

    /** Writes bytes split at random points; sometimes lets the server read between pieces. */
    const writeSplit = async (stream: Uint8Array) => {
      let off = 0;
      while (off < stream.length && !wire.closed) {
        const n = r.next() < 0.3 ? 1 + r.int(8) : 1 + r.int(stream.length - off);
        wire.write(stream.subarray(off, off + n));
        off += n;
        if (r.next() < 0.15) await sleep(r.int(3));
      }
    };
    const stream = Buffer.concat(body.map((p) => p.bytes));
    sent.push(...body);
    rep.frames += body.length;
    rep.bytes += stream.length;
    await writeSplit(stream);

    // The sentinel: its pong says every frame before it was read and answered.
    const sentinel = OWN_RID + 1 + r.int(0xfffff - 1);
    wire.send({ op: 'ping', rid: sentinel });
    const closingErr = () => wire.frames.find((f) => f.op === 'error' && CLOSING.has(String(f.code)));
    const kicked = () => wire.frames.some((f) => f.op === 'kick');
    const ponged = () => wire.frames.some((f) => f.op === 'pong' && f.rid === sentinel);
    let finished = true;
    try {
      await wire.until(
        () => ponged() || closingErr() !== undefined || kicked(),
        timeout,
        'the sentinel pong or a closing error',
      );
    } catch {
      finished = false;
    }

    // Then the piece that breaks the framing, if any: its answer is now sure.
    if (term && ponged() && !closingErr() && !kicked() && !wire.closed) {
      sent.push(term);
      rep.frames++;
      rep.bytes += term.bytes.length;
      const before = wire.frames.length;
      await writeSplit(term.bytes);
      if (terminal === 'truncated' || terminal === 'lie') {
        wire.sock.end(); // FIN: nothing more will come
        await wire.until(() => false, 5000, 'close').catch(() => undefined);
        bump(rep.closes, wire.closed ? 'after our FIN' : 'left open after our FIN');
      } else {
        const code = term.expect?.kind === 'close' ? term.expect.code : 'a closing error';
        await wire.until(() => closingErr() !== undefined, timeout, code).catch(() => undefined);
        const got = wire.frames.slice(before).find((f) => f.op === 'error');
        if (!got && wire.reset) bump(rep.closes, 'reset before the answer (not checked)');
        else if (!got && kicked())
          bump(rep.closes, 'kicked before the answer (not checked)'); // "replaced" by another fuzz session
        else {
          rep.checked++;
          if (!got || got.code !== code)
            violation(rep, describe(`${term.what}: expected ${code}, got ${JSON.stringify(got ?? null)}`));
        }
      }
    }

    // ---- check what came back
    for (const u of wire.undecodable) violation(rep, describe(`undecodable reply: ${u}`));
    let afterClosing = -1;
    wire.frames.forEach((f, i) => {
      const op = String(f.op);
      bump(rep.replies, op === 'kick' ? `kick ${String(f.reason)}` : op);
      if (!SERVER_OPS.has(op)) violation(rep, describe(`reply with op ${JSON.stringify(f.op)}`));
      if (op === 'error') {
        const code = String(f.code);
        bump(rep.errors, code);
        if (!DOCUMENTED.has(code)) violation(rep, describe(`undocumented error code ${JSON.stringify(f.code)}`));
        if (typeof f.message !== 'string') violation(rep, describe(`error without a message: ${JSON.stringify(f)}`));
        if ((code === 'bad_frame' || code === 'frame_too_large') && f.rid !== undefined)
          violation(rep, describe(`${code} with a rid`));
        if (f.rid !== undefined && !(Number.isInteger(f.rid) && (f.rid as number) >= 0 && (f.rid as number) < 2 ** 32))
          violation(rep, describe(`error rid ${String(f.rid)}`));
        if (CLOSING.has(code) && afterClosing < 0) afterClosing = i;
      }
    });
    const firstClosing = closingErr();
    if (firstClosing) {
      // nothing after a closing error, and the server closes
      const extra = wire.frames.slice(afterClosing + 1).filter((f) => f.op !== 'msg'); // pushes already in flight are harmless
      if (extra.length)
        violation(rep, describe(`frames after ${String(firstClosing.code)}: ${JSON.stringify(extra).slice(0, 300)}`));
      await wire.until(() => false, 5000, 'close').catch(() => undefined);
      if (!wire.closed) violation(rep, describe(`connection left open 5 s after ${String(firstClosing.code)}`));
      bump(rep.closes, `after ${String(firstClosing.code)}`);
    } else if (kicked()) {
      bump(rep.closes, 'after a kick');
    } else if (!finished) {
      violation(rep, describe(`no answer to the sentinel ping within ${timeout} ms (server hung?)`));
    } else if (wire.closed && !ponged()) {
      if (!sent.some((p) => p.mayClose) && !wire.reset)
        violation(rep, describe('closed without a closing error, kick or logout'));
      bump(rep.closes, wire.reset ? 'reset' : 'closed (logout, maybe)');
    } else if (ponged() && !term) {
      bump(rep.closes, 'by us after the sentinel pong');
    }

    // Sure expectations in the batch: the first piece with one, when every piece
    // before it was safe (and no kick, e.g. "replaced" by another fuzz session,
    // cut the session short).
    // A reset (we wrote on after the server closed) may drop answers the
    // server did send: such a session is not checked for them.
    rep.opaque += wire.opaque;
    if (wire.reset && !firstClosing) bump(rep.closes, 'reset before the answer (not checked)');
    for (const p of kicked() || (wire.reset && !firstClosing) ? [] : body) {
      if (p.expect) {
        rep.checked++;
        if (p.expect.kind === 'pong') {
          const rid = p.expect.rid;
          const got = wire.frames.find((f) => f.rid === rid && (f.op === 'pong' || f.op === 'error'));
          if (got?.op !== 'pong')
            violation(rep, describe(`${p.what}: expected a pong for rid ${rid}, got ${JSON.stringify(got ?? null)}`));
        } else if (!firstClosing || firstClosing.code !== p.expect.code) {
          violation(rep, describe(`${p.what}: expected ${p.expect.code}, got ${JSON.stringify(firstClosing ?? null)}`));
        }
        break;
      }
      if (!p.safe) break;
    }
  } finally {
    wire.close();
  }
}

// ------------------------------------------------------------------ conversation

export interface ConversationResult {
  /** messages sent (acknowledged with ok) by a and b */
  sent: [number, number];
  /** messages received from the peer by a and b */
  received: [number, number];
  problems: string[];
  maxLatencyMs: number;
}

interface Side {
  user: string;
  addr: string;
  token: string;
  wire?: Wire;
  loginSeq: number;
  /** next seq expected in pushes */
  nextSeq: number;
  /** next n expected from the peer */
  nextN: number;
  mids: Set<string>;
  sent: number;
  sentAt: Map<number, number>;
}

/**
 * Two users on (maybe) different msg_servers sending to each other in turn,
 * each send waiting for its ok; each side checks it gets the peer's messages
 * exactly once, in order (n = 0, 1, 2, ...), with consecutive seqs, and acks them.
 */
export class Conversation {
  private readonly sides: [Side, Side];
  private running = false;
  private loop?: Promise<void>;
  readonly problems: string[] = [];
  private maxLatency = 0;
  private ridSeq = 1;

  constructor(
    a: { user: string; addr: string; token: string },
    b: { user: string; addr: string; token: string },
    private readonly intervalMs = 10,
  ) {
    const side = (s: typeof a): Side => ({
      ...s,
      loginSeq: 0,
      nextSeq: 0,
      nextN: 0,
      mids: new Set(),
      sent: 0,
      sentAt: new Map(),
    });
    this.sides = [side(a), side(b)];
  }

  private problem(s: string): void {
    if (this.problems.length < 50) this.problems.push(s);
  }

  async start(): Promise<void> {
    for (const [i, s] of this.sides.entries()) {
      const peer = this.sides[1 - i]!;
      s.wire = await Wire.connect(s.addr);
      const ok = await s.wire.request({
        op: 'login',
        rid: this.ridSeq++,
        user: s.user,
        token: s.token,
        device: 'conv',
      });
      if (ok.op !== 'ok') throw new Error(`conversation login of ${s.user}: ${JSON.stringify(ok)}`);
      s.loginSeq = Number(ok.seq);
      s.nextSeq = s.loginSeq + 1;
      s.wire.onFrame = (f) => this.onFrame(s, peer, f);
    }
    this.running = true;
    this.loop = this.run();
  }

  private onFrame(s: Side, peer: Side, f: Frame): void {
    if (f.op === 'msg' && f.rid === undefined) {
      const seq = Number(f.seq);
      const body = decodeBodyN(f.body);
      if (f.from !== peer.user) this.problem(`${s.user} got a message from ${String(f.from)}`);
      if (seq !== s.nextSeq) this.problem(`${s.user} got seq ${seq}, expected ${s.nextSeq}`);
      if (s.mids.has(String(f.mid))) this.problem(`${s.user} got mid ${String(f.mid)} twice`);
      if (body !== s.nextN) this.problem(`${s.user} got n=${body}, expected ${s.nextN}`);
      const t = peer.sentAt.get(body);
      if (t !== undefined) {
        this.maxLatency = Math.max(this.maxLatency, performance.now() - t);
        peer.sentAt.delete(body);
      }
      s.mids.add(String(f.mid));
      s.nextSeq = seq + 1;
      s.nextN = body + 1;
      s.wire!.send({ op: 'ack', seq });
    } else if (f.op === 'kick') {
      this.problem(`${s.user} was kicked: ${JSON.stringify(f)}`);
    } else if (f.op === 'error') {
      this.problem(`${s.user} got an error: ${JSON.stringify(f)}`);
    }
  }

  private async run(): Promise<void> {
    let turn = 0;
    while (this.running) {
      const s = this.sides[turn % 2]!;
      const peer = this.sides[(turn + 1) % 2]!;
      turn++;
      const n = s.sent;
      try {
        s.sentAt.set(n, performance.now());
        const reply = await s.wire!.request(
          {
            op: 'send',
            rid: this.ridSeq++,
            to: peer.user,
            body: new RawCbor(encodeBody({ n, pad: 'x'.repeat(40) })),
            cid: `conv-${n}`,
          },
          15_000,
        );
        if (reply.op !== 'ok') {
          this.problem(`${s.user} send ${n}: ${JSON.stringify(reply)}`);
          if (reply.code === 'rate_limited') {
            await sleep(100);
            continue; // the same n again, with the same cid
          }
        }
        s.sent = n + 1;
      } catch (e) {
        this.problem(`${s.user} send ${n}: ${(e as Error).message}`);
        if (s.wire!.closed) {
          this.running = false;
          break;
        }
      }
      if (this.intervalMs > 0) await sleep(this.intervalMs);
    }
  }

  /** Stops sending, waits (up to timeoutMs) for every sent message to arrive, and closes. */
  async stop(timeoutMs = 15_000): Promise<ConversationResult> {
    this.running = false;
    await this.loop;
    const [a, b] = this.sides;
    try {
      await Promise.all([
        a
          .wire!.until(() => a.nextN >= b.sent, timeoutMs, `${a.user} to get ${b.sent} messages`)
          .catch((e: Error) => this.problem(e.message)),
        b
          .wire!.until(() => b.nextN >= a.sent, timeoutMs, `${b.user} to get ${a.sent} messages`)
          .catch((e: Error) => this.problem(e.message)),
      ]);
      if (a.nextN !== b.sent) this.problem(`${a.user} received ${a.nextN} of ${b.sent}`);
      if (b.nextN !== a.sent) this.problem(`${b.user} received ${b.nextN} of ${a.sent}`);
      for (const s of this.sides) if (s.wire!.closed) this.problem(`${s.user}'s connection was closed`);
    } finally {
      for (const s of this.sides) s.wire?.close();
    }
    return {
      sent: [a.sent, b.sent],
      received: [a.nextN, b.nextN],
      problems: this.problems,
      maxLatencyMs: Math.round(this.maxLatency),
    };
  }

  /** Stops without checking (cleanup). */
  abort(): void {
    this.running = false;
    for (const s of this.sides) s.wire?.close();
  }
}

function decodeBodyN(body: unknown): number {
  const b = body as { n?: unknown } | undefined;
  return typeof b?.n === 'number' ? b.n : -1;
}

/** A new connection to each address answers a ping. */
export async function pingAll(addrs: string[], timeoutMs = 5000): Promise<string[]> {
  const bad: string[] = [];
  for (const addr of addrs) {
    let w: Wire | undefined;
    try {
      w = await Wire.connect(addr, timeoutMs);
      const p = await w.request({ op: 'ping', rid: 4242 }, timeoutMs);
      if (p.op !== 'pong') bad.push(`${addr}: ${JSON.stringify(p)}`);
    } catch (e) {
      bad.push(`${addr}: ${(e as Error).message}`);
    } finally {
      w?.close();
    }
  }
  return bad;
}

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
  const { spawn } = await import('node:child_process');
  const { mkdtempSync, readFileSync, rmSync, writeFileSync, readdirSync } = await import('node:fs');
  const { tmpdir, cpus, totalmem } = await import('node:os');
  const { join } = await import('node:path');
  const { signToken } = await import('../runtime/protocol/token.js');

  const arg = (name: string, def: number) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? Number(process.argv[i + 1]) : def;
  };
  const frames = arg('frames', 1_000_000);
  const conns = arg('conns', 16);
  const seed = arg('seed', 1);
  const minutes = arg('minutes', 30);

  const dir = mkdtempSync(join(tmpdir(), 'fishchat-fuzz-'));
  const bin = join(import.meta.dirname, '..', 'bin', 'run.js');
  // The cluster runs on this runtime unless --up-exec names another binary (e.g. node_modules/.bin/bun).
  const upExecArg = process.argv.indexOf('--up-exec');
  const exe = upExecArg > 0 ? process.argv[upExecArg + 1]! : process.execPath;
  const init = spawn(exe, [bin, 'init', dir, '--force'], { stdio: ['ignore', 'ignore', 'inherit'] });
  await new Promise((r) => init.on('exit', r));
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.json') && f !== 'fishchat.json')) {
    const j = JSON.parse(readFileSync(join(dir, f), 'utf8'));
    if ('port' in j) j.port = 0;
    if ('httpPort' in j) j.httpPort = 0;
    writeFileSync(join(dir, f), JSON.stringify(j));
  }
  const cf = JSON.parse(readFileSync(join(dir, 'fishchat.json'), 'utf8'));
  cf.cluster = `fuzz${process.pid}`;
  writeFileSync(join(dir, 'fishchat.json'), JSON.stringify(cf));
  const maxFrame: number = cf.settings?.maxFrame ?? 65536;

  const up = spawn(exe, [bin, 'up', dir, '--embedded'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let errOut = '';
  let exited: { code: number | null; signal: string | null } | undefined;
  let stopping = false;
  up.on('exit', (code, signal) => {
    exited = { code, signal };
    if (!stopping)
      console.error(`!!! fishchat up exited during the run: code ${code}, signal ${signal}\n${errOut.slice(-4000)}`);
  });
  // The roles' log lines: a handler that threw (caught by the platform, which then closes that
  // connection) or any error line is a finding even when the process lives on.
  const serverErrors: string[] = [];
  let errLines = 0;
  const scanLog = (d: Buffer) => {
    for (const line of String(d).split('\n')) {
      if (/threw|error|exception|fatal|panic|failed/i.test(line)) {
        errLines++;
        if (serverErrors.length < 20) serverErrors.push(line.slice(0, 500));
      }
    }
  };
  up.stderr!.on('data', (d: Buffer) => {
    errOut = (errOut + d).slice(-100_000);
    scanLog(d);
  });
  const samples: { t: number; rss: number }[] = [];
  let sampler: ReturnType<typeof setInterval> | undefined;
  let conv: Conversation | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`up not ready in 30 s: ${out}${errOut}`)), 30_000);
      up.stdout!.on('data', (d: Buffer) => {
        out += d;
        scanLog(d);
        if (/cluster ready/.test(out)) {
          clearTimeout(t);
          resolve();
        }
        if (out.length > 1_000_000) out = out.slice(-10_000);
      });
    });
    const run = JSON.parse(readFileSync(join(dir, '.fishchat', 'run.json'), 'utf8'));
    const secret = readFileSync(join(dir, '.fishchat', 'secret'), 'utf8').trim();
    const servers: string[] = run.roles
      .filter((r: { role: string }) => r.role === 'msg_server')
      .map((r: { addresses: { tcp: string } }) => r.addresses.tcp);
    const pid: number = run.pid;
    const readRss = () => {
      try {
        const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
        return m ? Number(m[1]) * 1024 : 0;
      } catch {
        return 0;
      }
    };
    const t0 = Date.now();
    samples.push({ t: 0, rss: readRss() });
    sampler = setInterval(() => samples.push({ t: Date.now() - t0, rss: readRss() }), 1000);

    const token = (u: string) => signToken(secret, u, { ttlSeconds: 86_400 * 7 });
    conv = new Conversation(
      { user: 'conv-a', addr: servers[0]!, token: token('conv-a') },
      { user: 'conv-b', addr: servers[1 % servers.length]!, token: token('conv-b') },
      10,
    );
    await conv.start();
    const mib = (n: number) => (n / 1048576).toFixed(1);
    console.log(
      `fuzzing ${run.gateway} and ${servers.join(', ')} (pid ${pid}, ${run.mode}, cluster on ${exe.includes('bun') ? 'Bun' : 'Node'}) — ${frames} frames, ${conns} connections, seed ${seed}`,
    );
    const report = await runFuzz({
      targets: [
        { kind: 'gateway', addr: run.gateway },
        ...servers.map((addr) => ({ kind: 'msg_server' as const, addr })),
        ...servers.map((addr) => ({ kind: 'msg_server' as const, addr })),
      ],
      conns,
      frames,
      seed,
      maxFrame,
      deadline: Date.now() + minutes * 60_000,
      token,
      onProgress: (r) => {
        if (Math.floor(r.ms / 1000) % 10 === 0) {
          const rss = samples.at(-1)?.rss ?? 0;
          console.log(
            `  ${Math.round(r.ms / 1000)} s: ${r.frames} frames, ${r.sessions} sessions, ${r.violations.length} violations, server RSS ${mib(rss)} MiB`,
          );
        }
      },
    });
    const pings = await pingAll([run.gateway, ...servers]);
    const c = await conv.stop();
    conv = undefined;
    clearInterval(sampler);
    sampler = undefined;
    samples.push({ t: Date.now() - t0, rss: readRss() });
    const rss = samples.map((s) => s.rss).filter((x) => x > 0);
    const summary = {
      machine: `${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ${mib(totalmem())} MiB RAM`,
      runtime: `cluster on ${exe.includes('bun') ? 'Bun' : 'Node'}, fuzzer on ${process.versions.bun ? `Bun ${process.versions.bun}` : `Node ${process.version}`}`,
      seed,
      conns,
      framesFuzzed: report.frames,
      bytes: report.bytes,
      sessions: report.sessions,
      loggedInSessions: report.loggedIn,
      seconds: Math.round(report.ms / 100) / 10,
      framesPerSecond: Math.round(report.frames / (report.ms / 1000)),
      errorsByCode: report.errors,
      repliesByOp: report.replies,
      closes: report.closes,
      sureChecks: report.checked,
      violations: report.violations.length,
      crashes: exited ? 1 : 0,
      serverErrorLines: errLines,
      serverErrors,
      pingsAfter: pings.length ? pings : 'all answered',
      rssStartMiB: Number(mib(rss[0] ?? 0)),
      rssMaxMiB: Number(mib(Math.max(...rss))),
      rssEndMiB: Number(mib(rss.at(-1) ?? 0)),
      rssSamples: rss.length,
      conversation: { sent: c.sent, received: c.received, maxLatencyMs: c.maxLatencyMs, problems: c.problems },
    };
    console.log(JSON.stringify(summary, null, 2));
    for (const v of report.violations.slice(0, 20)) console.log('VIOLATION ' + v);
    const okAll =
      report.violations.length === 0 && !exited && pings.length === 0 && c.problems.length === 0 && errLines === 0;
    console.log(okAll ? 'RESULT: ok' : 'RESULT: FAILED');
    process.exitCode = okAll ? 0 : 1;
  } finally {
    if (sampler) clearInterval(sampler);
    conv?.abort();
    stopping = true;
    if (!exited) {
      up.kill('SIGTERM');
      const t = setTimeout(() => up.kill('SIGKILL'), 15_000);
      await new Promise((r) => (exited ? r(undefined) : up.once('exit', r)));
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

const isMain = (() => {
  const bunMain = (import.meta as { main?: boolean }).main;
  if (typeof bunMain === 'boolean') return bunMain;
  const a = process.argv[1];
  return (
    a !== undefined && import.meta.url === new URL(`file://${a.startsWith('/') ? '' : process.cwd() + '/'}${a}`).href
  );
})();
if (isMain) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
