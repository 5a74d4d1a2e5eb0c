/** Inboxes of the Redis store: p2p appends (batched per turn on a single Redis), reads, heads, ack cursors. */
import { cborxDecoder as decoder } from '../../protocol/cborx.js';
import { EMPTY } from '../common.js';
import type { AppendP2P, AppendResult, InboxHead, StoredMessage, StoreLimits } from '../store.js';
import type { RedisContext, ScriptFn } from './context.js';
import { putAppendKeys, type Keys } from './keys.js';
import { arg, byteOrder, bytes, dirEntries, entry, newEpoch, num, str } from './values.js';

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
const p2pEntry = (m: AppendP2P): Buffer => entry(m.ts, [0, m.mid, m.from, m.to, m.body]);

export async function appendP2P(r: RedisContext, m: AppendP2P): Promise<AppendResult> {
  r.open();
  const noted = noteUser(r, m.to);
  if (r.appends !== undefined) {
    const call = r.appends.add(m) as Promise<unknown[]>;
    return appendResult(m, noted === undefined ? await call : (await Promise.all([call, noted]))[0]);
  }
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

/** One fishchat_appendMany call: each append exactly as the `append` script, in order. */
export function sendAppends(
  k: Keys,
  limits: StoreLimits,
  appendMany: ScriptFn,
  batch: AppendP2P[],
): Promise<unknown[]> {
  const keys: string[] = new Array(batch.length * 6);
  const args: (string | Buffer)[] = new Array(2 + batch.length * 5);
  args[0] = String(limits.cidWindowMs);
  args[1] = String(limits.maxInbox);
  for (let i = 0; i < batch.length; i++) {
    const m = batch[i]!;
    putAppendKeys(k.user(m.to), keys, i * 6);
    const ai = 2 + i * 5;
    args[ai] = cidField(m);
    args[ai + 1] = p2pEntry(m);
    args[ai + 2] = arg(m.ts);
    args[ai + 3] = newEpoch();
    args[ai + 4] = m.mid;
  }
  return appendMany(keys.length, ...keys, ...args) as Promise<unknown[]>;
}

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
