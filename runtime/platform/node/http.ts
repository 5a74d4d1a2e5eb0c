/**
 * HTTP on Node: a Hono app's `fetch` served by @hono/node-server, and
 * WebSocket upgrades at one path through the `ws` package (websocket.ts).
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { AddressInUseError, type HttpListener, type ServeHttpOptions } from '../types.js';
import { attachWebSocket } from './websocket.js';

/** close() waits this long for open requests (an SSE stream, say), then cuts them. */
const CLOSE_GRACE_MS = 1000;

export function serveHttp(options: ServeHttpOptions): Promise<HttpListener> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: options.fetch, port: options.port, hostname: options.host }) as Server;
    const ws = options.websocket ? attachWebSocket(server, options.websocket) : undefined;
    const onListenError = (err: NodeJS.ErrnoException): void => {
      reject(err.code === 'EADDRINUSE' ? new AddressInUseError(options.host, options.port) : err);
    };
    server.once('error', onListenError);
    server.once('listening', () => {
      server.off('error', onListenError);
      server.on('error', () => {});
      const addr = server.address() as AddressInfo;
      resolve({
        host: addr.address,
        port: addr.port,
        close: () =>
          new Promise<void>((done) => {
            const force = setTimeout(() => {
              server.closeAllConnections();
              ws?.closeAll();
            }, CLOSE_GRACE_MS);
            force.unref();
            server.close(() => {
              clearTimeout(force);
              ws?.closeAll();
              done();
            });
            server.closeIdleConnections();
          }),
      });
    });
  });
}
