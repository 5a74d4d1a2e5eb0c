/** Inboxes of the Redis store: p2p appends (batched per turn on a single Redis), reads, heads, ack cursors. */
import { cborxDecoder as decoder } from '../../protocol/cborx.js';
import { EMPTY } from '../common.js';
import type { AppendP2P, AppendResult, DirEntry, InboxHead, StoredMessage, StoreLimits } from '../store.js';
import type { RedisContext, ScriptFn } from './context.js';
import { putAppendKeys, type Keys } from './keys.js';
import { arg, byteOrder, bytes, dirEntries, dirEntry, newEpoch, num, str } from './values.js';

/** Users remembered as already in the `users` index (then forgotten all at once). */
const KNOWN_USERS_MAX = 200_000;

/** Puts the user in the `users` index (trim walks it); a separate command, pipelined with the caller's. */
export function noteUser(r: RedisContext, user: string): Promise<unknown> | undefined {
  if (r.known.has(user)) return undefined;
  if (r.known.size >= KNOWN_USERS_MAX) r.known.clear();
  r.known.add(user);
  return r.c.sadd(r.keys.users, user).catch((err: unknown) => {
    r.known.delete(user);
    throw err;
  });
}

export function headOf(seq: unknown, epoch: unknown, length: unknown): InboxHead {
  const s = num(seq);
  return { seq: s, first: s - num(length) + 1, epoch: str(epoch) };
}

/** The cid field of an append: `from \0 cid` ('' none). */
const cidField = (m: AppendP2P): string => (m.cid === undefined ? '' : `${m.from}\0${m.cid}`);
/** The inbox entry of a p2p message (the script prepends the seq). */
function p2pEntry(m: AppendP2P): Buffer {
  const out = Buffer.allocUnsafe(p2pEntryMax(m));
  return out.subarray(0, putP2PEntry(out, 0, m));
}

export function appendP2P(r: RedisContext, m: AppendP2P): Promise<AppendResult> {
  r.open();
  const noted = noteUser(r, m.to);
  if (r.appends !== undefined) {
    // Not an async function: on the hot path the batch's own promise is the caller's.
    const call = r.appends.add(m) as Promise<AppendResult>;
    return noted === undefined ? call : Promise.all([call, noted]).then((both) => both[0]);
  }
  return appendOne(r, m, noted);
}

async function appendOne(r: RedisContext, m: AppendP2P, noted: Promise<unknown> | undefined): Promise<AppendResult> {
  const keys: string[] = new Array(6);
  putAppendKeys(r.keys.user(m.to), keys, 0);
  const call = r.s.append(
    ...keys,
    cidField(m),
    p2pEntry(m),
    arg(m.ts),
    String(r.limits.cidWindowMs),
    String(r.limits.maxInbox),
    newEpoch(),
    m.mid,
  );
  return appendResult(m, (noted === undefined ? await call : (await Promise.all([call, noted]))[0]) as unknown[]);
}

function appendResult(m: AppendP2P, r: unknown[]): AppendResult {
  if (r[0] === 1) {
    return { mid: str(r[1]), seq: num(r[2]), ts: num(r[3]), duplicate: true, sessions: dirEntries(m.to, r[4]) };
  }
  return { mid: m.mid, seq: num(r[1]), ts: m.ts, duplicate: false, sessions: dirEntries(m.to, r[2]) };
}

/** One fishchat_appendMany call: each append exactly as the `append` script, in order (lua/inbox.ts APPEND_MANY). */
export async function sendAppends(
  k: Keys,
  limits: StoreLimits,
  appendMany: ScriptFn,
  batch: AppendP2P[],
): Promise<AppendResult[]> {
  const packed = packAppends(k, batch);
  const reply = await appendMany(0, String(limits.cidWindowMs), String(limits.maxInbox), newEpoch(), packed);
  return unpackAppends(batch, reply as Buffer);
}

