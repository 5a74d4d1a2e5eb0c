/**
 * The Hono app Bun and Deno serve WebSocket upgrades through (their own
 * `upgradeWebSocket` helpers, hono/bun and hono/deno): the origin check,
 * the upgrade at the route's path, each socket's events handed to its
 * adapter's conn, and every other request to the role's `fetch`.
 */
import { Hono } from 'hono';
import type { UpgradeWebSocket, WSEvents } from 'hono/ws';
import type { WebSocketConn, WebSocketRoute } from './types.js';

/** What an adapter's conn takes from the socket's events. */
export interface HonoWsConn extends WebSocketConn {
  message(m: Uint8Array | string): void;
  overLimit(): void;
  gone(): void;
}

export function honoWebSocketApp(
  route: WebSocketRoute,
  fetch: (request: Request) => Response | Promise<Response>,
  upgradeWebSocket: UpgradeWebSocket,
  /** a new socket (the runtime's own, Hono's `ws.raw`) as its adapter's conn */
  open: (raw: object) => HonoWsConn,
): Hono {
  const app = new Hono();
  const conns = new WeakMap<object, HonoWsConn>();
  const events: WSEvents = {
    onOpen(_evt, ws) {
      const conn = open(ws.raw as object);
      conns.set(ws.raw as object, conn);
      route.onOpen(conn);
    },
    onMessage(evt, ws) {
      const conn = conns.get(ws.raw as object);
      if (!conn) return;
      const data = evt.data as string | ArrayBuffer;
      if (typeof data !== 'string' && data.byteLength > route.maxMessage) {
        conn.overLimit();
        conn.close(1009);
        return;
      }
      conn.message(typeof data === 'string' ? data : new Uint8Array(data));
    },
    onClose(_evt, ws) {
      conns.get(ws.raw as object)?.gone();
    },
  };
  app.get(
    route.path,
    async (c, next) => {
      if (c.req.header('upgrade')?.toLowerCase() !== 'websocket') return fetch(c.req.raw);
      if (!route.allowOrigin(c.req.header('origin'))) return c.body(null, 403);
      await next();
    },
    // One events object for every socket (the per-socket part is in `conns`), not one with three closures each.
    upgradeWebSocket(() => events),
  );
  app.all('*', (c) => fetch(c.req.raw));
  return app;
}
