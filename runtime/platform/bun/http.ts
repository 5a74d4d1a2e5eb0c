/// <reference types="bun" />
/**
 * HTTP on Bun: a Hono app's `fetch` served by Bun.serve, and WebSocket
 * upgrades at one path through Hono's Bun adapter (websocket.ts).
 */
import { AddressInUseError, type HttpListener, type ServeHttpOptions } from '../types.js';
import { bunWebSocketApp, bunWebSocketHandler } from './websocket.js';

/**
 * Bun closes a connection silent for `idleTimeout` seconds (default 10), even
 * in the middle of a streamed response such as server-sent events; Node has
 * no such limit on open responses. 120 s keeps streams alive and still
 * reclaims idle keep-alive connections.
 */
const IDLE_TIMEOUT_S = 120;
/** close() waits this long for open requests, then cuts them. */
const CLOSE_GRACE_MS = 1000;

export function serveHttp(options: ServeHttpOptions): Promise<HttpListener> {
  let server: Bun.Server<unknown>;
  const route = options.websocket;
  try {
    if (route) {
      const app = bunWebSocketApp(route, options.fetch);
      server = Bun.serve({
        hostname: options.host,
        port: options.port,
        idleTimeout: IDLE_TIMEOUT_S,
        fetch: (request, srv) => app.fetch(request, srv),
        websocket: bunWebSocketHandler(route),
      });
    } else {
      server = Bun.serve({
        hostname: options.host,
        port: options.port,
        idleTimeout: IDLE_TIMEOUT_S,
        fetch: options.fetch,
      });
    }
  } catch (err) {
    if ((err as { code?: string }).code === 'EADDRINUSE') {
      return Promise.reject(new AddressInUseError(options.host, options.port));
    }
    return Promise.reject(err);
  }
  return Promise.resolve({
    // (undefined only for a Unix socket, which we never serve on)
    host: server.hostname ?? options.host,
    port: server.port ?? options.port,
    close: async () => {
      const graceful = server.stop(false);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<void>((done) => {
        timer = setTimeout(() => {
          void server.stop(true).then(done, done);
        }, CLOSE_GRACE_MS);
      });
      await Promise.race([graceful, late]);
      clearTimeout(timer);
    },
  });
}