/** The appends of one fishchat_appendMany call, packed into its one argument (layout: lua/inbox.ts APPEND_MANY). */
export function packAppends(k: Keys, batch: AppendP2P[]): Buffer {
  const prefixes: string[] = new Array(batch.length);
  let cap = 0;
  for (let i = 0; i < batch.length; i++) {
    const m = batch[i]!;
    const prefix = (prefixes[i] = k.user(m.to));
    // Five length heads (12 bytes), the entry, the ts (at most 24 characters); UTF-8 takes at
    // most 3 bytes per UTF-16 unit of the texts: the prefix, the cid field (from \0 cid), the mid.
    const texts = prefix.length + m.from.length + 1 + (m.cid?.length ?? 0) + m.mid.length;
    cap += 12 + p2pEntryMax(m) + 24 + 3 * texts;
  }
  const out = Buffer.allocUnsafe(cap);
  let at = 0;
  const text = (s: string): void => {
    const n = out.write(s, at + 2, 'utf8');
    if (n > 0xffff) throw new RangeError(`a field of ${n} bytes in an append`);
    out.writeUInt16BE(n, at);
    at += 2 + n;
  };
  for (let i = 0; i < batch.length; i++) {
    const m = batch[i]!;
    text(prefixes[i]!);
    text(cidField(m));
    const end = putP2PEntry(out, at + 4, m);
    out.writeUInt32BE(end - at - 4, at);
    at = end;
    text(arg(m.ts));
    text(m.mid);
  }
  return out.subarray(0, at);
}

/** The most bytes putP2PEntry writes for `m`: ts, array head, kind, four heads of up to 5 bytes, the texts (UTF-8: ≤ 3 bytes per UTF-16 unit), the body. */
const p2pEntryMax = (m: AppendP2P): number =>
  8 + 1 + 1 + 4 * 5 + 3 * (m.mid.length + m.from.length + m.to.length) + m.body.length;

/**
 * Writes the inbox entry of a p2p message at `out[at..]` (without the seq the
 * script prepends): f64 BE ts | CBOR [0, mid, from, to, body] (body a byte
 * string), the layout readInbox decodes; returns the end. `out` has room.
 */
function putP2PEntry(out: Buffer, at: number, m: AppendP2P): number {
  out.writeDoubleBE(m.ts, at);
  out[at + 8] = 0x85; // array of 5
  out[at + 9] = 0x00; // kind 0: p2p
  at = putText(out, at + 10, m.mid);
  at = putText(out, at, m.from);
  at = putText(out, at, m.to);
  at = putHead(out, at, 0x40, m.body.length);
  out.set(m.body, at);
  return at + m.body.length;
}

function putText(out: Buffer, at: number, s: string): number {
  const n = Buffer.byteLength(s, 'utf8');
  at = putHead(out, at, 0x60, n);
  return at + out.write(s, at, 'utf8');
}

/** A CBOR head: major type (0x40 bytes, 0x60 text) and length, shortest form. */
function putHead(out: Buffer, at: number, major: number, n: number): number {
  if (n < 24) {
    out[at] = major | n;
    return at + 1;
  }
  if (n < 0x100) {
    out[at] = major | 24;
    out[at + 1] = n;
    return at + 2;
  }
  if (n < 0x10000) {
    out[at] = major | 25;
    out.writeUInt16BE(n, at + 1);
    return at + 3;
  }
  out[at] = major | 26;
  out.writeUInt32BE(n, at + 1);
  return at + 5;
}

