/** Topics of the Redis store (docs/architecture.md "Topics: log, then fan-out"): members, the log, listings. */
import type { TopicAppend, TopicAppendResult, TopicInfo } from '../store.js';
import { PAGE, type RedisContext } from './context.js';
import { fanoutStep } from './fanout.js';
import { arg, entry, num, str } from './values.js';

/** Members per step when a re-join first fans out what the old membership is owed. */
const JOIN_FANOUT_STEP = 1000;

export async function topicCreate(r: RedisContext, topic: string, creator: string, ts: number): Promise<boolean> {
  r.open();
  const k = r.keys.topic(topic);
  // the index first (same round trip); listings skip names without a topic
  const [reply] = await Promise.all([
    r.s.topicCreate(`${k}m`, `${k}j`, `${k}z`, creator, arg(ts)),
    r.c.zadd(r.keys.topics, 0, topic),
  ]);
  return reply === 1;
}

export async function topicJoin(r: RedisContext, topic: string, user: string): Promise<number | null> {
  r.open();
  const k = r.keys.topic(topic);
  for (;;) {
    const reply = (await r.s.topicJoin(`${k}m`, `${k}j`, `${k}z`, `${k}x`, user)) as number[];
    if (reply[0] === 0) return null;
    if (reply[0] === 1) return reply[1]!;
    // One membership per member: first give the leaver what it is still
    // owed (messages up to its leave), then start anew.
    const until = reply[1]!;
    for (;;) {
      const step = await fanoutStep(r, topic, JOIN_FANOUT_STEP, until);
      if (step.fanned >= until || step.gone) break;
    }
  }
}

export async function topicLeave(
  r: RedisContext,
  topic: string,
  user: string,
): Promise<'ok' | 'no_such_topic' | 'not_a_member'> {
  r.open();
  const k = r.keys.topic(topic);
  const reply = await r.s.topicLeave(`${k}m`, `${k}j`, `${k}z`, `${k}x`, user);
  return reply === 0 ? 'no_such_topic' : reply === 1 ? 'not_a_member' : 'ok';
}

export async function topicMembers(
  r: RedisContext,
  topic: string,
  after: string | undefined,
  limit: number,
): Promise<{ members: string[]; more: boolean } | null> {
  r.open();
  const k = r.keys.topic(topic);
  const n = Math.max(0, Math.floor(limit) || 0);
  const reply = (await r.s.topicMembers(`${k}m`, `${k}z`, `${k}x`, after ?? '', String(n))) as [string[]] | null;
  if (reply === null) return null;
  const rows = reply[0];
  return { members: rows.slice(0, n), more: rows.length > n };
}

export async function topicAppend(r: RedisContext, msg: TopicAppend): Promise<TopicAppendResult> {
  r.open();
  const k = r.keys.topic(msg.topic);
  const reply = (await r.s.topicAppend(
    `${k}m`,
    `${k}j`,
    `${k}x`,
    `${k}l`,
    `${k}c`,
    `${k}cz`,
    msg.from,
    msg.cid === undefined ? '' : `${msg.from}\0${msg.cid}`,
    msg.mid,
    arg(msg.ts),
    String(r.limits.cidWindowMs),
    entry(msg.ts, [msg.mid, msg.from, msg.body]),
  )) as unknown[];
  if (reply[0] === 0) return { code: 'no_such_topic' };
  if (reply[0] === 1) return { code: 'not_a_member' };
  return { code: 'ok', mid: str(reply[1]), tseq: num(reply[2]), ts: num(reply[3]), duplicate: reply[4] === 1 };
}

export async function topicsBehind(r: RedisContext): Promise<string[]> {
  r.open();
  const out: string[] = [];
  let after = '-';
  for (;;) {
    const topics = await r.c.zrangebylex(r.keys.topics, after, '+', 'LIMIT', 0, PAGE);
    const rows = await Promise.all(topics.map((t) => r.c.hmget(`${r.keys.topic(t)}m`, 'tseq', 'fanned')));
    for (let i = 0; i < topics.length; i++) {
      const [tseq, fanned] = rows[i]!;
      if (tseq !== null && Number(fanned) < Number(tseq)) out.push(topics[i]!);
    }
    if (topics.length < PAGE) return out;
    after = `(${topics[topics.length - 1]}`;
  }
}

async function infos(r: RedisContext, topics: string[]): Promise<(TopicInfo | null)[]> {
  const fields = ['creator', 'created', 'members', 'tseq', 'fanned'] as const;
  const rows = await Promise.all(topics.map((t) => r.c.hmget(`${r.keys.topic(t)}m`, ...fields)));
  return rows.map((x, i) =>
    x[0] === null
      ? null
      : {
          topic: topics[i]!,
          creator: x[0]!,
          created: Number(x[1]),
          members: Number(x[2]),
          tseq: Number(x[3]),
          fanned: Number(x[4]),
        },
  );
}

export async function topicInfo(r: RedisContext, topic: string): Promise<TopicInfo | null> {
  r.open();
  return (await infos(r, [topic]))[0]!;
}

export async function listTopics(r: RedisContext, after: string | undefined, limit: number): Promise<TopicInfo[]> {
  r.open();
  const n = Math.max(0, Math.floor(limit) || 0);
  const out: TopicInfo[] = [];
  let cursor = after === undefined ? '-' : `(${after}`;
  while (out.length < n) {
    const want = n - out.length;
    const topics = await r.c.zrangebylex(r.keys.topics, cursor, '+', 'LIMIT', 0, want);
    for (const info of await infos(r, topics)) if (info !== null) out.push(info);
    if (topics.length < want) break;
    cursor = `(${topics[topics.length - 1]}`;
  }
  return out;
}
