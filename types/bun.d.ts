/**
 * The parts of the global `Bun` object that runtime/platform/bun/ uses, so tsc
 * compiles on Node without bun-types. Only runtime/platform/bun/ may touch
 * `Bun`; everything else goes through the Platform interface.
 * ('bun:sqlite' is declared in types/bun-sqlite.d.ts.)
 */
declare namespace Bun {
  /** A TCP socket of Bun.listen / Bun.connect; `data` is ours to set. */
  interface Socket<Data = undefined> {
    data: Data;
    readonly remoteAddress: string;
    readonly remotePort: number;
    /** -1 when closed */
    readonly readyState: number;
    /** Bun does not buffer: returns how many bytes the kernel took (-1 if closed). */
    write(data: Uint8Array): number;
    /** Graceful close (FIN). */
    end(): void;
    /** shutdown(2): `true` shuts only the write side (FIN; reading goes on), no argument both sides (measured on Bun 1.4.5). */
    shutdown(halfClose?: boolean): void;
    /** Closes at once. */
    terminate(): void;
    setNoDelay(noDelay?: boolean): boolean;
  }

  interface SocketHandler<Data = undefined> {
    open?(socket: Socket<Data>): void | Promise<void>;
    data?(socket: Socket<Data>, data: Uint8Array): void | Promise<void>;
    drain?(socket: Socket<Data>): void | Promise<void>;
    /** the other end sent FIN */
    end?(socket: Socket<Data>): void | Promise<void>;
    close?(socket: Socket<Data>, error?: Error): void | Promise<void>;
    /** a handler threw */
    error?(socket: Socket<Data>, error: Error): void | Promise<void>;
    connectError?(socket: Socket<Data>, error: Error): void | Promise<void>;
  }

  interface TCPSocketListener {
    readonly hostname: string;
    readonly port: number;
    /** Stops accepting; with `true`, closes the open sockets too. */
    stop(closeActiveConnections?: boolean): void;
  }

  function listen<Data = undefined>(options: {
    hostname: string;
    port: number;
    socket: SocketHandler<Data>;
  }): TCPSocketListener;

  function connect<Data = undefined>(options: {
    hostname: string;
    port: number;
    socket: SocketHandler<Data>;
  }): Promise<Socket<Data>>;

  interface Server {
    readonly hostname: string;
    readonly port: number;
    stop(closeActiveConnections?: boolean): Promise<void>;
  }

  function serve(options: {
    hostname: string;
    port: number;
    /** seconds a connection may stay silent (0: never closed for that) */
    idleTimeout?: number;
    fetch: (request: Request) => Response | Promise<Response>;
  }): Server;
}
