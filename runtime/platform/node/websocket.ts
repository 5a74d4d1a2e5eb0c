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
import type { WebSocketRoute } from '../types.js';
import { WsConnBase } from '../ws-conn.js';

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
      route.onOpen(new NodeConn(ws, socket, req.socket.remoteAddress ?? ''));
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

/** One `ws` socket as a WebSocketConn; `socket` is the upgraded TCP socket under it. */
class NodeConn extends WsConnBase {
  private corked = false;

  constructor(
    private readonly ws: WebSocket,
    private readonly socket: Duplex,
    remoteAddress: string,
  ) {
    super(remoteAddress);
    ws.on('message', (data: RawData, isBinary: boolean) => this.received(isBinary ? asBytes(data) : data.toString()));
    // ws answers a message over maxPayload with its own 1009 close; this listener runs before
    // ws's (prepended), so what the handler sends goes out ahead of that close.
    const receiver = (ws as unknown as { _receiver?: NodeJS.EventEmitter })._receiver;
    receiver?.prependListener('error', (err: { code?: string }) => {
      if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') this.tooLarge();
    });
    ws.on('error', () => {});
    socket.on('drain', () => {
      if (ws.bufferedAmount === 0) this.drained();
    });
    ws.on('close', () => this.closedNow());
  }

  private readonly uncork = (): void => {
    this.corked = false;
    this.socket.uncork();
  };

  send(data: Uint8Array): void {
    if (this.closed || this.ws.readyState !== WebSocket.OPEN) return;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(this.uncork);
    }
    this.ws.send(data, { binary: true });
  }

  get buffered(): number {
    return this.ws.bufferedAmount;
  }

  protected startClose(code: number, reason?: string): void {
    if (this.corked) this.uncork();
    this.ws.close(code, reason);
  }

  terminate(): void {
    this.ws.terminate();
  }
}

function asBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data;
}
