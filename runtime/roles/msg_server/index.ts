import { Hono } from 'hono';
import type { MsgServerConfig } from '../../contract/config.js';
import { roleHandle, type RoleContext, type RoleHandle } from '../../contract/context.js';
import { listenRoleTcp, serveRoleHttp } from '../../contract/listen.js';
import { startBeats } from '../../metrics/beat.js';
import type { TcpSocket } from '../../platform/types.js';
import { serverApi } from './api.js';
import { MsgServer } from './msg_server.js';
import { tcpTransport } from './transport_tcp.js';

export { MsgServer } from './msg_server.js';
export type { CloseReason, Transport, TransportHandlers } from './transport.js';

/** Starts a msg_server: client TCP listener, HTTP health, its deliver channel, beats and lease. */
export async function startMsgServer(ctx: RoleContext, config: MsgServerConfig): Promise<RoleHandle> {
  const server = new MsgServer(ctx, config);
  const unsubscribe = await ctx.bus.subscribe(ctx.channels.deliver(config.id), server.onDeliver);
  ctx.bus.onResubscribe(() => server.recheckAll());
  await server.renewLease(true);

  const who = { role: 'msg_server', id: config.id } as const;
  const onConnection = (s: TcpSocket) => server.accept(tcpTransport(s, ctx.settings.maxFrame));
  const { tcp, addr } = await listenRoleTcp(
    ctx,
    who,
    { host: config.host, port: config.port },
    onConnection,
    unsubscribe,
  );
  server.addr = config.advertise ?? addr;

  const app = new Hono();
  app.get('/health', (c) =>
    c.json({ ok: true, role: 'msg_server', id: config.id, addr: server.addr, connections: server.connectionCount }),
  );
  app.route('/', serverApi(server));
  const at = { host: config.httpHost, port: config.httpPort };
  const { http, addr: httpAddr } = await serveRoleHttp(ctx, who, at, app.fetch, async () => {
    await tcp.close();
    await unsubscribe();
  });

  const stopBeats = startBeats(
    ctx,
    () => ({ ...server.beat(), http: httpAddr }),
    () => void server.renewLease(false).catch((err) => ctx.log.warn(`lease renewal failed: ${(err as Error).message}`)),
  );
  const sweepTimer = setInterval(
    () => server.sweepIdle(Date.now()),
    Math.max(250, Math.min(5000, ctx.settings.heartbeat / 2)),
  );
  sweepTimer.unref?.();

  return roleHandle(
    { role: 'msg_server', id: config.id, addresses: { tcp: server.addr, http: httpAddr } },
    async () => {
      stopBeats();
      clearInterval(sweepTimer);
      await tcp.close();
      await server.drainAll();
      server.flush();
      await ctx.store.dropLease(config.id, server.boot).catch(() => undefined);
      await unsubscribe();
      await http.close();
      server.stats.stop();
    },
  );
}