/** The replies of one fishchat_appendMany call, one per append of `batch`. */
export function unpackAppends(batch: AppendP2P[], b: Buffer): AppendResult[] {
  const out: AppendResult[] = new Array(batch.length);
  let at = 0;
  for (let i = 0; i < batch.length; i++) {
    const m = batch[i]!;
    if (at + 9 > b.length)
      throw new Error(`fishchat_appendMany: reply of ${b.length} bytes ends before append ${i + 1}`);
    const dup = b[at] === 1;
    const seq = b.readDoubleBE(at + 1);
    at += 9;
    let mid = m.mid;
    let ts = m.ts;
    if (dup) {
      ts = b.readDoubleBE(at);
      const n = b.readUInt16BE(at + 8);
      mid = b.toString('utf8', at + 10, at + 10 + n);
      at += 10 + n;
    }
    const pairs = b.readUInt16BE(at);
    at += 2;
    let sessions: DirEntry[] = NO_SESSIONS;
    if (pairs > 0) {
      sessions = new Array(pairs);
      for (let j = 0; j < pairs; j++) {
        const dn = b.readUInt16BE(at);
        const device = b.toString('utf8', at + 2, at + 2 + dn);
        at += 2 + dn;
        const en = b.readUInt16BE(at);
        sessions[j] = dirEntry(m.to, device, b.toString('utf8', at + 2, at + 2 + en));
        at += 2 + en;
      }
    }
    out[i] = { mid, seq, ts, duplicate: dup, sessions };
  }
  return out;
}
const NO_SESSIONS: DirEntry[] = [];

export async function readInbox(
  r: RedisContext,
  user: string,
  after: number,
  limit: number,
): Promise<{ messages: StoredMessage[]; head: InboxHead }> {
  r.open();
  const k = r.keys.user(user);
  const reply = (await r.sb.read(`${k}m`, `${k}i`, arg(after), arg(limit), newEpoch())) as unknown[];
  const head = headOf(reply[0], reply[1], reply[2]);
  const messages: StoredMessage[] = [];
  const needBody = new Map<string, { tseq: number; msg: StoredMessage }[]>();
  for (let i = 3; i < reply.length; i++) {
    const b = reply[i] as Buffer;
    const seq = b.readDoubleBE(0);
    const ts = b.readDoubleBE(8);
    const p = decoder.decode(b.subarray(16)) as unknown[];
    if (p[0] === 0) {
      messages.push({ seq, mid: p[1] as string, from: p[2] as string, to: p[3] as string, body: bytes(p[4]), ts });
    } else {
      const topic = p[3] as string;
      const tseq = p[4] as number;
      const msg: StoredMessage = { seq, mid: p[1] as string, from: p[2] as string, topic, tseq, body: EMPTY, ts };
      messages.push(msg);
      let list = needBody.get(topic);
      if (list === undefined) needBody.set(topic, (list = []));
      list.push({ tseq, msg });
    }
  }
  if (needBody.size > 0) {
    await Promise.all(
      [...needBody].map(async ([topic, list]) => {
        const logs = await r.c.hmgetBuffer(`${r.keys.topic(topic)}l`, ...list.map((x) => String(x.tseq)));
        for (let i = 0; i < list.length; i++) {
          const v = logs[i];
          if (v) list[i]!.msg.body = bytes((decoder.decode(v.subarray(8)) as unknown[])[2]);
        }
      }),
    );
  }
  return { messages, head };
}

export async function head(r: RedisContext, user: string): Promise<InboxHead> {
  r.open();
  const k = r.keys.user(user);
  const reply = (await r.s.head(`${k}m`, `${k}i`, `${k}g`, newEpoch(), '')) as unknown[];
  return headOf(reply[0], reply[1], reply[2]);
}

export async function ack(r: RedisContext, user: string, device: string, seq: number): Promise<number> {
  r.open();
  const k = r.keys.user(user);
  const s = Number.isNaN(seq) ? -1 : seq === Infinity ? Number.MAX_SAFE_INTEGER : seq === -Infinity ? -1 : seq;
  return num(await r.s.ack(`${k}m`, `${k}a`, device, String(s)));
}

export async function deviceAcks(r: RedisContext, user: string): Promise<{ device: string; acked: number }[]> {
  r.open();
  const all = await r.c.hgetall(`${r.keys.user(user)}a`);
  return Object.entries(all)
    .sort(([a], [b]) => byteOrder(a, b))
    .map(([device, seq]) => ({ device, acked: Number(seq) }));
}
