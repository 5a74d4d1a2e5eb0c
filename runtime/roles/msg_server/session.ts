/**
 * Sessions: login, ping, logout, and the ends of a session that the client
 * did not ask for: kicks (`replaced`, `slow`), the login timeout, the idle
 * sweep, and the close.
 */
import { verifyToken } from '../../protocol/index.js';
import type { LoginReq, LogoutReq, PingReq } from '../../protocol/types.js';
import type { DeliverItem } from '../../bus/payloads.js';
import type { DirEntry } from '../../store/store.js';
import type { Conn } from './connection.js';
import type { MsgServer } from './msg_server.js';
import { msgFrame } from './frames.js';

export async function login(s: MsgServer, conn: Conn, req: LoginReq): Promise<void> {
  if (conn.loggedIn) {
    conn.error('bad_request', 'already logged in on this connection', req.rid);
    return;
  }
  if (s.ctx.auth.mode === 'token') {
    const v = verifyToken(s.ctx.auth.secret, req.token, req.user);
    if (!v.ok) {
      conn.error('auth_failed', v.reason, req.rid);
      conn.close({ why: 'auth_failed' });
      return;
    }
  }
  // Login writes before it reads: the directory entry, then head and backlog.
  const { user, device, push } = req;
  const res = await s.ctx.store.login({ user, device, server: s.id, boot: s.boot, push });
  if (conn.closing) {
    if (req.push) await s.ctx.store.removeSession(req.user, req.device, res.gen).catch(() => false);
    return;
  }
  conn.user = req.user;
  conn.device = req.device;
  conn.push = req.push;
  conn.gen = res.gen;
  clearTimeout(conn.loginTimer);
  conn.loginTimer = undefined;
  const head = res.head;
  const from = Math.max(res.acked, head.first - 1);
  if (req.push) {
    conn.cursor.hold(head.seq + 1);
    s.register(conn);
    replaceOlder(s, req.user, req.device, res.gen, res.replaced);
  }
  const { seq, first, epoch } = head;
  conn.reply({ op: 'ok', rid: req.rid, user, device, server: s.id, seq, acked: res.acked, first, epoch });
  if (!req.push) return;
  s.status({ k: 'login', user: req.user, device: req.device, server: s.id, gen: res.gen, ts: Date.now() });
  // The backlog, oldest first, at most loginPush; the rest is for sync.
  try {
    const want = Math.min(s.ctx.settings.loginPush, head.seq - from);
    let after = from;
    let left = want;
    while (left > 0 && !conn.closing) {
      const { messages } = await s.ctx.store.readInbox(req.user, after, Math.min(left, 1000));
      if (messages.length === 0) break;
      for (const m of messages) {
        if (m.seq > head.seq) break;
        const f = msgFrame(m);
        // A large backlog goes out as fast as the client reads it, never over maxOutBuffer.
        const wait = conn.room(f.length);
        if (wait) await wait;
        if (conn.closing) break;
        conn.write(f);
      }
      s.stats.countOut(messages.length);
      after = messages[messages.length - 1]!.seq;
      left -= messages.length;
    }
  } finally {
    conn.cursor.release(head.seq + 1);
  }
}

/** Ends local sessions of user+device older than `gen`, and asks the server of the replaced entry to do the same. */
function replaceOlder(s: MsgServer, user: string, device: string, gen: number, replaced?: DirEntry): void {
  kickOlder(s, user, device, gen);
  if (replaced && (replaced.server !== s.id || replaced.boot !== s.boot)) {
    const item: DeliverItem = { k: 'kick', user, device, gen };
    s.pub.add(s.ctx.channels.deliver(replaced.server), item);
  }
}

/** Kicks `replaced` the local sessions of user+device older than `gen`. */
export function kickOlder(s: MsgServer, user: string, device: string, gen: number): void {
  const set = s.byUser.get(user);
  if (!set) return;
  for (const c of set) {
    if (c.device === device && c.push && c.gen < gen) {
      s.unregister(c);
      c.kick('replaced');
      s.status({ k: 'kick', user, device, server: s.id, gen: c.gen, reason: 'replaced', ts: Date.now() });
    }
  }
}

/** The kick reason of a kick asked for by the server API (api.ts): a session the client did not end. */
export const ADMIN_KICK = 'admin';

/**
 * Kicks `user`'s sessions (only `device`'s when given) on every msg_server:
 * the local ones at once, on each other msg_server holding one in the
 * directory over its deliver channel (send-only sessions, `push: false`, are
 * not in the directory: only the local ones are reached). Resolves once the
 * kicks are sent, not once the remote sessions are closed.
 */
