/** The session directory of the embedded store: logins, gens, entries, and their cache. */
import type { DirEntry, InboxHead, LoginArgs, LoginResult } from '../store.js';
import type { SqliteContext } from './context.js';
import { acked, headDirect, headOrCreate } from './inbox.js';
import type { DirRow } from './rows.js';
import type { Statements } from './statements.js';

/** Users whose directory entries are cached (the cache is dropped whole when full). */
const DIR_CACHE_MAX = 100_000;

/**
 * The users' directory entries, cached per user: this store is the file's
 * only writer (embedded mode, one process), every directory write drops the
 * user's entry (or all of them), and a batch that rolls back clears the
 * cache. The arrays are frozen: callers share them.
 */
export class DirCache {
  private readonly cache = new Map<string, readonly DirEntry[]>();

  constructor(private readonly st: Statements) {}

  of(user: string): readonly DirEntry[] {
    const hit = this.cache.get(user);
    if (hit !== undefined) return hit;
    const rows = this.st.dirOfUser.all(user) as unknown as DirRow[];
    const out = new Array<DirEntry>(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!;
      out[i] = Object.freeze({ user, device: r.device, server: r.server, boot: r.boot, gen: r.gen });
    }
    if (this.cache.size >= DIR_CACHE_MAX) this.cache.clear();
    this.cache.set(user, Object.freeze(out));
    return out;
  }

  drop(user: string): void {
    this.cache.delete(user);
  }

  clear(): void {
    this.cache.clear();
  }
}

export function login(c: SqliteContext, args: LoginArgs): Promise<LoginResult> {
  return c.commit.write(() => {
    const { user, device } = args;
    if (!args.push) {
      return { gen: 0, head: headOrCreate(c, user), acked: acked(c, user, device) };
    }
    // Login writes before it reads (docs/architecture.md).
    const st = c.st;
    const gen = st.genNext.get(user, device)!.gen as number;
    const prev = st.dirGet.get(user, device) as Omit<DirRow, 'device'> | undefined;
    st.dirPut.run(user, device, args.server, args.boot, gen);
    c.dirs.drop(user);
    const result: LoginResult = { gen, head: headOrCreate(c, user), acked: acked(c, user, device) };
    if (prev !== undefined) {
      result.replaced = { user, device, server: prev.server, boot: prev.boot, gen: prev.gen };
    }
    return result;
  });
}

export async function check(c: SqliteContext, user: string, device: string): Promise<{ head: InboxHead; gen: number }> {
  c.commit.mustBeOpen();
  const gen = (c.st.genGet.get(user, device)?.gen as number | undefined) ?? 0;
  return { head: await headDirect(c, user), gen };
}

export function removeSession(c: SqliteContext, user: string, device: string, gen: number): Promise<boolean> {
  return c.commit.write(() => {
    c.dirs.drop(user);
    return c.st.dirDel.run(user, device, gen).changes > 0;
  });
}

export function restoreSession(c: SqliteContext, entry: DirEntry): Promise<boolean> {
  return c.commit.write(() => {
    const gen = c.st.genGet.get(entry.user, entry.device)?.gen as number | undefined;
    if (gen !== entry.gen) return false;
    c.st.dirPut.run(entry.user, entry.device, entry.server, entry.boot, entry.gen);
    c.dirs.drop(entry.user);
    return true;
  });
}

export async function sessions(c: SqliteContext, user: string): Promise<DirEntry[]> {
  c.commit.mustBeOpen();
  return c.dirs.of(user).map((e) => ({ ...e }));
}

export async function listSessions(c: SqliteContext, after: string | undefined, limit: number): Promise<DirEntry[]> {
  c.commit.mustBeOpen();
  const n = Math.max(0, Math.floor(limit));
  const slash = after === undefined ? -1 : after.indexOf('/');
  const rows = (slash >= 0
    ? c.st.dirAfterEntry.all(after!.slice(0, slash), after!.slice(slash + 1), n)
    : c.st.dirAfterUser.all(after ?? '', n)) as unknown as (DirRow & { user: string })[];
  return rows.map((r) => ({ user: r.user, device: r.device, server: r.server, boot: r.boot, gen: r.gen }));
}
