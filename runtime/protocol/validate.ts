/**
 * Request validation (docs/protocol.md §1–4): one frame payload in, a typed
 * Request or a protocol error out. The top level is read by hand on top of
 * scanCbor; `body` is kept as the raw bytes of its item.
 */
import { scanCbor } from './cbor.js';
import { HEAD_BAD, CborHead } from './head.js';
import type { ErrorCode } from './errors.js';
import type { LoginReq, Op, Request, SendReq, TopicMembersReq, TopicSendReq } from './types.js';
import { GATEWAY_OPS, MSG_SERVER_OPS } from './types.js';

export type ParseResult =
  | { ok: true; req: Request }
  /** `op`: the known op whose fields were wrong (a bad_request from its fields) */
  | { ok: false; code: ErrorCode; message: string; rid?: number; op?: Op };

/** Max nesting, the frame's own map being level 1 (docs/protocol.md §1). */
export const MAX_DEPTH = 64;
/** `body` may take at most maxFrame − BODY_OVERHEAD bytes. */
export const BODY_OVERHEAD = 512;

const ALL_OPS: ReadonlySet<string> = new Set<Op>([...GATEWAY_OPS, ...MSG_SERVER_OPS]);

// Top-level fields we read, by slot.
const F_OP = 0;
const F_RID = 1;
const F_USER = 2;
const F_DEVICE = 3;
const F_TOKEN = 4;
const F_PUSH = 5;
const F_TO = 6;
const F_TOPIC = 7;
const F_BODY = 8;
const F_CID = 9;
const F_SEQ = 10;
const F_AFTER = 11;
const F_LIMIT = 12;
const N_FIELDS = 13;
const FIELD_SLOTS: ReadonlyMap<string, number> = new Map([
  ['op', F_OP],
  ['rid', F_RID],
  ['user', F_USER],
  ['device', F_DEVICE],
  ['token', F_TOKEN],
  ['push', F_PUSH],
  ['to', F_TO],
  ['topic', F_TOPIC],
  ['body', F_BODY],
  ['cid', F_CID],
  ['seq', F_SEQ],
  ['after', F_AFTER],
  ['limit', F_LIMIT],
]);

const TWO_32 = 0x1_0000_0000;
const NOT_UINT = -1;
const utf8 = new TextDecoder('utf-8', { fatal: true });

function fail(code: ErrorCode, message: string, rid?: number): ParseResult {
  return rid === undefined ? { ok: false, code, message } : { ok: false, code, message, rid };
}

/** An unsigned integer item (major 0, no tag, no float) at [p, end): its value (maybe > 2^53), or NOT_UINT. */
function readUint(b: Uint8Array, head: CborHead, p: number, end: number): number {
  const v = head.read(b, p, end);
  return v >= 0 && head.major === 0 && head.end === end ? v : NOT_UINT;
}

/**
 * The bytes of a text item (major 3, definite or indefinite, no tag) at
 * [p, end) as a "binary string" (one char per byte: cheap, exact, never
 * fails), or null if the item is not text. Only for an item known to be
 * well-formed (scanned).
 */
function readTextBinary(b: Uint8Array, head: CborHead, p: number, end: number): string | null {
  const len = head.read(b, p, end);
  if (len === HEAD_BAD || head.major !== 3) return null;
  let q = head.end;
  if (len >= 0) return binary(b, q, q + len);
  let s = '';
  while (b[q] !== 0xff) {
    const clen = head.read(b, q, end);
    q = head.end;
    s += binary(b, q, q + clen);
    q += clen;
  }
  return s;
}

function binary(b: Uint8Array, from: number, to: number): string {
  if (to - from <= 64) {
    let s = '';
    for (let i = from; i < to; i++) s += String.fromCharCode(b[i] as number);
    return s;
  }
  let s = '';
  for (let i = from; i < to; i += 4096) {
    s += String.fromCharCode.apply(null, b.subarray(i, Math.min(to, i + 4096)) as unknown as number[]);
  }
  return s;
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return false;
  return true;
}

/** Decodes a binary string as UTF-8; null if it is not valid UTF-8. */
function fromBinary(s: string): string | null {
  if (isAscii(s)) return s;
  const bytes = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) bytes[i] = s.charCodeAt(i);
  try {
    return utf8.decode(bytes);
  } catch {
    return null;
  }
}

