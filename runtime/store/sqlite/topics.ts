/** Topics of the embedded store (docs/architecture.md "Topics: log, then fan-out"): members, the log, the fan-out. */
import type { FanoutCopy, FanoutMessage, TopicAppend, TopicAppendResult, TopicInfo } from '../store.js';
import type { SqliteContext } from './context.js';
import { topicInfoOf, type LogRow, type MemberRow, type TopicRow } from './rows.js';

/** A fan-out budget that is no limit (bound as a SQL LIMIT, so a plain integer). */
const UNLIMITED = 1 << 30;

function topicRow(c: SqliteContext, topic: string): TopicRow | undefined {
  return c.st.topicGet.get(topic) as TopicRow | undefined;
}

export function topicCreate(c: SqliteContext, topic: string, creator: string, ts: number): Promise<boolean> {
  return c.commit.write(() => {
    if (c.st.topicPut.run(topic, creator, ts).changes === 0) return false;
    c.st.memberPut.run(topic, creator, 0);
    return true;
  });
}

export function topicJoin(c: SqliteContext, topic: string, user: string): Promise<number | null> {
  return c.commit.write(() => {
    const st = c.st;
    const t = topicRow(c, topic);
    if (t === undefined) return null;
    const m = st.memberGet.get(topic, user) as MemberRow | undefined;
    if (m !== undefined && m.left_tseq === null) return t.members;
    if (m !== undefined && m.left_tseq! >= t.tseq) {
      // no message since the leave: the old membership simply goes on
      st.memberRejoin.run(topic, user);
    } else {
      // One row holds one membership: first give the leaver what it is
      // still owed (messages up to its leave), then start anew.
      if (m !== undefined && m.left_tseq! > t.fanned) fanoutNow(c, topic, UNLIMITED, m.left_tseq!);
      st.memberPut.run(topic, user, t.tseq);
    }
    st.topicMembersAdd.run(1, topic);
    return t.members + 1;
  });
}

export function topicLeave(
  c: SqliteContext,
  topic: string,
  user: string,
): Promise<'ok' | 'no_such_topic' | 'not_a_member'> {
  return c.commit.write(() => {
    const st = c.st;
    const t = topicRow(c, topic);
    if (t === undefined) return 'no_such_topic';
    const m = st.memberGet.get(topic, user) as MemberRow | undefined;
    if (m === undefined || m.left_tseq !== null) return 'not_a_member';
    // the members of messages not yet fanned out still include this user
    if (t.fanned >= t.tseq) st.memberDel.run(topic, user);
    else st.memberLeave.run(t.tseq, topic, user);
    st.topicMembersAdd.run(-1, topic);
    return 'ok';
  });
}

export async function topicMembers(
  c: SqliteContext,
  topic: string,
  after: string | undefined,
  limit: number,
): Promise<{ members: string[]; more: boolean } | null> {
  c.commit.mustBeOpen();
  if (topicRow(c, topic) === undefined) return null;
  const n = Math.max(0, Math.floor(limit));
  const rows = c.st.membersPage.all(topic, after ?? '', n + 1) as { user: string }[];
  const more = rows.length > n;
  const members = new Array<string>(Math.min(n, rows.length));
  for (let i = 0; i < members.length; i++) members[i] = rows[i]!.user;
  return { members, more };
}

