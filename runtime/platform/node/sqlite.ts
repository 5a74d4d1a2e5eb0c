/**
 * SQLite on Node: better-sqlite3. Imported only by the Node platform (never
 * under Bun). Blobs come back as Buffer, which is a Uint8Array.
 */
import Database from 'better-sqlite3';
import type { SqliteDatabase, SqliteStatement } from '../types.js';

const BUSY_TIMEOUT_MS = 5000;

export function openSqlite(path: string): SqliteDatabase {
  const db = new Database(path, { timeout: BUSY_TIMEOUT_MS });
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  db.pragma('foreign_keys = OFF');
  // One wrapper made once: calling `.immediate(fn)` runs fn inside
  // BEGIN IMMEDIATE … COMMIT (a savepoint when nested), ROLLBACK on throw.
  const tx = db.transaction((fn: () => unknown) => fn());
  return {
    exec: (sql) => {
      db.exec(sql);
    },
    // better-sqlite3's Statement already has run/get/all of the right shape.
    prepare: (sql) => db.prepare(sql) as unknown as SqliteStatement,
    transaction: <T>(fn: () => T): T => tx.immediate(fn) as T,
    close: () => {
      db.close();
    },
  };
}
