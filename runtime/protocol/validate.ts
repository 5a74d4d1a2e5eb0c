/**
 * Request validation (PROTOCOL.md §1–4): one frame payload in, a typed
 * Request or a protocol error out. The top level is read by hand on top of
 * scanCbor; `body` is kept as the raw bytes of its item.
 */
import { scanCbor } from './cbor.js';
import type { ErrorCode } from './errors.js';
import type { Op, Request } from './types.js';

export type ParseResult = { ok: true; req: Request } | { ok: false; code: ErrorCode; message: string; rid?: number };

/** Max nesting, the frame's own map being level 1 (PROTOCOL.md §1). */
export const MAX_DEPTH = 64;
/** `body` may take at most maxFrame − BODY_OVERHEAD bytes. */
export const BODY_OVERHEAD = 512;

const ALL_OPS: ReadonlySet<string> = new Set<Op>([
  'route',
  'login',
  'ping',
  'logout',
  'send',
  'ack',
  'sync',
  'topic_create',
  'topic_join',
  'topic_leave',
  'topic_send',
  'topic_members',
]);

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

/**
 * Reads the head at p. Returns the argument (as a number; above 2^53 it is
 * approximate, which callers treat as "too big"), -1 for indefinite; sets
 * headEnd. Only used on bytes scanCbor accepted.
 */
let headEnd = 0;
function readArg(b: Uint8Array, p: number): number {
  const ai = (b[p] as number) & 0x1f;
  if (ai < 24) {
    headEnd = p + 1;
    return ai;
  }
  if (ai === 24) {
    headEnd = p + 2;
    return b[p + 1] as number;
  }
  if (ai === 25) {
    headEnd = p + 3;
    return ((b[p + 1] as number) << 8) | (b[p + 2] as number);
  }
  if (ai === 26) {
    headEnd = p + 5;
    return (b[p + 1] as number) * 0x1000000 + (((b[p + 2] as number) << 16) | ((b[p + 3] as number) << 8) | (b[p + 4] as number));
  }
  if (ai === 27) {
    headEnd = p + 9;
    const hi = (b[p + 1] as number) * 0x1000000 + (((b[p + 2] as number) << 16) | ((b[p + 3] as number) << 8) | (b[p + 4] as number));
    const lo = (b[p + 5] as number) * 0x1000000 + (((b[p + 6] as number) << 16) | ((b[p + 7] as number) << 8) | (b[p + 8] as number));
    return hi * TWO_32 + lo;
  }
  headEnd = p + 1;
  return -1; // 31 (28..30 never get past scanCbor)
}

/** An unsigned integer item (major 0, no tag, no float) at [p, end): its value (maybe > 2^53), or NOT_UINT. */
function readUint(b: Uint8Array, p: number, end: number): number {
  if ((b[p] as number) >> 5 !== 0) return NOT_UINT;
  const v = readArg(b, p);
  return headEnd === end ? v : NOT_UINT;
}

/**
 * The bytes of a text item (major 3, definite or indefinite, no tag) at
 * [p, end) as a "binary string" (one char per byte: cheap, exact, never
 * fails), or null if the item is not text.
 */
