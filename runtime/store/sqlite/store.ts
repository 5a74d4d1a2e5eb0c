/**
 * The embedded Store over SQLite (docs/architecture.md "Store: who owns what data").
 *
 * Writes go through a group commit (./commit.ts): the writes of one
 * event-loop turn commit in one transaction. Reads run directly: SQLite
 * calls are synchronous and a batch never yields, so a read sees whole
 * batches, never half of one. New inbox rows wait in `recent` and in memory
 * before they move to `inbox` (./recent.ts).
 *
 * The database file is opened by the platform (runtime/platform/<rt>/sqlite.ts)
 * and handed in; the store owns it from then on and closes it in close().
 */
import type { SqliteDatabase } from '../../platform/types.js';
import { BoundStore, type StoreOps } from '../bound.js';
import { resolveLimits } from '../common.js';
import type { Store, StoreLimits } from '../store.js';
import { GroupCommit } from './commit.js';
import type { SqliteContext } from './context.js';
import * as directory from './directory.js';
import * as housekeeping from './housekeeping.js';
import * as inbox from './inbox.js';
import * as leases from './leases.js';
import { RecentRows } from './recent.js';
import * as records from './records.js';
import { migrate, tune } from './schema.js';
import { prepareStatements } from './statements.js';
import * as topics from './topics.js';

/** The Store methods, from the files of their concerns. */
const OPS: StoreOps<SqliteContext> = { ...inbox, ...directory, ...leases, ...topics, ...records, ...housekeeping };

export class SqliteStore extends BoundStore<SqliteContext> {
  readonly kind = 'sqlite' as const;
  readonly limits: StoreLimits;

  private readonly c: SqliteContext;

  /** Use openSqliteStore(): it creates the tables before the statements are made. */
  constructor(db: SqliteDatabase, limits: Partial<StoreLimits> = {}) {
    const l = resolveLimits(limits);
    const st = prepareStatements(db);
    const dirs = new directory.DirCache(st);
    // Directory entries read inside a batch that rolled back may never have been committed.
    const commit = new GroupCommit(db, () => dirs.clear());
    const recent = new RecentRows(st, commit, l);
    const c: SqliteContext = { db, st, limits: l, commit, recent, dirs };
    super(c, OPS);
    this.limits = l;
    this.c = c;
  }

  /** Creates the tables if missing; refuses a file written by a newer schema. */
  static migrate(db: SqliteDatabase): void {
    migrate(db);
  }

  async close(): Promise<void> {
    const { commit, recent, db } = this.c;
    if (commit.closed) return;
    recent.stop();
    // what was queued before close() still commits, then the recent rows move
    // to `inbox` (if that fails they stay in `recent`: the next open loads them)
    commit.close(() => recent.mergeNow());
    db.close();
  }
}

/**
 * The embedded store over a database opened by the platform
 * (`platform.openSqlite(path)`); creates the tables on first use.
 */
export async function openSqliteStore(db: SqliteDatabase, limits?: Partial<StoreLimits>): Promise<Store> {
  tune(db);
  migrate(db);
  return new SqliteStore(db, limits);
}
