import { Hono } from 'hono';
import { advertisedWs, type MsgServerConfig, originAllowed, WS_PATH } from '../../contract/config.js';
import { roleHandle, type RoleContext, type RoleHandle } from '../../contract/context.js';
import { listenRoleTcp, serveRoleHttp } from '../../contract/listen.js';
import { startBeats } from '../../metrics/beat.js';
import { jsonError, requireAdmin } from '../../http/admin.js';
import type { TcpSocket, WebSocketRoute } from '../../platform/types.js';
import { serverApi } from './api.js';
import { MsgServer } from './msg_server.js';
import { tcpTransport } from './transport_tcp.js';
import { wsTransport } from './transport_ws.js';

export { MsgServer } from './msg_server.js';
export type { CloseReason, Transport, TransportHandlers } from './transport.js';

/**
 * Starts a msg_server: client TCP listener, HTTP listener (health and the
 * WebSocket endpoint), its deliver channel, beats and lease.
 */
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
  // `?gc=1` forces a full GC before the memory figure (a pause on a large heap): admin only.
  const admin = requireAdmin(ctx.auth.secret);
  app.get(
    '/health',
    (c, next) => {
      const gc = c.req.query('gc');
      if (gc === undefined || gc === '0') return next();
      if (gc === '1') return admin(c, next);
      return jsonError(
        c,
        400,
        'bad_request',
        `gc must be 1 (a full GC first, admin token) or 0, found ${JSON.stringify(gc)}`,
      );
    },
    (c) =>
      c.json({
        ok: true,
        role: 'msg_server',
        id: config.id,
        addr: server.addr,
        ws: server.ws,
        connections: server.connectionCount,
        memory: ctx.platform.memory(c.req.query('gc') === '1'),
      }),
  );
  app.route('/', serverApi(server));
  const serveWs = config.ws !== false;
  if (serveWs)
    app.get(WS_PATH, (c) => c.text(`${WS_PATH} takes WebSocket upgrades only`, 426, { Upgrade: 'websocket' }));
  // Both transports are adapters of one session core: a socket becomes a Transport, the server takes it.
  const websocket: WebSocketRoute | undefined = serveWs
    ? {
        path: WS_PATH,
        maxMessage: ctx.settings.maxFrame,
        allowOrigin: (origin) => originAllowed(ctx.settings.allowedOrigins, origin),
        onOpen: (socket) => server.accept(wsTransport(socket)),
      }
    : undefined;
  const at = { host: config.httpHost, port: config.httpPort };
  const undo = async () => {
    await tcp.close();
    await unsubscribe();
  };
  const { http, addr: httpAddr } = await serveRoleHttp(ctx, who, at, app.fetch, undo, websocket);
  server.ws = advertisedWs(config, server.addr, http);

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
    {
      role: 'msg_server',
      id: config.id,
      addresses: server.ws ? { tcp: server.addr, http: httpAddr, ws: server.ws } : { tcp: server.addr, http: httpAddr },
    },
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
