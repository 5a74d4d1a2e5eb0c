/**
 * The Redis Store (DESIGN.md "Store", "Three ways to run" 1 and 2), with
 * ioredis; the same semantics as the SQLite store (./sqlite.ts), checked by
 * the same contract (test/store-contract.ts).
 *
 * Keys (all under the cluster prefix `fishchat:<cluster>:`):
 * - one user, hash tag `{u:<user>}`: `m` (hash: seq, epoch; never trimmed nor
 *   expired), `i` (inbox: a list of entries by seq, so seqs are consecutive
 *   and `first` = seq - length + 1), `c`/`cz` (cid records and their ts),
 *   `t` (topic copies held: member `topic \0 tseq`, score seq), `a` (ack per
 *   device), `g` (gen per device; never trimmed), `d` (directory entries),
 *   `r`/`v` (the user record and its devices);
 * - one topic, hash tag `{t:<topic>}`: `m` (hash: creator, created, members,
 *   tseq, fanned, fm = fan-out member, lf = oldest log tseq kept), `j` (member
 *   → joined tseq), `z` (members by name, lex), `x` (left members still owed
 *   messages, score = left tseq), `l` (log: tseq → entry), `c`/`cz` (cids);
 * - leases, hash tag `{lease}`: one key per server+boot with a PX expiry, and
 *   `idx` (every lease, score = expiry in ms);
 * - per server+boot, `{s:[server,boot]}:sess`: the user/device pairs logged
 *   in there (for removeServerSessions; may hold pairs long gone);
 * - global indexes, only ever touched in commands of their own: `users`
 *   (users with an inbox, for trim), `dirusers` (users that had directory
 *   entries, lex, for listSessions), `topics` (lex).
 *
 * Every atomic step is one Lua script (EVALSHA) over the keys of ONE hash
 * tag, so the store runs on Redis Cluster too. Calls made in one event-loop
 * turn go to Redis in one round trip (ioredis auto-pipelining), in call order
 * per connection (so per user and per topic). When Redis is unreachable calls
 * wait in ioredis' offline queue and reject after its retries; never a false
 * success.
 *
 * Topic fan-out cannot touch the members' inboxes in the topic's script
 * (other slots): it reads the position and the next members (topic script),
 * appends a copy to each member's inbox with a per-user script that does
 * nothing if that inbox already holds (topic, tseq) (so concurrent fan-outs
 * never duplicate), then stores the new position only if it still is the one
 * it read (compare-and-set). The body is stored once, in the topic log;
 * readInbox fetches it from there.
 */
import { randomHex } from '../protocol/random.js';
import { Cluster, Redis } from 'ioredis';
import { cborxDecoder as decoder, cborxEncoder as encoder } from '../protocol/cborx.js';
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
import { clusterNodes, whenReady } from '../redis/index.js';
import { TurnBatch } from './redis/batch.js';
import { APPEND_MANY, COPY_MANY, SESSIONS_MANY, SCRIPTS, type ScriptName } from './redis/lua.js';

export interface RedisStoreOptions {
  /** `redis://[user:pass@]host:port[/db]`; on a cluster, one or more startup nodes separated by commas. */
  url: string;
  /** the cluster prefix, e.g. `fishchat:<cluster>:` */
  prefix: string;
  limits?: Partial<StoreLimits>;
  /** a Redis Cluster: ioredis Cluster */
  cluster?: boolean;
}

type Client = Redis | Cluster;
type Reply = unknown;
type ScriptFn = (...args: (string | Buffer | number)[]) => Promise<Reply>;

const EMPTY = new Uint8Array(0);
/** Users / topics / index members per step of trim, listing and scanning. */
const PAGE = 500;
/** Removals per trim script call (then it is called again). */
const TRIM_STEPS = 5000;
/** Members per step when a re-join first fans out what the old membership is owed. */
const JOIN_FANOUT_STEP = 1000;
/** Users remembered as already in the `users` index (then forgotten all at once). */
const KNOWN_USERS_MAX = 200_000;


/** How long close() waits for calls in flight. */
const CLOSE_WAIT_MS = 10_000;
/** The Store methods counted as in flight. */
const TRACKED = [
  'appendP2P', 'readInbox', 'head', 'ack', 'login', 'check', 'removeSession', 'restoreSession', 'sessions',
  'renewLease', 'dropLease', 'expiredLeases', 'removeServerSessions', 'trim', 'topicCreate', 'topicJoin',
  'topicLeave', 'topicMembers', 'topicAppend', 'topicFanout', 'topicsBehind', 'topicInfo', 'listTopics',
  'recordUserEvent', 'userRecord', 'listSessions', 'deviceAcks',
] as const satisfies readonly (keyof Store)[];

