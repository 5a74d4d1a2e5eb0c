/**
 * A small hand-written CBOR (RFC 8949) encoder for server frames, and a
 * well-formedness scanner for what clients send.
 *
 * Why not cbor-x for server frames: cbor-x writes a JS number of 2^32 or more
 * (a ms timestamp, say) as a float64, which docs/protocol.md §1 forbids. Here every
 * safe integer is a CBOR integer with the shortest head.
 */
import { HEAD_BAD, CborHead } from './head.js';

/** Already-encoded CBOR, spliced into the output as-is (e.g. a message body passed through). */
export class RawCbor {
  constructor(readonly bytes: Uint8Array) {}
}

export type WireValue =
  | string
  | number
  | bigint
  | boolean
  | null
  | Uint8Array
  | RawCbor
  | WireValue[]
  | { [k: string]: WireValue | undefined };

const TWO_32 = 0x1_0000_0000;
const U64_LIMIT = 1n << 64n;
const MAX_ENCODE_DEPTH = 1000;
const textEncoder = new TextEncoder();

const SLAB = 16384;

/**
 * A CBOR writer over a slab of memory. Each value is written after the
 * previous one (begin() … then view() or copy()), so a value handed out as a
 * view is never written over. When a value does not fit, only that value moves
 * to a new slab. One writer is shared by encodeCbor/encodeFrame; it can also be
 * used on its own (e.g. to coalesce many frames into one write).
 */
export class CborWriter {
  buf: Uint8Array;
  dv: DataView;
  /** where the value being written begins in buf */
  start = 0;
  pos = 0;
  private depth = 0;

  constructor(private readonly slabSize = SLAB) {
    this.buf = new Uint8Array(slabSize);
    this.dv = new DataView(this.buf.buffer);
  }

  /** Starts a new value (what was written since the last view()/copy() is dropped). */
  begin(): void {
    this.pos = this.start;
    this.depth = 0;
    const left = this.buf.length - this.pos;
    // a fresh slab when this one is nearly full, or oversized after a huge value
    if (left < 512 || this.buf.length > 64 * this.slabSize) this.slab(0);
  }

  /** Bytes written since begin(). */
  get length(): number {
    return this.pos - this.start;
  }

  /**
   * The bytes written since begin(), as a view of the slab (no copy). Shares
   * its ArrayBuffer with other values from this writer: fine for bytes that are
   * written out and dropped; use copy() for bytes kept long.
   */
  view(): Uint8Array {
    const out = new Uint8Array(this.buf.buffer, this.buf.byteOffset + this.start, this.pos - this.start);
    this.start = this.pos;
    return out;
  }

  /** A copy of the bytes written since begin() (its own ArrayBuffer); the slab space is reused. */
  copy(): Uint8Array {
    const out = this.buf.slice(this.start, this.pos);
    this.pos = this.start;
    return out;
  }

