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
  type InboxHead,
  type LoginArgs,
  type LoginResult,
  type Store,
  type StoreLimits,
  type StoredMessage,
} from './store.js';

/** Bumped when the tables change; a file from a newer version is refused. */
export const SQLITE_SCHEMA_VERSION = 1;

/** Users per trim step, cid rows per trim step: keeps each step short. */
const TRIM_USERS_PER_STEP = 1000;
/**
 * Trimming by count is logical at once (reads and `first` hide every seq at
 * or below head.seq - maxInbox) and physical every this many appends per
 * user: one DELETE of a run of old rows instead of one dirty page per append.
 */
const COUNT_TRIM_EVERY = 64;
const TRIM_CIDS_PER_STEP = 10_000;
const MAX_SEQ = Number.MAX_SAFE_INTEGER;
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
`;

/** A new user's epoch: 16 random hex characters, made by SQLite on insert. */
const NEW_EPOCH = 'lower(hex(randomblob(8)))';

const SQL = {
  userNextSeq: `INSERT INTO users (user, seq, epoch) VALUES (?, 1, ${NEW_EPOCH})
    ON CONFLICT (user) DO UPDATE SET seq = seq + 1 RETURNING seq`,
  userEnsure: `INSERT INTO users (user, seq, epoch) VALUES (?, 0, ${NEW_EPOCH})
    ON CONFLICT (user) DO NOTHING`,
  userSeq: `SELECT seq FROM users WHERE user = ?`,
  head: `SELECT seq, epoch,
    (SELECT i.seq FROM inbox i WHERE i.user = users.user ORDER BY i.seq LIMIT 1) AS first
    FROM users WHERE user = ?`,
  usersAfter: `SELECT user, seq FROM users WHERE user > ? ORDER BY user LIMIT ?`,

  inboxPut: `INSERT INTO inbox (user, seq, mid, sender, recipient, topic, tseq, body, ts)
    VALUES (?, ?, ?, ?, ?, NULL, NULL, ?, ?)`,
  inboxRead: `SELECT seq, mid, sender, recipient, topic, tseq, body, ts FROM inbox
    WHERE user = ? AND seq > ? ORDER BY seq LIMIT ?`,
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

const closedError = () => new Error('the store is closed');

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
      this.db.transaction(() => {
        for (let i = 0; i < ops.length; i++) results[i] = ops[i]!.run();
      });
    } catch {
      // The whole batch was rolled back (ops only touch the database, so
      // running them again is safe): one transaction per op, in call order.
      for (const op of ops) {
        try {
          op.resolve(this.db.transaction(op.run));
        } catch (error) {
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

  private readHead(user: string): InboxHead | undefined {
    const row = this.st.head.get(user) as HeadRow | undefined;
    if (row === undefined) return undefined;
    // rows at or below seq - maxInbox may still be on disk (see COUNT_TRIM_EVERY)
    const first = row.first === null ? row.seq + 1 : Math.max(row.first, row.seq - this.limits.maxInbox + 1);
    return { seq: row.seq, first, epoch: row.epoch };
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

  private dirOf(user: string): DirEntry[] {
    const rows = this.st.dirOfUser.all(user) as unknown as DirRow[];
    const out = new Array<DirEntry>(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!;
      out[i] = { user, device: r.device, server: r.server, boot: r.boot, gen: r.gen };
    }
    return out;
  }

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
    const seq = st.userNextSeq.get(m.to)!.seq as number;
    st.inboxPut.run(m.to, seq, m.mid, m.from, m.to, m.body, m.ts);
    if (m.cid !== undefined) st.cidPut.run(m.from, m.to, m.cid, m.mid, seq, m.ts);
    const cut = seq - this.limits.maxInbox;
    if (cut > 0 && cut % COUNT_TRIM_EVERY === 0) st.inboxTrimCount.run(m.to, cut);
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
    const rows = this.st.inboxRead.all(user, from, Math.max(0, limit)) as unknown as MessageRow[];
    const messages = new Array<StoredMessage>(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!;
      const m: StoredMessage = { seq: r.seq, mid: r.mid, from: r.sender, body: r.body ?? EMPTY, ts: r.ts };
      if (r.recipient !== null) m.to = r.recipient;
      if (r.topic !== null) {
        m.topic = r.topic;
        m.tseq = r.tseq ?? 0;
      }
      messages[i] = m;
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
      const top = (this.st.userSeq.get(user)?.seq as number | undefined) ?? 0;
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
    return this.write(() => this.st.dirDel.run(user, device, gen).changes > 0);
  }

  restoreSession(entry: DirEntry): Promise<boolean> {
    return this.write(() => {
      const gen = this.st.genGet.get(entry.user, entry.device)?.gen as number | undefined;
      if (gen !== entry.gen) return false;
      this.st.dirPut.run(entry.user, entry.device, entry.server, entry.boot, entry.gen);
      return true;
    });
  }

  async sessions(user: string): Promise<DirEntry[]> {
    this.mustBeOpen();
    return this.dirOf(user);
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
    while ((await this.write(() => this.st.cidTrim.run(cidCutoff).changes)) === TRIM_CIDS_PER_STEP);
    return removed;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.flush(); // what was queued before close() still commits
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
  SqliteStore.migrate(db);
  return new SqliteStore(db, limits);
}
