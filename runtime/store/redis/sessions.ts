/** The session directory of the Redis store: logins, gens, entries, listings. */
import type { DirEntry, InboxHead, LoginArgs, LoginResult } from '../store.js';
import { PAGE, type RedisContext } from './context.js';
import { headOf } from './inbox.js';
import { arg, byteOrder, dirEntries, dirEntry, newEpoch, num, str } from './values.js';

export async function login(r: RedisContext, args: LoginArgs): Promise<LoginResult> {
  r.open();
  const { user, device } = args;
  const k = r.keys.user(user);
  const extra: Promise<unknown>[] = [];
  if (args.push) {
    // the indexes first (same round trip): an entry is never missing from them
    extra.push(r.c.zadd(r.keys.dirUsers, 0, user));
    extra.push(r.c.sadd(r.keys.serverIdx(args.server, args.boot), JSON.stringify([user, device])));
  }
  const push = args.push ? '1' : '0';
  const call = r.s.login(`${k}m`, `${k}i`, `${k}g`, `${k}d`, `${k}a`, device, args.server, args.boot, push, newEpoch());
  const [reply] = (await Promise.all([call, ...extra])) as [unknown[]];
  const result: LoginResult = { gen: num(reply[0]), head: headOf(reply[1], reply[2], reply[3]), acked: num(reply[4]) };
  if (reply[5] !== null && reply[5] !== undefined) result.replaced = dirEntry(user, device, str(reply[5]));
  return result;
}

export async function check(r: RedisContext, user: string, device: string): Promise<{ head: InboxHead; gen: number }> {
  r.open();
  const k = r.keys.user(user);
  const reply = (await r.s.head(`${k}m`, `${k}i`, `${k}g`, newEpoch(), device)) as unknown[];
  return { head: headOf(reply[0], reply[1], reply[2]), gen: num(reply[3]) };
}

export async function removeSession(r: RedisContext, user: string, device: string, gen: number): Promise<boolean> {
  r.open();
  return (await r.s.removeSession(`${r.keys.user(user)}d`, device, arg(gen, -1))) === 1;
}

export async function restoreSession(r: RedisContext, e: DirEntry): Promise<boolean> {
  r.open();
  const k = r.keys.user(e.user);
  const [reply] = await Promise.all([
    r.s.restore(`${k}g`, `${k}d`, e.device, e.server, e.boot, arg(e.gen, -1)),
    r.c.zadd(r.keys.dirUsers, 0, e.user),
    r.c.sadd(r.keys.serverIdx(e.server, e.boot), JSON.stringify([e.user, e.device])),
  ]);
  return reply === 1;
}

export async function sessions(r: RedisContext, user: string): Promise<DirEntry[]> {
  r.open();
  if (r.lookups !== undefined) {
    // single Redis: the reads of one turn (a fan-out step's members) as one script call
    return dirEntries(user, await r.lookups.add(user));
  }
  const all = await r.c.hgetall(`${r.keys.user(user)}d`);
  return Object.entries(all).map(([device, json]) => dirEntry(user, device, json));
}

export async function listSessions(r: RedisContext, after: string | undefined, limit: number): Promise<DirEntry[]> {
  r.open();
  const n = Math.max(0, Math.floor(limit) || 0);
  const out: DirEntry[] = [];
  if (n === 0) return out;
  const slash = after === undefined ? -1 : after.indexOf('/');
  let cursor = after === undefined ? '-' : slash >= 0 ? `[${after.slice(0, slash)}` : `(${after}`;
  const afterUser = slash >= 0 ? after!.slice(0, slash) : undefined;
  const afterDevice = slash >= 0 ? after!.slice(slash + 1) : undefined;
  for (;;) {
    const users = await r.c.zrangebylex(r.keys.dirUsers, cursor, '+', 'LIMIT', 0, PAGE);
    const dirs = await Promise.all(users.map((u) => r.c.hgetall(`${r.keys.user(u)}d`)));
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