const closedError = () => new Error('the store is closed');

/** Appends per fishchat_appendMany call: Redis runs a call without a break (~5 µs per append). */
const APPEND_BATCH = 256;
/** Users per fishchat_sessionsMany call. */
const SESSIONS_BATCH = 1000;
/** Members per fishchat_copyMany call. */
const COPY_BATCH = 500;
const newEpoch = () => randomHex(8);

/** f64 BE header + CBOR payload. */
function entry(ts: number, payload: unknown): Buffer {
  const body = encoder.encode(payload) as Uint8Array;
  const out = Buffer.allocUnsafe(8 + body.length);
  out.writeDoubleBE(ts, 0);
  out.set(body, 8);
  return out;
}

const str = (v: unknown): string => (Buffer.isBuffer(v) ? v.toString('utf8') : String(v));
const num = (v: unknown): number => (typeof v === 'number' ? v : Number(str(v)));
const bytes = (v: unknown): Uint8Array => (v instanceof Uint8Array ? v : EMPTY);
/** A number argument Lua reads with tonumber(): never NaN. */
const arg = (n: number, fallback = 0): string => (Number.isNaN(n) ? String(fallback) : String(n));

function dirEntry(user: string, device: string, json: string): DirEntry {
  const [server, boot, gen] = JSON.parse(json) as [string, string, number];
  return { user, device, server, boot, gen };
}

/** [device, json, device, json, ...] → entries */
function dirEntries(user: string, flat: unknown): DirEntry[] {
  const a = flat as unknown[];
  const out: DirEntry[] = [];
  for (let i = 0; i + 1 < a.length; i += 2) out.push(dirEntry(user, str(a[i]), str(a[i + 1])));
  return out;
}

const byteOrder = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));



export class RedisStore implements Store {
  readonly kind = 'redis' as const;
  readonly limits: StoreLimits;

  private closed = false;
  private readonly known = new Set<string>();
  private readonly s: Record<ScriptName, ScriptFn>;
  private readonly sb: Record<ScriptName, ScriptFn>;

  /** Use openRedisStore(). */
  constructor(
    private readonly c: Client,
    private readonly p: string,
    limits: Partial<StoreLimits> = {},
  ) {
    const l = { ...DEFAULT_LIMITS, ...limits };
    this.limits = {
      retentionMs: l.retentionMs,
      maxInbox: Math.max(1, Math.floor(l.maxInbox)),
      cidWindowMs: Math.min(l.cidWindowMs, l.retentionMs),
    };
    const s = {} as Record<ScriptName, ScriptFn>;
    const sb = {} as Record<ScriptName, ScriptFn>;
    const cmd = c as unknown as Record<string, ScriptFn>;
    for (const name of Object.keys(SCRIPTS) as ScriptName[]) {
      const id = `fishchat_${name}`;
      if (typeof cmd[id] !== 'function') c.defineCommand(id, { numberOfKeys: SCRIPTS[name].keys, lua: SCRIPTS[name].lua });
      s[name] = cmd[id]!.bind(c);
      sb[name] = cmd[`${id}Buffer`]!.bind(c);
    }
    this.s = s;
    this.sb = sb;
    // Batched appends only on a single Redis: a Cluster script must stay on one slot.
    if (!(c instanceof Cluster)) {
      if (typeof cmd.fishchat_appendMany !== 'function') c.defineCommand('fishchat_appendMany', { lua: APPEND_MANY });
      const appendMany = cmd.fishchat_appendMany!.bind(c);
      this.appends = new TurnBatch(APPEND_BATCH, (ms) => this.sendAppends(appendMany, ms));
      if (typeof cmd.fishchat_copyMany !== 'function') c.defineCommand('fishchat_copyMany', { lua: COPY_MANY });
      this.copyMany = cmd.fishchat_copyMany!.bind(c);
      if (typeof cmd.fishchat_sessionsMany !== 'function') c.defineCommand('fishchat_sessionsMany', { lua: SESSIONS_MANY });
      const sessionsMany = cmd.fishchat_sessionsMany!.bind(c);
      this.lookups = new TurnBatch(SESSIONS_BATCH, (users) => {
        const keys = users.map((u) => `${this.u(u)}d`);
        return sessionsMany(keys.length, ...keys) as Promise<unknown[]>;
      });
    }
    // count calls in flight, so close() lets them finish first
    const self = this as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
    for (const name of TRACKED) {
      const method = self[name]!.bind(this);
      const flushAppends = name !== 'appendP2P';
      const flushLookups = name !== 'sessions';
      self[name] = (...a: unknown[]) => {
        this.pending++;
        // Calls waiting for their batch go first: Redis sees the calls in call order.
        if (flushAppends && this.appends?.waiting) this.appends.flush();
        if (flushLookups && this.lookups?.waiting) this.lookups.flush();
        return method(...a).finally(this.settled);
      };
    }
  }

