/// <reference types="deno" />
/**
 * HTTP on Deno: a Hono app's `fetch` served by Deno.serve, and WebSocket
 * upgrades at one path through Hono's Deno adapter (websocket.ts).
 */
import { AddressInUseError, type HttpListener, type ServeHttpOptions } from '../types.js';
import { denoWebSocketApp } from './websocket.js';

/** close() waits this long for open requests (an SSE stream, say), then lets go of them. */
const CLOSE_GRACE_MS = 1000;

export function serveHttp(options: ServeHttpOptions): Promise<HttpListener> {
  const abort = new AbortController();
  const fetch = options.websocket ? denoWebSocketApp(options.websocket, options.fetch).fetch : options.fetch;
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve(
      {
        hostname: options.host,
        port: options.port,
        signal: abort.signal,
        // Deno prints "Listening on …" unless told otherwise; the role prints its own ready line.
        onListen: () => {},
      },
      (request) => fetch(request),
    );
  } catch (err) {
    if (err instanceof Deno.errors.AddrInUse || (err as { code?: string }).code === 'EADDRINUSE') {
      return Promise.reject(new AddressInUseError(options.host, options.port));
    }
    return Promise.reject(err);
  }
  return Promise.resolve({
    host: server.addr.hostname,
    port: server.addr.port,
    close: async () => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<void>((done) => {
        timer = setTimeout(() => {
          // Streams still open (server-sent events) would hold shutdown() forever: stop waiting for them.
          abort.abort();
          server.unref();
          done();
        }, CLOSE_GRACE_MS);
      });
      await Promise.race([server.shutdown(), late]);
      clearTimeout(timer);
    },
  });
}
