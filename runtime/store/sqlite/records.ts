/** User records of the embedded store (kept by the manager from client-status events). */
import type { UserEvent } from '../common.js';
import type { UserRecord } from '../store.js';
import type { SqliteContext } from './context.js';

export function recordUserEvent(c: SqliteContext, e: UserEvent): Promise<void> {
  return c.commit.write(() => {
    c.st.recordPut.run(e.user, e.ts, e.ts);
    if (e.k === 'login') c.st.deviceLogin.run(e.user, e.device, e.ts, e.server);
    else c.st.deviceLogout.run(e.user, e.device, e.ts, e.server);
  });
}

export async function userRecord(c: SqliteContext, user: string): Promise<UserRecord | null> {
  c.commit.mustBeOpen();
  const rec = c.st.recordGet.get(user) as { first_seen: number; last_seen: number } | undefined;
  if (rec === undefined) return null;
  const rows = c.st.devicesOf.all(user) as { device: string; last_seen: number; online: number; server: string }[];
  const devices: UserRecord['devices'] = rows.map((r) => {
    const d: UserRecord['devices'][number] = { device: r.device, lastSeen: r.last_seen, online: r.online === 1 };
    if (r.server !== '') d.server = r.server;
    return d;
  });
  return { user, firstSeen: rec.first_seen, lastSeen: rec.last_seen, devices, online: devices.some((d) => d.online) };
}
