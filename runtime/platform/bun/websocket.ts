/// <reference types="bun" />
/**
 * WebSocket on Bun through Hono's Bun adapter (`hono/bun`): its
 * upgradeWebSocket answers the upgrade, its `websocket` handlers (with a
 * `drain` handler and Bun's limits added here) feed each socket.
 */
import { Hono } from 'hono';
import { upgradeWebSocket, websocket } from 'hono/bun';
import type { WSContext } from 'hono/ws';
import type { WebSocketConn, WebSocketRoute } from '../types.js';

/** A closing socket that has not finished its close handshake within this is cut, ms. */
const CLOSE_GRACE_MS = 2000;

type BunSocket = Bun.ServerWebSocket<unknown>;

interface State {
  conn: WebSocketConn;
  message?: (data: Uint8Array | string) => void;
  early?: (Uint8Array | string)[];
  tooLarge?: () => void;
  close?: () => void;
  drain?: () => void;
  closed: boolean;
  timer?: ReturnType<typeof setTimeout>;
}

const states = new WeakMap<object, State>();

/**
 * Bun reads whole messages up to maxPayloadLength and closes with 1009 beyond
 * it, with nothing said. Reading up to 4 × maxMessage lets a message a little
 * over the limit get its error first; larger ones get Bun's bare 1009.
 */
const READ_FACTOR = 4;

/** The `websocket` option of Bun.serve for `route`. */
export function bunWebSocketHandler(route: WebSocketRoute): Bun.WebSocketHandler<unknown> {
  const h = websocket as unknown as Bun.WebSocketHandler<unknown>;
  return {
    ...h,
    maxPayloadLength: route.maxMessage * READ_FACTOR,
    // Liveness is the protocol's ping (PROTOCOL.md §1a): no idle cut, no WebSocket pings of Bun's own.
    idleTimeout: 0,
    sendPings: false,
    perMessageDeflate: false,
    drain(ws: BunSocket) {
      const s = states.get(ws);
      if (s && ws.getBufferedAmount() === 0) s.drain?.();
    },
  };
}

/** A Hono app answering upgrades at route.path (origin checked), everything else through `fetch`. */
export function bunWebSocketApp(
  route: WebSocketRoute,
  fetch: (request: Request) => Response | Promise<Response>,
): Hono {
  const app = new Hono();
  app.get(
    route.path,
    async (c, next) => {
      if (c.req.header('upgrade')?.toLowerCase() !== 'websocket') return fetch(c.req.raw);
      if (!route.allowOrigin(c.req.header('origin'))) return c.body(null, 403);
      await next();
    },
    upgradeWebSocket(() => ({
      onOpen(_evt, ws) {
        const raw = ws.raw as BunSocket;
        const s = open(raw);
        states.set(raw, s);
        route.onOpen(s.conn);
      },
      onMessage(evt, ws) {
        const s = states.get(ws.raw as object);
        if (!s || s.closed) return;
        const data = evt.data as string | ArrayBuffer;
        if (typeof data !== 'string' && data.byteLength > route.maxMessage) {
          s.tooLarge?.();
          close(ws, s, 1009);
          return;
        }
        const m = typeof data === 'string' ? data : new Uint8Array(data);
        if (s.message) s.message(m);
        else (s.early ??= []).push(m);
      },
      onClose(_evt, ws) {
        const s = states.get(ws.raw as object);
        if (!s || s.closed) return;
        s.closed = true;
        clearTimeout(s.timer);
        s.close?.();
      },
    })),
  );
  app.all('*', (c) => fetch(c.req.raw));
  return app;
}

function close(ws: WSContext, s: State, code: number): void {
  (ws.raw as BunSocket).close(code);
  s.timer ??= setTimeout(() => (ws.raw as BunSocket).terminate(), CLOSE_GRACE_MS);
}

function open(raw: BunSocket): State {
  const s: State = { closed: false } as State;
  s.conn = {
    remoteAddress: raw.remoteAddress,
    send(data) {
      if (!s.closed) raw.send(data);
    },
    get buffered() {
      return s.closed ? 0 : raw.getBufferedAmount();
    },
    get closed() {
      return s.closed;
    },
    close(code, reason) {
      if (s.closed) return;
      raw.close(code, reason);
      s.timer ??= setTimeout(() => raw.terminate(), CLOSE_GRACE_MS);
    },
    terminate() {
      if (!s.closed) raw.terminate();
    },
    onMessage(handler) {
      s.message = handler;
      const kept = s.early;
      s.early = undefined;
      if (kept) for (const m of kept) handler(m);
    },
    onTooLarge(handler) {
      s.tooLarge = handler;
    },
    onClose(handler) {
      s.close = handler;
      if (s.closed) handler();
    },
    onDrain(handler) {
      s.drain = handler;
    },
  };
  return s;
}