export async function kickUser(
  s: MsgServer,
  user: string,
  device: string | undefined,
): Promise<{ local: number; servers: string[] }> {
  const local = kickLocal(s, user, device);
  const servers: string[] = [];
  for (const e of await s.ctx.store.sessions(user)) {
    if (device !== undefined && e.device !== device) continue;
    if (e.server === s.id && e.boot === s.boot) continue;
    if (!servers.includes(e.server)) servers.push(e.server);
  }
  const item: DeliverItem = device === undefined ? { k: 'kick_admin', user } : { k: 'kick_admin', user, device };
  for (const server of servers) s.pub.add(s.ctx.channels.deliver(server), item);
  return { local, servers };
}

/** Kicks `ADMIN_KICK` every local session of `user` (of `device`, when given), send-only ones too; how many. */
export function kickLocal(s: MsgServer, user: string, device: string | undefined): number {
  let n = 0;
  for (const c of s.conns) {
    if (c.user !== user || c.closing || (device !== undefined && c.device !== device)) continue;
    if (c.push) {
      s.unregister(c);
      s.status({ k: 'kick', user, device: c.device, server: s.id, gen: c.gen, reason: ADMIN_KICK, ts: Date.now() });
    }
    // The close then removes its directory entry (closed, below).
    c.kick(ADMIN_KICK);
    n++;
  }
  return n;
}

/** More than maxOutBuffer unsent: kick `slow`; its messages wait in its inbox. */
export function kickSlow(s: MsgServer, conn: Conn): void {
  if (conn.closing) return;
  if (conn.loggedIn && conn.push) {
    const { device, gen } = conn;
    s.status({ k: 'kick', user: conn.user!, device, server: s.id, gen, reason: 'slow', ts: Date.now() });
  }
  conn.kick('slow');
}

export async function ping(s: MsgServer, conn: Conn, req: PingReq): Promise<void> {
  if (!conn.loggedIn) {
    conn.reply({ op: 'pong', rid: req.rid });
    return;
  }
  const { head, gen } = await s.ctx.store.check(conn.user!, conn.device);
  if (conn.push && gen > conn.gen) {
    // A newer login of this device exists somewhere in the cluster.
    s.unregister(conn);
    conn.kick('replaced');
    return;
  }
  // Repair lost pushes before answering, so a pong means "you have it all".
  if (conn.push) await conn.cursor.fill(head.seq);
  conn.reply({ op: 'pong', rid: req.rid, seq: head.seq });
}

export async function logout(s: MsgServer, conn: Conn, req: LogoutReq): Promise<void> {
  const user = conn.user!;
  s.unregister(conn);
  if (conn.push) {
    await s.ctx.store.removeSession(user, conn.device, conn.gen);
    s.status({ k: 'logout', user, device: conn.device, server: s.id, gen: conn.gen, ts: Date.now() });
  }
  conn.user = undefined;
  conn.reply({ op: 'ok', rid: req.rid });
  conn.close({ why: 'logout' });
}

/** Closes the connection if no login succeeded within loginTimeout. */
export function startLoginTimer(conn: Conn, loginTimeout: number): void {
  conn.loginTimer = setTimeout(() => {
    conn.loginTimer = undefined;
    if (conn.loggedIn || conn.closing) return;
    conn.close({ why: 'login_timeout' });
  }, loginTimeout);
  conn.loginTimer.unref?.();
}

/** Closes connections from which nothing arrived for 2.5 × heartbeat. */
export function sweepIdle(s: MsgServer, now: number): void {
  const limit = s.ctx.settings.heartbeat * 2.5;
  for (const c of s.conns) {
    if (now - c.lastSeen > limit) c.close({ why: 'idle' });
  }
}

/** The connection closed (either side): its session ends. */
export async function closed(s: MsgServer, conn: Conn): Promise<void> {
  s.conns.delete(conn);
  conn.closing = true;
  clearTimeout(conn.loginTimer);
  conn.wakeDrain();
  const user = conn.user;
  if (user === undefined) return;
  s.unregister(conn);
  if (conn.push) {
    try {
      await s.ctx.store.removeSession(user, conn.device, conn.gen);
    } catch {
      // the lease expires and the manager removes it
    }
    s.status({ k: 'logout', user, device: conn.device, server: s.id, gen: conn.gen, ts: Date.now() });
  }
}