  /** Makes room for n more bytes (may move the current value to a new slab: keep offsets relative to start). */
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    this.slab(n);
  }

  private slab(extra: number): void {
    const used = this.pos - this.start;
    let size = this.slabSize;
    while (size < used + extra) size *= 2;
    const next = new Uint8Array(size);
    if (used > 0) next.set(this.buf.subarray(this.start, this.pos));
    this.buf = next;
    this.dv = new DataView(next.buffer);
    this.start = 0;
    this.pos = used;
  }

  /** Writes a head (major type + argument) with the shortest encoding; 0 <= n <= 2^53. */
  head(major: number, n: number): void {
    this.ensure(9);
    const b = this.buf;
    const m = major << 5;
    if (n < 24) {
      b[this.pos++] = m | n;
    } else if (n < 0x100) {
      b[this.pos++] = m | 24;
      b[this.pos++] = n;
    } else if (n < 0x10000) {
      b[this.pos++] = m | 25;
      b[this.pos++] = n >>> 8;
      b[this.pos++] = n & 0xff;
    } else if (n < TWO_32) {
      b[this.pos++] = m | 26;
      this.dv.setUint32(this.pos, n);
      this.pos += 4;
    } else {
      b[this.pos++] = m | 27;
      this.dv.setUint32(this.pos, Math.floor(n / TWO_32));
      this.dv.setUint32(this.pos + 4, n >>> 0);
      this.pos += 8;
    }
  }

  /** Writes one byte (a simple value: false, true, null, undefined). */
  private byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  /** Writes one value (see encodeCbor for the rules). */
  write(value: WireValue): void {
    switch (typeof value) {
      case 'string':
        this.text(value);
        return;
      case 'number':
        this.number(value);
        return;
      case 'boolean':
        this.byte(value ? 0xf5 : 0xf4);
        return;
      case 'bigint':
        this.bigint(value);
        return;
      case 'undefined':
        // Not a WireValue; only reachable from untyped callers (e.g. [undefined]).
        this.byte(0xf7);
        return;
      case 'object':
        break;
      default:
        throw new TypeError(`cannot encode a ${typeof value} as CBOR`);
    }
    if (value === null) {
      this.byte(0xf6);
      return;
    }
    if (value instanceof RawCbor) {
      const bytes = value.bytes;
      this.ensure(bytes.length);
      this.buf.set(bytes, this.pos);
      this.pos += bytes.length;
      return;
    }
    if (value instanceof Uint8Array) {
      this.head(2, value.length);
      this.ensure(value.length);
      this.buf.set(value, this.pos);
      this.pos += value.length;
      return;
    }
    if (++this.depth > MAX_ENCODE_DEPTH) {
      throw new RangeError('value nested too deep (cyclic?) to encode as CBOR');
    }
    if (Array.isArray(value)) {
      const n = value.length;
      this.head(4, n);
      for (let i = 0; i < n; i++) this.write(value[i] as WireValue);
    } else {
      this.map(value as { [k: string]: WireValue | undefined });
    }
    this.depth--;
  }

  /** Writes a map with text keys; keys whose value is undefined are omitted. */
  map(obj: { [k: string]: WireValue | undefined }): void {
    const keys = Object.keys(obj);
    const n = keys.length;
    if (n < 24) {
      // The count fits the 1-byte head whatever it ends up being: patch it after.
      this.ensure(1);
      const at = this.pos++ - this.start; // relative: ensure() may move the value
      const count = this.entries(obj, keys);
      this.buf[this.start + at] = 0xa0 | count;
      return;
    }
    let count = 0;
    for (let i = 0; i < n; i++) if (obj[keys[i] as string] !== undefined) count++;
    this.head(5, count);
    this.entries(obj, keys);
  }

  /** Writes the entries of a map whose value is not undefined; returns how many. */
  private entries(obj: { [k: string]: WireValue | undefined }, keys: string[]): number {
    let count = 0;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i] as string;
      const v = obj[k];
      if (v === undefined) continue;
      this.text(k);
      this.write(v);
      count++;
    }
    return count;
  }

  number(v: number): void {
    if (Number.isSafeInteger(v)) {
      if (v >= 0) this.head(0, v);
      else this.head(1, -1 - v);
      return;
    }
    this.ensure(9);
    this.buf[this.pos++] = 0xfb;
    this.dv.setFloat64(this.pos, v);
    this.pos += 8;
  }

  bigint(v: bigint): void {
    let major = 0;
    if (v < 0n) {
      major = 1;
      v = -1n - v;
    }
    if (v >= U64_LIMIT) throw new RangeError('bigint out of the 64-bit range of CBOR integers');
    if (v <= 0x1f_ffff_ffff_ffffn) {
      this.head(major, Number(v));
      return;
    }
    this.ensure(9);
    this.buf[this.pos++] = (major << 5) | 27;
    this.dv.setBigUint64(this.pos, v);
    this.pos += 8;
  }

  text(s: string): void {
    const n = s.length;
    if (n < 24) {
      // Most keys and values: short ASCII, written in one pass (head byte = 0x60 | n).
      this.ensure(1 + n);
      const b = this.buf;
      let p = this.pos + 1;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        b[p++] = c;
      }
      if (i === n) {
        b[this.pos] = 0x60 | n;
        this.pos = p;
        return;
      }
    }
    if (n < 128) {
      const blen = utf8Length(s);
      this.head(3, blen);
      this.ensure(blen);
      this.pos = writeUtf8(s, this.buf, this.pos);
      return;
    }
    // Long strings: encodeInto after a head sized for the worst case, then close the gap.
    const max = n * 3;
    const reserved = headSize(max);
    this.ensure(9 + max); // so head() below never moves the buffer (which would drop the text)
    const start = this.pos + reserved;
    const { written } = textEncoder.encodeInto(s, this.buf.subarray(start, start + max));
    const actual = headSize(written);
    if (actual !== reserved) this.buf.copyWithin(this.pos + actual, start, start + written);
    this.head(3, written);
    this.pos += written;
  }
}

