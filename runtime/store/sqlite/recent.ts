/**
 * New inbox rows wait in the `recent` table (durable, in arrival order: a
 * page per ~20 rows instead of a page per recipient) and in memory (to be
 * read) until MERGE_ROWS have come, or MERGE_MS has passed; then they move
 * to `inbox` in one step, grouped by user: a user's rows of the last second
 * share its inbox page instead of each dirtying it (measured: ~1.8 WAL pages
 * per append before).
 */
import type { StoreLimits } from '../store.js';
import type { GroupCommit } from './commit.js';
import type { MemRow } from './rows.js';
import type { Statements } from './statements.js';

const MERGE_ROWS = 65_536;
const MERGE_MS = 1000;

export class RecentRows {
  /** per user, its rows in `recent`, seq ascending; every one above the user's rows in `inbox` */
  private mem = new Map<string, MemRow[]>();
  private count = 0;
  private mergeQueued = false;
  private readonly mergeTimer: ReturnType<typeof setInterval>;

  /** Loads what `recent` holds (what a crash left unmerged) and starts the merge timer. */
  constructor(
    private readonly st: Statements,
    private readonly commit: GroupCommit,
    private readonly limits: StoreLimits,
  ) {
    this.load();
    this.mergeTimer = setInterval(() => {
      if (this.count > 0) this.queueMerge();
    }, MERGE_MS);
    this.mergeTimer.unref?.();
  }

  /** The user's rows not merged yet, seq ascending (undefined: none). */
  of(user: string): readonly MemRow[] | undefined {
    return this.mem.get(user);
  }

  /** Inside a batch: the user's next seq (the user row is created, with its epoch, if new). */
  nextSeq(user: string): number {
    const rows = this.mem.get(user);
    if (rows !== undefined) return rows[rows.length - 1]!.seq + 1;
    const row = this.st.userSeq.get(user) as { seq: number } | undefined;
    if (row !== undefined) return row.seq + 1;
    this.st.userEnsure.run(user);
    return 1;
  }

  /** The user's highest seq, merged or not (0: none; undefined: no such user). */
  seqOf(user: string): number | undefined {
    const rows = this.mem.get(user);
    if (rows !== undefined) return rows[rows.length - 1]!.seq;
    return (this.st.userSeq.get(user) as { seq: number } | undefined)?.seq;
  }

  /** Whether the user has the copy of topic message tseq, merged or not. */
  hasTopicCopy(user: string, topic: string, tseq: number): boolean {
    const rows = this.mem.get(user);
    if (rows !== undefined) for (const r of rows) if (r.tseq === tseq && r.topic === topic) return true;
    return this.st.inboxHasTopic.get(user, topic, tseq) !== undefined;
  }

  /** Inside a batch: a new inbox row, durable in `recent`, readable from memory. */
  put(user: string, r: MemRow): void {
    this.st.recentPut.run(user, r.seq, r.mid, r.sender, r.recipient, r.topic, r.tseq, r.body, r.ts);
    let rows = this.mem.get(user);
    if (rows === undefined) this.mem.set(user, (rows = []));
    rows.push(r);
    this.count++;
    const list = rows;
    this.commit.undo(() => {
      list.pop();
      this.count--;
      if (list.length === 0 && this.mem.get(user) === list) this.mem.delete(user);
    });
    if (this.count >= MERGE_ROWS) this.queueMerge();
  }

  private queueMerge(): void {
    if (this.mergeQueued || this.commit.closed) return;
    this.mergeQueued = true;
    this.commit
      .write(() => {
        this.mergeQueued = false;
        this.mergeNow();
      })
      .catch(() => undefined); // a failed merge leaves the rows in `recent`: the next one moves them
  }

  /**
   * Inside a batch: moves every recent row into `inbox`, user by user (the
   * rows of one user land together on its inbox page), sets each user's seq,
   * drops what is past maxInbox, and empties `recent`.
   */
  mergeNow(): void {
    if (this.count === 0) return;
    const st = this.st;
    const max = this.limits.maxInbox;
    for (const [user, rows] of this.mem) {
      const top = rows[rows.length - 1]!.seq;
      const cut = top - max;
      for (const r of rows) {
        if (r.seq <= cut) continue; // already past maxInbox: never readable again
        st.inboxPut.run(user, r.seq, r.mid, r.sender, r.recipient, r.topic, r.tseq, r.body, r.ts);
      }
      st.userSetSeq.run(top, user);
      if (cut > 0) st.inboxTrimCount.run(user, cut);
    }
    st.recentClear.run();
    const old = this.mem;
    const oldCount = this.count;
    this.mem = new Map();
    this.count = 0;
    this.commit.undo(() => {
      this.mem = old;
      this.count = oldCount;
    });
  }

  /** Stops the merge timer (at close). */
  stop(): void {
    clearInterval(this.mergeTimer);
  }

  /** At open: the rows of `recent` back into memory. */
  private load(): void {
    for (const r of this.st.recentAll.all() as unknown as (MemRow & { user: string })[]) {
      let rows = this.mem.get(r.user);
      if (rows === undefined) this.mem.set(r.user, (rows = []));
      const { seq, mid, sender, recipient, topic, tseq, body, ts } = r;
      rows.push({ seq, mid, sender, recipient, topic, tseq, body, ts });
      this.count++;
    }
  }
}
