/**
 * cbor-x based decoding of server frames and encoding of client bodies, for
 * clients and tests. (Servers validate requests with validate.ts and encode
 * frames with cbor.ts/frame.ts; they never run cbor-x over client input.)
 */
import { cborxDecoder as decoder, cborxEncoder as encoder } from './cborx.js';

const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const TWO_32 = 0x1_0000_0000;

function isPlainObject(v: object): v is Record<string, unknown> {
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Bigints that are safe integers become numbers (in plain objects and arrays, in place). */
function narrowInts(v: unknown): unknown {
  if (typeof v === 'bigint') return v >= MIN_SAFE && v <= MAX_SAFE ? Number(v) : v;
  if (typeof v !== 'object' || v === null) return v;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const x = v[i];
      if (typeof x === 'bigint' || (typeof x === 'object' && x !== null)) v[i] = narrowInts(x);
    }
  } else if (isPlainObject(v)) {
    for (const k of Object.keys(v)) {
      const x = v[k];
      if (typeof x === 'bigint' || (typeof x === 'object' && x !== null)) v[k] = narrowInts(x);
    }
  }
  return v;
}

/**
 * Decodes one frame payload (the CBOR bytes without the length prefix) with
 * cbor-x: maps as plain objects (map keys become strings), byte strings as
 * (copied) Uint8Arrays, uint64 values as numbers when they are safe integers
 * (bigints otherwise). Throws if the payload is not CBOR or not a map.
 */
export function decodeFrame(payload: Uint8Array): Record<string, unknown> {
  const value = narrowInts(decoder.decode(payload));
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) {
    throw new Error('frame is not a CBOR map');
  }
  return value as Record<string, unknown>;
}

/**
 * Integers of 2^32 or more in magnitude become bigints, so cbor-x writes them
 * as CBOR integers rather than float64 (copy-on-write: the caller's value is
 * never modified).
 */
function widenInts(v: unknown, depth: number): unknown {
  if (typeof v === 'number') {
    return Number.isSafeInteger(v) && (v >= TWO_32 || v < -TWO_32) ? BigInt(v) : v;
  }
  if (typeof v !== 'object' || v === null || depth > 1000) return v;
  if (Array.isArray(v)) {
    let out: unknown[] | null = null;
    for (let i = 0; i < v.length; i++) {
      const x = v[i];
      const y = widenInts(x, depth + 1);
      if (y !== x) (out ??= v.slice())[i] = y;
    }
    return out ?? v;
  }
  if (v instanceof Map) {
    let out: Map<unknown, unknown> | null = null;
    for (const [k, x] of v) {
      const k2 = widenInts(k, depth + 1);
      const y = widenInts(x, depth + 1);
      if (y !== x || k2 !== k) {
        if (!out) out = new Map(v);
        if (k2 !== k) out.delete(k);
        out.set(k2, y);
      }
    }
    return out ?? v;
  }
  if (isPlainObject(v)) {
    let out: Record<string, unknown> | null = null;
    for (const k of Object.keys(v)) {
      const x = v[k];
      const y = widenInts(x, depth + 1);
      if (y !== x) (out ??= { ...v })[k] = y;
    }
    return out ?? v;
  }
  return v;
}

/**
 * Encodes a client `body` value with cbor-x as plain RFC 8949 CBOR: objects
 * become maps with text keys, a JS Map becomes a map with keys of any type
 * (e.g. integer keys), Uint8Array/Buffer become byte strings, integers stay
 * integers (also 2^32 and above, such as ms timestamps), other numbers are
 * floats. The result can be sent as the `body` of send/topic_send.
 */
export function encodeBody(value: unknown): Uint8Array {
  const bytes = encoder.encode(widenInts(value, 0));
  // cbor-x may return a view of a larger shared buffer; give the caller its own bytes.
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength).slice();
}
