/**
 * How a role opens its listeners: on failure it undoes what it had started
 * (subscriptions, an earlier listener) and throws the one AddressInUseError
 * that names the role, the listener and the field to change.
 */
import { dialAddress, listenError } from '../platform/address.js';
import type { HttpListener, TcpListener, TcpSocket, WebSocketRoute } from '../platform/types.js';
import type { RoleContext, RoleName } from './context.js';

interface Who {
  role: RoleName;
  id: string;
}

/** Serves `fetch` (and WebSocket upgrades at `websocket.path`) on host:port; `addr` is what a client dials. */
export async function serveRoleHttp(
  ctx: RoleContext,
  who: Who,
  at: { host: string; port: number },
  fetch: (request: Request) => Response | Promise<Response>,
  undo: () => Promise<unknown>,
  websocket?: WebSocketRoute,
): Promise<{ http: HttpListener; addr: string }> {
  try {
    const http = await ctx.platform.serveHttp({ host: at.host, port: at.port, fetch, websocket });
    return { http, addr: dialAddress(http.host, http.port) };
  } catch (err) {
    await undo().catch(() => undefined);
    throw listenError(err, who.role, who.id, 'http');
  }
}

/** Listens for client TCP connections on host:port; `addr` is what a client dials. */
export async function listenRoleTcp(
  ctx: RoleContext,
  who: Who,
  at: { host: string; port: number },
  onConnection: (socket: TcpSocket) => void,
  undo: () => Promise<unknown>,
): Promise<{ tcp: TcpListener; addr: string }> {
  try {
    const tcp = await ctx.platform.listenTcp({ host: at.host, port: at.port, onConnection });
    return { tcp, addr: dialAddress(tcp.host, tcp.port) };
  } catch (err) {
    await undo().catch(() => undefined);
    throw listenError(err, who.role, who.id, 'tcp');
  }
}
