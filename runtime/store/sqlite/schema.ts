/**
 * The tables of the embedded store, their version, and how a file is opened
 * into them (docs/architecture.md "Store: who owns what data").
 */
import type { SqliteDatabase } from '../../platform/types.js';

/** Bumped when the tables change; a file from a newer version is refused. */
export const SQLITE_SCHEMA_VERSION = 3;

/** The columns of an inbox row, the same in `inbox` and in `recent`. */
const MESSAGE_COLUMNS = `  user TEXT NOT NULL,
  seq INTEGER NOT NULL,
  mid TEXT NOT NULL,
  sender TEXT NOT NULL,
  recipient TEXT,
  topic TEXT,
  tseq INTEGER,
  body BLOB,
  ts INTEGER NOT NULL`;

/**
 * A table of cid records: the first send of each (sender, recipient or
 * topic, cid), kept for the cid window; `at` is the seq (tseq) it got.
 */
const cidTable = (table: string, scope: string, at: string): string => `CREATE TABLE IF NOT EXISTS ${table} (
  sender TEXT NOT NULL,
  ${scope} TEXT NOT NULL,
  cid TEXT NOT NULL,
  mid TEXT NOT NULL,
  ${at} INTEGER NOT NULL,
  ts INTEGER NOT NULL,
  PRIMARY KEY (sender, ${scope}, cid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ${table}_ts ON ${table} (ts);`;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS users (
  user TEXT NOT NULL PRIMARY KEY,
  seq INTEGER NOT NULL,
  epoch TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS inbox (
${MESSAGE_COLUMNS},
  PRIMARY KEY (user, seq)
) WITHOUT ROWID;
${cidTable('cids', 'recipient', 'seq')}
-- version 3: inbox rows land here first, in arrival order (a page per ~20
-- rows instead of a page per recipient), and move to inbox in per-user runs
-- (SqliteStore.mergeNow); the store keeps them in memory meanwhile
CREATE TABLE IF NOT EXISTS recent (
  id INTEGER PRIMARY KEY,
${MESSAGE_COLUMNS}
);
CREATE TABLE IF NOT EXISTS acks (
  user TEXT NOT NULL,
  device TEXT NOT NULL,
  seq INTEGER NOT NULL,
  PRIMARY KEY (user, device)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS gens (
  user TEXT NOT NULL,
  device TEXT NOT NULL,
  gen INTEGER NOT NULL,
  PRIMARY KEY (user, device)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS directory (
  user TEXT NOT NULL,
  device TEXT NOT NULL,
  server TEXT NOT NULL,
  boot TEXT NOT NULL,
  gen INTEGER NOT NULL,
  PRIMARY KEY (user, device)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS directory_server ON directory (server, boot);
CREATE TABLE IF NOT EXISTS leases (
  server TEXT NOT NULL,
  boot TEXT NOT NULL,
  expires INTEGER NOT NULL,
  PRIMARY KEY (server, boot)
) WITHOUT ROWID;
-- version 2: topics (docs/architecture.md "Topics: log, then fan-out") and user records
-- topic copies in inboxes: (topic, tseq) once per user; body NULL (in topic_log)
CREATE UNIQUE INDEX IF NOT EXISTS inbox_topic ON inbox (user, topic, tseq) WHERE topic IS NOT NULL;
CREATE TABLE IF NOT EXISTS topics (
  topic TEXT NOT NULL PRIMARY KEY,
  creator TEXT NOT NULL,
  created INTEGER NOT NULL,
  members INTEGER NOT NULL,    -- current members (left_tseq IS NULL)
  tseq INTEGER NOT NULL,       -- newest tseq given
  fanned INTEGER NOT NULL,     -- highest tseq fully fanned out
  fan_member TEXT NOT NULL     -- last member done within tseq fanned + 1; '' when none
) WITHOUT ROWID;
-- a member of message T: joined_tseq < T AND (left_tseq IS NULL OR left_tseq >= T);
-- a leave keeps the row (tombstone) until the fan-out has passed left_tseq
CREATE TABLE IF NOT EXISTS topic_members (
  topic TEXT NOT NULL,
  user TEXT NOT NULL,
  joined_tseq INTEGER NOT NULL,
  left_tseq INTEGER,
  PRIMARY KEY (topic, user)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS topic_log (
  topic TEXT NOT NULL,
  tseq INTEGER NOT NULL,
  mid TEXT NOT NULL,
  sender TEXT NOT NULL,
  body BLOB NOT NULL,
  ts INTEGER NOT NULL,
  PRIMARY KEY (topic, tseq)
) WITHOUT ROWID;
${cidTable('topic_cids', 'topic', 'tseq')}
CREATE TABLE IF NOT EXISTS user_records (
  user TEXT NOT NULL PRIMARY KEY,
  first_seen INTEGER NOT NULL,
  last_seen INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS user_devices (
  user TEXT NOT NULL,
  device TEXT NOT NULL,
  last_seen INTEGER NOT NULL,
  online INTEGER NOT NULL,
  server TEXT NOT NULL,
  PRIMARY KEY (user, device)
) WITHOUT ROWID;
`;

/** Creates the tables if missing; refuses a file written by a newer schema. */
export function migrate(db: SqliteDatabase): void {
  db.transaction(() => {
    db.exec(SCHEMA);
    const row = db.prepare('SELECT max(version) AS version FROM schema_version').get();
    const version = (row?.version as number | null) ?? 0;
    if (version > SQLITE_SCHEMA_VERSION) {
      throw new Error(
        `the store file has schema version ${version}, ` +
          `this FishChat knows up to ${SQLITE_SCHEMA_VERSION}: upgrade FishChat`,
      );
    }
    if (version < SQLITE_SCHEMA_VERSION) {
      db.prepare('DELETE FROM schema_version').run();
      db.prepare('INSERT INTO schema_version (version) VALUES (?)').run(SQLITE_SCHEMA_VERSION);
    }
  });
}

/** The connection settings the store runs with (set before migrate). */
export function tune(db: SqliteDatabase): void {
  // Appends to many users dirty one inbox page each per batch: checkpoint less
  // often, so a page written by many batches is copied back once (measured:
  // ~1.7x appends/s with 1000 recipients), and keep the hot pages cached.
  db.exec('PRAGMA wal_autocheckpoint = 10000');
  db.exec('PRAGMA journal_size_limit = 67108864');
  db.exec('PRAGMA cache_size = -65536');
  // pages read through a memory map, not a pread each
  db.exec('PRAGMA mmap_size = 268435456');
}
