/**
 * The monitor role: hears every role's beat on `/sysctrl/monitor` and the
 * client-status and topic-status events, and serves them over HTTP:
 * GET /health and GET /metrics (Prometheus text) open, GET /status (JSON)
 * and GET /events (server-sent events) with an admin token. GET / is the web
 * dashboard (dashboard.ts): the page is open, the data it reads is not.
 */
import { randomBytes } from 'node:crypto';
import { Hono } from 'hono';
import type { MonitorConfig } from '../../contract/config.js';
import { roleHandle, type RoleContext, type RoleHandle } from '../../contract/context.js';
import { serveRoleHttp } from '../../contract/listen.js';
import { decodeItems } from '../../bus/payloads.js';
import { RoleStats } from '../../metrics/stats.js';
import { makeBeat, startBeats } from '../../metrics/beat.js';
import { PROMETHEUS_CONTENT_TYPE } from '../../metrics/prometheus.js';
import { jsonError, requireAdmin } from '../../http/admin.js';
import { RoleTable, type StatusReport } from './roles.js';
import { EventHub } from './events.js';
import { metricsText } from './metrics.js';
import { loadDashboard } from './dashboard.js';

export async function startMonitor(ctx: RoleContext, config: MonitorConfig): Promise<RoleHandle> {
  const dashboard = loadDashboard();
  const stats = new RoleStats();
  const boot = randomBytes(8).toString('hex');
  const table = new RoleTable(ctx.settings.beat);
  const hub = new EventHub();

  const unsubs: (() => Promise<void>)[] = [];
  const unsubscribeAll = async () => {
    for (const u of unsubs.splice(0)) await u().catch(() => undefined);
  };
  const listen = async (channel: string, onItem: (item: object) => void) => {
    unsubs.push(
      await ctx.bus.subscribe(channel, (payload) => {
        for (const item of decodeItems<unknown>(payload)) {
          if (!item || typeof item !== 'object') continue;
          stats.countIn();
          onItem(item);
        }
      }),
    );
  };
  try {
    await listen(ctx.channels.monitor, (item) => {
      const b = table.onBeat(item);
      if (b) hub.publish('beat', b);
    });
    await listen(ctx.channels.clientStatus, (item) => hub.publish('client-status', item));
    await listen(ctx.channels.topicStatus, (item) => hub.publish('topic-status', item));
  } catch (err) {
    await unsubscribeAll();
    throw err;
  }

  const app = new Hono();
  const admin = requireAdmin(ctx.auth.secret);
  app.get('/', () => dashboard.response());
  app.get('/health', (c) => c.json({ ok: true, role: 'monitor', id: config.id }));
  app.get('/metrics', (c) => c.body(metricsText(table.list()), 200, { 'Content-Type': PROMETHEUS_CONTENT_TYPE }));
  app.get('/status', admin, (c) =>
    c.json({ cluster: ctx.cluster, ts: Date.now(), roles: table.list() } satisfies StatusReport),
  );
  app.get('/events', admin, (c) => hub.serve(c));
  app.notFound((c) => jsonError(c, 404, 'not_found', `no such endpoint: ${c.req.method} ${c.req.path}`));
  app.onError((err, c) => {
    ctx.log.error(`monitor ${config.id}: ${c.req.method} ${c.req.path} failed: ${err.message}`);
    return jsonError(c, 500, 'internal', 'internal error; see the monitor log');
  });

  const who = { role: 'monitor', id: config.id } as const;
  const at = { host: config.httpHost, port: config.httpPort };
  const { http, addr: httpAddr } = await serveRoleHttp(ctx, who, at, app.fetch, unsubscribeAll);

  const stopBeats = startBeats(ctx, () =>
    makeBeat({ role: 'monitor', id: config.id, http: httpAddr, boot, conns: hub.size }, stats),
  );

  return roleHandle({ role: 'monitor', id: config.id, addresses: { http: httpAddr } }, async () => {
    stopBeats();
    await unsubscribeAll();
    hub.closeAll();
    await http.close();
    stats.stop();
  });
}
