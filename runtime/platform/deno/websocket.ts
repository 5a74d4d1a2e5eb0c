/// <reference types="deno" />
/**
 * WebSocket on Deno through Hono's Deno adapter (`hono/deno`, over
 * Deno.upgradeWebSocket). Deno has no drain event: while bytes are queued, the
 * socket's bufferedAmount is polled.
 */
import { Hono } from 'hono';
import { upgradeWebSocket } from 'hono/deno';
import type { WebSocketConn, WebSocketRoute } from '../types.js';

/** A closing socket that has not finished its close handshake within this is cut, ms. */
const CLOSE_GRACE_MS = 2000;
/** How often a socket with queued bytes is checked for drain, ms. */
const DRAIN_POLL_MS = 20;

/** A Hono app answering upgrades at route.path (origin checked), everything else through `fetch`. */
export function denoWebSocketApp(
  route: WebSocketRoute,
  fetch: (request: Request) => Response | Promise<Response>,
): Hono {
  const app = new Hono();
  const conns = new WeakMap<WebSocket, ReturnType<typeof denoConn>>();
  app.get(
    route.path,
    async (c, next) => {
      if (c.req.header('upgrade')?.toLowerCase() !== 'websocket') return fetch(c.req.raw);
      if (!route.allowOrigin(c.req.header('origin'))) return c.body(null, 403);
      await next();
    },
    upgradeWebSocket(() => ({
      onOpen(_evt, ws) {
        const raw = ws.raw as WebSocket;
        raw.binaryType = 'arraybuffer';
        const conn = denoConn(raw);
        conns.set(raw, conn);
        route.onOpen(conn.conn);
      },
      onMessage(evt, ws) {
        const conn = conns.get(ws.raw as WebSocket);
        if (!conn) return;
        const data = evt.data as string | ArrayBuffer;
        if (typeof data !== 'string' && data.byteLength > route.maxMessage) {
          conn.tooLarge();
          conn.conn.close(1009);
          return;
        }
        conn.message(typeof data === 'string' ? data : new Uint8Array(data));
      },
      onClose(_evt, ws) {
        conns.get(ws.raw as WebSocket)?.closedNow();
      },
    })),
  );
  app.all('*', (c) => fetch(c.req.raw));
  return app;
}

function denoConn(raw: WebSocket) {
  let onMessage: ((data: Uint8Array | string) => void) | undefined;
  let early: (Uint8Array | string)[] | undefined;
  let onTooLarge: (() => void) | undefined;
  let onClose: (() => void) | undefined;
  let onDrain: (() => void) | undefined;
  let closed = false;
  let grace: ReturnType<typeof setTimeout> | undefined;
  let poll: ReturnType<typeof setInterval> | undefined;
  const watchDrain = (): void => {
    if (poll !== undefined || closed) return;
    poll = setInterval(() => {
      if (closed || raw.bufferedAmount === 0) {
        clearInterval(poll);
        poll = undefined;
        if (!closed) onDrain?.();
      }
    }, DRAIN_POLL_MS);
  };
  const conn: WebSocketConn = {
    remoteAddress: '',
    send(data) {
      if (closed || raw.readyState !== WebSocket.OPEN) return;
      raw.send(data);
      if (raw.bufferedAmount > 0) watchDrain();
    },
    get buffered() {
      return closed ? 0 : raw.bufferedAmount;
    },
    get closed() {
      return closed;
    },
    close(code, reason) {
      if (closed) return;
      raw.close(code, reason);
      // Deno has no way to cut a WebSocket at once: a second close() after the grace is all there is.
      grace ??= setTimeout(() => closedNow(), CLOSE_GRACE_MS);
    },
    terminate() {
      if (closed) return;
      try {
        raw.close(1001);
      } catch {
        // already closing
      }
      closedNow();
    },
    onMessage(handler) {
      onMessage = handler;
      const kept = early;
      early = undefined;
      if (kept) for (const m of kept) handler(m);
    },
    onTooLarge(handler) {
      onTooLarge = handler;
    },
    onClose(handler) {
      onClose = handler;
      if (closed) handler();
    },
    onDrain(handler) {
      onDrain = handler;
    },
  };
  function closedNow(): void {
    if (closed) return;
    closed = true;
    clearTimeout(grace);
    clearInterval(poll);
    onClose?.();
  }
  return {
    conn,
    message(m: Uint8Array | string) {
      if (closed) return;
      if (onMessage) onMessage(m);
      else (early ??= []).push(m);
    },
    tooLarge: () => onTooLarge?.(),
    closedNow,
  };
}