function headSize(n: number): number {
  return n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n < TWO_32 ? 5 : 9;
}

/** UTF-8 length of s, lone surrogates counted as U+FFFD (as TextEncoder does). */
function utf8Length(s: string): number {
  let len = 0;
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) len += 1;
    else if (c < 0x800) len += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < n) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        len += 4;
        i++;
      } else len += 3;
    } else len += 3;
  }
  return len;
}

function writeUtf8(s: string, b: Uint8Array, p: number): number {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      b[p++] = c;
    } else if (c < 0x800) {
      b[p++] = 0xc0 | (c >> 6);
      b[p++] = 0x80 | (c & 0x3f);
    } else {
      if (c >= 0xd800 && c <= 0xdfff) {
        const d = i + 1 < n ? s.charCodeAt(i + 1) : 0;
        if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          i++;
          b[p++] = 0xf0 | (c >> 18);
          b[p++] = 0x80 | ((c >> 12) & 0x3f);
          b[p++] = 0x80 | ((c >> 6) & 0x3f);
          b[p++] = 0x80 | (c & 0x3f);
          continue;
        }
        c = 0xfffd;
      }
      b[p++] = 0xe0 | (c >> 12);
      b[p++] = 0x80 | ((c >> 6) & 0x3f);
      b[p++] = 0x80 | (c & 0x3f);
    }
  }
  return p;
}

const shared = new CborWriter();
let sharedBusy = false;

/**
 * The shared writer, begun, or a fresh one if it is in use (a re-entrant call,
 * e.g. from a getter) so results never alias. Pair with releaseWriter().
 */
export function acquireWriter(): CborWriter {
  if (sharedBusy) {
    const w = new CborWriter(1024);
    w.begin();
    return w;
  }
  sharedBusy = true;
  shared.begin();
  return shared;
}

export function releaseWriter(w: CborWriter): void {
  if (w === shared) sharedBusy = false;
}

/**
 * Encodes a value as CBOR:
 * - non-negative safe integers: major 0, shortest head (uint64 head from 2^32);
 *   negative safe integers: major 1; other numbers: float64;
 * - bigint: major 0/1 (RangeError outside the 64-bit range);
 * - string: UTF-8 text; Uint8Array: byte string; arrays; plain objects: maps
 *   with text keys, keys whose value is undefined omitted;
 * - RawCbor: its bytes verbatim.
 * Returns a new Uint8Array with its own ArrayBuffer (safe to keep).
 */
export function encodeCbor(value: WireValue): Uint8Array {
  const w = acquireWriter();
  try {
    w.write(value);
    return w.copy();
  } finally {
    releaseWriter(w);
  }
}

// ---------------------------------------------------------------------------
// Well-formedness scanner
// ---------------------------------------------------------------------------

/** Stack markers for indefinite containers (definite ones store remaining items, >= 1). */
const INDEF_ARRAY = -1;
const INDEF_MAP_KEY = -2; // next item is a key (a break is allowed)
const INDEF_MAP_VALUE = -3; // next item is a value (a break is malformed)

// Scratch of scan() (synchronous, never re-entered; nothing is read from them after it returns).
// One reader for every scan: one allocated per call made a small scan measurably slower.
let scanStack = new Float64Array(80);
const scanHead = new CborHead();

