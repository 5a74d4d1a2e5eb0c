/** What the parts of the embedded store share: the database, its statements, the write queue, the rows in memory. */
import type { SqliteDatabase } from '../../platform/types.js';
import type { StoreLimits } from '../store.js';
import type { GroupCommit } from './commit.js';
import type { DirCache } from './directory.js';
import type { RecentRows } from './recent.js';
import type { Statements } from './statements.js';

export interface SqliteContext {
  readonly db: SqliteDatabase;
  readonly st: Statements;
  readonly limits: StoreLimits;
  /** writes go through it; reads run directly (SQLite calls are synchronous, a batch never yields) */
  readonly commit: GroupCommit;
  readonly recent: RecentRows;
  readonly dirs: DirCache;
}
