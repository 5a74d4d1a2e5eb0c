/**
 * The load generator's few frames, made cheap: requests on the hot path are
 * copies of a template encoded once (only `rid` and the send time change),
 * and pushed frames are read by scanning the CBOR bytes for `op`, `seq` and
 * `body` alone, without building an object. Anything unusual falls back to
 * the protocol's decodeFrame.
 *
 * Payload (bench/FORMAT.md): the first 8 bytes of `body` hold the send time
 * (performance.now(), float64 little endian); the rest is padding.
 */
import { CborHead, encodeCbor, encodeFrame } from '../../runtime/protocol/index.js';

const f64 = new Float64Array(1);
const f64Bytes = new Uint8Array(f64.buffer);
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * `{op, rid, to|topic, body}` encoded once with a 4-byte `rid` (a well-formed,
 * if not shortest, CBOR head) and `size` bytes of body, so each request is one
 * copy and twelve byte writes.
 */
export class RequestTemplate {
  private readonly bytes: Uint8Array;
  private readonly ridAt: number;
  private readonly bodyAt: number;

  constructor(op: 'send' | 'topic_send', field: 'to' | 'topic', target: string, size: number) {
    const padding = new Uint8Array(size).fill(0x2e); // '.'
    const parts = [
      Uint8Array.of(0xa4),
      encodeCbor('op'),
      encodeCbor(op),
      encodeCbor('rid'),
      Uint8Array.of(0x1a, 0, 0, 0, 0),
      encodeCbor(field),
      encodeCbor(target),
      encodeCbor('body'),
      encodeCbor(padding),
    ];
    const len = parts.reduce((n, p) => n + p.length, 0);
    const out = new Uint8Array(4 + len);
    new DataView(out.buffer).setUint32(0, len);
    let at = 4;
    let ridAt = 0;
    for (const [i, p] of parts.entries()) {
      if (i === 4) ridAt = at + 1;
      out.set(p, at);
      at += p.length;
    }
    this.bytes = out;
    this.ridAt = ridAt;
    this.bodyAt = out.length - size;
  }

  /** A new frame for this request, with `rid` and the send time `t` in the body. */
  make(rid: number, t: number): Uint8Array {
    const f = this.bytes.slice();
    const r = this.ridAt;
    f[r] = rid >>> 24;
    f[r + 1] = (rid >>> 16) & 0xff;
    f[r + 2] = (rid >>> 8) & 0xff;
    f[r + 3] = rid & 0xff;
    f64[0] = t;
    if (LITTLE_ENDIAN) f.set(f64Bytes, this.bodyAt);
    else for (let i = 0; i < 8; i++) f[this.bodyAt + i] = f64Bytes[7 - i]!;
    return f;
  }
}

/** The float64 (little endian) at p[at..at+8]: the send time a body carries. */
export function readTime(p: Uint8Array, at: number): number {
  if (LITTLE_ENDIAN) for (let i = 0; i < 8; i++) f64Bytes[i] = p[at + i]!;
  else for (let i = 0; i < 8; i++) f64Bytes[7 - i] = p[at + i]!;
  return f64[0]!;
}

export const PING = encodeFrame({ op: 'ping' });

export function ackFrame(seq: number): Uint8Array {
  return encodeFrame({ op: 'ack', seq }).slice();
}

// ---------------------------------------------------------------- reading

export const OP_OTHER = 0;
export const OP_MSG = 1;
export const OP_OK = 2;
export const OP_ERROR = 3;
export const OP_PONG = 4;

/** Where the first map entry starts (after the map head); -1 if not a small definite map. */
function firstEntry(p: Uint8Array): number {
  const b = p[0]!;
  if (b >= 0xa0 && b <= 0xb7) return 1;
  if (b === 0xb8) return 2;
  return -1;
}

/**
 * The op of a server frame, from its first map entry (servers write `op`
 * first); OP_OTHER when it is not one of the hot ones or not written first.
 */
