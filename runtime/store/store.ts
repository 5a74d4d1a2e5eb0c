/**
 * The Store: the source of truth of a cluster (docs/architecture.md "Store: who owns what data").
 * Implementations: embedded (SQLite, ./sqlite/) and Redis (./redis/).
 * Every method is atomic on its own; implementations batch writes internally
 * (group commit / pipelining), so callers just await.
 */
import type { InboxMessage } from '../protocol/types.js';

/** A message as kept in a user's inbox. `body` is the raw CBOR the sender sent. */
export type StoredMessage = InboxMessage<Uint8Array>;

/** One session directory entry: device → {server, boot, gen}. */
export interface DirEntry {
  user: string;
  device: string;
  server: string;
  boot: string;
  gen: number;
}

/** Where a user's inbox stands: newest seq ever given, oldest kept, life name. */
export interface InboxHead {
  /** newest seq ever given (0 when none); never lowered by trimming */
  seq: number;
  /** oldest seq still kept; seq + 1 when none is kept */
  first: number;
  /** names this inbox's life; a wiped store yields a new one */
  epoch: string;
}

export interface AppendP2P {
  from: string;
  to: string;
  /** a cluster-unique id chosen by the caller; a cid repeat returns the first one instead */
  mid: string;
  body: Uint8Array;
  ts: number;
  cid?: string;
}

export interface AppendResult {
  mid: string;
  seq: number;
  ts: number;
  /** true when `cid` repeated an earlier send: nothing was appended */
  duplicate: boolean;
  /** the recipient's session directory entries, read in the same atomic step (shared: do not modify) */
  sessions: readonly DirEntry[];
}

export interface LoginArgs {
  user: string;
  device: string;
  server: string;
  boot: string;
  /** false: a send-only session: no directory entry, no gen */
  push: boolean;
}

export interface LoginResult {
  /** this session's gen (0 for push:false sessions) */
  gen: number;
  head: InboxHead;
  /** the device's ack cursor */
  acked: number;
  /** the entry this login replaced in the directory (same user+device), if any */
  replaced?: DirEntry;
}

export interface StoreLimits {
  /** inbox retention window, ms (default 7 days) */
  retentionMs: number;
  /** max messages kept per inbox (default 10000) */
  maxInbox: number;
  /** cid idempotency window, ms (default 24 h, at most retentionMs) */
  cidWindowMs: number;
}

export const DEFAULT_LIMITS: StoreLimits = {
  retentionMs: 7 * 24 * 3600_000,
  maxInbox: 10_000,
  cidWindowMs: 24 * 3600_000,
};

// ---- topics (docs/protocol.md §4.3, docs/architecture.md "Topics: log, then fan-out") ----

export interface TopicAppend {
  topic: string;
  from: string;
  mid: string;
  body: Uint8Array;
  ts: number;
  cid?: string;
}

export type TopicAppendResult =
  | { code: 'ok'; mid: string; tseq: number; ts: number; duplicate: boolean }
  | { code: 'no_such_topic' | 'not_a_member' };

/** One member's inbox copy of a topic message, made by a fan-out step. */
export interface FanoutCopy {
  user: string;
  seq: number;
  tseq: number;
  mid: string;
}

export interface FanoutMessage {
  topic: string;
  tseq: number;
  mid: string;
  from: string;
  body: Uint8Array;
  ts: number;
  /** the copies this step appended (members already holding it are not listed again) */
  copies: FanoutCopy[];
}

export interface TopicInfo {
  topic: string;
  creator: string;
  created: number;
  members: number;
  /** newest tseq given */
  tseq: number;
  /** tseq fully fanned out to members' inboxes */
  fanned: number;
}

// ---- user records (kept by the manager from /sysctrl/client-status) ----

export interface UserRecord {
  user: string;
  firstSeen: number;
  lastSeen: number;
  /** devices ever seen, with their last event */
  devices: { device: string; lastSeen: number; online: boolean; server?: string }[];
  online: boolean;
}

export interface Store {
  readonly kind: 'sqlite' | 'redis';

  /**
   * Append first (docs/architecture.md): next seq, the message, its cid record, in one
   * atomic step, trimming by count; returns the recipient's directory entries.
   */
  appendP2P(msg: AppendP2P): Promise<AppendResult>;