/** For messages: a short printable rendering of a binary string. */
function show(s: string): string {
  const text = new TextDecoder('utf-8').decode(Uint8Array.from(s.slice(0, 64), (c) => c.charCodeAt(0)));
  return JSON.stringify(text) + (s.length > 64 ? '…' : '');
}

const NAME_CHARS = (() => {
  const t = new Uint8Array(128);
  const set = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.@-';
  for (let i = 0; i < set.length; i++) t[set.charCodeAt(i)] = 1;
  return t;
})();

/** 1–64 characters of [A-Za-z0-9_.@-] (binary string: those are all ASCII). */
function isName(s: string): boolean {
  const n = s.length;
  if (n < 1 || n > 64) return false;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || NAME_CHARS[c] === 0) return false;
  }
  return true;
}

const NAME_RULE = 'must be 1 to 64 characters of [A-Za-z0-9_.@-]';

/**
 * Validates one frame payload. Never throws.
 * - not exactly one well-formed CBOR item, nested deeper than 64, not a map,
 *   a non-text key at the top level, or no text `op`: `bad_frame` (no rid);
 * - a present but invalid `rid`: `bad_request` without rid; any later error
 *   carries the rid;
 * - duplicate top-level keys: `bad_request`;
 * - an op not in docs/protocol.md or not in opts.ops: `unknown_op`;
 * - field rules of docs/protocol.md §3–4: `bad_request` naming the field.
 * Unknown fields are ignored. `body` is a copy of the raw bytes of its item
 * (it outlives the payload buffer).
 */
export function parseRequest(payload: Uint8Array, opts: { ops: ReadonlySet<Op>; maxFrame: number }): ParseResult {
  try {
    return parse(payload, opts);
  } catch (err) {
    // Not expected; a request must never be able to crash a server.
    return fail('bad_frame', `undecodable frame (${err instanceof Error ? err.message : String(err)})`);
  }
}

// Scratch for parse() (synchronous, never re-entered): where each known field's value is.
const starts = new Int32Array(N_FIELDS);
const ends = new Int32Array(N_FIELDS);
const FIELD_NAMES = [...FIELD_SLOTS.keys()];

/** Slot of a known key given its UTF-8 bytes [p, p+len), or -1. */
function keySlot(b: Uint8Array, p: number, len: number): number {
  const c0 = b[p];
  switch (len) {
    case 2:
      if (c0 === 0x6f && b[p + 1] === 0x70) return F_OP; // op
      if (c0 === 0x74 && b[p + 1] === 0x6f) return F_TO; // to
      return -1;
    case 3:
      if (c0 === 0x72 && b[p + 1] === 0x69 && b[p + 2] === 0x64) return F_RID; // rid
      if (c0 === 0x63 && b[p + 1] === 0x69 && b[p + 2] === 0x64) return F_CID; // cid
      if (c0 === 0x73 && b[p + 1] === 0x65 && b[p + 2] === 0x71) return F_SEQ; // seq
      return -1;
    case 4:
    case 5:
    case 6: {
      // rare enough: compare as a string
      let s = '';
      for (let i = 0; i < len; i++) s += String.fromCharCode(b[p + i] as number);
      return FIELD_SLOTS.get(s) ?? -1;
    }
    default:
      return -1;
  }
}

/** A name value, or null if absent or not a name (then nameProblem(slot) says which). */
function nameAt(b: Uint8Array, head: CborHead, slot: number): string | null {
  if (starts[slot] < 0) return null;
  const s = readTextBinary(b, head, starts[slot] as number, ends[slot] as number);
  return s !== null && isName(s) ? s : null;
}

function nameProblem(slot: number): string {
  const field = FIELD_NAMES[slot] as string;
  return starts[slot] < 0 ? `${field} is required` : `${field} ${NAME_RULE}`;
}

/** A text value decoded as UTF-8, or null if not text / not valid UTF-8. */
function textAt(b: Uint8Array, head: CborHead, slot: number): string | null {
  const raw = readTextBinary(b, head, starts[slot] as number, ends[slot] as number);
  return raw === null ? null : fromBinary(raw);
}

function uintAt(b: Uint8Array, head: CborHead, slot: number): number {
  return readUint(b, head, starts[slot] as number, ends[slot] as number);
}