  private pending = 0;
  private idle: (() => void) | undefined;
  private readonly settled = (): void => {
    if (--this.pending === 0 && this.idle !== undefined) this.idle();
  };

  // ---- keys ---------------------------------------------------------------

  private u(user: string): string {
    return `${this.p}{u:${user}}:`;
  }
  private t(topic: string): string {
    return `${this.p}{t:${topic}}:`;
  }
  private leaseKey(server: string, boot: string): string {
    return `${this.p}{lease}:k:${JSON.stringify([server, boot])}`;
  }
  private get leaseIdx(): string {
    return `${this.p}{lease}:idx`;
  }
  private serverIdx(server: string, boot: string): string {
    return `${this.p}{s:${JSON.stringify([server, boot])}}:sess`;
  }
  private get usersKey(): string {
    return `${this.p}users`;
  }
  private get dirUsersKey(): string {
    return `${this.p}dirusers`;
  }
  private get topicsKey(): string {
    return `${this.p}topics`;
  }

  private open(): void {
    if (this.closed) throw closedError();
  }

  /** Puts the user in the `users` index (trim walks it); a separate command, pipelined with the caller's. */
  private noteUser(user: string): Promise<unknown> | undefined {
    if (this.known.has(user)) return undefined;
    if (this.known.size >= KNOWN_USERS_MAX) this.known.clear();
    this.known.add(user);
    return this.c.sadd(this.usersKey, user).catch((err: unknown) => {
      this.known.delete(user);
      throw err;
    });
  }

  private headOf(seq: unknown, epoch: unknown, length: unknown): InboxHead {
    const s = num(seq);
    return { seq: s, first: s - num(length) + 1, epoch: str(epoch) };
  }

  // ---- p2p ----------------------------------------------------------------

  async appendP2P(m: AppendP2P): Promise<AppendResult> {
    this.open();
    const noted = this.noteUser(m.to);
    if (this.appends !== undefined) {
      const call = this.appends.add(m) as Promise<unknown[]>;
      return this.appendResult(m, noted === undefined ? await call : (await Promise.all([call, noted]))[0]);
    }
    const k = this.u(m.to);
    const call = this.s.append(
      `${k}m`,
      `${k}i`,
      `${k}c`,
      `${k}cz`,
      `${k}t`,
      `${k}d`,
      m.cid === undefined ? '' : `${m.from}\0${m.cid}`,
      entry(m.ts, [0, m.mid, m.from, m.to, m.body]),
      arg(m.ts),
      String(this.limits.cidWindowMs),
      String(this.limits.maxInbox),
      newEpoch(),
      m.mid,
    );
    return this.appendResult(m, (noted === undefined ? await call : (await Promise.all([call, noted]))[0]) as unknown[]);
  }

  private appendResult(m: AppendP2P, r: unknown[]): AppendResult {
    if (r[0] === 1) {
      return { mid: str(r[1]), seq: num(r[2]), ts: num(r[3]), duplicate: true, sessions: dirEntries(m.to, r[4]) };
    }
    return { mid: m.mid, seq: num(r[1]), ts: m.ts, duplicate: false, sessions: dirEntries(m.to, r[2]) };
  }

  /** Single Redis only: the appends and the directory reads of a turn, one script call each; fishchat_copyMany. */
  private readonly appends: TurnBatch<AppendP2P> | undefined;
  private readonly lookups: TurnBatch<string> | undefined;
  private readonly copyMany: ScriptFn | undefined;

