/**
 * The values the Redis store writes and reads (layouts: ./lua/common.ts),
 * and the conversions of script replies.
 */
import { cborxEncoder as encoder } from '../../protocol/cborx.js';
import { randomHex } from '../../protocol/random.js';
import { EMPTY } from '../common.js';
import type { DirEntry } from '../store.js';

/** A new user's epoch, offered to the scripts (kept only by the first). */
export const newEpoch = (): string => randomHex(8);

/** f64 BE header + CBOR payload. */
export function entry(ts: number, payload: unknown): Buffer {
  const body = encoder.encode(payload) as Uint8Array;
  const out = Buffer.allocUnsafe(8 + body.length);
  out.writeDoubleBE(ts, 0);
  out.set(body, 8);
  return out;
}

export const str = (v: unknown): string => (Buffer.isBuffer(v) ? v.toString('utf8') : String(v));
export const num = (v: unknown): number => (typeof v === 'number' ? v : Number(str(v)));
export const bytes = (v: unknown): Uint8Array => (v instanceof Uint8Array ? v : EMPTY);
/** A number argument Lua reads with tonumber(): never NaN. */
export const arg = (n: number, fallback = 0): string => (Number.isNaN(n) ? String(fallback) : String(n));

/**
 * Directory entry texts already parsed: every message to a user reads the
 * same few texts (one per device, until it logs in again), so each is parsed
 * once. Only the parse is remembered: the entries are read from Redis with
 * every message all the same.
 */
const parsedDirs = new Map<string, readonly [string, string, number]>();
const PARSED_DIRS_MAX = 50_000;

export function dirEntry(user: string, device: string, json: string): DirEntry {
  let v = parsedDirs.get(json);
  if (v === undefined) {
    v = JSON.parse(json) as [string, string, number];
    if (parsedDirs.size >= PARSED_DIRS_MAX) parsedDirs.clear();
    parsedDirs.set(json, v);
  }
  return { user, device, server: v[0], boot: v[1], gen: v[2] };
}

/** [device, json, device, json, ...] → entries */
export function dirEntries(user: string, flat: unknown): DirEntry[] {
  const a = flat as unknown[];
  const out: DirEntry[] = [];
  for (let i = 0; i + 1 < a.length; i += 2) out.push(dirEntry(user, str(a[i]), str(a[i + 1])));
  return out;
}

/** Names in byte order (as Redis orders them), not UTF-16 order. */
export const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));
