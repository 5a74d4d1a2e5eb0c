/**
 * The manager role: keeps user records from `/sysctrl/client-status`, hears
 * `/sysctrl/topic-status`, and every beat cleans up after dead msg_servers,
 * trims past retention and resumes unfinished topic fan-outs
 * (./housekeeping.ts). Serves the admin JSON API (./api.ts).
 */
import { randomBytes } from 'node:crypto';
import type { ManagerConfig } from '../../contract/config.js';
import { roleHandle, type RoleContext, type RoleHandle } from '../../contract/context.js';
import { serveRoleHttp } from '../../contract/listen.js';
import { decodeItems, type ClientStatusItem, type TopicStatusItem } from '../../bus/payloads.js';
import { RoleStats } from '../../metrics/stats.js';
import { makeBeat, startBeats } from '../../metrics/beat.js';
import { managerApi } from './api.js';
import { Housekeeping } from './housekeeping.js';

const CLIENT_EVENTS = new Set(['login', 'logout', 'kick']);
const TOPIC_EVENTS = new Set(['create', 'join', 'leave']);

export async function startManager(ctx: RoleContext, config: ManagerConfig): Promise<RoleHandle> {
  const { store, log } = ctx;
  const stats = new RoleStats();
  const boot = randomBytes(8).toString('hex');
  const housekeeping = new Housekeeping(ctx, config.id);

  // One user's events are recorded in the order they arrived; users run side by side.
  const chains = new Map<string, Promise<void>>();
  const record = (e: ClientStatusItem) => {
    const t0 = performance.now();
    const run = (chains.get(e.user) ?? Promise.resolve())
      .then(() => store.recordUserEvent({ k: e.k, user: e.user, device: e.device, server: e.server, ts: e.ts }))
      .then(
        () => stats.latency(performance.now() - t0),
        (err) => log.warn(`recording ${e.k} of ${e.user}/${e.device}: ${(err as Error).message}`),
      );
    chains.set(e.user, run);
    void run.finally(() => {
      if (chains.get(e.user) === run) chains.delete(e.user);
    });
  };

  const unsubs: (() => Promise<void>)[] = [];
  const unsubscribeAll = async () => {
    for (const u of unsubs.splice(0)) await u().catch(() => undefined);
  };
  try {
    unsubs.push(
      await ctx.bus.subscribe(ctx.channels.clientStatus, (payload) => {
        for (const e of decodeItems<ClientStatusItem>(payload)) {
          if (!isClientStatus(e)) continue;
          stats.countIn();
          record(e);
        }
      }),
    );
    // Topic records are written by the msg_servers with the op itself (the
    // store is the source of truth); the events are counted here.
    unsubs.push(
      await ctx.bus.subscribe(ctx.channels.topicStatus, (payload) => {
        for (const e of decodeItems<TopicStatusItem>(payload))
          if (e && typeof e === 'object' && TOPIC_EVENTS.has(e.k)) stats.countIn();
      }),
    );
  } catch (err) {
    await unsubscribeAll();
    throw err;
  }

  const app = managerApi({ store, secret: ctx.auth.secret, id: config.id, log });
  const who = { role: 'manager', id: config.id } as const;
  const at = { host: config.httpHost, port: config.httpPort };
  const { http, addr: httpAddr } = await serveRoleHttp(ctx, who, at, app.fetch, unsubscribeAll);

  const stopBeats = startBeats(
    ctx,
    () => makeBeat({ role: 'manager', id: config.id, http: httpAddr, boot, conns: 0 }, stats),
    () => housekeeping.tick(),
  );

  return roleHandle({ role: 'manager', id: config.id, addresses: { http: httpAddr } }, async () => {
    stopBeats();
    await unsubscribeAll();
    await housekeeping.stop();
    await Promise.all(chains.values());
    await http.close();
    stats.stop();
  });
}

function isClientStatus(e: unknown): e is ClientStatusItem {
  if (!e || typeof e !== 'object') return false;
  const s = e as Partial<Record<keyof ClientStatusItem, unknown>>;
  if (typeof s.k !== 'string' || !CLIENT_EVENTS.has(s.k)) return false;
  if (typeof s.user !== 'string' || typeof s.device !== 'string' || typeof s.server !== 'string') return false;
  if (typeof s.ts !== 'number' || !Number.isFinite(s.ts)) (e as { ts: number }).ts = Date.now();
  return true;
}