  /** One fishchat_appendMany call: each append exactly as the `append` script, in order. */
  private sendAppends(appendMany: ScriptFn, batch: AppendP2P[]): Promise<unknown[]> {
    const keys: string[] = new Array(batch.length * 6);
    const args: (string | Buffer)[] = new Array(2 + batch.length * 5);
    args[0] = String(this.limits.cidWindowMs);
    args[1] = String(this.limits.maxInbox);
    for (let i = 0; i < batch.length; i++) {
      const m = batch[i]!;
      const k = this.u(m.to);
      const ki = i * 6;
      keys[ki] = `${k}m`;
      keys[ki + 1] = `${k}i`;
      keys[ki + 2] = `${k}c`;
      keys[ki + 3] = `${k}cz`;
      keys[ki + 4] = `${k}t`;
      keys[ki + 5] = `${k}d`;
      const ai = 2 + i * 5;
      args[ai] = m.cid === undefined ? '' : `${m.from}\0${m.cid}`;
      args[ai + 1] = entry(m.ts, [0, m.mid, m.from, m.to, m.body]);
      args[ai + 2] = arg(m.ts);
      args[ai + 3] = newEpoch();
      args[ai + 4] = m.mid;
    }
    return appendMany(keys.length, ...keys, ...args) as Promise<unknown[]>;
  }

  async readInbox(user: string, after: number, limit: number): Promise<{ messages: StoredMessage[]; head: InboxHead }> {
    this.open();
    const k = this.u(user);
    const r = (await this.sb.read(`${k}m`, `${k}i`, arg(after), arg(limit), newEpoch())) as unknown[];
    const head = this.headOf(r[0], r[1], r[2]);
    const messages: StoredMessage[] = [];
    const needBody = new Map<string, { tseq: number; msg: StoredMessage }[]>();
    for (let i = 3; i < r.length; i++) {
      const b = r[i] as Buffer;
      const seq = b.readDoubleBE(0);
      const ts = b.readDoubleBE(8);
      const p = decoder.decode(b.subarray(16)) as unknown[];
      if (p[0] === 0) {
        messages.push({ seq, mid: p[1] as string, from: p[2] as string, to: p[3] as string, body: bytes(p[4]), ts });
      } else {
        const topic = p[3] as string;
        const tseq = p[4] as number;
        const msg: StoredMessage = { seq, mid: p[1] as string, from: p[2] as string, topic, tseq, body: EMPTY, ts };
        messages.push(msg);
        let list = needBody.get(topic);
        if (list === undefined) needBody.set(topic, (list = []));
        list.push({ tseq, msg });
      }
    }
    if (needBody.size > 0) {
      await Promise.all(
        [...needBody].map(async ([topic, list]) => {
          const logs = await this.c.hmgetBuffer(`${this.t(topic)}l`, ...list.map((x) => String(x.tseq)));
          for (let i = 0; i < list.length; i++) {
            const v = logs[i];
            if (v) list[i]!.msg.body = bytes((decoder.decode(v.subarray(8)) as unknown[])[2]);
          }
        }),
      );
    }
    return { messages, head };
  }

  async head(user: string): Promise<InboxHead> {
    this.open();
    const k = this.u(user);
    const r = (await this.s.head(`${k}m`, `${k}i`, `${k}g`, newEpoch(), '')) as unknown[];
    return this.headOf(r[0], r[1], r[2]);
  }

  async ack(user: string, device: string, seq: number): Promise<number> {
    this.open();
    const k = this.u(user);
    const s = Number.isNaN(seq) ? -1 : seq === Infinity ? Number.MAX_SAFE_INTEGER : seq === -Infinity ? -1 : seq;
    return num(await this.s.ack(`${k}m`, `${k}a`, device, String(s)));
  }

  async login(args: LoginArgs): Promise<LoginResult> {
    this.open();
    const { user, device } = args;
    const k = this.u(user);
    const extra: Promise<unknown>[] = [];
    if (args.push) {
      // the indexes first (same round trip): an entry is never missing from them
      extra.push(this.c.zadd(this.dirUsersKey, 0, user));
      extra.push(this.c.sadd(this.serverIdx(args.server, args.boot), JSON.stringify([user, device])));
    }
    const call = this.s.login(`${k}m`, `${k}i`, `${k}g`, `${k}d`, `${k}a`, device, args.server, args.boot, args.push ? '1' : '0', newEpoch());
    const [r] = (await Promise.all([call, ...extra])) as [unknown[]];
    const result: LoginResult = { gen: num(r[0]), head: this.headOf(r[1], r[2], r[3]), acked: num(r[4]) };
    if (r[5] !== null && r[5] !== undefined) result.replaced = dirEntry(user, device, str(r[5]));
    return result;
  }

  async check(user: string, device: string): Promise<{ head: InboxHead; gen: number }> {
    this.open();
    const k = this.u(user);
    const r = (await this.s.head(`${k}m`, `${k}i`, `${k}g`, newEpoch(), device)) as unknown[];
    return { head: this.headOf(r[0], r[1], r[2]), gen: num(r[3]) };
  }

