/// <reference types="bun" />
/**
 * SQLite on Bun: bun:sqlite. Imported only by the Bun platform (never under
 * Node). Blobs come back as Uint8Array.
 */
import { Database, type SQLQueryBindings } from 'bun:sqlite';
import type { SqliteDatabase, SqliteStatement } from '../types.js';

const BUSY_TIMEOUT_MS = 5000;

export function openSqlite(path: string): SqliteDatabase {
  const db = new Database(path, { create: true, readwrite: true });
  db.exec('PRAGMA journal_mode = WAL');
  db.exec('PRAGMA synchronous = NORMAL');
  db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
  db.exec('PRAGMA foreign_keys = OFF');
  // One wrapper made once: `.immediate(fn)` runs fn inside
  // BEGIN IMMEDIATE … COMMIT (a savepoint when nested), ROLLBACK on throw.
  const tx = db.transaction((fn: () => unknown) => fn());
  return {
    exec: (sql) => {
      db.exec(sql);
    },
    prepare: (sql): SqliteStatement => {
      const st = db.prepare<Record<string, unknown>, SQLQueryBindings[]>(sql);
      // The stores bind only strings, numbers, bigints, Uint8Arrays and null.
      const bind = (params: unknown[]) => params as SQLQueryBindings[];
      return {
        run: (...params) => st.run(...bind(params)),
        // bun:sqlite answers null for "no row"; the interface says undefined.
        get: (...params) => st.get(...bind(params)) ?? undefined,
        all: (...params) => st.all(...bind(params)),
      };
    },
    transaction: <T>(fn: () => T): T => tx.immediate(fn) as T,
    close: () => {
      db.close();
    },
  };
}
