/**
 * WebSocket on Node (and Node 20, which has no WebSocket server of its own):
 * the `ws` package, attached to the HTTP server's `upgrade` event for one path.
 * The messages sent in one event-loop turn go to the kernel as one write, as
 * on the TCP sockets.
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

/**
 * One `ws` socket as a WebSocketConn; `socket` is the upgraded TCP socket under it.
 * `ws` reads (frames in, pings, the close handshake); the binary messages this
 * side sends are framed here and written straight to the socket, all those
 * of one event-loop turn as one write (server frames are unmasked, and with
 * permessage-deflate off `ws` never holds frames back, so they keep their
 * order with its own pongs and close).
 */
class NodeConn extends WsConnBase {
  private queue: Uint8Array[] = [];
  private queued = 0;
  private scheduled = false;

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
      if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
        this.tooLarge();
        this.flush();
      }
    });
    ws.on('error', () => {});
    socket.on('drain', () => {
      if (this.buffered === 0) this.drained();
    });
    ws.on('close', () => this.closedNow());
  }

  send(data: Uint8Array): void {
    if (this.closed || this.ws.readyState !== WebSocket.OPEN) return;
    this.queue.push(data);
    this.queued += data.length + (data.length < 126 ? 2 : data.length < 0x10000 ? 4 : 10);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  /** Writes the queued messages as binary frames (FIN, opcode 2, unmasked), in one write. */
  private readonly flush = (): void => {
    this.scheduled = false;
    if (this.queue.length === 0) return;
    const out = Buffer.allocUnsafe(this.queued);
    let at = 0;
    for (const d of this.queue) {
      const n = d.length;
      out[at++] = 0x82;
      if (n < 126) out[at++] = n;
      else if (n < 0x10000) {
        out[at++] = 126;
        out.writeUInt16BE(n, at);
        at += 2;
      } else {
        out[at++] = 127;
        out.writeUInt32BE(Math.floor(n / 0x1_0000_0000), at);
        out.writeUInt32BE(n >>> 0, at + 4);
        at += 8;
      }
      out.set(d, at);
      at += n;
    }
    this.queue = [];
    this.queued = 0;
    if (this.ws.readyState === WebSocket.OPEN) this.socket.write(out);
  };

  get buffered(): number {
    return this.ws.bufferedAmount + this.queued;
  }

  protected startClose(code: number, reason?: string): void {
    this.flush();
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
