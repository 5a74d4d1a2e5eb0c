/** Inboxes of the embedded store: heads, p2p appends, reads, ack cursors. */
import type { AppendP2P, AppendResult, InboxHead, StoredMessage } from '../store.js';
import type { SqliteContext } from './context.js';
import { toMessage, type CidRow, type HeadRow, type LogRow, type MessageRow } from './rows.js';

function readHead(c: SqliteContext, user: string): InboxHead | undefined {
  const row = c.st.head.get(user) as HeadRow | undefined;
  if (row === undefined) return undefined;
  const rows = c.recent.of(user);
  const seq = rows === undefined ? row.seq : Math.max(row.seq, rows[rows.length - 1]!.seq);
  const lowest = row.first ?? rows?.[0]?.seq ?? null;
  // rows at or below seq - maxInbox may still be stored (trimmed at the next merge)
  const first = lowest === null ? seq + 1 : Math.max(lowest, seq - c.limits.maxInbox + 1);
  return { seq, first, epoch: row.epoch };
}

/** Inside a batch: the head, creating the user (and its epoch) if new. */
export function headOrCreate(c: SqliteContext, user: string): InboxHead {
  const head = readHead(c, user);
  if (head !== undefined) return head;
  c.st.userEnsure.run(user);
  return readHead(c, user)!;
}

/** Direct read; a new user's epoch is made through the write queue. */
export function headDirect(c: SqliteContext, user: string): InboxHead | Promise<InboxHead> {
  return readHead(c, user) ?? c.commit.write(() => headOrCreate(c, user));
}

/** The device's ack cursor (0: none). */
export function acked(c: SqliteContext, user: string, device: string): number {
  return (c.st.ackGet.get(user, device)?.seq as number | undefined) ?? 0;
}

export function appendP2P(c: SqliteContext, msg: AppendP2P): Promise<AppendResult> {
  return c.commit.write(() => appendNow(c, msg));
}

function appendNow(c: SqliteContext, m: AppendP2P): AppendResult {
  const st = c.st;
  if (m.cid !== undefined) {
    const hit = st.cidGet.get(m.from, m.to, m.cid) as CidRow | undefined;
    if (hit !== undefined && hit.ts > m.ts - c.limits.cidWindowMs) {
      return { mid: hit.mid, seq: hit.seq, ts: hit.ts, duplicate: true, sessions: c.dirs.of(m.to) };
    }
  }
  const seq = c.recent.nextSeq(m.to);
  const row = { seq, mid: m.mid, sender: m.from, recipient: m.to, topic: null, tseq: null, body: m.body, ts: m.ts };
  c.recent.put(m.to, row);
  if (m.cid !== undefined) st.cidPut.run(m.from, m.to, m.cid, m.mid, seq, m.ts);
  return { mid: m.mid, seq, ts: m.ts, duplicate: false, sessions: c.dirs.of(m.to) };
}

export async function readInbox(
  c: SqliteContext,
  user: string,
  after: number,
  limit: number,
): Promise<{ messages: StoredMessage[]; head: InboxHead }> {
  c.commit.mustBeOpen();
  const head = readHead(c, user);
  if (head !== undefined) return { messages: readMessages(c, user, after, limit, head), head };
  // a new user: its epoch is made in the write queue, and the read with it
  return c.commit.write(() => {
    const created = headOrCreate(c, user);
    return { messages: readMessages(c, user, after, limit, created), head: created };
  });
}

function readMessages(c: SqliteContext, user: string, after: number, limit: number, head: InboxHead): StoredMessage[] {
  // Nothing at or below first - 1: trimmed by count (maybe not yet deleted).
  const from = Math.max(after, head.first - 1);
  const want = Math.max(0, limit);
  const rows = c.st.inboxRead.all(user, from, want) as unknown as MessageRow[];
  const messages = new Array<StoredMessage>(rows.length);
  for (let i = 0; i < rows.length; i++) messages[i] = toMessage(rows[i]!, rows[i]!.body);
  // then the rows not merged yet: all above the merged ones
  const mem = c.recent.of(user);
  if (mem !== undefined && messages.length < want) {
    // the first row above `from` (rows are in seq order)
    let lo = 0;
    let hi = mem.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (mem[mid]!.seq <= from) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < mem.length; i++) {
      const r = mem[i]!;
      const body = r.topic === null ? r.body : ((c.st.logGet.get(r.topic, r.tseq) as LogRow | undefined)?.body ?? null);
      messages.push(toMessage(r, body));
      if (messages.length >= want) break;
    }
  }
  return messages;
}

export async function head(c: SqliteContext, user: string): Promise<InboxHead> {
  c.commit.mustBeOpen();
  return headDirect(c, user);
}

export function ack(c: SqliteContext, user: string, device: string, seq: number): Promise<number> {
  return c.commit.write(() => {
    const cursor = acked(c, user, device);
    const top = c.recent.seqOf(user) ?? 0;
    const want = Math.min(seq, top);
    if (!(want > cursor)) return cursor; // also refuses NaN
    c.st.ackPut.run(user, device, want);
    return want;
  });
}

export async function deviceAcks(c: SqliteContext, user: string): Promise<{ device: string; acked: number }[]> {
  c.commit.mustBeOpen();
  return (c.st.acksOf.all(user) as { device: string; seq: number }[]).map((r) => ({ device: r.device, acked: r.seq }));
}
