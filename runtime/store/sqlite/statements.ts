/**
 * Every SQL statement of the embedded store, prepared once when the store
 * opens (after the tables exist: ./schema.ts).
 */
import type { SqliteDatabase, SqliteStatement } from '../../platform/types.js';

/** cid rows per trim step: keeps each step short. */
export const TRIM_CIDS_PER_STEP = 10_000;
const MAX_SEQ = Number.MAX_SAFE_INTEGER;

/** The columns and values of a new inbox row, in `inbox` and in `recent` alike. */
const PUT_ROW = `(user, seq, mid, sender, recipient, topic, tseq, body, ts)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`;

/** A new user's epoch: 16 random hex characters, made by SQLite on insert. */
const NEW_EPOCH = 'lower(hex(randomblob(8)))';

const SQL = {
  userEnsure: `INSERT INTO users (user, seq, epoch) VALUES (?, 0, ${NEW_EPOCH})
    ON CONFLICT (user) DO NOTHING`,
  userSeq: `SELECT seq FROM users WHERE user = ?`,
  head: `SELECT seq, epoch,
    (SELECT i.seq FROM inbox i WHERE i.user = users.user ORDER BY i.seq LIMIT 1) AS first
    FROM users WHERE user = ?`,
  usersAfter: `SELECT user, seq FROM users WHERE user > ? ORDER BY user LIMIT ?`,

  inboxPut: `INSERT INTO inbox ${PUT_ROW}`,
  recentPut: `INSERT INTO recent ${PUT_ROW}`,
  recentAll: `SELECT user, seq, mid, sender, recipient, topic, tseq, body, ts FROM recent ORDER BY id`,
  recentClear: `DELETE FROM recent`,
  userSetSeq: `UPDATE users SET seq = max(seq, ?) WHERE user = ?`,
  // topic copies carry no body: it is read from the topic's log
  inboxRead: `SELECT seq, mid, sender, recipient, topic, tseq,
    CASE WHEN topic IS NULL THEN body
      ELSE (SELECT l.body FROM topic_log l WHERE l.topic = inbox.topic AND l.tseq = inbox.tseq) END AS body,
    ts FROM inbox
    WHERE user = ? AND seq > ? ORDER BY seq LIMIT ?`,
  inboxHasTopic: `SELECT 1 AS x FROM inbox WHERE user = ? AND topic = ? AND tseq = ?`,
  inboxTrimCount: `DELETE FROM inbox WHERE user = ? AND seq <= ?`,
  // By age, oldest first and without holes: drops the run of messages before
  // the user's first one that is still within retention.
  inboxTrimAge: `DELETE FROM inbox WHERE user = ? AND seq < coalesce(
    (SELECT seq FROM inbox WHERE user = ? AND ts >= ? ORDER BY seq LIMIT 1), ${MAX_SEQ})`,

  cidGet: `SELECT mid, seq, ts FROM cids WHERE sender = ? AND recipient = ? AND cid = ?`,
  cidPut: `INSERT OR REPLACE INTO cids (sender, recipient, cid, mid, seq, ts) VALUES (?, ?, ?, ?, ?, ?)`,
  cidTrim: `DELETE FROM cids WHERE (sender, recipient, cid) IN
    (SELECT sender, recipient, cid FROM cids WHERE ts < ? LIMIT ${TRIM_CIDS_PER_STEP})`,

  ackGet: `SELECT seq FROM acks WHERE user = ? AND device = ?`,
  ackPut: `INSERT OR REPLACE INTO acks (user, device, seq) VALUES (?, ?, ?)`,

  genNext: `INSERT INTO gens (user, device, gen) VALUES (?, ?, 1)
    ON CONFLICT (user, device) DO UPDATE SET gen = gen + 1 RETURNING gen`,
  genGet: `SELECT gen FROM gens WHERE user = ? AND device = ?`,

  dirOfUser: `SELECT device, server, boot, gen FROM directory WHERE user = ?`,
  dirGet: `SELECT server, boot, gen FROM directory WHERE user = ? AND device = ?`,
  dirPut: `INSERT OR REPLACE INTO directory (user, device, server, boot, gen) VALUES (?, ?, ?, ?, ?)`,
  dirDel: `DELETE FROM directory WHERE user = ? AND device = ? AND gen = ?`,
  dirDelServer: `DELETE FROM directory WHERE server = ? AND boot = ?`,

  leaseGet: `SELECT expires FROM leases WHERE server = ? AND boot = ?`,
  leasePut: `INSERT OR REPLACE INTO leases (server, boot, expires) VALUES (?, ?, ?)`,
  leaseDel: `DELETE FROM leases WHERE server = ? AND boot = ?`,
  leasesExpired: `SELECT server, boot FROM leases WHERE expires <= ?`,

  topicGet: `SELECT topic, creator, created, members, tseq, fanned, fan_member FROM topics WHERE topic = ?`,
  topicPut: `INSERT INTO topics (topic, creator, created, members, tseq, fanned, fan_member)
    VALUES (?, ?, ?, 1, 0, 0, '') ON CONFLICT (topic) DO NOTHING`,
  topicsAfter: `SELECT topic, creator, created, members, tseq, fanned FROM topics
    WHERE topic > ? ORDER BY topic LIMIT ?`,
  topicNamesAfter: `SELECT topic, fanned FROM topics WHERE topic > ? ORDER BY topic LIMIT ?`,
  topicsBehind: `SELECT topic FROM topics WHERE fanned < tseq ORDER BY topic`,
  topicMembersAdd: `UPDATE topics SET members = members + ? WHERE topic = ?`,
  topicNextTseq: `UPDATE topics SET tseq = tseq + 1 WHERE topic = ? RETURNING tseq`,
  topicPosition: `UPDATE topics SET fanned = ?, fan_member = ? WHERE topic = ?`,

  memberGet: `SELECT joined_tseq, left_tseq FROM topic_members WHERE topic = ? AND user = ?`,
  memberPut: `INSERT OR REPLACE INTO topic_members (topic, user, joined_tseq, left_tseq) VALUES (?, ?, ?, NULL)`,
  memberRejoin: `UPDATE topic_members SET left_tseq = NULL WHERE topic = ? AND user = ?`,
  memberLeave: `UPDATE topic_members SET left_tseq = ? WHERE topic = ? AND user = ?`,
  membersPage: `SELECT user FROM topic_members WHERE topic = ? AND user > ? AND left_tseq IS NULL
    ORDER BY user LIMIT ?`,
  // the members of the moment of message T (params: topic, after, T, T, limit)
  membersAt: `SELECT user FROM topic_members WHERE topic = ? AND user > ?
    AND joined_tseq < ? AND (left_tseq IS NULL OR left_tseq >= ?) ORDER BY user LIMIT ?`,
  memberDel: `DELETE FROM topic_members WHERE topic = ? AND user = ?`,
  membersTrim: `DELETE FROM topic_members WHERE topic = ? AND left_tseq IS NOT NULL AND left_tseq <= ?`,

  logGet: `SELECT mid, sender, body, ts FROM topic_log WHERE topic = ? AND tseq = ?`,
  logPut: `INSERT INTO topic_log (topic, tseq, mid, sender, body, ts) VALUES (?, ?, ?, ?, ?, ?)`,
  // by age, oldest first and without holes, never past the fan-out position
  // (params: topic, fanned, topic, cutoff)
  logTrimAge: `DELETE FROM topic_log WHERE topic = ? AND tseq <= ? AND tseq < coalesce(
    (SELECT tseq FROM topic_log WHERE topic = ? AND ts >= ? ORDER BY tseq LIMIT 1), ${MAX_SEQ})`,

  topicCidGet: `SELECT mid, tseq, ts FROM topic_cids WHERE sender = ? AND topic = ? AND cid = ?`,
  topicCidPut: `INSERT OR REPLACE INTO topic_cids (sender, topic, cid, mid, tseq, ts) VALUES (?, ?, ?, ?, ?, ?)`,
  topicCidTrim: `DELETE FROM topic_cids WHERE (sender, topic, cid) IN
    (SELECT sender, topic, cid FROM topic_cids WHERE ts < ? LIMIT ${TRIM_CIDS_PER_STEP})`,

  recordPut: `INSERT INTO user_records (user, first_seen, last_seen) VALUES (?, ?, ?)
    ON CONFLICT (user) DO UPDATE SET first_seen = min(first_seen, excluded.first_seen),
      last_seen = max(last_seen, excluded.last_seen)`,
  recordGet: `SELECT first_seen, last_seen FROM user_records WHERE user = ?`,
  deviceLogin: `INSERT INTO user_devices (user, device, last_seen, online, server) VALUES (?, ?, ?, 1, ?)
    ON CONFLICT (user, device) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen),
      online = 1, server = excluded.server`,
  // a logout or kick from a server the device has since left does not take it offline
  deviceLogout: `INSERT INTO user_devices (user, device, last_seen, online, server) VALUES (?, ?, ?, 0, ?)
    ON CONFLICT (user, device) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen),
      online = CASE WHEN server = excluded.server THEN 0 ELSE online END`,
  devicesOf: `SELECT device, last_seen, online, server FROM user_devices WHERE user = ? ORDER BY device`,

  dirAfterUser: `SELECT user, device, server, boot, gen FROM directory WHERE user > ?
    ORDER BY user, device LIMIT ?`,
  dirAfterEntry: `SELECT user, device, server, boot, gen FROM directory WHERE (user, device) > (?, ?)
    ORDER BY user, device LIMIT ?`,
  acksOf: `SELECT device, seq FROM acks WHERE user = ? ORDER BY device`,
} as const;

export type Statements = { -readonly [K in keyof typeof SQL]: SqliteStatement };

export function prepareStatements(db: SqliteDatabase): Statements {
  const st = {} as Statements;
  for (const key of Object.keys(SQL) as (keyof typeof SQL)[]) st[key] = db.prepare(SQL[key]);
  return st;
}
