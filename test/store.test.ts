/**
 * The Store contract against the embedded SQLite store on a temp file:
 * better-sqlite3 under Node, bun:sqlite under Bun. Plus what only the SQLite
 * store has: group-commit failure isolation, WAL mode, the schema version.
 *
 *   node --import tsx --test test/store.test.ts
 *   bun test test/store.test.ts
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { SqliteDatabase } from '../runtime/platform/types.js';
import { openSqliteStore, SQLITE_SCHEMA_VERSION, type StoreLimits } from '../runtime/store/index.js';
import { storeContract } from './store-contract.js';

const isBun = typeof (globalThis as { Bun?: unknown }).Bun !== 'undefined';
const { openSqlite }: { openSqlite: (path: string) => SqliteDatabase } = isBun
  ? await import('../runtime/platform/bun/sqlite.js')
  : await import('../runtime/platform/node/sqlite.js');
const driver = isBun ? 'bun:sqlite' : 'better-sqlite3';

async function tempFile(): Promise<{ path: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'fishchat-store-'));
  return { path: join(dir, 'store.db'), remove: () => rm(dir, { recursive: true, force: true }) };
}

storeContract(`sqlite (${driver})`, async (limits?: Partial<StoreLimits>) => {
  const file = await tempFile();
  let store = await openSqliteStore(openSqlite(file.path), limits);
  return {
    store,
    reopen: async () => {
      await store.close();
      store = await openSqliteStore(openSqlite(file.path), limits);
      return store;
    },
    cleanup: async () => {
      await store.close();
      await file.remove();
    },
  };
});

describe(`SqliteStore (${driver})`, () => {
  it('opens the file in WAL mode with synchronous=NORMAL', async () => {
    const file = await tempFile();
    const db = openSqlite(file.path);
    try {
      assert.equal(String(db.prepare('PRAGMA journal_mode').get()?.journal_mode).toLowerCase(), 'wal');
      assert.equal(db.prepare('PRAGMA synchronous').get()?.synchronous, 1);
      assert.ok(Number(db.prepare('PRAGMA busy_timeout').get()?.timeout) > 0);
    } finally {
      db.close();
      await file.remove();
    }
  });

  it('a failing op in a batch rejects only itself; the others keep call order', async () => {
    const file = await tempFile();
    const store = await openSqliteStore(openSqlite(file.path));
    try {
      const ok = (i: number) =>
        store.appendP2P({ from: 'a', to: 'b', mid: randomUUID(), body: new Uint8Array([i]), ts: Date.now() });
      // a body SQLite cannot bind makes that one op throw inside the batch
      const bad = store.appendP2P({
        from: 'a',
        to: 'b',
        mid: randomUUID(),
        body: (() => 1) as unknown as Uint8Array,
        ts: Date.now(),
      });
      const results = await Promise.allSettled([ok(1), ok(2), bad, ok(3), store.ack('b', 'd', 9)]);
      assert.deepEqual(
        results.map((r) => r.status),
        ['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled'],
      );
      const values = results.map((r) => (r.status === 'fulfilled' ? r.value : undefined));
      assert.deepEqual(
        values.slice(0, 2).map((v) => (v as { seq: number }).seq),
        [1, 2],
      );
      assert.equal((values[3] as { seq: number }).seq, 3);
      assert.equal(values[4], 3);
      const { messages } = await store.readInbox('b', 0, 10);
      assert.deepEqual(
        messages.map((m) => m.body[0]),
        [1, 2, 3],
      );
    } finally {
      await store.close();
      await file.remove();
    }
  });

  it('refuses a file from a newer schema', async () => {
    const file = await tempFile();
    try {
      const db = openSqlite(file.path);
      await (await openSqliteStore(db)).close();
      const raw = openSqlite(file.path);
      raw.prepare('UPDATE schema_version SET version = ?').run(SQLITE_SCHEMA_VERSION + 1);
      await assert.rejects(openSqliteStore(raw), /schema version/);
      raw.close();
    } finally {
      await file.remove();
    }
  });

  it('upgrades a version 1 file in place: p2p data kept, topics usable', async () => {
    const file = await tempFile();
    try {
      const store = await openSqliteStore(openSqlite(file.path));
      await store.appendP2P({ from: 'a', to: 'b', mid: 'm1', body: new Uint8Array([7]), ts: Date.now() });
      await store.close();
      // back to what version 1 had
      const raw = openSqlite(file.path);
      raw.exec(`DROP INDEX inbox_topic; DROP TABLE topics; DROP TABLE topic_members; DROP TABLE topic_log;
        DROP TABLE topic_cids; DROP TABLE user_records; DROP TABLE user_devices; UPDATE schema_version SET version = 1`);
      const again = await openSqliteStore(raw);
      try {
        assert.equal(raw.prepare('SELECT version FROM schema_version').get()?.version, SQLITE_SCHEMA_VERSION);
        assert.deepEqual(
          (await again.readInbox('b', 0, 10)).messages.map((m) => [m.seq, m.mid]),
          [[1, 'm1']],
        );
        assert.equal(await again.topicCreate('t', 'b', 1), true);
        await again.topicAppend({ topic: 't', from: 'b', mid: 'm2', body: new Uint8Array([8]), ts: Date.now() });
        await again.topicFanout('t', 10);
        const { messages } = await again.readInbox('b', 0, 10);
        assert.deepEqual(
          messages.map((m) => [m.seq, m.mid, m.topic ?? null, [...m.body]]),
          [
            [1, 'm1', null, [7]],
            [2, 'm2', 't', [8]],
          ],
        );
      } finally {
        await again.close();
      }
    } finally {
      await file.remove();
    }
  });

  it('topic copies store no body; lookups use the indexes', async () => {
    const file = await tempFile();
    const db = openSqlite(file.path);
    const store = await openSqliteStore(db);
    try {
      await store.topicCreate('t', 'a', 1);
      await store.topicAppend({ topic: 't', from: 'a', mid: 'm', body: new Uint8Array(100), ts: Date.now() });
      await store.topicFanout('t', 10);
      // the copy waits in `recent` until the next merge, then moves to `inbox`: no body in either
      assert.equal(db.prepare('SELECT body FROM recent WHERE user = ?').get('a')?.body, null);
      await store.trim(Date.now()); // merges first
      assert.equal(db.prepare('SELECT count(*) AS n FROM recent').get()?.n, 0);
      assert.equal(db.prepare('SELECT body FROM inbox WHERE user = ?').get('a')?.body, null);
      const plan = (sql: string) =>
        db
          .prepare(`EXPLAIN QUERY PLAN ${sql}`)
          .all()
          .map((r) => String(r.detail))
          .join('; ');
      assert.match(plan("SELECT 1 FROM inbox WHERE user = 'a' AND topic = 't' AND tseq = 1"), /inbox_topic/);
      assert.doesNotMatch(
        plan(
          "SELECT user FROM topic_members WHERE topic = 't' AND user > '' AND joined_tseq < 1 AND (left_tseq IS NULL OR left_tseq >= 1) ORDER BY user LIMIT 5",
        ),
        /SCAN|TEMP B-TREE/,
      );
    } finally {
      await store.close();
      await file.remove();
    }
  });

  it('new inbox rows wait in `recent`; reads see one sequence across a merge', async () => {
    const file = await tempFile();
    const db = openSqlite(file.path);
    const store = await openSqliteStore(db);
    try {
      const send = (i: number) =>
        store.appendP2P({ from: 'a', to: 'b', mid: `m${i}`, body: new Uint8Array([i]), ts: Date.now() });
      for (let i = 1; i <= 5; i++) assert.equal((await send(i)).seq, i);
      assert.equal(db.prepare('SELECT count(*) AS n FROM recent').get()?.n, 5);
      assert.equal(db.prepare('SELECT count(*) AS n FROM inbox').get()?.n, 0);
      await store.trim(Date.now()); // merges first
      assert.equal(db.prepare('SELECT count(*) AS n FROM recent').get()?.n, 0);
      assert.equal(db.prepare('SELECT count(*) AS n FROM inbox').get()?.n, 5);
      for (let i = 6; i <= 10; i++) assert.equal((await send(i)).seq, i);
      const all = await store.readInbox('b', 0, 100);
      assert.deepEqual(
        all.messages.map((m) => m.seq),
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
      );
      assert.deepEqual(
        all.messages.map((m) => m.body[0]),
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
      );
      assert.equal(all.head.seq, 10);
      assert.equal(all.head.first, 1);
      const across = await store.readInbox('b', 3, 4);
      assert.deepEqual(
        across.messages.map((m) => m.seq),
        [4, 5, 6, 7],
      );
      assert.equal(await store.ack('b', 'd', 99), 10);
    } finally {
      await store.close();
      await file.remove();
    }
  });

  it('rows not yet merged survive a crash: the next open reads them back from `recent`', async () => {
    const file = await tempFile();
    const db = openSqlite(file.path);
    const store = await openSqliteStore(db);
    for (let i = 1; i <= 7; i++)
      await store.appendP2P({ from: 'a', to: 'b', mid: `m${i}`, body: new Uint8Array([i]), ts: Date.now() });
    // as kill -9 would: the file is left without the store's close (which merges)
    db.close();
    const again = await openSqliteStore(openSqlite(file.path));
    try {
      const { messages, head } = await again.readInbox('b', 0, 100);
      assert.deepEqual(
        messages.map((m) => m.seq),
        [1, 2, 3, 4, 5, 6, 7],
      );
      assert.equal(head.seq, 7);
      assert.equal(
        (await again.appendP2P({ from: 'a', to: 'b', mid: 'm8', body: new Uint8Array([8]), ts: Date.now() })).seq,
        8,
      );
    } finally {
      await again.close();
      await file.remove();
    }
  });

  it('calls after close reject', async () => {
    const file = await tempFile();
    const store = await openSqliteStore(openSqlite(file.path));
    await store.close();
    await assert.rejects(store.appendP2P({ from: 'a', to: 'b', mid: 'm', body: new Uint8Array(1), ts: 1 }), /closed/);
    await assert.rejects(store.readInbox('b', 0, 10), /closed/);
    await assert.rejects(store.head('b'), /closed/);
    await assert.rejects(store.sessions('b'), /closed/);
    await store.close(); // twice is fine
    await file.remove();
  });
});