  async removeSession(user: string, device: string, gen: number): Promise<boolean> {
    this.open();
    return (await this.s.removeSession(`${this.u(user)}d`, device, arg(gen, -1))) === 1;
  }

  async restoreSession(e: DirEntry): Promise<boolean> {
    this.open();
    const k = this.u(e.user);
    const [r] = await Promise.all([
      this.s.restore(`${k}g`, `${k}d`, e.device, e.server, e.boot, arg(e.gen, -1)),
      this.c.zadd(this.dirUsersKey, 0, e.user),
      this.c.sadd(this.serverIdx(e.server, e.boot), JSON.stringify([e.user, e.device])),
    ]);
    return r === 1;
  }

  async sessions(user: string): Promise<DirEntry[]> {
    this.open();
    if (this.lookups !== undefined) {
      // single Redis: the reads of one turn (a fan-out step's members) as one script call
      return dirEntries(user, await this.lookups.add(user));
    }
    const all = await this.c.hgetall(`${this.u(user)}d`);
    return Object.entries(all).map(([device, json]) => dirEntry(user, device, json));
  }

  // ---- leases -------------------------------------------------------------

  async renewLease(server: string, boot: string, ttlMs: number): Promise<boolean> {
    this.open();
    const ttl = Math.max(1, Math.ceil(Number.isFinite(ttlMs) ? ttlMs : 1));
    const member = JSON.stringify([server, boot]);
    const r = await this.s.leaseRenew(this.leaseKey(server, boot), this.leaseIdx, member, String(ttl), String(Date.now() + ttl));
    return r === 1;
  }

  async dropLease(server: string, boot: string): Promise<void> {
    this.open();
    await Promise.all([
      this.s.leaseDrop(this.leaseKey(server, boot), this.leaseIdx, JSON.stringify([server, boot])),
      this.c.del(this.serverIdx(server, boot)),
    ]);
  }

  async expiredLeases(now: number): Promise<{ server: string; boot: string }[]> {
    this.open();
    const members = await this.c.zrangebyscore(this.leaseIdx, '-inf', arg(now));
    return members.map((m) => {
      const [server, boot] = JSON.parse(m) as [string, string];
      return { server, boot };
    });
  }

  async removeServerSessions(server: string, boot: string): Promise<number> {
    this.open();
    const idx = this.serverIdx(server, boot);
    let removed = 0;
    let cursor = '0';
    do {
      const [next, members] = await this.c.sscan(idx, cursor, 'COUNT', PAGE);
      cursor = next;
      const results = await Promise.all(
        members.map((m) => {
          const [user, device] = JSON.parse(m) as [string, string];
          return this.s.removeIfServer(`${this.u(user)}d`, device, server, boot);
        }),
      );
      for (const r of results) removed += r === 1 ? 1 : 0;
    } while (cursor !== '0');
    await Promise.all([
      this.s.leaseDrop(this.leaseKey(server, boot), this.leaseIdx, JSON.stringify([server, boot])),
      this.c.del(idx),
    ]);
    return removed;
  }

  // ---- trim ---------------------------------------------------------------

  async trim(now: number): Promise<number> {
    this.open();
    const inboxCutoff = String(now - this.limits.retentionMs);
    const cidCutoff = String(now - this.limits.cidWindowMs);
    let removed = 0;
    let cursor = '0';
    do {
      const [next, users] = await this.c.sscan(this.usersKey, cursor, 'COUNT', PAGE);
      cursor = next;
      const counts = await Promise.all(
        users.map(async (user) => {
          const k = this.u(user);
          let n = 0;
          for (;;) {
            const r = (await this.s.trimUser(`${k}m`, `${k}i`, `${k}c`, `${k}cz`, `${k}t`, inboxCutoff, cidCutoff, String(this.limits.maxInbox), String(TRIM_STEPS))) as number[];
            n += r[0]!;
            if (r[1] !== 1) return n;
          }
        }),
      );
      for (const n of counts) removed += n;
    } while (cursor !== '0');
    let after = '-';
    for (;;) {
      const topics = await this.c.zrangebylex(this.topicsKey, after, '+', 'LIMIT', 0, PAGE);
      const counts = await Promise.all(
        topics.map(async (topic) => {
          const k = this.t(topic);
          let n = 0;
          for (;;) {
            const r = (await this.s.trimTopic(`${k}m`, `${k}l`, `${k}j`, `${k}z`, `${k}x`, `${k}c`, `${k}cz`, inboxCutoff, cidCutoff, String(TRIM_STEPS))) as number[];
            n += r[0]!;
            if (r[1] !== 1) return n;
          }
        }),
      );
      for (const n of counts) removed += n;
      if (topics.length < PAGE) break;
      after = `(${topics[topics.length - 1]}`;
    }
    return removed;
  }