export function topicAppend(c: SqliteContext, msg: TopicAppend): Promise<TopicAppendResult> {
  return c.commit.write((): TopicAppendResult => {
    const st = c.st;
    const { topic, from } = msg;
    if (topicRow(c, topic) === undefined) return { code: 'no_such_topic' };
    const m = st.memberGet.get(topic, from) as MemberRow | undefined;
    if (m === undefined || m.left_tseq !== null) return { code: 'not_a_member' };
    if (msg.cid !== undefined) {
      const hit = st.topicCidGet.get(from, topic, msg.cid) as { mid: string; tseq: number; ts: number } | undefined;
      if (hit !== undefined && hit.ts > msg.ts - c.limits.cidWindowMs) {
        return { code: 'ok', mid: hit.mid, tseq: hit.tseq, ts: hit.ts, duplicate: true };
      }
    }
    const tseq = st.topicNextTseq.get(topic)!.tseq as number;
    st.logPut.run(topic, tseq, msg.mid, from, msg.body, msg.ts);
    if (msg.cid !== undefined) st.topicCidPut.run(from, topic, msg.cid, msg.mid, tseq, msg.ts);
    return { code: 'ok', mid: msg.mid, tseq, ts: msg.ts, duplicate: false };
  });
}

export function topicFanout(
  c: SqliteContext,
  topic: string,
  limit: number,
): Promise<{ messages: FanoutMessage[]; done: boolean }> {
  return c.commit.write(() => fanoutNow(c, topic, Math.max(1, Math.floor(limit) || 1)));
}

/**
 * Inside a batch: one fan-out step from the stored position, at most
 * `limit` members served, up to tseq `until` (default: the newest), then
 * the new position is stored. Batches run one at a time, so two steps of
 * one topic never overlap: the second starts where the first stopped.
 */
function fanoutNow(
  c: SqliteContext,
  topic: string,
  limit: number,
  until?: number,
): { messages: FanoutMessage[]; done: boolean } {
  const st = c.st;
  const t = topicRow(c, topic);
  if (t === undefined) return { messages: [], done: true };
  const last = until === undefined ? t.tseq : Math.min(until, t.tseq);
  let fanned = t.fanned;
  let member = t.fan_member;
  let budget = limit;
  const messages: FanoutMessage[] = [];
  while (fanned < last && budget > 0) {
    const tseq = fanned + 1;
    const log = st.logGet.get(topic, tseq) as LogRow | undefined;
    if (log === undefined) {
      // trimmed: nothing left to hand out
      fanned = tseq;
      member = '';
      continue;
    }
    const rows = st.membersAt.all(topic, member, tseq, tseq, budget + 1) as { user: string }[];
    const take = Math.min(rows.length, budget);
    const copies: FanoutCopy[] = [];
    for (let i = 0; i < take; i++) {
      const user = rows[i]!.user;
      if (c.recent.hasTopicCopy(user, topic, tseq)) continue; // has it already
      const seq = c.recent.nextSeq(user);
      const row = { seq, mid: log.mid, sender: log.sender, recipient: null, topic, tseq, body: null, ts: log.ts };
      c.recent.put(user, row);
      copies.push({ user, seq, tseq, mid: log.mid });
    }
    if (copies.length > 0) {
      messages.push({ topic, tseq, mid: log.mid, from: log.sender, body: log.body, ts: log.ts, copies });
    }
    budget -= take;
    if (rows.length > take) {
      member = rows[take - 1]!.user; // more members of this message: resume after this one
      break;
    }
    fanned = tseq;
    member = '';
  }
  if (fanned !== t.fanned || member !== t.fan_member) st.topicPosition.run(fanned, member, topic);
  return { messages, done: fanned >= t.tseq };
}

export async function topicsBehind(c: SqliteContext): Promise<string[]> {
  c.commit.mustBeOpen();
  return (c.st.topicsBehind.all() as { topic: string }[]).map((r) => r.topic);
}

export async function topicInfo(c: SqliteContext, topic: string): Promise<TopicInfo | null> {
  c.commit.mustBeOpen();
  const row = topicRow(c, topic);
  return row === undefined ? null : topicInfoOf(row);
}

export async function listTopics(c: SqliteContext, after: string | undefined, limit: number): Promise<TopicInfo[]> {
  c.commit.mustBeOpen();
  const rows = c.st.topicsAfter.all(after ?? '', Math.max(0, Math.floor(limit))) as unknown as TopicInfo[];
  return rows.map(topicInfoOf);
}
