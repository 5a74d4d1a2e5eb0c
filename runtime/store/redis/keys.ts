/**
 * The keys of the Redis store, all under the cluster prefix
 * `fishchat:<cluster>:`:
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
 * A script only ever gets the keys of ONE hash tag, so it runs on one slot
 * of a Redis Cluster.
 */
export class Keys {
  /** the lease index */
  readonly leaseIdx: string;
  /** users with an inbox (a set) */
  readonly users: string;
  /** users that had directory entries (a zset, lex) */
  readonly dirUsers: string;
  /** topic names (a zset, lex) */
  readonly topics: string;

  constructor(private readonly p: string) {
    this.leaseIdx = `${p}{lease}:idx`;
    this.users = `${p}users`;
    this.dirUsers = `${p}dirusers`;
    this.topics = `${p}topics`;
  }

  /** The prefix of one user's keys (append the key's letter). */
  user(user: string): string {
    return `${this.p}{u:${user}}:`;
  }
  /** The prefix of one topic's keys (append the key's letter). */
  topic(topic: string): string {
    return `${this.p}{t:${topic}}:`;
  }
  lease(server: string, boot: string): string {
    return `${this.p}{lease}:k:${JSON.stringify([server, boot])}`;
  }
  /** The user/device pairs logged in at server+boot. */
  serverIdx(server: string, boot: string): string {
    return `${this.p}{s:${JSON.stringify([server, boot])}}:sess`;
  }
}

/** The KEYS of `append` (meta inbox cid cidz topiccopies dir) for the user keys `k`, written at `out[at..at+5]`. */
export function putAppendKeys(k: string, out: string[], at: number): void {
  out[at] = `${k}m`;
  out[at + 1] = `${k}i`;
  out[at + 2] = `${k}c`;
  out[at + 3] = `${k}cz`;
  out[at + 4] = `${k}t`;
  out[at + 5] = `${k}d`;
}
