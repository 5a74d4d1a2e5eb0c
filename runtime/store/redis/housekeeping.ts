/** Trimming the Redis store: every user's inbox and cids, every topic's log, tombstones and cids. */
import { PAGE, type RedisContext } from './context.js';

/** Removals per trim script call (then it is called again). */
const TRIM_STEPS = 5000;

export async function trim(r: RedisContext, now: number): Promise<number> {
  r.open();
  const inboxCutoff = String(now - r.limits.retentionMs);
  const cidCutoff = String(now - r.limits.cidWindowMs);
  const maxInbox = String(r.limits.maxInbox);
  const steps = String(TRIM_STEPS);
  /** Calls one trim script until it says there is no more; → messages removed. */
  const untilDone = async (call: () => Promise<unknown>): Promise<number> => {
    let n = 0;
    for (;;) {
      const reply = (await call()) as number[];
      n += reply[0]!;
      if (reply[1] !== 1) return n;
    }
  };
  let removed = 0;
  let cursor = '0';
  do {
    const [next, users] = await r.c.sscan(r.keys.users, cursor, 'COUNT', PAGE);
    cursor = next;
    const counts = await Promise.all(
      users.map((user) => {
        const k = r.keys.user(user);
        const keys = [`${k}m`, `${k}i`, `${k}c`, `${k}cz`, `${k}t`];
        return untilDone(() => r.s.trimUser(...keys, inboxCutoff, cidCutoff, maxInbox, steps));
      }),
    );
    for (const n of counts) removed += n;
  } while (cursor !== '0');
  let after = '-';
  for (;;) {
    const topics = await r.c.zrangebylex(r.keys.topics, after, '+', 'LIMIT', 0, PAGE);
    const counts = await Promise.all(
      topics.map((topic) => {
        const k = r.keys.topic(topic);
        const keys = [`${k}m`, `${k}l`, `${k}j`, `${k}z`, `${k}x`, `${k}c`, `${k}cz`];
        return untilDone(() => r.s.trimTopic(...keys, inboxCutoff, cidCutoff, steps));
      }),
    );
    for (const n of counts) removed += n;
    if (topics.length < PAGE) break;
    after = `(${topics[topics.length - 1]}`;
  }
  return removed;
}