export function opOf(p: Uint8Array): number {
  const i = firstEntry(p);
  if (i < 0 || p[i] !== 0x62 || p[i + 1] !== 0x6f || p[i + 2] !== 0x70) return OP_OTHER;
  const v = i + 3;
  switch (p[v]) {
    case 0x63: // 3-char text
      return p[v + 1] === 0x6d && p[v + 2] === 0x73 && p[v + 3] === 0x67 ? OP_MSG : OP_OTHER; // msg
    case 0x62:
      return p[v + 1] === 0x6f && p[v + 2] === 0x6b ? OP_OK : OP_OTHER; // ok
    case 0x65:
      return p[v + 1] === 0x65 && p[v + 2] === 0x72 && p[v + 3] === 0x72 ? OP_ERROR : OP_OTHER; // error
    case 0x64:
      return p[v + 1] === 0x70 && p[v + 2] === 0x6f ? OP_PONG : OP_OTHER; // pong
    default:
      return OP_OTHER;
  }
}

/**
 * Reads `seq` and the byte-string `body` of a pushed `msg` frame. Each
 * connection owns one; after a true scan(), its fields describe that frame.
 */
export class MsgScanner {
  /** The push's `seq`. */
  seq = 0;
  /** Where its body's bytes start, and how many there are. */
  bodyAt = -1;
  bodyLen = 0;
  private readonly head = new CborHead();

  /** False when the frame is not shaped as expected (then decode it). */
  scan(p: Uint8Array): boolean {
    const b0 = p[0]!;
    let n: number;
    let i: number;
    if (b0 >= 0xa0 && b0 <= 0xb7) {
      n = b0 & 0x1f;
      i = 1;
    } else if (b0 === 0xb8) {
      n = p[1]!;
      i = 2;
    } else return false;
    let seq = -1;
    let bodyAt = -1;
    let bodyLen = 0;
    const end = p.length;
    const head = this.head;
    for (let k = 0; k < n; k++) {
      const kb = p[i]!;
      if (kb < 0x60 || kb > 0x77) return false; // keys: short text
      const klen = kb & 0x1f;
      const key = i + 1;
      i = key + klen;
      if (i >= end) return false;
      if (klen === 3 && p[key] === 0x73 && p[key + 1] === 0x65 && p[key + 2] === 0x71) {
        // seq: an unsigned integer
        seq = head.read(p, i, end);
        if (seq < 0 || head.major !== 0) return false;
      } else if (klen === 4 && p[key] === 0x62 && p[key + 1] === 0x6f && p[key + 2] === 0x64 && p[key + 3] === 0x79) {
        // body: a byte string
        bodyLen = head.read(p, i, end);
        if (bodyLen < 0 || head.major !== 2) return false;
        bodyAt = head.end;
      }
      i = skip(head, p, i, 0);
      if (i < 0 || i > end) return false;
    }
    if (seq < 0 || bodyAt < 0 || bodyAt + bodyLen > end) return false;
    this.seq = seq;
    this.bodyAt = bodyAt;
    this.bodyLen = bodyLen;
    return true;
  }
}

/** The index after the item at i; -1 for what this scanner does not read (indefinite lengths, deep nesting). */
function skip(head: CborHead, p: Uint8Array, i: number, depth: number): number {
  if (depth > 16) return -1;
  const arg = head.read(p, i, p.length);
  if (arg < 0) return -1;
  const major = head.major;
  let j = head.end;
  switch (major) {
    case 0:
    case 1:
    case 7:
      return j;
    case 2:
    case 3:
      return j + arg;
    case 4:
      for (let k = 0; k < arg && j >= 0; k++) j = skip(head, p, j, depth + 1);
      return j;
    case 5:
      for (let k = 0; k < 2 * arg && j >= 0; k++) j = skip(head, p, j, depth + 1);
      return j;
    default: // 6: a tag, then its item
      return skip(head, p, j, depth + 1);
  }
}
