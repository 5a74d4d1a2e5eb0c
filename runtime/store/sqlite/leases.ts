/** msg_server leases of the embedded store, and the removal of a dead server's sessions. */
import type { SqliteContext } from './context.js';

export function renewLease(c: SqliteContext, server: string, boot: string, ttlMs: number): Promise<boolean> {
  return c.commit.write(() => {
    const now = Date.now();
    const expires = c.st.leaseGet.get(server, boot)?.expires as number | undefined;
    c.st.leasePut.run(server, boot, now + ttlMs);
    return expires !== undefined && expires > now;
  });
}

export async function dropLease(c: SqliteContext, server: string, boot: string): Promise<void> {
  await c.commit.write(() => c.st.leaseDel.run(server, boot));
}

export async function expiredLeases(c: SqliteContext, now: number): Promise<{ server: string; boot: string }[]> {
  c.commit.mustBeOpen();
  return (c.st.leasesExpired.all(now) as { server: string; boot: string }[]).map((r) => ({
    server: r.server,
    boot: r.boot,
  }));
}

export function removeServerSessions(c: SqliteContext, server: string, boot: string): Promise<number> {
  return c.commit.write(() => {
    c.dirs.clear();
    const removed = c.st.dirDelServer.run(server, boot).changes;
    c.st.leaseDel.run(server, boot);
    return removed;
  });
}
