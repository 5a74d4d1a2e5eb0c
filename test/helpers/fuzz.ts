/**
 * The fuzzers' seeded randomness (test/protocol-fuzz.test.ts, bench/fuzz.ts
 * and through it test/fuzz-live.test.ts): a PRNG, and random CBOR values
 * drawn from a corpus each fuzzer chooses.
 */
import { encodeBody, RawCbor, type WireValue } from '../../runtime/protocol/index.js';

/** mulberry32: small, fast, seeded. */
export function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;
  const bytes = (n: number) => {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = int(256);
    return b;
  };
  return { next, int, pick, bytes };
}

export type Rng = ReturnType<typeof prng>;

/** What randomValue draws from. */
export interface ValueCorpus {
  ints: readonly WireValue[];
  names: readonly string[];
  /** byte strings are shorter than this */
  maxBytes: number;
  /** encoded items spliced in as they are (tags, indefinite lengths, floats, …) */
  raw: readonly Uint8Array[];
  /** keys of random maps */
  keys: readonly string[];
}

/** Raw items every corpus starts with. */
export const RAW_BASICS: readonly Uint8Array[] = [
  encodeBody(
    new Map<unknown, unknown>([
      [1, 'a'],
      [-2, new Uint8Array([1])],
    ]),
  ), // integer keys
  new Uint8Array([0xc1, 0x1a, 0x51, 0x4b, 0x67, 0xb0]), // tag 1
  new Uint8Array([0x5f, 0x41, 0x01, 0x41, 0x02, 0xff]), // chunked bytes
];

/** A random value: scalars, raw items, and (below depth 4) arrays and maps of random values. */
export function randomValue(r: Rng, c: ValueCorpus, depth: number): WireValue {
  switch (r.int(depth > 3 ? 7 : 10)) {
    case 0:
      return r.pick(c.ints);
    case 1:
      return r.pick(c.names);
    case 2:
      return r.bytes(r.int(c.maxBytes));
    case 3:
      return r.pick([true, false, null] as WireValue[]);
    case 4:
      return r.next() * 1000;
    case 5:
      return new RawCbor(r.pick(c.raw));
    case 6:
      return 'text ' + r.int(1000);
    case 7: {
      const a: WireValue[] = [];
      for (let i = r.int(4); i > 0; i--) a.push(randomValue(r, c, depth + 1));
      return a;
    }
    default: {
      const o: Record<string, WireValue> = {};
      for (let i = r.int(4); i > 0; i--) o[r.pick(c.keys)] = randomValue(r, c, depth + 1);
      return o;
    }
  }
}

/** b with piece inserted at `at` (a new array). */
export function insertAt(b: Uint8Array, at: number, piece: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(b.length + piece.length);
  out.set(b.subarray(0, at));
  out.set(piece, at);
  out.set(b.subarray(at), at + piece.length);
  return out;
}
