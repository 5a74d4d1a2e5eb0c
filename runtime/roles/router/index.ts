/**
 * The router role: topic fan-out. It takes each fan-out step from
 * `/sysctrl/topic-sync`, finds which msg_servers hold the members in the
 * session directory, and publishes to each of them, with only its members'
 * copies, on `/sysctrl/deliver/<server-id>` — never to every msg_server.
 * Like every role it beats on `/sysctrl/monitor` and answers /health.
 * (p2p messages do not pass here: the sender's msg_server publishes straight
 * to `/sysctrl/deliver/<server-id>`.)
 */
import { randomBytes } from 'node:crypto';
import { Hono } from 'hono';
import type { RouterConfig } from '../../contract/config.js';
import { roleHandle, type RoleContext, type RoleHandle } from '../../contract/context.js';
import { serveRoleHttp } from '../../contract/listen.js';
import { BatchPublisher, decodeItems, type DeliverItem, type TopicSyncItem } from '../../bus/payloads.js';
import type { FanoutCopy } from '../../store/store.js';
import { RoleStats } from '../../metrics/stats.js';
import { makeBeat, startBeats } from '../../metrics/beat.js';

export async function startRouter(ctx: RoleContext, config: RouterConfig): Promise<RoleHandle> {
  const stats = new RoleStats();
  const boot = randomBytes(8).toString('hex');
  const pub = new BatchPublisher(ctx.bus);

  /** A topic fan-out step: one publish per msg_server holding members, each with only its members' copies. */
  const routeTopic = async (item: TopicSyncItem) => {
    const t0 = performance.now();
    stats.countIn();
    const { msg } = item;
    const byServer = new Map<string, FanoutCopy[]>();
    const lookups = await Promise.all(msg.copies.map((copy) => ctx.store.sessions(copy.user)));
    msg.copies.forEach((copy, i) => {
      const seen = new Set<string>();
      for (const s of lookups[i]!) {
        if (s.server === item.origin || seen.has(s.server)) continue;
        seen.add(s.server);
        let list = byServer.get(s.server);
        if (!list) byServer.set(s.server, (list = []));
        list.push(copy);
      }
    });
    for (const [server, copies] of byServer) {
      const out: DeliverItem = { k: 'topic', msg: { ...msg, copies } };
      pub.add(ctx.channels.deliver(server), out);
      stats.countOut();
    }
    stats.latency(performance.now() - t0);
  };

  const unsubscribeTopics = await ctx.bus.subscribe(ctx.channels.topicSync, (payload) => {
    for (const item of decodeItems<TopicSyncItem>(payload)) {
      if (!item || typeof item !== 'object' || !item.msg || !Array.isArray(item.msg.copies)) continue;
      routeTopic(item).catch((err) =>
        ctx.log.warn(`topic push of ${item.msg.topic} failed: ${(err as Error).message}`),
      );
    }
  });

  const app = new Hono();
  app.get('/health', (c) => c.json({ ok: true, role: 'router', id: config.id }));
  const who = { role: 'router', id: config.id } as const;
  const at = { host: config.httpHost, port: config.httpPort };
  const { http, addr: httpAddr } = await serveRoleHttp(ctx, who, at, app.fetch, unsubscribeTopics);
  const stopBeats = startBeats(ctx, () =>
    makeBeat({ role: 'router', id: config.id, http: httpAddr, boot, conns: 0 }, stats),
  );

  return roleHandle({ role: 'router', id: config.id, addresses: { http: httpAddr } }, async () => {
    stopBeats();
    pub.flush();
    await unsubscribeTopics();
    await http.close();
    stats.stop();
  });
}
