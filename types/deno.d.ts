/**
 * The parts of the global `Deno` object that runtime/platform/deno/ uses, so
 * tsc compiles on Node without Deno's own types. Only runtime/platform/deno/
 * may touch `Deno`; everything else goes through the Platform interface.
 */
declare namespace Deno {
  interface NetAddr {
    transport: 'tcp' | 'udp';
    hostname: string;
    port: number;
  }

  interface ServeOptions {
    hostname?: string;
    port?: number;
    /** aborting it stops the server */
    signal?: AbortSignal;
    /** called once listening; by default Deno logs the address */
    onListen?: (addr: NetAddr) => void;
    onError?: (error: unknown) => Response | Promise<Response>;
  }

  interface HttpServer<Addr = NetAddr> {
    readonly addr: Addr;
    /** resolves when the server has stopped */
    readonly finished: Promise<void>;
    /** Stops accepting, waits for open requests to finish. */
    shutdown(): Promise<void>;
    ref(): void;
    unref(): void;
  }

  function serve(
    options: ServeOptions,
    handler: (request: Request, info: { remoteAddr: NetAddr }) => Response | Promise<Response>,
  ): HttpServer<NetAddr>;

  namespace errors {
    class AddrInUse extends Error {}
  }
}
