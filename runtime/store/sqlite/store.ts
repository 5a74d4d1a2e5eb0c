/**
 * The embedded Store over SQLite (DESIGN.md "Store: who owns what data").
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
import { resolveLimits, type UserEvent } from '../common.js';
import type {
  AppendP2P,
  AppendResult,
  DirEntry,
  FanoutMessage,
  InboxHead,
  LoginArgs,
  LoginResult,
  Store,
  StoreLimits,
  StoredMessage,
  TopicAppend,
  TopicAppendResult,
  TopicInfo,
  UserRecord,
} from '../store.js';
import { GroupCommit } from './commit.js';
import type { SqliteContext } from './context.js';
import * as directory from './directory.js';
import { DirCache } from './directory.js';
import { trim } from './housekeeping.js';
import * as inbox from './inbox.js';
import * as leases from './leases.js';
import { RecentRows } from './recent.js';
import * as records from './records.js';
import { migrate, tune } from './schema.js';
import { prepareStatements } from './statements.js';
import * as topics from './topics.js';

export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  readonly limits: StoreLimits;

  private readonly c: SqliteContext;

  /** Use openSqliteStore(): it creates the tables before the statements are made. */
  constructor(db: SqliteDatabase, limits: Partial<StoreLimits> = {}) {
    this.limits = resolveLimits(limits);
    const st = prepareStatements(db);
    const dirs = new DirCache(st);
    // Directory entries read inside a batch that rolled back may never have been committed.
    const commit = new GroupCommit(db, () => dirs.clear());
    const recent = new RecentRows(st, commit, this.limits);
    this.c = { db, st, limits: this.limits, commit, recent, dirs };
  }

  /** Creates the tables if missing; refuses a file written by a newer schema. */
  static migrate(db: SqliteDatabase): void {
    migrate(db);
  }

  // ---- inboxes ------------------------------------------------------------

  appendP2P(msg: AppendP2P): Promise<AppendResult> {
    return inbox.appendP2P(this.c, msg);
  }
  readInbox(user: string, after: number, limit: number): Promise<{ messages: StoredMessage[]; head: InboxHead }> {
    return inbox.readInbox(this.c, user, after, limit);
  }
  head(user: string): Promise<InboxHead> {
    return inbox.head(this.c, user);
  }
  ack(user: string, device: string, seq: number): Promise<number> {
    return inbox.ack(this.c, user, device, seq);
  }
  deviceAcks(user: string): Promise<{ device: string; acked: number }[]> {
    return inbox.deviceAcks(this.c, user);
  }

  // ---- sessions and leases ------------------------------------------------

  login(args: LoginArgs): Promise<LoginResult> {
    return directory.login(this.c, args);
  }
  check(user: string, device: string): Promise<{ head: InboxHead; gen: number }> {
    return directory.check(this.c, user, device);
  }
  removeSession(user: string, device: string, gen: number): Promise<boolean> {
    return directory.removeSession(this.c, user, device, gen);
  }
  restoreSession(entry: DirEntry): Promise<boolean> {
    return directory.restoreSession(this.c, entry);
  }
  sessions(user: string): Promise<DirEntry[]> {
    return directory.sessions(this.c, user);
  }
  listSessions(after: string | undefined, limit: number): Promise<DirEntry[]> {
    return directory.listSessions(this.c, after, limit);
  }
  renewLease(server: string, boot: string, ttlMs: number): Promise<boolean> {
    return leases.renewLease(this.c, server, boot, ttlMs);
  }
  dropLease(server: string, boot: string): Promise<void> {
    return leases.dropLease(this.c, server, boot);
  }
  expiredLeases(now: number): Promise<{ server: string; boot: string }[]> {
    return leases.expiredLeases(this.c, now);
  }
  removeServerSessions(server: string, boot: string): Promise<number> {
    return leases.removeServerSessions(this.c, server, boot);
  }

  // ---- topics -------------------------------------------------------------

  topicCreate(topic: string, creator: string, ts: number): Promise<boolean> {
    return topics.topicCreate(this.c, topic, creator, ts);
  }
  topicJoin(topic: string, user: string): Promise<number | null> {
    return topics.topicJoin(this.c, topic, user);
  }
  topicLeave(topic: string, user: string): Promise<'ok' | 'no_such_topic' | 'not_a_member'> {
    return topics.topicLeave(this.c, topic, user);
  }
  topicMembers(
    topic: string,
    after: string | undefined,
    limit: number,
  ): Promise<{ members: string[]; more: boolean } | null> {
    return topics.topicMembers(this.c, topic, after, limit);
  }
  topicAppend(msg: TopicAppend): Promise<TopicAppendResult> {
    return topics.topicAppend(this.c, msg);
  }
  topicFanout(topic: string, limit: number): Promise<{ messages: FanoutMessage[]; done: boolean }> {
    return topics.topicFanout(this.c, topic, limit);
  }
  topicsBehind(): Promise<string[]> {
    return topics.topicsBehind(this.c);
  }
  topicInfo(topic: string): Promise<TopicInfo | null> {
    return topics.topicInfo(this.c, topic);
  }
  listTopics(after: string | undefined, limit: number): Promise<TopicInfo[]> {
    return topics.listTopics(this.c, after, limit);
  }

  // ---- user records and housekeeping --------------------------------------

  recordUserEvent(e: UserEvent): Promise<void> {
    return records.recordUserEvent(this.c, e);
  }
  userRecord(user: string): Promise<UserRecord | null> {
    return records.userRecord(this.c, user);
  }
  trim(now: number): Promise<number> {
    return trim(this.c, now);
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