/** `limit`: `dflt` when absent, -1 when not an integer from 1 to 1000. */
function limitAt(b: Uint8Array, head: CborHead, dflt: number): number {
  if (starts[F_LIMIT] < 0) return dflt;
  const limit = uintAt(b, head, F_LIMIT);
  return limit < 1 || limit > 1000 ? -1 : limit;
}

/** Number of Unicode code points of s. */
function codePoints(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

const BAD_FRAME_MSG = 'frame is not exactly one well-formed CBOR map (or is nested deeper than 64)';
const UINT_RULE = 'must be an unsigned integer (at most 2^53-1)';
const LIMIT_RULE = 'must be an integer from 1 to 1000';

function parse(b: Uint8Array, opts: { ops: ReadonlySet<Op>; maxFrame: number }): ParseResult {
  const end = b.length;
  if (end === 0 || (b[0] as number) >> 5 !== 5) {
    if (end > 0 && scanCbor(b, 0, end, MAX_DEPTH) === end) return fail('bad_frame', 'frame is not a CBOR map');
    return fail('bad_frame', BAD_FRAME_MSG);
  }

  // One pass over the top-level entries: keys must be text; each value is
  // checked for well-formedness (and depth: the frame map is level 1) and its
  // range remembered.
  starts.fill(-1);
  const head = new CborHead();
  let dupKey: string | null = null;
  let unknownKeys: Set<string> | null = null;
  const count = head.read(b, 0, end);
  if (count === HEAD_BAD) return fail('bad_frame', BAD_FRAME_MSG);
  let p = head.end;
  for (let i = 0; ; i++) {
    if (count >= 0) {
      if (i >= count) break;
    } else {
      if (p >= end) return fail('bad_frame', BAD_FRAME_MSG);
      if (b[p] === 0xff) {
        p++;
        break;
      }
    }
    if (p >= end) return fail('bad_frame', BAD_FRAME_MSG);
    if ((b[p] as number) >> 5 !== 3) {
      // not text (or not even well-formed): bad_frame either way
      return fail('bad_frame', 'frame map has a key that is not a text string');
    }
    let keyEnd: number;
    let slot: number;
    let key: string | null = null;
    const klen = head.read(b, p, end);
    if (klen >= 0) {
      keyEnd = head.end + klen;
      if (keyEnd > end) return fail('bad_frame', BAD_FRAME_MSG);
      slot = keySlot(b, head.end, klen);
    } else {
      keyEnd = klen === HEAD_BAD ? -1 : scanCbor(b, p, end, 1);
      if (keyEnd < 0) return fail('bad_frame', BAD_FRAME_MSG);
      key = readTextBinary(b, head, p, keyEnd) as string;
      slot = FIELD_SLOTS.get(key) ?? -1;
    }
    const valEnd = scanCbor(b, keyEnd, end, MAX_DEPTH - 1);
    if (valEnd < 0) return fail('bad_frame', BAD_FRAME_MSG);
    if (slot >= 0) {
      if (starts[slot] !== -1) dupKey ??= FIELD_NAMES[slot] as string;
      else {
        starts[slot] = keyEnd;
        ends[slot] = valEnd;
      }
    } else {
      key ??= readTextBinary(b, head, p, keyEnd) as string;
      unknownKeys ??= new Set();
      if (unknownKeys.has(key)) dupKey ??= key;
      else unknownKeys.add(key);
    }
    p = valEnd;
  }
  if (p !== end) return fail('bad_frame', 'trailing bytes after the frame map');

  // op: text, else bad_frame
  const opRaw = starts[F_OP] < 0 ? null : readTextBinary(b, head, starts[F_OP] as number, ends[F_OP] as number);
  if (opRaw === null) return fail('bad_frame', 'frame map has no text "op"');

  // rid
  let rid: number | undefined;
  if (starts[F_RID] >= 0) {
    if (dupKey === 'rid') return fail('bad_request', 'duplicate key "rid"');
    const v = uintAt(b, head, F_RID);
    if (v < 0 || v >= TWO_32) return fail('bad_request', 'rid must be an unsigned integer below 2^32');
    rid = v;
  }
  if (dupKey !== null) return fail('bad_request', `duplicate key ${show(dupKey)}`, rid);

  if (!ALL_OPS.has(opRaw) || !opts.ops.has(opRaw as Op)) {
    return fail('unknown_op', `unknown op ${show(opRaw)}`, rid);
  }
  const op = opRaw as Op;
  const req = buildRequest(b, head, op, opts.maxFrame);
  if (typeof req === 'string')
    return rid === undefined
      ? { ok: false, code: 'bad_request', message: req, op }
      : { ok: false, code: 'bad_request', message: req, rid, op };
  if (rid !== undefined) req.rid = rid;
  return { ok: true, req };
}

/** The request of a known op from the remembered fields, or a bad_request message. */
function buildRequest(b: Uint8Array, head: CborHead, op: Op, maxFrame: number): Request | string {
  switch (op) {
    case 'ping':
    case 'logout':
      return { op };

    case 'route': {
      if (starts[F_USER] < 0) return { op };
      const user = nameAt(b, head, F_USER);
      return user === null ? nameProblem(F_USER) : { op, user };
    }

    case 'login': {
      const user = nameAt(b, head, F_USER);
      if (user === null) return nameProblem(F_USER);
      let device = 'default';
      if (starts[F_DEVICE] >= 0) {
        const d = nameAt(b, head, F_DEVICE);
        if (d === null) return nameProblem(F_DEVICE);
        device = d;
      }
      let push = true;
      if (starts[F_PUSH] >= 0) {
        const v = b[starts[F_PUSH] as number];
        if (ends[F_PUSH] - starts[F_PUSH] !== 1 || (v !== 0xf4 && v !== 0xf5)) return 'push must be a boolean';
        push = v === 0xf5;
      }
      const req: LoginReq = { op, user, device, push };
      if (starts[F_TOKEN] >= 0) {
        const t = textAt(b, head, F_TOKEN);
        if (t === null) return 'token must be text';
        req.token = t;
      }
      return req;
    }

    case 'send':
    case 'topic_send': {
      const slot = op === 'send' ? F_TO : F_TOPIC;
      const target = nameAt(b, head, slot);
      if (target === null) return nameProblem(slot);
      if (starts[F_BODY] < 0) return 'body is required';
      const bs = starts[F_BODY] as number;
      const be = ends[F_BODY] as number;
      if (be - bs > maxFrame - BODY_OVERHEAD) return `body must be at most ${maxFrame - BODY_OVERHEAD} bytes of CBOR`;
      let cid: string | undefined;
      if (starts[F_CID] >= 0) {
        const c = textAt(b, head, F_CID);
        if (c === null || c.length === 0 || codePoints(c) > 64) return 'cid must be text of 1 to 64 characters';
        cid = c;
      }
      const body = b.slice(bs, be);
      const req: SendReq | TopicSendReq = op === 'send' ? { op, to: target, body } : { op, topic: target, body };
      if (cid !== undefined) req.cid = cid;
      return req;
    }

    case 'ack': {
      if (starts[F_SEQ] < 0) return 'seq is required';
      const seq = uintAt(b, head, F_SEQ);
      if (seq < 0 || seq > Number.MAX_SAFE_INTEGER) return `seq ${UINT_RULE}`;
      return { op, seq };
    }

    case 'sync': {
      if (starts[F_AFTER] < 0) return 'after is required';
      const after = uintAt(b, head, F_AFTER);
      if (after < 0 || after > Number.MAX_SAFE_INTEGER) return `after ${UINT_RULE}`;
      const limit = limitAt(b, head, 100);
      if (limit < 0) return `limit ${LIMIT_RULE}`;
      return { op, after, limit };
    }

    case 'topic_create':
    case 'topic_join':
    case 'topic_leave': {
      const topic = nameAt(b, head, F_TOPIC);
      return topic === null ? nameProblem(F_TOPIC) : { op, topic };
    }

    case 'topic_members': {
      const topic = nameAt(b, head, F_TOPIC);
      if (topic === null) return nameProblem(F_TOPIC);
      const limit = limitAt(b, head, 1000);
      if (limit < 0) return `limit ${LIMIT_RULE}`;
      const req: TopicMembersReq = { op, topic, limit };
      if (starts[F_AFTER] >= 0) {
        const after = nameAt(b, head, F_AFTER);
        if (after === null) return nameProblem(F_AFTER);
        req.after = after;
      }
      return req;
    }
  }
}
