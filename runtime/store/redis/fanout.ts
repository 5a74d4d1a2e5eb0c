/**
 * Topic fan-out on Redis. It cannot touch the members' inboxes in the
 * topic's script (other slots): it reads the position and the next members
 * (topic script), appends a copy to each member's inbox with a per-user
 * script that does nothing if that inbox already holds (topic, tseq) (so
 * concurrent fan-outs never duplicate), then stores the new position only if
 * it still is the one it read (compare-and-set). The body is stored once, in
 * the topic log; readInbox fetches it from there.
 */
import { cborxDecoder as decoder } from '../../protocol/cborx.js';
import type { FanoutCopy, FanoutMessage } from '../store.js';
import type { RedisContext } from './context.js';
import { noteUser } from './inbox.js';
import { bytes, entry, newEpoch, str } from './values.js';

/** Members per fishchat_copyMany call. */
const COPY_BATCH = 500;

/** The reply of fanRead: tseq, fanned, fanMember, newFanned, newFanMember, {{tseq, entry, members...}...}. */
type FanRead = [number, number, Buffer, number, Buffer, unknown[][]];

export async function topicFanout(
  r: RedisContext,
  topic: string,
  limit: number,
): Promise<{ messages: FanoutMessage[]; done: boolean }> {
  r.open();
  const step = await fanoutStep(r, topic, Math.max(1, Math.floor(limit) || 1));
  return { messages: step.messages, done: step.done };
}

/**
 * One fan-out step: read the position and the members due (topic slot),
 * copy to each member's inbox (per user, idempotent, pipelined), then move
 * the position if no other step moved it meanwhile.
 */
export async function fanoutStep(
  r: RedisContext,
  topic: string,
  limit: number,
  until?: number,
): Promise<{ messages: FanoutMessage[]; done: boolean; fanned: number; gone: boolean }> {
  const k = r.keys.topic(topic);
  const last = until === undefined ? '' : String(until);
  const read = await r.sb.fanRead(`${k}m`, `${k}l`, `${k}j`, `${k}z`, `${k}x`, String(limit), last);
  if (read === null) return { messages: [], done: true, fanned: 0, gone: true };
  const [top, fanned, member, newFanned, newMember, list] = read as FanRead;
  if (newFanned === fanned && newMember.equals(member)) {
    return { messages: [], done: fanned >= top, fanned, gone: false };
  }
  const maxInbox = String(r.limits.maxInbox);
  const pending: Promise<FanoutMessage | undefined>[] = [];
  for (const item of list) {
    const tseq = item[0] as number;
    const log = item[1] as Buffer;
    const ts = log.readDoubleBE(0);
    const [mid, from, body] = decoder.decode(log.subarray(8)) as [string, string, Uint8Array];
    const copyEntry = entry(ts, [1, mid, from, topic, tseq]);
    const copyKey = `${topic}\0${tseq}`;
    const users = item.slice(2).map(str);
    pending.push(
      copyTo(r, users, copyKey, copyEntry, maxInbox).then((seqs) => {
        const copies: FanoutCopy[] = [];
        for (let i = 0; i < users.length; i++) {
          const seq = seqs[i] as number;
          if (seq > 0) copies.push({ user: users[i]!, seq, tseq, mid });
        }
        return copies.length > 0 ? { topic, tseq, mid, from, body: bytes(body), ts, copies } : undefined;
      }),
    );
  }
  const messages = (await Promise.all(pending)).filter((m): m is FanoutMessage => m !== undefined);
  const c = (await r.s.fanCommit(`${k}m`, String(fanned), member, String(newFanned), newMember)) as number[];
  return { messages, done: c[2]! >= c[1]!, fanned: c[2]!, gone: false };
}

/** Copies one topic message into each user's inbox → each user's new seq, or 0 if it had the copy. */
async function copyTo(
  r: RedisContext,
  users: string[],
  copyKey: string,
  copyEntry: Buffer,
  maxInbox: string,
): Promise<unknown[]> {
  const noted: Promise<unknown>[] = [];
  for (const user of users) {
    const n = noteUser(r, user);
    if (n !== undefined) noted.push(n);
  }
  const calls: Promise<unknown>[] = [];
  if (r.copyMany !== undefined) {
    // single Redis: COPY_BATCH members per script call, packed into one argument
    for (let at = 0; at < users.length; at += COPY_BATCH) {
      const part = users.length <= COPY_BATCH ? users : users.slice(at, at + COPY_BATCH);
      calls.push(
        r
          .copyMany(copyKey, copyEntry, maxInbox, newEpoch(), packUserKeys(r, part))
          .then((reply) => unpackSeqs(reply as Buffer, part.length)),
      );
    }
  } else {
    for (const user of users) {
      const uk = r.keys.user(user);
      calls.push(r.s.copy(`${uk}m`, `${uk}i`, `${uk}t`, copyKey, copyEntry, maxInbox, newEpoch()));
    }
  }
  const [replies] = await Promise.all([Promise.all(calls), Promise.all(noted)]);
  return r.copyMany !== undefined ? (replies as number[][]).flat() : replies;
}

/** Each user's key prefix as u16 len | bytes, for fishchat_copyMany (lua/fanout.ts COPY_MANY). */
function packUserKeys(r: RedisContext, users: string[]): Buffer {
  let cap = 0;
  for (const u of users) cap += 2 + 3 * r.keys.user(u).length;
  const out = Buffer.allocUnsafe(cap);
  let at = 0;
  for (const u of users) {
    const n = out.write(r.keys.user(u), at + 2, 'utf8');
    out.writeUInt16BE(n, at);
    at += 2 + n;
  }
  return out.subarray(0, at);
}

/** The f64 BE seqs of a fishchat_copyMany reply. */
function unpackSeqs(b: Buffer, n: number): number[] {
  if (b.length !== n * 8) throw new Error(`fishchat_copyMany: ${b.length} bytes for ${n} members`);
  const out: number[] = new Array(n);
  for (let i = 0; i < n; i++) out[i] = b.readDoubleBE(i * 8);
  return out;
}
