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

/** One `ws` socket as a WebSocketConn; `socket` is the upgraded TCP socket under it. */
class NodeConn extends WsConnBase {
  private corked = false;

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
  }

  handleDrain(): void {
    if (this.ws.bufferedAmount === 0) this.drained();
  }

  handleClose(): void {
    this.open.delete(this);
    this.closedNow();
  }

  uncorkNow(): void {
    this.corked = false;
    this.socket.uncork();
  }

  send(data: Uint8Array): void {
    if (this.closed || this.ws.readyState !== WebSocket.OPEN) return;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(uncork, this);
    }
    this.ws.send(data, { binary: true });
  }

  get buffered(): number {
    return this.ws.bufferedAmount;
  }

  protected startClose(code: number, reason?: string): void {
    if (this.corked) this.uncorkNow();
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

function uncork(c: NodeConn): void {
  c.uncorkNow();
}

function asBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data;
}
