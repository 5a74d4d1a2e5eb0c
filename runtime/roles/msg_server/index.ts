import { Hono } from 'hono';
import type { MsgServerConfig } from '../config.js';
import type { RoleContext, RoleHandle } from '../context.js';
import { dialAddress, listenError } from '../../platform/address.js';
import { startBeats } from '../../metrics/beat.js';
import type { TcpSocket } from '../../platform/types.js';
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

  let tcp;
  try {
    const onConnection = (s: TcpSocket) => server.accept(tcpTransport(s, ctx.settings.maxFrame));
    tcp = await ctx.platform.listenTcp({ host: config.host, port: config.port, onConnection });
  } catch (err) {
    await unsubscribe();
    throw listenError(err, 'msg_server', config.id, 'tcp');
  }
  server.addr = config.advertise ?? dialAddress(tcp.host, tcp.port);

  const app = new Hono();
  app.get('/health', (c) => c.json({ ok: true, role: 'msg_server', id: config.id, addr: server.addr, connections: server.connectionCount }));
  let http;
  try {
    http = await ctx.platform.serveHttp({ host: config.httpHost, port: config.httpPort, fetch: app.fetch });
  } catch (err) {
    await tcp.close();
    await unsubscribe();
    throw listenError(err, 'msg_server', config.id, 'http');
  }

  const httpAddr = dialAddress(http.host, http.port);
  const stopBeats = startBeats(
    ctx,
    () => ({ ...server.beat(), http: httpAddr }),
    () => void server.renewLease(false).catch((err) => ctx.log.warn(`lease renewal failed: ${(err as Error).message}`)),
  );
  const sweepTimer = setInterval(() => server.sweepIdle(Date.now()), Math.max(250, Math.min(5000, ctx.settings.heartbeat / 2)));
  sweepTimer.unref?.();

  let stopped: Promise<void> | undefined;
  return {
    role: 'msg_server',
    id: config.id,
    addresses: { tcp: server.addr, http: httpAddr },
    stop() {
      stopped ??= (async () => {
        stopBeats();
        clearInterval(sweepTimer);
        await tcp.close();
        await server.drainAll();
        server.flush();
        await ctx.store.dropLease(config.id, server.boot).catch(() => undefined);
        await unsubscribe();
        await http.close();
        server.stats.stop();
      })();
      return stopped;
    },
  };
}
