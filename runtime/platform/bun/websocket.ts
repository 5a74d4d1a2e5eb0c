/// <reference types="bun" />
/**
 * WebSocket on Bun through Hono's Bun adapter (`hono/bun`): its
 * upgradeWebSocket answers the upgrade, its `websocket` handlers (with a
 * `drain` handler and Bun's limits added here) feed each socket.
 */
import type { Hono } from 'hono';
import { upgradeWebSocket, websocket } from 'hono/bun';
import type { WebSocketRoute } from '../types.js';
import { type HonoWsConn, honoWebSocketApp } from '../hono-ws.js';
import { WsConnBase } from '../ws-conn.js';

type BunSocket = Bun.ServerWebSocket<unknown>;

/** One Bun socket as a WebSocketConn. */
class BunConn extends WsConnBase implements HonoWsConn {
  constructor(private readonly raw: BunSocket) {
    super(raw.remoteAddress);
  }

  send(data: Uint8Array): void {
    if (!this.closed) this.raw.send(data);
  }

  get buffered(): number {
    return this.closed ? 0 : this.raw.getBufferedAmount();
  }

  protected startClose(code: number, reason?: string): void {
    this.raw.close(code, reason);
  }

  terminate(): void {
    if (!this.closed) this.raw.terminate();
  }

  // what Bun's handlers report (methods: called on the conn, no closures per socket)
  message(m: Uint8Array | string): void {
    this.received(m);
  }
  overLimit(): void {
    this.tooLarge();
  }
  drain(): void {
    this.drained();
  }
  gone(): void {
    this.closedNow();
  }
}

const conns = new WeakMap<object, BunConn>();

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
      if (ws.getBufferedAmount() === 0) conns.get(ws)?.drain();
    },
  };
}

/** A Hono app answering upgrades at route.path (origin checked), everything else through `fetch`. */
export function bunWebSocketApp(
  route: WebSocketRoute,
  fetch: (request: Request) => Response | Promise<Response>,
): Hono {
  return honoWebSocketApp(route, fetch, upgradeWebSocket, (raw) => {
    const conn = new BunConn(raw as BunSocket);
    conns.set(raw, conn);
    return conn;
  });
}