  /** Messages with seq > after, oldest first, at most `limit`; with the head read in the same step. */
  readInbox(user: string, after: number, limit: number): Promise<{ messages: StoredMessage[]; head: InboxHead }>;

  /** The inbox head (creates the user's epoch if the user is new). */
  head(user: string): Promise<InboxHead>;

  /** cursor = max(cursor, min(seq, head.seq)); returns the cursor. Never moves back. */
  ack(user: string, device: string, seq: number): Promise<number>;

  /**
   * Login writes before it reads: with push, take the next gen of user+device
   * and write the directory entry, then read head and ack cursor.
   */
  login(args: LoginArgs): Promise<LoginResult>;

  /** For ping: the head and the highest gen given to user+device (0 if none). */
  check(user: string, device: string): Promise<{ head: InboxHead; gen: number }>;

  /** Deletes the directory entry of user+device only if its gen still is `gen`. */
  removeSession(user: string, device: string, gen: number): Promise<boolean>;

  /** Writes the entry back if no higher gen was given since (lease re-registration). */
  restoreSession(entry: DirEntry): Promise<boolean>;

  /** The directory entries of a user (every device). */
  sessions(user: string): Promise<DirEntry[]>;

  /** Renews the lease of server+boot for ttlMs; false when it had expired or never existed. */
  renewLease(server: string, boot: string, ttlMs: number): Promise<boolean>;

  /** Drops the lease (clean shutdown). */
  dropLease(server: string, boot: string): Promise<void>;

  /** Leases past their expiry, as of `now`. */
  expiredLeases(now: number): Promise<{ server: string; boot: string }[]>;

  /** Removes every directory entry of server+boot and its lease; returns how many entries went. */
  removeServerSessions(server: string, boot: string): Promise<number>;

  /** Trims inboxes, topic logs and cid records past the retention and cid windows; returns messages removed. */
  trim(now: number): Promise<number>;

  // ---- topics ----

  /** Creates the topic with its creator as the first member; false if it exists. */
  topicCreate(topic: string, creator: string, ts: number): Promise<boolean>;

  /** Adds a member (idempotent); the member count, or null if there is no such topic. Messages after this moment reach it. */
  topicJoin(topic: string, user: string): Promise<number | null>;

  topicLeave(topic: string, user: string): Promise<'ok' | 'no_such_topic' | 'not_a_member'>;

  /** Members in byte order of their names after `after`, at most `limit`; null if there is no such topic. */
  topicMembers(
    topic: string,
    after: string | undefined,
    limit: number,
  ): Promise<{ members: string[]; more: boolean } | null>;

  /**
   * Appends once to the topic's log: membership check, cid check (scoped to
   * from+topic), next tseq, the body, in one atomic step. The members of this
   * moment are the ones the fan-out serves.
   */
  topicAppend(msg: TopicAppend): Promise<TopicAppendResult>;

  /**
   * One fan-out step from the stored position: appends a reference (topic,
   * tseq, mid) to the inbox of each member of the moment of each message,
   * idempotent per member by mid, at most about `limit` copies, and stores the
   * new position. Safe to run concurrently and to resume after a crash.
   */
  topicFanout(topic: string, limit: number): Promise<{ messages: FanoutMessage[]; done: boolean }>;

  /** Topics whose fan-out position is behind their newest tseq (to resume after a crash). */
  topicsBehind(): Promise<string[]>;

  topicInfo(topic: string): Promise<TopicInfo | null>;
  listTopics(after: string | undefined, limit: number): Promise<TopicInfo[]>;

  // ---- user records and the directory, for the manager ----

  /** Records a client-status event (login, logout, kick) in the user's record. */
  recordUserEvent(e: {
    k: 'login' | 'logout' | 'kick';
    user: string;
    device: string;
    server: string;
    ts: number;
  }): Promise<void>;
  userRecord(user: string): Promise<UserRecord | null>;
  /**
   * Every directory entry, ordered by (user, device), at most `limit`, after
   * `after`: a user name (entries of later users) or a "user/device" cursor
   * (entries after that one).
   */
  listSessions(after: string | undefined, limit: number): Promise<DirEntry[]>;
  /** The ack cursor of every device of a user. */
  deviceAcks(user: string): Promise<{ device: string; acked: number }[]>;

  close(): Promise<void>;
}
