/**
 * The one interface every runtime adapter implements (runtime/platform/node,
 * runtime/platform/bun). Nothing outside runtime/platform/ names a runtime.
 */

export interface TcpSocket {
  readonly remoteAddress: string;
  readonly remotePort: number;
  /**
   * Queues bytes. Writes made in one event-loop turn go to the kernel in one
   * write (coalesced). Never throws on a closed socket (drops the bytes).
   */
  write(data: Uint8Array): void;
  /** Bytes queued here or in the runtime that the kernel has not taken yet. */
  readonly buffered: number;
  /** Flushes what is queued, then closes. */
  end(): void;
  /** Closes at once, dropping what is queued. */
  destroy(): void;
  readonly closed: boolean;
  /** Handlers; data that arrives before onData is set is kept until it is. */
  onData(handler: (chunk: Uint8Array) => void): void;
  onClose(handler: () => void): void;
  /** Called when `buffered` fell back to 0 after being non-zero. */
  onDrain(handler: () => void): void;
}

export interface TcpListener {
  /** the bound address and the real port (useful with port 0) */
  readonly host: string;
  readonly port: number;
  /** Stops accepting; existing sockets stay open. */
  close(): Promise<void>;
}

export interface HttpListener {
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

export interface ListenTcpOptions {
  host: string;
  port: number;
  onConnection: (socket: TcpSocket) => void;
}

export interface ConnectTcpOptions {
  localAddress?: string;
}

export interface ServeHttpOptions {
  host: string;
  port: number;
  /** a Hono app's `fetch` */
  fetch: (request: Request) => Response | Promise<Response>;
  /** WebSocket upgrades at one path (everything else, the upgrade-less GET of that path too, goes to `fetch`) */
  websocket?: WebSocketRoute;
}

/** Where and how an HTTP listener takes WebSocket clients (RFC 6455, binary messages). */
export interface WebSocketRoute {
  /** the request path of the upgrade, such as "/v1/ws" */
  path: string;
  /**
   * Largest message read, bytes. A larger one is not handed to onMessage: the
   * socket's onTooLarge handler runs, then the socket closes with status 1009.
   */
  maxMessage: number;
  /** false: the upgrade is answered with HTTP 403 and no socket opens (`origin` undefined: no Origin header) */
  allowOrigin(origin: string | undefined): boolean;
  /** a new socket; messages that arrive before its handlers are set are kept */
  onOpen(socket: WebSocketConn): void;
}

/** One accepted WebSocket, server side. */
export interface WebSocketConn {
  readonly remoteAddress: string;
  /** Queues one binary message. Never throws on a closed socket (drops it). */
  send(data: Uint8Array): void;
  /** Bytes queued and not yet handed to the kernel. */
  readonly buffered: number;
  /** Starts the close handshake with `code` after what is queued; the socket is cut if it has not closed within a grace. */
  close(code: number, reason?: string): void;
  /** Cuts the connection at once, dropping what is queued. */
  terminate(): void;
  readonly closed: boolean;
  /** A binary message (Uint8Array, valid during the call) or a text one (string). */
  onMessage(handler: (data: Uint8Array | string) => void): void;
  /** A message over maxMessage arrived: a send() made in the handler still goes out before the 1009 close. */
  onTooLarge(handler: () => void): void;
  onClose(handler: () => void): void;
  /** Called when `buffered` fell back to 0 after being non-zero. */
  onDrain(handler: () => void): void;
}

export interface SqliteStatement {
  run(...params: unknown[]): { changes: number };
  get(...params: unknown[]): Record<string, unknown> | undefined;
  all(...params: unknown[]): Record<string, unknown>[];
}

export interface SqliteDatabase {
  exec(sql: string): void;
  prepare(sql: string): SqliteStatement;
  /** Runs fn in one transaction (BEGIN IMMEDIATE … COMMIT, ROLLBACK on throw). */
  transaction<T>(fn: () => T): T;
  close(): void;
}

/** A process's memory (process.memoryUsage()), bytes; `afterGc`: measured right after a forced full GC. */
export interface MemoryFigure {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  afterGc: boolean;
}

export interface Platform {
  readonly name: 'node' | 'bun' | 'deno';
  listenTcp(options: ListenTcpOptions): Promise<TcpListener>;
  /** `localAddress`: the source address to connect from (e.g. 127.0.0.2, for more than 64k loopback connections). */
  connectTcp(host: string, port: number, options?: ConnectTcpOptions): Promise<TcpSocket>;
  serveHttp(options: ServeHttpOptions): Promise<HttpListener>;
  /** Opens (creating if needed) a SQLite database file. Blobs come back as Uint8Array. */
  openSqlite(path: string): SqliteDatabase;
  /**
   * This process's memory; with `gc`, right after a full garbage collection
   * when the runtime can force one (`afterGc` false when it could not). A
   * forced GC stops the process for a while (tens of ms on a large heap).
   */
  memory(gc: boolean): MemoryFigure;
}

/** Which listener of a role: its client TCP port ("port") or its HTTP port ("httpPort"). */
export type Listener = 'tcp' | 'http';

/** The role whose listener it was, when known (listenError adds it). */
export interface ListenerOwner {
  role: string;
  id: string;
  listener: Listener;
}

/**
 * The port is taken: thrown by listenTcp/serveHttp (`code` is 'EADDRINUSE'),
 * and by a role's start with its `owner`, naming the role file field to change.
 */
export class AddressInUseError extends Error {
  readonly code = 'EADDRINUSE';
  /** the role file field that sets this port: "port" or "httpPort" (undefined without an owner) */
  readonly field?: 'port' | 'httpPort';
  constructor(
    readonly host: string,
    readonly port: number,
    readonly owner?: ListenerOwner,
  ) {
    super(
      owner === undefined
        ? `address ${host}:${port} is already in use`
        : `cannot start ${owner.role} ${owner.id}: its ${owner.listener === 'tcp' ? 'client TCP' : 'HTTP'} ` +
            `port ${port} on ${host} is already in use — stop what holds it, or change ` +
            `"${owner.listener === 'tcp' ? 'port' : 'httpPort'}" in its role file`,
    );
    this.name = 'AddressInUseError';
    if (owner) this.field = owner.listener === 'tcp' ? 'port' : 'httpPort';
  }
}
