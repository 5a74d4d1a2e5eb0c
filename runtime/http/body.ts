/**
 * How the admin APIs (the manager's, a msg_server's server API) show a stored
 * message body: always as base64 (the raw CBOR the sender sent), and, when it
 * decodes as one CBOR item, as JSON too.
 */
import { cborxDecoder as decoder } from '../protocol/cborx.js';

/** Deeper bodies are shown as base64 only. */
const MAX_DEPTH = 64;

export interface BodyView {
  /** the raw CBOR, base64 */
  body: string;
  /** the decoded body as JSON, when it is one well-formed CBOR item */
  json?: unknown;
}

export function bodyView(body: Uint8Array): BodyView {
  const out: BodyView = { body: Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('base64') };
  if (body.byteLength === 0) return out;
  try {
    out.json = toJson(decoder.decode(body), 0);
  } catch {
    // not CBOR (or not one item, or too deep): base64 only
  }
  return out;
}

/**
 * A decoded CBOR value as JSON: byte strings as {"$bytes": base64}, integers
 * beyond 2^53 and non-finite floats as strings, dates as ISO strings, maps
 * with their keys as strings.
 */
function toJson(v: unknown, depth: number): unknown {
  if (depth > MAX_DEPTH) throw new Error('too deep');
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return v;
    case 'number':
      return Number.isFinite(v) ? v : String(v);
    case 'bigint':
      return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
    case 'undefined':
      return null;
    case 'object':
      break;
    default:
      return String(v);
  }
  if (v === null) return null;
  if (v instanceof Uint8Array) return { $bytes: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') };
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v) || v instanceof Set) return Array.from(v, (x) => toJson(x, depth + 1));
  // No prototype: a "__proto__" key stays a plain key.
  const out: Record<string, unknown> = Object.create(null);
  const entries = v instanceof Map ? v.entries() : Object.entries(v as object);
  for (const [k, x] of entries) out[String(k)] = toJson(x, depth + 1);
  return out;
}
