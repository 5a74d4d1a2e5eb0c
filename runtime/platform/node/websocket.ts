/**
 * WebSocket on Node (and Node 20, which has no WebSocket server of its own):
 * the `ws` package, attached to the HTTP server's `upgrade` event for one path.
 * Writes made in one event-loop turn go to the kernel together (the socket is
 * corked until the next tick), as the TCP sockets do.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { STATUS_CODES } from 'node:http';
import { type RawData, WebSocket, WebSocketServer } from 'ws';
import type { WebSocketConn, WebSocketRoute } from '../types.js';

/** A closing socket that has not finished its close handshake within this is cut, ms. */
const CLOSE_GRACE_MS = 2000;

/** Serves `route` on `server`'s upgrades; other upgrade paths get 404. Returns what closes every socket. */
export function attachWebSocket(server: Server, route: WebSocketRoute): { closeAll(): void } {
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: route.maxMessage,
    perMessageDeflate: false,
    clientTracking: true,
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => {});
    const path = (req.url ?? '/').split('?', 1)[0];
    if (path !== route.path) return refuse(socket, 404);
    const origin = req.headers.origin;
    if (!route.allowOrigin(origin)) return refuse(socket, 403);
    wss.handleUpgrade(req, socket, head, (ws) => {
      route.onOpen(nodeConn(ws, socket, req.socket.remoteAddress ?? ''));
    });
  });
  return {
    closeAll() {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
    },
  };
}

function refuse(socket: Duplex, status: number): void {
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

function nodeConn(ws: WebSocket, socket: Duplex, remoteAddress: string): WebSocketConn {
  let onMessage: ((data: Uint8Array | string) => void) | undefined;
  let early: (Uint8Array | string)[] | undefined;
  let onTooLarge: (() => void) | undefined;
  let onClose: (() => void) | undefined;
  let onDrain: (() => void) | undefined;
  let closed = false;
  let corked = false;
  let graceTimer: ReturnType<typeof setTimeout> | undefined;

  ws.on('message', (data: RawData, isBinary: boolean) => {
    const m = isBinary ? asBytes(data) : data.toString();
    if (onMessage) onMessage(m);
    else (early ??= []).push(isBinary ? (m as Uint8Array).slice() : m);
  });
  // ws answers a message over maxPayload with its own 1009 close; this listener runs before
  // ws's (prepended), so what the handler sends goes out ahead of that close.
  const receiver = (ws as unknown as { _receiver?: NodeJS.EventEmitter })._receiver;
  receiver?.prependListener('error', (err: { code?: string }) => {
    if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') onTooLarge?.();
  });
  ws.on('error', () => {});
  socket.on('drain', () => {
    if (ws.bufferedAmount === 0) onDrain?.();
  });
  ws.on('close', () => {
    if (closed) return;
    closed = true;
    clearTimeout(graceTimer);
    onClose?.();
  });
  const uncork = (): void => {
    corked = false;
    (socket as Duplex & { uncork(): void }).uncork();
  };

  return {
    remoteAddress,
    send(data) {
      if (closed || ws.readyState !== WebSocket.OPEN) return;
      if (!corked) {
        corked = true;
        (socket as Duplex & { cork(): void }).cork();
        process.nextTick(uncork);
      }
      ws.send(data, { binary: true });
    },
    get buffered() {
      return ws.bufferedAmount;
    },
    get closed() {
      return closed;
    },
    close(code, reason) {
      if (closed) return;
      if (corked) uncork();
      ws.close(code, reason);
      graceTimer ??= setTimeout(() => ws.terminate(), CLOSE_GRACE_MS);
      graceTimer.unref?.();
    },
    terminate() {
      ws.terminate();
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
}

function asBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data;
}
