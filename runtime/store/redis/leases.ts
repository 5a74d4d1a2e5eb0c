/** msg_server leases of the Redis store, and the removal of a dead server's sessions. */
import { PAGE, type RedisContext } from './context.js';
import { arg } from './values.js';

export async function renewLease(r: RedisContext, server: string, boot: string, ttlMs: number): Promise<boolean> {
  r.open();
  const ttl = Math.max(1, Math.ceil(Number.isFinite(ttlMs) ? ttlMs : 1));
  const member = JSON.stringify([server, boot]);
  const expires = String(Date.now() + ttl);
  return (await r.s.leaseRenew(r.keys.lease(server, boot), r.keys.leaseIdx, member, String(ttl), expires)) === 1;
}

/** The lease and the server's session index go. */
function drop(r: RedisContext, server: string, boot: string): Promise<unknown> {
  return Promise.all([
    r.s.leaseDrop(r.keys.lease(server, boot), r.keys.leaseIdx, JSON.stringify([server, boot])),
    r.c.del(r.keys.serverIdx(server, boot)),
  ]);
}

export async function dropLease(r: RedisContext, server: string, boot: string): Promise<void> {
  r.open();
  await drop(r, server, boot);
}

export async function expiredLeases(r: RedisContext, now: number): Promise<{ server: string; boot: string }[]> {
  r.open();
  const members = await r.c.zrangebyscore(r.keys.leaseIdx, '-inf', arg(now));
  return members.map((m) => {
    const [server, boot] = JSON.parse(m) as [string, string];
    return { server, boot };
  });
}

export async function removeServerSessions(r: RedisContext, server: string, boot: string): Promise<number> {
  r.open();
  const idx = r.keys.serverIdx(server, boot);
  let removed = 0;
  let cursor = '0';
  do {
    const [next, members] = await r.c.sscan(idx, cursor, 'COUNT', PAGE);
    cursor = next;
    const results = await Promise.all(
      members.map((m) => {
        const [user, device] = JSON.parse(m) as [string, string];
        return r.s.removeIfServer(`${r.keys.user(user)}d`, device, server, boot);
      }),
    );
    for (const x of results) removed += x === 1 ? 1 : 0;
  } while (cursor !== '0');
  await drop(r, server, boot);
  return removed;
}