/**
 * Well-formedness check per RFC 8949 §5.3.1 / Appendix C (not validity: text
 * is not checked for UTF-8, tags are not interpreted).
 *
 * Returns the offset just after the one data item starting at `start` (the
 * item must end at or before `end`), or -1 if it is malformed, truncated, or
 * nested deeper than `maxDepth` (each map or array is one level, the outermost
 * one being level 1; tags do not count). Iterative (no recursion, a chain of
 * tags is a loop); claimed lengths or counts larger than the bytes left fail at
 * once. Never throws.
 */
export function scanCbor(buf: Uint8Array, start: number, end: number, maxDepth: number): number {
  try {
    return scan(buf, start, end, maxDepth);
  } catch {
    return -1;
  }
}

function scan(buf: Uint8Array, start: number, end: number, maxDepth: number): number {
  if (end > buf.length) end = buf.length;
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || start >= end) return -1;
  const head = scanHead;
  let p = start;
  let sp = 0; // open containers
  let stack = scanStack;
  let tagged = false; // the next item is a tag's content (so it cannot be a break)
  for (;;) {
    if (p >= end) return -1;
    const ib = buf[p] as number;

    if (ib === 0xff) {
      // break: only where an indefinite array, or an indefinite map between entries, is open
      if (tagged || sp === 0) return -1;
      const top = stack[sp - 1] as number;
      if (top !== INDEF_ARRAY && top !== INDEF_MAP_KEY) return -1;
      sp--;
      p++;
      // the container is complete: fall through to "item done"
    } else {
      const arg = head.read(buf, p, end); // HEAD_INDEFINITE (-1) for ai 31
      if (arg === HEAD_BAD) return -1; // truncated, or 28..30 reserved
      const major = ib >> 5;
      p = head.end;

      switch (major) {
        case 0:
        case 1:
          if (arg < 0) return -1;
          break;
        case 2:
        case 3:
          if (arg >= 0) {
            if (arg > end - p) return -1;
            p += arg;
          } else {
            // indefinite string: definite chunks of the same major type, then a break
            for (;;) {
              if (p >= end) return -1;
              if (buf[p] === 0xff) {
                p++;
                break;
              }
              const clen = head.read(buf, p, end);
              if (clen < 0 || head.major !== major) return -1; // not a definite chunk of the same type
              p = head.end;
              if (clen > end - p) return -1;
              p += clen;
            }
          }
          break;
        case 4:
        case 5: {
          if (sp + 1 > maxDepth) return -1;
          let slot: number;
          if (arg < 0) {
            slot = major === 4 ? INDEF_ARRAY : INDEF_MAP_KEY;
          } else {
            // every item takes at least one byte
            const items = major === 4 ? arg : arg * 2;
            if (items > end - p) return -1;
            if (items === 0) break; // empty: complete now
            slot = items;
          }
          if (sp >= stack.length) {
            const bigger = new Float64Array(stack.length * 2);
            bigger.set(stack);
            scanStack = stack = bigger;
          }
          stack[sp++] = slot;
          tagged = false;
          continue; // read the first item of the container
        }
        case 6:
          if (arg < 0) return -1;
          tagged = true;
          continue; // the tag's content follows (a loop, not recursion)
        default: // 7
          if (ib === 0xf8 && arg < 32) return -1; // a simple value below 32 in two bytes
          // ai 31 here is 0xff, handled above
          break;
      }
    }

    // One item is complete: account for it in the enclosing containers.
    tagged = false;
    for (;;) {
      if (sp === 0) return p;
      const top = stack[sp - 1] as number;
      if (top === INDEF_ARRAY) break;
      if (top === INDEF_MAP_KEY) {
        stack[sp - 1] = INDEF_MAP_VALUE;
        break;
      }
      if (top === INDEF_MAP_VALUE) {
        stack[sp - 1] = INDEF_MAP_KEY;
        break;
      }
      if (top > 1) {
        stack[sp - 1] = top - 1;
        break;
      }
      sp--; // a definite container got its last item: it is an item of its parent
    }
  }
}
