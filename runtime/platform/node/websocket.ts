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

/** `error` is followed by `close`: nothing else to do (one listener for every socket). */
const ignoreError = (): void => {};

/** Serves `route` on `server`'s upgrades; other upgrade paths get 404. Returns what closes every socket. */
export function attachWebSocket(server: Server, route: WebSocketRoute): { closeAll(): void } {
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: route.maxMessage,
    perMessageDeflate: false,
    // Tracked here (a Set entry each) rather than by ws (a Set entry and a close listener each).
    clientTracking: false,
  });
  const open = new Set<NodeConn>();
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', ignoreError);
    const path = (req.url ?? '/').split('?', 1)[0];
    if (path !== route.path) return refuse(socket, 404);
    const origin = req.headers.origin;
    if (!route.allowOrigin(origin)) return refuse(socket, 403);
    wss.handleUpgrade(req, socket, head, (ws) => {
      route.onOpen(new NodeConn(ws, socket, req.socket.remoteAddress ?? '', open));
    });
  });
  return {
    closeAll() {
      for (const c of open) c.terminate();
      open.clear();
      wss.close();
    },
  };
}

function refuse(socket: Duplex, status: number): void {
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

/** The NodeConn of a `ws` socket, its receiver and its TCP socket, for listeners every socket shares (no closures per socket). */
const kConn = Symbol('fishchat.ws');
type Owned = { [kConn]: NodeConn };
const connOf = (emitter: object): NodeConn => (emitter as Owned)[kConn];

/**
 * One `ws` socket as a WebSocketConn; `socket` is the upgraded TCP socket under it.
 * `ws` reads (frames in, pings, the close handshake); the binary messages this
 * side sends are framed here and written straight to the socket, all those
 * of one event-loop turn as one write (server frames are unmasked, and with
 * permessage-deflate off `ws` never holds frames back, so they keep their
 * order with its own pongs and close).
 */
class NodeConn extends WsConnBase {
  /** messages sent this turn, not yet written (made at the first: an idle socket holds none) */
  private queue: Uint8Array[] | undefined;
  private queued = 0;

  constructor(
    private readonly ws: WebSocket,
    private readonly socket: Duplex,
    remoteAddress: string,
    /** the open sockets of this listener (closeAll), this one until it closes */
    private readonly open: Set<NodeConn>,
  ) {
    super(remoteAddress);
    open.add(this);
    (ws as unknown as Owned)[kConn] = this;
    (socket as unknown as Owned)[kConn] = this;
    ws.on('message', onMessage);
    // ws answers a message over maxPayload with its own 1009 close; this listener runs before
    // ws's (prepended), so what the handler sends goes out ahead of that close.
    const receiver = (ws as unknown as { _receiver?: NodeJS.EventEmitter })._receiver;
    if (receiver) {
      (receiver as unknown as Owned)[kConn] = this;
      receiver.prependListener('error', onReceiverError);
    }
    ws.on('error', ignoreError);
    socket.on('drain', onSocketDrain);
    ws.on('close', onClose);
  }

  // What the listeners (below) report.
  handleMessage(data: RawData, isBinary: boolean): void {
    this.received(isBinary ? asBytes(data) : data.toString());
  }

  handleTooLarge(): void {
    this.tooLarge();
    this.flush();
  }

  handleDrain(): void {
    if (this.buffered === 0) this.drained();
  }

  handleClose(): void {
    this.open.delete(this);
    this.closedNow();
  }

  send(data: Uint8Array): void {
    if (this.closed || this.ws.readyState !== WebSocket.OPEN) return;
    if (this.queue === undefined) {
      this.queue = [];
      setImmediate(flushConn, this);
    }
    this.queue.push(data);
    this.queued += data.length + (data.length < 126 ? 2 : data.length < 0x10000 ? 4 : 10);
  }

  /** Writes the queued messages as binary frames (FIN, opcode 2, unmasked), in one write. */
  flush(): void {
    const queue = this.queue;
    if (queue === undefined) return;
    this.queue = undefined;
    const out = Buffer.allocUnsafe(this.queued);
    this.queued = 0;
    let at = 0;
    for (const d of queue) {
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
    if (this.ws.readyState === WebSocket.OPEN) this.socket.write(out);
  }

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

// Listeners shared by every socket, called on the emitter (`this`) they listen to.
function onMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
  connOf(this).handleMessage(data, isBinary);
}

function onReceiverError(this: object, err: { code?: string }): void {
  if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') connOf(this).handleTooLarge();
}

function onSocketDrain(this: object): void {
  connOf(this).handleDrain();
}

function onClose(this: WebSocket): void {
  connOf(this).handleClose();
}

function flushConn(c: NodeConn): void {
  c.flush();
}

function asBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data;
}
