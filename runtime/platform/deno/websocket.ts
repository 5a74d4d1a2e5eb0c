/// <reference types="deno" />
/**
 * WebSocket on Deno through Hono's Deno adapter (`hono/deno`, over
 * Deno.upgradeWebSocket). Deno has no drain event: while bytes are queued, the
 * socket's bufferedAmount is polled. Nor has it a way to cut a WebSocket at
 * once: terminate() closes with 1001 and lets go of it.
 */
import type { Hono } from 'hono';
import { upgradeWebSocket } from 'hono/deno';
import type { WebSocketRoute } from '../types.js';
import { type HonoWsConn, honoWebSocketApp } from '../hono-ws.js';
import { WsConnBase } from '../ws-conn.js';

/** How often a socket with queued bytes is checked for drain, ms. */
const DRAIN_POLL_MS = 20;

/** One Deno socket as a WebSocketConn. */
class DenoConn extends WsConnBase implements HonoWsConn {
  private poll: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly raw: WebSocket) {
    super('');
  }

  send(data: Uint8Array): void {
    if (this.closed || this.raw.readyState !== WebSocket.OPEN) return;
    this.raw.send(data);
    if (this.raw.bufferedAmount > 0) this.watchDrain();
  }

  get buffered(): number {
    return this.closed ? 0 : this.raw.bufferedAmount;
  }

  protected startClose(code: number, reason?: string): void {
    this.raw.close(code, reason);
  }

  terminate(): void {
    if (this.closed) return;
    try {
      this.raw.close(1001);
    } catch {
      // already closing
    }
    this.gone();
  }

  // what Hono's Deno handlers report
  message = (m: Uint8Array | string): void => this.received(m);
  overLimit = (): void => this.tooLarge();
  gone = (): void => {
    clearInterval(this.poll);
    this.closedNow();
  };

  private watchDrain(): void {
    if (this.poll !== undefined) return;
    this.poll = setInterval(() => {
      if (this.closed || this.raw.bufferedAmount === 0) {
        clearInterval(this.poll);
        this.poll = undefined;
        this.drained();
      }
    }, DRAIN_POLL_MS);
  }
}

/** A Hono app answering upgrades at route.path (origin checked), everything else through `fetch`. */
export function denoWebSocketApp(
  route: WebSocketRoute,
  fetch: (request: Request) => Response | Promise<Response>,
): Hono {
  return honoWebSocketApp(route, fetch, upgradeWebSocket, (raw) => {
    const socket = raw as WebSocket;
    socket.binaryType = 'arraybuffer';
    return new DenoConn(socket);
  });
}