function readTextBinary(b: Uint8Array, p: number, end: number): string | null {
  if ((b[p] as number) >> 5 !== 3) return null;
  const len = readArg(b, p);
  let q = headEnd;
  if (len >= 0) return binary(b, q, q + len);
  let s = '';
  while (b[q] !== 0xff) {
    const clen = readArg(b, q);
    q = headEnd;
    s += binary(b, q, q + clen);
    q += clen;
  }
  void end;
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
 * - an op not in PROTOCOL.md or not in opts.ops: `unknown_op`;
 * - field rules of PROTOCOL.md §3–4: `bad_request` naming the field.
 * Unknown fields are ignored. `body` is a copy of the raw bytes of its item.
 */
export function parseRequest(payload: Uint8Array, opts: { ops: ReadonlySet<Op>; maxFrame: number }): ParseResult {
  try {
    return parse(payload, opts);
  } catch (err) {
    // Not expected; a request must never be able to crash a server.
    return fail('bad_frame', `undecodable frame (${err instanceof Error ? err.message : String(err)})`);
  }
}

function parse(b: Uint8Array, opts: { ops: ReadonlySet<Op>; maxFrame: number }): ParseResult {
  const end = b.length;
  if (end === 0 || scanCbor(b, 0, end, MAX_DEPTH) !== end) {
    return fail('bad_frame', 'frame is not exactly one well-formed CBOR item (or is nested deeper than 64)');
  }
  if ((b[0] as number) >> 5 !== 5) return fail('bad_frame', 'frame is not a CBOR map');

  // Walk the top-level entries, remembering where each known field's value is.
  const starts = new Array<number>(N_FIELDS).fill(-1);
  const ends = new Array<number>(N_FIELDS).fill(-1);
  let dupKey: string | null = null;
  let unknownKeys: Set<string> | null = null;
  const count = readArg(b, 0);
  let p = headEnd;
  for (let i = 0; count < 0 ? b[p] !== 0xff : i < count; i++) {
    const keyEnd = scanCbor(b, p, end, MAX_DEPTH);
    const key = readTextBinary(b, p, keyEnd);
    if (key === null) return fail('bad_frame', 'frame map has a key that is not a text string');
    const valEnd = scanCbor(b, keyEnd, end, MAX_DEPTH);
    const slot = FIELD_SLOTS.get(key);
    if (slot !== undefined) {
      if (starts[slot] !== -1) dupKey ??= key;
      else {
        starts[slot] = keyEnd;
        ends[slot] = valEnd;
      }
    } else {
      unknownKeys ??= new Set();
      if (unknownKeys.has(key)) dupKey ??= key;
      else unknownKeys.add(key);
    }
    p = valEnd;
  }

  // op: text, else bad_frame
  const opStart = starts[F_OP] as number;
  const opRaw = opStart < 0 ? null : readTextBinary(b, opStart, ends[F_OP] as number);
  if (opRaw === null) return fail('bad_frame', 'frame map has no text "op"');

  // rid
  let rid: number | undefined;
  const ridStart = starts[F_RID] as number;
  if (ridStart >= 0) {
    if (dupKey === 'rid') return fail('bad_request', 'duplicate key "rid"');
    const v = readUint(b, ridStart, ends[F_RID] as number);
    if (v < 0 || v >= TWO_32) return fail('bad_request', 'rid must be an unsigned integer below 2^32');
    rid = v;
  }
  if (dupKey !== null) return fail('bad_request', `duplicate key ${show(dupKey)}`, rid);

  if (!ALL_OPS.has(opRaw) || !opts.ops.has(opRaw as Op)) {
    return fail('unknown_op', `unknown op ${show(opRaw)}`, rid);
  }
  const op = opRaw as Op;

  // Field readers (return an error message, or set the value through the closure).
  const has = (slot: number) => (starts[slot] as number) >= 0;
  const name = (slot: number, field: string): string | ParseResult => {
    const s = readTextBinary(b, starts[slot] as number, ends[slot] as number);
    if (s === null || !isName(s)) return fail('bad_request', `${field} ${NAME_RULE}`, rid);
    return s;
  };
  const uint = (slot: number, field: string, min: number, max: number, rule: string): number | ParseResult => {
    const v = readUint(b, starts[slot] as number, ends[slot] as number);
    if (v < min || v > max) return fail('bad_request', `${field} must be ${rule}`, rid);
    return v;
  };
  const cid = (): string | undefined | ParseResult => {
    if (!has(F_CID)) return undefined;
    const raw = readTextBinary(b, starts[F_CID] as number, ends[F_CID] as number);
    const s = raw === null ? null : fromBinary(raw);
    if (s === null || s.length < 1 || [...s].length > 64) {
      return fail('bad_request', 'cid must be text of 1 to 64 characters', rid);
    }
    return s;
  };
  const body = (): Uint8Array | ParseResult => {
    if (!has(F_BODY)) return fail('bad_request', 'body is required', rid);
    const s = starts[F_BODY] as number;
    const e = ends[F_BODY] as number;
    if (e - s > opts.maxFrame - BODY_OVERHEAD) {
      return fail('bad_request', `body must be at most ${opts.maxFrame - BODY_OVERHEAD} bytes of CBOR`, rid);
    }
    return b.slice(s, e);
  };
  const required = (slot: number, field: string): ParseResult | null =>
    has(slot) ? null : fail('bad_request', `${field} is required`, rid);

  const withRid = <T extends object>(req: T): ParseResult => {
    if (rid !== undefined) (req as { rid?: number }).rid = rid;
    return { ok: true, req: req as unknown as Request };
  };
  const isErr = (v: unknown): v is ParseResult => typeof v === 'object' && v !== null && 'ok' in v;

  switch (op) {
    case 'ping':
    case 'logout':
      return withRid({ op });

    case 'route': {
      if (!has(F_USER)) return withRid({ op });
      const user = name(F_USER, 'user');
      if (isErr(user)) return user;
      return withRid({ op, user });
    }

    case 'login': {
      const r = required(F_USER, 'user');
      if (r) return r;
      const user = name(F_USER, 'user');
      if (isErr(user)) return user;
      let device = 'default';
      if (has(F_DEVICE)) {
        const d = name(F_DEVICE, 'device');
        if (isErr(d)) return d;
        device = d;
      }
      let token: string | undefined;
      if (has(F_TOKEN)) {
        const raw = readTextBinary(b, starts[F_TOKEN] as number, ends[F_TOKEN] as number);
        const t = raw === null ? null : fromBinary(raw);
        if (t === null) return fail('bad_request', 'token must be text', rid);
        token = t;
      }
      let push = true;
      if (has(F_PUSH)) {
        const v = b[starts[F_PUSH] as number];
        if (v === 0xf5) push = true;
        else if (v === 0xf4) push = false;
        else return fail('bad_request', 'push must be a boolean', rid);
      }
      const req: { op: 'login'; user: string; token?: string; device: string; push: boolean } = { op, user, device, push };
      if (token !== undefined) req.token = token;
      return withRid(req);
    }

    case 'send': {
      const r = required(F_TO, 'to');
      if (r) return r;
      const to = name(F_TO, 'to');
      if (isErr(to)) return to;
      const bd = body();
      if (isErr(bd)) return bd;
      const c = cid();
      if (isErr(c)) return c;
      const req: { op: 'send'; to: string; body: Uint8Array; cid?: string } = { op, to, body: bd };
      if (c !== undefined) req.cid = c;
      return withRid(req);
    }

    case 'ack': {
      const r = required(F_SEQ, 'seq');
      if (r) return r;
      const seq = uint(F_SEQ, 'seq', 0, Number.MAX_SAFE_INTEGER, 'an unsigned integer (at most 2^53-1)');
      if (isErr(seq)) return seq;
      return withRid({ op, seq });
    }

    case 'sync': {
      const r = required(F_AFTER, 'after');
      if (r) return r;
      const after = uint(F_AFTER, 'after', 0, Number.MAX_SAFE_INTEGER, 'an unsigned integer (at most 2^53-1)');
      if (isErr(after)) return after;
      let limit = 100;
      if (has(F_LIMIT)) {
        const l = uint(F_LIMIT, 'limit', 1, 1000, 'an integer from 1 to 1000');
        if (isErr(l)) return l;
        limit = l;
      }
      return withRid({ op, after, limit });
    }

    case 'topic_create':
    case 'topic_join':
    case 'topic_leave': {
      const r = required(F_TOPIC, 'topic');
      if (r) return r;
      const topic = name(F_TOPIC, 'topic');
      if (isErr(topic)) return topic;
      return withRid({ op, topic });
    }

    case 'topic_send': {
      const r = required(F_TOPIC, 'topic');
      if (r) return r;
      const topic = name(F_TOPIC, 'topic');
      if (isErr(topic)) return topic;
      const bd = body();
      if (isErr(bd)) return bd;
      const c = cid();
      if (isErr(c)) return c;
      const req: { op: 'topic_send'; topic: string; body: Uint8Array; cid?: string } = { op, topic, body: bd };
      if (c !== undefined) req.cid = c;
      return withRid(req);
    }

    case 'topic_members': {
      const r = required(F_TOPIC, 'topic');
      if (r) return r;
      const topic = name(F_TOPIC, 'topic');
      if (isErr(topic)) return topic;
      let after: string | undefined;
      if (has(F_AFTER)) {
        const a = name(F_AFTER, 'after');
        if (isErr(a)) return a;
        after = a;
      }
      let limit = 1000;
      if (has(F_LIMIT)) {
        const l = uint(F_LIMIT, 'limit', 1, 1000, 'an integer from 1 to 1000');
        if (isErr(l)) return l;
        limit = l;
      }
      const req: { op: 'topic_members'; topic: string; after?: string; limit: number } = { op, topic, limit };
      if (after !== undefined) req.after = after;
      return withRid(req);
    }
  }
}
