/**
 * The embedded Store over SQLite (DESIGN.md "Store: who owns what data").
 *
 * Writes go through a group commit: every write called in one event-loop turn
 * is queued and run, in call order, inside ONE transaction (flushed from
 * setImmediate); each caller's promise then resolves with its own result after
 * the COMMIT. If anything in a batch throws, the batch is rolled back and its
 * ops are run again one transaction each, so only the failing op rejects.
 * Reads run directly: SQLite calls are synchronous and a batch never yields,
 * so a read sees whole batches, never half of one.
 *
 * The database file is opened by the platform (runtime/platform/<rt>/sqlite.ts)
 * and handed in; the store owns it from then on and closes it in close().
 */
import type { SqliteDatabase, SqliteStatement } from '../platform/types.js';
import {
  DEFAULT_LIMITS,
  type AppendP2P,
  type AppendResult,
  type DirEntry,
  type FanoutCopy,
  type FanoutMessage,
  type InboxHead,
  type LoginArgs,
  type LoginResult,
  type Store,
  type StoreLimits,
  type StoredMessage,
  type TopicAppend,
  type TopicAppendResult,
  type TopicInfo,
  type UserRecord,
} from './store.js';

/** Bumped when the tables change; a file from a newer version is refused. */
export const SQLITE_SCHEMA_VERSION = 3;

/** Users (and topics) per trim step, cid rows per trim step: keeps each step short. */
const TRIM_USERS_PER_STEP = 1000;
/*
 * Trimming by count is logical at once (reads and `first` hide every seq at
 * or below head.seq - maxInbox) and physical at each merge of recent rows.
 */
const TRIM_CIDS_PER_STEP = 10_000;
/**
 * Inbox rows wait in `recent` (and in memory) until this many have come, or
 * MERGE_MS has passed, then move to `inbox` in one step, grouped by user: a
 * user's rows of the last second share its inbox page instead of each
 * dirtying it (measured: ~1.8 WAL pages per append before).
 */
const MERGE_ROWS = 65_536;
const MERGE_MS = 1000;
const MAX_SEQ = Number.MAX_SAFE_INTEGER;
/** A fan-out budget that is no limit (bound as a SQL LIMIT, so a plain integer). */
const UNLIMITED = 1 << 30;
const EMPTY = new Uint8Array(0);

