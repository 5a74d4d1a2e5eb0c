/** User records of the Redis store (kept by the manager from client-status events). */
import type { UserEvent } from '../common.js';
import type { UserRecord } from '../store.js';
import type { RedisContext } from './context.js';
import { arg, byteOrder } from './values.js';

export async function recordUserEvent(r: RedisContext, e: UserEvent): Promise<void> {
  r.open();
  const k = r.keys.user(e.user);
  await r.s.record(`${k}r`, `${k}v`, e.k, e.device, e.server, arg(e.ts));
}

export async function userRecord(r: RedisContext, user: string): Promise<UserRecord | null> {
  r.open();
  const k = r.keys.user(user);
  const [rec, devs] = await Promise.all([r.c.hmget(`${k}r`, 'first', 'last'), r.c.hgetall(`${k}v`)]);
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