  // ---- topics -------------------------------------------------------------

  async topicCreate(topic: string, creator: string, ts: number): Promise<boolean> {
    this.open();
    const k = this.t(topic);
    // the index first (same round trip); listings skip names without a topic
    const [r] = await Promise.all([this.s.topicCreate(`${k}m`, `${k}j`, `${k}z`, creator, arg(ts)), this.c.zadd(this.topicsKey, 0, topic)]);
    return r === 1;
  }

  async topicJoin(topic: string, user: string): Promise<number | null> {
    this.open();
    const k = this.t(topic);
    for (;;) {
      const r = (await this.s.topicJoin(`${k}m`, `${k}j`, `${k}z`, `${k}x`, user)) as number[];
      if (r[0] === 0) return null;
      if (r[0] === 1) return r[1]!;
      // One membership per member: first give the leaver what it is still
      // owed (messages up to its leave), then start anew.
      const until = r[1]!;
      for (;;) {
        const step = await this.fanoutStep(topic, JOIN_FANOUT_STEP, until);
        if (step.fanned >= until || step.gone) break;
      }
    }
  }

  async topicLeave(topic: string, user: string): Promise<'ok' | 'no_such_topic' | 'not_a_member'> {
    this.open();
    const k = this.t(topic);
    const r = await this.s.topicLeave(`${k}m`, `${k}j`, `${k}z`, `${k}x`, user);
    return r === 0 ? 'no_such_topic' : r === 1 ? 'not_a_member' : 'ok';
  }

  async topicMembers(topic: string, after: string | undefined, limit: number): Promise<{ members: string[]; more: boolean } | null> {
    this.open();
    const k = this.t(topic);
    const n = Math.max(0, Math.floor(limit) || 0);
    const r = (await this.s.topicMembers(`${k}m`, `${k}z`, `${k}x`, after ?? '', String(n))) as [string[]] | null;
    if (r === null) return null;
    const rows = r[0];
    return { members: rows.slice(0, n), more: rows.length > n };
  }

  async topicAppend(msg: TopicAppend): Promise<TopicAppendResult> {
    this.open();
    const k = this.t(msg.topic);
    const r = (await this.s.topicAppend(
      `${k}m`,
      `${k}j`,
      `${k}x`,
      `${k}l`,
      `${k}c`,
      `${k}cz`,
      msg.from,
      msg.cid === undefined ? '' : `${msg.from}\0${msg.cid}`,
      msg.mid,
      arg(msg.ts),
      String(this.limits.cidWindowMs),
      entry(msg.ts, [msg.mid, msg.from, msg.body]),
    )) as unknown[];
    if (r[0] === 0) return { code: 'no_such_topic' };
    if (r[0] === 1) return { code: 'not_a_member' };
    return { code: 'ok', mid: str(r[1]), tseq: num(r[2]), ts: num(r[3]), duplicate: r[4] === 1 };
  }

  async topicFanout(topic: string, limit: number): Promise<{ messages: FanoutMessage[]; done: boolean }> {
    this.open();
    const step = await this.fanoutStep(topic, Math.max(1, Math.floor(limit) || 1));
    return { messages: step.messages, done: step.done };
  }