const SCHEMA = `
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS users (
  user TEXT NOT NULL PRIMARY KEY,
  seq INTEGER NOT NULL,
  epoch TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS inbox (
  user TEXT NOT NULL,
  seq INTEGER NOT NULL,
  mid TEXT NOT NULL,
  sender TEXT NOT NULL,
  recipient TEXT,
  topic TEXT,
  tseq INTEGER,
  body BLOB,
  ts INTEGER NOT NULL,
  PRIMARY KEY (user, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cids (
  sender TEXT NOT NULL,
  recipient TEXT NOT NULL,
  cid TEXT NOT NULL,
  mid TEXT NOT NULL,
  seq INTEGER NOT NULL,
  ts INTEGER NOT NULL,
  PRIMARY KEY (sender, recipient, cid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS cids_ts ON cids (ts);
-- version 3: inbox rows land here first, in arrival order (a page per ~20
-- rows instead of a page per recipient), and move to inbox in per-user runs
-- (SqliteStore.mergeNow); the store keeps them in memory meanwhile
CREATE TABLE IF NOT EXISTS recent (
  id INTEGER PRIMARY KEY,
  user TEXT NOT NULL,
  seq INTEGER NOT NULL,
  mid TEXT NOT NULL,
  sender TEXT NOT NULL,
  recipient TEXT,
  topic TEXT,
  tseq INTEGER,
  body BLOB,
  ts INTEGER NOT NULL
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
-- version 2: topics (DESIGN.md "Topics: log, then fan-out") and user records
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
CREATE TABLE IF NOT EXISTS topic_cids (
  sender TEXT NOT NULL,
  topic TEXT NOT NULL,
  cid TEXT NOT NULL,
  mid TEXT NOT NULL,
  tseq INTEGER NOT NULL,
  ts INTEGER NOT NULL,
  PRIMARY KEY (sender, topic, cid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS topic_cids_ts ON topic_cids (ts);
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

  inboxPut: `INSERT INTO inbox (user, seq, mid, sender, recipient, topic, tseq, body, ts)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  recentPut: `INSERT INTO recent (user, seq, mid, sender, recipient, topic, tseq, body, ts)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
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

type Statements = { -readonly [K in keyof typeof SQL]: SqliteStatement };

interface HeadRow {
  seq: number;
  epoch: string;
  first: number | null;
}
interface MessageRow {
  seq: number;
  mid: string;
  sender: string;
  recipient: string | null;
  topic: string | null;
  tseq: number | null;
  body: Uint8Array | null;
  ts: number;
}
/** An inbox row not yet merged from `recent` into `inbox`: the same columns. */
type MemRow = MessageRow;

interface CidRow {
  mid: string;
  seq: number;
  ts: number;
}
interface DirRow {
  device: string;
  server: string;
  boot: string;
  gen: number;
}
interface TopicRow {
  topic: string;
  creator: string;
  created: number;
  members: number;
  tseq: number;
  fanned: number;
  fan_member: string;
}
interface MemberRow {
  joined_tseq: number;
  left_tseq: number | null;
}
interface LogRow {
  mid: string;
  sender: string;
  body: Uint8Array;
  ts: number;
}

function toMessage(r: MemRow, body: Uint8Array | null): StoredMessage {
  const m: StoredMessage = { seq: r.seq, mid: r.mid, from: r.sender, body: body ?? EMPTY, ts: r.ts };
  if (r.recipient !== null) m.to = r.recipient;
  if (r.topic !== null) {
    m.topic = r.topic;
    m.tseq = r.tseq ?? 0;
  }
  return m;
}

const topicInfoOf = (r: Omit<TopicRow, 'fan_member'>): TopicInfo => ({
  topic: r.topic,
  creator: r.creator,
  created: r.created,
  members: r.members,
  tseq: r.tseq,
  fanned: r.fanned,
});

const closedError = () => new Error('the store is closed');

/** Users whose directory entries are cached (the cache is dropped whole when full). */
const DIR_CACHE_MAX = 100_000;

interface Op {
  run: () => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  readonly limits: StoreLimits;

  private readonly st: Statements;
  private queue: Op[] = [];
  private scheduled = false;
  private closed = false;

  /** Use openSqliteStore(): it creates the tables before the statements are made. */
  constructor(
    private readonly db: SqliteDatabase,
    limits: Partial<StoreLimits> = {},
  ) {
    const l = { ...DEFAULT_LIMITS, ...limits };
    // PROTOCOL.md 4.2: the cid window is at most the retention window.
    this.limits = {
      retentionMs: l.retentionMs,
      maxInbox: Math.max(1, Math.floor(l.maxInbox)),
      cidWindowMs: Math.min(l.cidWindowMs, l.retentionMs),
    };
    const st = {} as Statements;
    for (const key of Object.keys(SQL) as (keyof typeof SQL)[]) st[key] = db.prepare(SQL[key]);
    this.st = st;
    this.loadRecent();
    this.mergeTimer = setInterval(() => {
      if (this.memRows > 0) this.queueMerge();
    }, MERGE_MS);
    this.mergeTimer.unref?.();
  }

  /** Creates the tables if missing; refuses a file written by a newer schema. */
  static migrate(db: SqliteDatabase): void {
    db.transaction(() => {
      db.exec(SCHEMA);
      const row = db.prepare('SELECT max(version) AS version FROM schema_version').get();
      const version = (row?.version as number | null) ?? 0;
      if (version > SQLITE_SCHEMA_VERSION) {
        throw new Error(
          `the store file has schema version ${version}, this FishChat knows up to ${SQLITE_SCHEMA_VERSION}: upgrade FishChat`,
        );
      }
      if (version < SQLITE_SCHEMA_VERSION) {
        db.prepare('DELETE FROM schema_version').run();
        db.prepare('INSERT INTO schema_version (version) VALUES (?)').run(SQLITE_SCHEMA_VERSION);
      }
    });
  }

  // ---- group commit -------------------------------------------------------

  private write<T>(run: () => T): Promise<T> {
    if (this.closed) return Promise.reject(closedError());
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ run, resolve: resolve as (value: unknown) => void, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(this.flush);
      }
    });
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    const ops = this.queue;
    if (ops.length === 0) return;
    this.queue = [];
    const results = new Array<unknown>(ops.length);
    try {
      this.undo = [];
      this.db.transaction(() => {
        for (let i = 0; i < ops.length; i++) results[i] = ops[i]!.run();
      });
      this.undo = [];
    } catch {
      // The whole batch was rolled back (ops only touch the database and the
      // in-memory rows, whose changes are undone here, so running them again
      // is safe): one transaction per op, in call order. Directory entries
      // read inside it may never have been committed.
      this.rollbackMemory();
      this.dirCache.clear();
      for (const op of ops) {
        try {
          this.undo = [];
          op.resolve(this.db.transaction(op.run));
          this.undo = [];
        } catch (error) {
          this.rollbackMemory();
          op.reject(error);
        }
      }
      return;
    }
    for (let i = 0; i < ops.length; i++) ops[i]!.resolve(results[i]);
  };

  // ---- helpers (run inside a batch or as a direct read) ---------------------

  private mustBeOpen(): void {
    if (this.closed) throw closedError();
  }

  // ---- recent inbox rows (memory + the `recent` table) ----------------------

  /** per user, its rows in `recent`, seq ascending; every one above the user's rows in `inbox` */
  private mem = new Map<string, MemRow[]>();
  private memRows = 0;
  private mergeQueued = false;
  private readonly mergeTimer: ReturnType<typeof setInterval>;
  /** changes to `mem` in the running batch, undone if it rolls back */
  private undo: (() => void)[] = [];

  private rollbackMemory(): void {
    for (let i = this.undo.length - 1; i >= 0; i--) this.undo[i]!();
    this.undo = [];
  }

  /** Inside a batch: the user's next seq (the user row is created, with its epoch, if new). */
  private nextSeq(user: string): number {
    const rows = this.mem.get(user);
    if (rows !== undefined) return rows[rows.length - 1]!.seq + 1;
    const row = this.st.userSeq.get(user) as { seq: number } | undefined;
    if (row !== undefined) return row.seq + 1;
    this.st.userEnsure.run(user);
    return 1;
  }

  /** The user's highest seq, merged or not (0: none; undefined: no such user). */
  private seqOf(user: string): number | undefined {
    const rows = this.mem.get(user);
    if (rows !== undefined) return rows[rows.length - 1]!.seq;
    return (this.st.userSeq.get(user) as { seq: number } | undefined)?.seq;
  }

  /** Whether the user has the copy of topic message tseq, merged or not. */
  private hasTopicCopy(user: string, topic: string, tseq: number): boolean {
    const rows = this.mem.get(user);
    if (rows !== undefined) for (const r of rows) if (r.tseq === tseq && r.topic === topic) return true;
    return this.st.inboxHasTopic.get(user, topic, tseq) !== undefined;
  }

  /** Inside a batch: a new inbox row, durable in `recent`, readable from memory. */
  private putRow(user: string, r: MemRow): void {
    this.st.recentPut.run(user, r.seq, r.mid, r.sender, r.recipient, r.topic, r.tseq, r.body, r.ts);
    let rows = this.mem.get(user);
    if (rows === undefined) this.mem.set(user, (rows = []));
    rows.push(r);
    this.memRows++;
    const list = rows;
    this.undo.push(() => {
      list.pop();
      this.memRows--;
      if (list.length === 0 && this.mem.get(user) === list) this.mem.delete(user);
    });
    if (this.memRows >= MERGE_ROWS) this.queueMerge();
  }

  private queueMerge(): void {
    if (this.mergeQueued || this.closed) return;
    this.mergeQueued = true;
    this.write(() => {
      this.mergeQueued = false;
      this.mergeNow();
    }).catch(() => undefined); // a failed merge leaves the rows in `recent`: the next one moves them
  }

  /**
   * Inside a batch: moves every recent row into `inbox`, user by user (the
   * rows of one user land together on its inbox page), sets each user's seq,
   * drops what is past maxInbox, and empties `recent`.
   */
  private mergeNow(): void {
    if (this.memRows === 0) return;
    const st = this.st;
    const max = this.limits.maxInbox;
    for (const [user, rows] of this.mem) {
      const top = rows[rows.length - 1]!.seq;
      const cut = top - max;
      for (const r of rows) {
        if (r.seq <= cut) continue; // already past maxInbox: never readable again
        st.inboxPut.run(user, r.seq, r.mid, r.sender, r.recipient, r.topic, r.tseq, r.body, r.ts);
      }
      st.userSetSeq.run(top, user);
      if (cut > 0) st.inboxTrimCount.run(user, cut);
    }
    st.recentClear.run();
    const old = this.mem;
    const oldRows = this.memRows;
    this.mem = new Map();
    this.memRows = 0;
    this.undo.push(() => {
      this.mem = old;
      this.memRows = oldRows;
    });
  }

  /** At open: the rows of `recent` back into memory (what a crash left unmerged). */
  private loadRecent(): void {
    for (const r of this.st.recentAll.all() as unknown as (MemRow & { user: string })[]) {
      let rows = this.mem.get(r.user);
      if (rows === undefined) this.mem.set(r.user, (rows = []));
      rows.push({ seq: r.seq, mid: r.mid, sender: r.sender, recipient: r.recipient, topic: r.topic, tseq: r.tseq, body: r.body, ts: r.ts });
      this.memRows++;
    }
  }

  private readHead(user: string): InboxHead | undefined {
    const row = this.st.head.get(user) as HeadRow | undefined;
    if (row === undefined) return undefined;
    const rows = this.mem.get(user);
    const seq = rows === undefined ? row.seq : Math.max(row.seq, rows[rows.length - 1]!.seq);
    const lowest = row.first ?? rows?.[0]!.seq ?? null;
    // rows at or below seq - maxInbox may still be stored (trimmed at the next merge)
    const first = lowest === null ? seq + 1 : Math.max(lowest, seq - this.limits.maxInbox + 1);
    return { seq, first, epoch: row.epoch };
  }

  /** Inside a batch: the head, creating the user (and its epoch) if new. */
  private headOrCreate(user: string): InboxHead {
    const head = this.readHead(user);
    if (head !== undefined) return head;
    this.st.userEnsure.run(user);
    return this.readHead(user)!;
  }

  /** Direct read; a new user's epoch is made through the write queue. */
  private headDirect(user: string): InboxHead | Promise<InboxHead> {
    return this.readHead(user) ?? this.write(() => this.headOrCreate(user));
  }

  /**
   * The user's directory entries. Cached per user: this store is the file's
   * only writer (embedded mode, one process), every directory write below
   * drops the user's entry (or all of them), and a batch that rolls back
   * clears the cache. The arrays are frozen: callers share them.
   */
  private dirOf(user: string): readonly DirEntry[] {
    const hit = this.dirCache.get(user);
    if (hit !== undefined) return hit;
    const rows = this.st.dirOfUser.all(user) as unknown as DirRow[];
    const out = new Array<DirEntry>(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!;
      out[i] = Object.freeze({ user, device: r.device, server: r.server, boot: r.boot, gen: r.gen });
    }
    if (this.dirCache.size >= DIR_CACHE_MAX) this.dirCache.clear();
    this.dirCache.set(user, Object.freeze(out));
    return out;
  }

  private readonly dirCache = new Map<string, readonly DirEntry[]>();

  private acked(user: string, device: string): number {
    return (this.st.ackGet.get(user, device)?.seq as number | undefined) ?? 0;
  }

  // ---- Store --------------------------------------------------------------

  appendP2P(msg: AppendP2P): Promise<AppendResult> {
    return this.write(() => this.appendNow(msg));
  }

  private appendNow(m: AppendP2P): AppendResult {
    const st = this.st;
    if (m.cid !== undefined) {
      const hit = st.cidGet.get(m.from, m.to, m.cid) as CidRow | undefined;
      if (hit !== undefined && hit.ts > m.ts - this.limits.cidWindowMs) {
        return { mid: hit.mid, seq: hit.seq, ts: hit.ts, duplicate: true, sessions: this.dirOf(m.to) };
      }
    }
    const seq = this.nextSeq(m.to);
    this.putRow(m.to, { seq, mid: m.mid, sender: m.from, recipient: m.to, topic: null, tseq: null, body: m.body, ts: m.ts });
    if (m.cid !== undefined) st.cidPut.run(m.from, m.to, m.cid, m.mid, seq, m.ts);
    return { mid: m.mid, seq, ts: m.ts, duplicate: false, sessions: this.dirOf(m.to) };
  }

  async readInbox(
    user: string,
    after: number,
    limit: number,
  ): Promise<{ messages: StoredMessage[]; head: InboxHead }> {
    this.mustBeOpen();
    const head = this.readHead(user);
    if (head !== undefined) return { messages: this.readMessages(user, after, limit, head), head };
    // a new user: its epoch is made in the write queue, and the read with it
    return this.write(() => {
      const created = this.headOrCreate(user);
      return { messages: this.readMessages(user, after, limit, created), head: created };
    });
  }

  private readMessages(user: string, after: number, limit: number, head: InboxHead): StoredMessage[] {
    // Nothing at or below first - 1: trimmed by count (maybe not yet deleted).
    const from = Math.max(after, head.first - 1);
    const want = Math.max(0, limit);
    const rows = this.st.inboxRead.all(user, from, want) as unknown as MessageRow[];
    const messages = new Array<StoredMessage>(rows.length);
    for (let i = 0; i < rows.length; i++) messages[i] = toMessage(rows[i]!, rows[i]!.body);
    // then the rows not merged yet: all above the merged ones
    const mem = this.mem.get(user);
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
        const body = r.topic === null ? r.body : ((this.st.logGet.get(r.topic, r.tseq) as LogRow | undefined)?.body ?? null);
        messages.push(toMessage(r, body));
        if (messages.length >= want) break;
      }
    }
    return messages;
  }

  async head(user: string): Promise<InboxHead> {
    this.mustBeOpen();
    return this.headDirect(user);
  }

  ack(user: string, device: string, seq: number): Promise<number> {
    return this.write(() => {
      const cursor = this.acked(user, device);
      const top = this.seqOf(user) ?? 0;
      const want = Math.min(seq, top);
      if (!(want > cursor)) return cursor; // also refuses NaN
      this.st.ackPut.run(user, device, want);
      return want;
    });
  }

  login(args: LoginArgs): Promise<LoginResult> {
    return this.write(() => {
      const { user, device } = args;
      if (!args.push) {
        return { gen: 0, head: this.headOrCreate(user), acked: this.acked(user, device) };
      }
      // Login writes before it reads (DESIGN.md).
      const st = this.st;
      const gen = st.genNext.get(user, device)!.gen as number;
      const prev = st.dirGet.get(user, device) as Omit<DirRow, 'device'> | undefined;
      st.dirPut.run(user, device, args.server, args.boot, gen);
      this.dirCache.delete(user);
      const result: LoginResult = { gen, head: this.headOrCreate(user), acked: this.acked(user, device) };
      if (prev !== undefined) {
        result.replaced = { user, device, server: prev.server, boot: prev.boot, gen: prev.gen };
      }
      return result;
    });
  }

  async check(user: string, device: string): Promise<{ head: InboxHead; gen: number }> {
    this.mustBeOpen();
    const gen = (this.st.genGet.get(user, device)?.gen as number | undefined) ?? 0;
    return { head: await this.headDirect(user), gen };
  }

  removeSession(user: string, device: string, gen: number): Promise<boolean> {
    return this.write(() => {
      this.dirCache.delete(user);
      return this.st.dirDel.run(user, device, gen).changes > 0;
    });
  }

  restoreSession(entry: DirEntry): Promise<boolean> {
    return this.write(() => {
      const gen = this.st.genGet.get(entry.user, entry.device)?.gen as number | undefined;
      if (gen !== entry.gen) return false;
      this.st.dirPut.run(entry.user, entry.device, entry.server, entry.boot, entry.gen);
      this.dirCache.delete(entry.user);
      return true;
    });
  }

  async sessions(user: string): Promise<DirEntry[]> {
    this.mustBeOpen();
    return this.dirOf(user).map((e) => ({ ...e }));
  }

  renewLease(server: string, boot: string, ttlMs: number): Promise<boolean> {
    return this.write(() => {
      const now = Date.now();
      const expires = this.st.leaseGet.get(server, boot)?.expires as number | undefined;
      this.st.leasePut.run(server, boot, now + ttlMs);
      return expires !== undefined && expires > now;
    });
  }

  async dropLease(server: string, boot: string): Promise<void> {
    await this.write(() => this.st.leaseDel.run(server, boot));
  }

  async expiredLeases(now: number): Promise<{ server: string; boot: string }[]> {
    this.mustBeOpen();
    return (this.st.leasesExpired.all(now) as { server: string; boot: string }[]).map((r) => ({
      server: r.server,
      boot: r.boot,
    }));
  }

  removeServerSessions(server: string, boot: string): Promise<number> {
    return this.write(() => {
      this.dirCache.clear();
      const removed = this.st.dirDelServer.run(server, boot).changes;
      this.st.leaseDel.run(server, boot);
      return removed;
    });
  }

  /**
   * By age, in short steps through the write queue so a big trim never holds
   * the event loop for long: inboxes user by user, then cid records.
   */
  async trim(now: number): Promise<number> {
    const inboxCutoff = now - this.limits.retentionMs;
    const cidCutoff = now - this.limits.cidWindowMs;
    let removed = 0;
    let after = '';
    for (;;) {
      const step = await this.write(() => {
        if (after === '') this.mergeNow(); // the recent rows too: trimming reads `inbox`
        const users = this.st.usersAfter.all(after, TRIM_USERS_PER_STEP) as { user: string; seq: number }[];
        let n = 0;
        for (const { user, seq } of users) {
          // what is past maxInbox is gone already (logically): not counted
          if (seq > this.limits.maxInbox) this.st.inboxTrimCount.run(user, seq - this.limits.maxInbox);
          n += this.st.inboxTrimAge.run(user, user, inboxCutoff).changes;
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
      const step = await this.write(() => {
        const topics = this.st.topicNamesAfter.all(after, TRIM_USERS_PER_STEP) as { topic: string; fanned: number }[];
        let n = 0;
        for (const { topic, fanned } of topics) {
          n += this.st.logTrimAge.run(topic, fanned, topic, inboxCutoff).changes;
          this.st.membersTrim.run(topic, fanned);
        }
        return { n, last: topics.length === TRIM_USERS_PER_STEP ? topics[topics.length - 1]!.topic : undefined };
      });
      removed += step.n;
      if (step.last === undefined) break;
      after = step.last;
    }
    while ((await this.write(() => this.st.cidTrim.run(cidCutoff).changes)) === TRIM_CIDS_PER_STEP);
    while ((await this.write(() => this.st.topicCidTrim.run(cidCutoff).changes)) === TRIM_CIDS_PER_STEP);
    return removed;
  }

  // ---- topics (DESIGN.md "Topics: log, then fan-out") ------------------------

  private topicRow(topic: string): TopicRow | undefined {
    return this.st.topicGet.get(topic) as TopicRow | undefined;
  }

  topicCreate(topic: string, creator: string, ts: number): Promise<boolean> {
    return this.write(() => {
      if (this.st.topicPut.run(topic, creator, ts).changes === 0) return false;
      this.st.memberPut.run(topic, creator, 0);
      return true;
    });
  }

  topicJoin(topic: string, user: string): Promise<number | null> {
    return this.write(() => {
      const st = this.st;
      const t = this.topicRow(topic);
      if (t === undefined) return null;
      const m = st.memberGet.get(topic, user) as MemberRow | undefined;
      if (m !== undefined && m.left_tseq === null) return t.members;
      if (m !== undefined && m.left_tseq! >= t.tseq) {
        // no message since the leave: the old membership simply goes on
        st.memberRejoin.run(topic, user);
      } else {
        // One row holds one membership: first give the leaver what it is
        // still owed (messages up to its leave), then start anew.
        if (m !== undefined && m.left_tseq! > t.fanned) this.fanoutNow(topic, UNLIMITED, m.left_tseq!);
        st.memberPut.run(topic, user, t.tseq);
      }
      st.topicMembersAdd.run(1, topic);
      return t.members + 1;
    });
  }

  topicLeave(topic: string, user: string): Promise<'ok' | 'no_such_topic' | 'not_a_member'> {
    return this.write(() => {
      const st = this.st;
      const t = this.topicRow(topic);
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

  async topicMembers(
    topic: string,
    after: string | undefined,
    limit: number,
  ): Promise<{ members: string[]; more: boolean } | null> {
    this.mustBeOpen();
    if (this.topicRow(topic) === undefined) return null;
    const n = Math.max(0, Math.floor(limit));
    const rows = this.st.membersPage.all(topic, after ?? '', n + 1) as { user: string }[];
    const more = rows.length > n;
    const members = new Array<string>(Math.min(n, rows.length));
    for (let i = 0; i < members.length; i++) members[i] = rows[i]!.user;
    return { members, more };
  }

  topicAppend(msg: TopicAppend): Promise<TopicAppendResult> {
    return this.write((): TopicAppendResult => {
      const st = this.st;
      const { topic, from } = msg;
      if (this.topicRow(topic) === undefined) return { code: 'no_such_topic' };
      const m = st.memberGet.get(topic, from) as MemberRow | undefined;
      if (m === undefined || m.left_tseq !== null) return { code: 'not_a_member' };
      if (msg.cid !== undefined) {
        const hit = st.topicCidGet.get(from, topic, msg.cid) as { mid: string; tseq: number; ts: number } | undefined;
        if (hit !== undefined && hit.ts > msg.ts - this.limits.cidWindowMs) {
          return { code: 'ok', mid: hit.mid, tseq: hit.tseq, ts: hit.ts, duplicate: true };
        }
      }
      const tseq = st.topicNextTseq.get(topic)!.tseq as number;
      st.logPut.run(topic, tseq, msg.mid, from, msg.body, msg.ts);
      if (msg.cid !== undefined) st.topicCidPut.run(from, topic, msg.cid, msg.mid, tseq, msg.ts);
      return { code: 'ok', mid: msg.mid, tseq, ts: msg.ts, duplicate: false };
    });
  }

  topicFanout(topic: string, limit: number): Promise<{ messages: FanoutMessage[]; done: boolean }> {
    return this.write(() => this.fanoutNow(topic, Math.max(1, Math.floor(limit) || 1)));
  }

  /**
   * Inside a batch: one fan-out step from the stored position, at most
   * `limit` members served, up to tseq `until` (default: the newest), then
   * the new position is stored. Batches run one at a time, so two steps of
   * one topic never overlap: the second starts where the first stopped.
   */
  private fanoutNow(
    topic: string,
    limit: number,
    until?: number,
  ): { messages: FanoutMessage[]; done: boolean } {
    const st = this.st;
    const t = this.topicRow(topic);
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
        if (this.hasTopicCopy(user, topic, tseq)) continue; // has it already
        const seq = this.nextSeq(user);
        this.putRow(user, { seq, mid: log.mid, sender: log.sender, recipient: null, topic, tseq, body: null, ts: log.ts });
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

  async topicsBehind(): Promise<string[]> {
    this.mustBeOpen();
    return (this.st.topicsBehind.all() as { topic: string }[]).map((r) => r.topic);
  }

  async topicInfo(topic: string): Promise<TopicInfo | null> {
    this.mustBeOpen();
    const row = this.topicRow(topic);
    return row === undefined ? null : topicInfoOf(row);
  }

  async listTopics(after: string | undefined, limit: number): Promise<TopicInfo[]> {
    this.mustBeOpen();
    const rows = this.st.topicsAfter.all(after ?? '', Math.max(0, Math.floor(limit))) as unknown as TopicRow[];
    return rows.map(topicInfoOf);
  }

  // ---- user records and the directory, for the manager ----------------------

  recordUserEvent(e: { k: 'login' | 'logout' | 'kick'; user: string; device: string; server: string; ts: number }): Promise<void> {
    return this.write(() => {
      this.st.recordPut.run(e.user, e.ts, e.ts);
      if (e.k === 'login') this.st.deviceLogin.run(e.user, e.device, e.ts, e.server);
      else this.st.deviceLogout.run(e.user, e.device, e.ts, e.server);
    });
  }

  async userRecord(user: string): Promise<UserRecord | null> {
    this.mustBeOpen();
    const rec = this.st.recordGet.get(user) as { first_seen: number; last_seen: number } | undefined;
    if (rec === undefined) return null;
    const rows = this.st.devicesOf.all(user) as { device: string; last_seen: number; online: number; server: string }[];
    const devices: UserRecord['devices'] = rows.map((r) => {
      const d: UserRecord['devices'][number] = { device: r.device, lastSeen: r.last_seen, online: r.online === 1 };
      if (r.server !== '') d.server = r.server;
      return d;
    });
    return { user, firstSeen: rec.first_seen, lastSeen: rec.last_seen, devices, online: devices.some((d) => d.online) };
  }

  async listSessions(after: string | undefined, limit: number): Promise<DirEntry[]> {
    this.mustBeOpen();
    const n = Math.max(0, Math.floor(limit));
    const slash = after === undefined ? -1 : after.indexOf('/');
    const rows = (
      slash >= 0
        ? this.st.dirAfterEntry.all(after!.slice(0, slash), after!.slice(slash + 1), n)
        : this.st.dirAfterUser.all(after ?? '', n)
    ) as unknown as (DirRow & { user: string })[];
    return rows.map((r) => ({ user: r.user, device: r.device, server: r.server, boot: r.boot, gen: r.gen }));
  }

  async deviceAcks(user: string): Promise<{ device: string; acked: number }[]> {
    this.mustBeOpen();
    return (this.st.acksOf.all(user) as { device: string; seq: number }[]).map((r) => ({ device: r.device, acked: r.seq }));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.mergeTimer);
    this.flush(); // what was queued before close() still commits
    try {
      this.undo = [];
      this.db.transaction(() => this.mergeNow());
    } catch {
      // the rows stay in `recent`; the next open loads them
    }
    this.undo = [];
    this.db.close();
  }
}

/**
 * The embedded store over a database opened by the platform
 * (`platform.openSqlite(path)`); creates the tables on first use.
 */
export async function openSqliteStore(db: SqliteDatabase, limits?: Partial<StoreLimits>): Promise<Store> {
  // Appends to many users dirty one inbox page each per batch: checkpoint less
  // often, so a page written by many batches is copied back once (measured:
  // ~1.7x appends/s with 1000 recipients), and keep the hot pages cached.
  db.exec('PRAGMA wal_autocheckpoint = 10000');
  db.exec('PRAGMA journal_size_limit = 67108864');
  db.exec('PRAGMA cache_size = -65536');
  // pages read through a memory map, not a pread each
  db.exec('PRAGMA mmap_size = 268435456');
  SqliteStore.migrate(db);
  return new SqliteStore(db, limits);
}
