/**
 * Trimming the embedded store by age. Trimming by count is logical at once
 * (reads and `first` hide every seq at or below head.seq - maxInbox) and
 * physical at each merge of recent rows (./recent.ts).
 */
import type { SqliteContext } from './context.js';
import { TRIM_CIDS_PER_STEP } from './statements.js';

/** Users (and topics) per trim step: keeps each step short. */
const TRIM_USERS_PER_STEP = 1000;

/**
 * By age, in short steps through the write queue so a big trim never holds
 * the event loop for long: inboxes user by user, then cid records.
 */
export async function trim(c: SqliteContext, now: number): Promise<number> {
  const { commit, st, limits } = c;
  const inboxCutoff = now - limits.retentionMs;
  const cidCutoff = now - limits.cidWindowMs;
  let removed = 0;
  let after = '';
  for (;;) {
    const step = await commit.write(() => {
      if (after === '') c.recent.mergeNow(); // the recent rows too: trimming reads `inbox`
      const users = st.usersAfter.all(after, TRIM_USERS_PER_STEP) as { user: string; seq: number }[];
      let n = 0;
      for (const { user, seq } of users) {
        // what is past maxInbox is gone already (logically): not counted
        if (seq > limits.maxInbox) st.inboxTrimCount.run(user, seq - limits.maxInbox);
        n += st.inboxTrimAge.run(user, user, inboxCutoff).changes;
      }
      return { n, last: users.length === TRIM_USERS_PER_STEP ? users[users.length - 1]!.user : undefined };
    });
    removed += step.n;
    if (step.last === undefined) break;
    after = step.last;
  }
  // topic logs by age, never past the fan-out position; member tombstones
  // the fan-out has passed
  after = '';
  for (;;) {
    const step = await commit.write(() => {
      const topics = st.topicNamesAfter.all(after, TRIM_USERS_PER_STEP) as { topic: string; fanned: number }[];
      let n = 0;
      for (const { topic, fanned } of topics) {
        n += st.logTrimAge.run(topic, fanned, topic, inboxCutoff).changes;
        st.membersTrim.run(topic, fanned);
      }
      return { n, last: topics.length === TRIM_USERS_PER_STEP ? topics[topics.length - 1]!.topic : undefined };
    });
    removed += step.n;
    if (step.last === undefined) break;
    after = step.last;
  }
  while ((await commit.write(() => st.cidTrim.run(cidCutoff).changes)) === TRIM_CIDS_PER_STEP);
  while ((await commit.write(() => st.topicCidTrim.run(cidCutoff).changes)) === TRIM_CIDS_PER_STEP);
  return removed;
}