  /**
   * One fan-out step: read the position and the members due (topic slot),
   * copy to each member's inbox (per user, idempotent, pipelined), then move
   * the position if no other step moved it meanwhile.
   */
  private async fanoutStep(
    topic: string,
    limit: number,
    until?: number,
  ): Promise<{ messages: FanoutMessage[]; done: boolean; fanned: number; gone: boolean }> {
    const k = this.t(topic);
    const r = (await this.sb.fanRead(`${k}m`, `${k}l`, `${k}j`, `${k}z`, `${k}x`, String(limit), until === undefined ? '' : String(until))) as
      | unknown[]
      | null;
    if (r === null) return { messages: [], done: true, fanned: 0, gone: true };
    const [top, fanned, member, newFanned, newMember, list] = r as [number, number, Buffer, number, Buffer, unknown[][]];
    if (newFanned === fanned && newMember.equals(member)) {
      return { messages: [], done: fanned >= top, fanned, gone: false };
    }
    const maxInbox = String(this.limits.maxInbox);
    const pending: Promise<FanoutMessage | undefined>[] = [];
    for (const item of list) {
      const tseq = item[0] as number;
      const log = item[1] as Buffer;
      const ts = log.readDoubleBE(0);
      const [mid, from, body] = decoder.decode(log.subarray(8)) as [string, string, Uint8Array];
      const copyEntry = entry(ts, [1, mid, from, topic, tseq]);
      const copyKey = `${topic}\0${tseq}`;
      const users = item.slice(2).map(str);
      pending.push(
        this.copyTo(users, copyKey, copyEntry, maxInbox).then((seqs) => {
          const copies: FanoutCopy[] = [];
          for (let i = 0; i < users.length; i++) {
            const seq = seqs[i] as number;
            if (seq > 0) copies.push({ user: users[i]!, seq, tseq, mid });
          }
          return copies.length > 0 ? { topic, tseq, mid, from, body: bytes(body), ts, copies } : undefined;
        }),
      );
    }
    const messages = (await Promise.all(pending)).filter((m): m is FanoutMessage => m !== undefined);
    const c = (await this.s.fanCommit(`${k}m`, String(fanned), member, String(newFanned), newMember)) as number[];
    return { messages, done: c[2]! >= c[1]!, fanned: c[2]!, gone: false };
  }

  /** Copies one topic message into each user's inbox → each user's new seq, or 0 if it had the copy. */
  private async copyTo(users: string[], copyKey: string, copyEntry: Buffer, maxInbox: string): Promise<unknown[]> {
    const noted: Promise<unknown>[] = [];
    for (const user of users) {
      const n = this.noteUser(user);
      if (n !== undefined) noted.push(n);
    }
    const calls: Promise<unknown>[] = [];
    if (this.copyMany !== undefined) {
      // single Redis: COPY_BATCH members per script call
      for (let at = 0; at < users.length; at += COPY_BATCH) {
        const part = users.slice(at, at + COPY_BATCH);
        const keys: string[] = [];
        const epochs: string[] = [];
        for (const user of part) {
          const uk = this.u(user);
          keys.push(`${uk}m`, `${uk}i`, `${uk}t`);
          epochs.push(newEpoch());
        }
        calls.push(this.copyMany(keys.length, ...keys, copyKey, copyEntry, maxInbox, ...epochs));
      }
    } else {
      for (const user of users) {
        const uk = this.u(user);
        calls.push(this.s.copy(`${uk}m`, `${uk}i`, `${uk}t`, copyKey, copyEntry, maxInbox, newEpoch()));
      }
    }
    const [replies] = await Promise.all([Promise.all(calls), Promise.all(noted)]);
    return this.copyMany !== undefined ? (replies as unknown[][]).flat() : replies;
  }

  async topicsBehind(): Promise<string[]> {
    this.open();
    const out: string[] = [];
    let after = '-';
    for (;;) {
      const topics = await this.c.zrangebylex(this.topicsKey, after, '+', 'LIMIT', 0, PAGE);
      const rows = await Promise.all(topics.map((t) => this.c.hmget(`${this.t(t)}m`, 'tseq', 'fanned')));
      for (let i = 0; i < topics.length; i++) {
        const [tseq, fanned] = rows[i]!;
        if (tseq !== null && Number(fanned) < Number(tseq)) out.push(topics[i]!);
      }
      if (topics.length < PAGE) return out;
      after = `(${topics[topics.length - 1]}`;
    }
  }

  private async infos(topics: string[]): Promise<(TopicInfo | null)[]> {
    const rows = await Promise.all(topics.map((t) => this.c.hmget(`${this.t(t)}m`, 'creator', 'created', 'members', 'tseq', 'fanned')));
    return rows.map((r, i) =>
      r[0] === null
        ? null
        : { topic: topics[i]!, creator: r[0]!, created: Number(r[1]), members: Number(r[2]), tseq: Number(r[3]), fanned: Number(r[4]) },
    );
  }

  async topicInfo(topic: string): Promise<TopicInfo | null> {
    this.open();
    return (await this.infos([topic]))[0]!;
  }

  async listTopics(after: string | undefined, limit: number): Promise<TopicInfo[]> {
    this.open();
    const n = Math.max(0, Math.floor(limit) || 0);
    const out: TopicInfo[] = [];
    let cursor = after === undefined ? '-' : `(${after}`;
    while (out.length < n) {
      const want = n - out.length;
      const topics = await this.c.zrangebylex(this.topicsKey, cursor, '+', 'LIMIT', 0, want);
      for (const info of await this.infos(topics)) if (info !== null) out.push(info);
      if (topics.length < want) break;
      cursor = `(${topics[topics.length - 1]}`;
    }
    return out;
  }

  // ---- user records and the directory, for the manager ----------------------

  async recordUserEvent(e: { k: 'login' | 'logout' | 'kick'; user: string; device: string; server: string; ts: number }): Promise<void> {
    this.open();
    const k = this.u(e.user);
    await this.s.record(`${k}r`, `${k}v`, e.k, e.device, e.server, arg(e.ts));
  }

  async userRecord(user: string): Promise<UserRecord | null> {
    this.open();
    const k = this.u(user);
    const [rec, devs] = await Promise.all([this.c.hmget(`${k}r`, 'first', 'last'), this.c.hgetall(`${k}v`)]);
    if (rec[0] === null) return null;
    const devices: UserRecord['devices'] = Object.entries(devs)
      .sort(([a], [b]) => byteOrder(a, b))
      .map(([device, json]) => {
        const [lastSeen, online, server] = JSON.parse(json) as [string, number, string];
        const d: UserRecord['devices'][number] = { device, lastSeen: Number(lastSeen), online: online === 1 };
        if (server !== '') d.server = server;
        return d;
      });
    return { user, firstSeen: Number(rec[0]), lastSeen: Number(rec[1]), devices, online: devices.some((d) => d.online) };
  }

  async listSessions(after: string | undefined, limit: number): Promise<DirEntry[]> {
    this.open();
    const n = Math.max(0, Math.floor(limit) || 0);
    const out: DirEntry[] = [];
    if (n === 0) return out;
    const slash = after === undefined ? -1 : after.indexOf('/');
    let cursor = after === undefined ? '-' : slash >= 0 ? `[${after.slice(0, slash)}` : `(${after}`;
    const afterUser = slash >= 0 ? after!.slice(0, slash) : undefined;
    const afterDevice = slash >= 0 ? after!.slice(slash + 1) : undefined;
    for (;;) {
      const users = await this.c.zrangebylex(this.dirUsersKey, cursor, '+', 'LIMIT', 0, PAGE);
      const dirs = await Promise.all(users.map((u) => this.c.hgetall(`${this.u(u)}d`)));
      for (let i = 0; i < users.length; i++) {
        const user = users[i]!;
        const devices = Object.keys(dirs[i]!).sort(byteOrder);
        for (const device of devices) {
          if (user === afterUser && byteOrder(device, afterDevice!) <= 0) continue;
          out.push(dirEntry(user, device, dirs[i]![device]!));
          if (out.length >= n) return out;
        }
      }
      if (users.length < PAGE) return out;
      cursor = `(${users[users.length - 1]}`;
    }
  }

  async deviceAcks(user: string): Promise<{ device: string; acked: number }[]> {
    this.open();
    const all = await this.c.hgetall(`${this.u(user)}a`);
    return Object.entries(all)
      .sort(([a], [b]) => byteOrder(a, b))
      .map(([device, seq]) => ({ device, acked: Number(seq) }));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // calls made before close() still complete (QUIT skips ioredis' auto-pipeline queue)
    if (this.pending > 0) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.idle = resolve;
        timer = setTimeout(resolve, CLOSE_WAIT_MS);
      });
      clearTimeout(timer);
    }
    try {
      await this.c.quit();
    } catch {
      this.c.disconnect();
    }
  }
}

/**
 * The Redis store: connects (rejects when Redis cannot be reached, leaving
 * nothing open) and returns the Store once the connection is ready.
 */
export async function openRedisStore(opts: RedisStoreOptions): Promise<Store> {
  if (/[{}]/.test(opts.prefix)) throw new Error(`store: the Redis key prefix "${opts.prefix}" may not hold { or }`);
  let client: Client;
  if (opts.cluster) {
    const { nodes, redisOptions } = clusterNodes(opts.url, 'store');
    client = new Cluster(nodes, {
      lazyConnect: true,
      enableAutoPipelining: true,
      redisOptions: { ...redisOptions, connectionName: 'fishchat-store' },
    });
  } else {
    client = new Redis(opts.url, { lazyConnect: true, enableAutoPipelining: true, connectionName: 'fishchat-store' });
  }
  // an error listener always: ioredis reports unhandled errors itself otherwise
  client.on('error', () => undefined);
  try {
    const ready = whenReady(client);
    client.connect().catch(() => undefined);
    await ready;
  } catch (err) {
    client.disconnect();
    throw err;
  }
  return new RedisStore(client, opts.prefix, opts.limits);
}

export { deleteKeysWithPrefix } from '../redis/index.js';
