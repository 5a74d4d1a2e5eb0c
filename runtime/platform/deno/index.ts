/**
 * The Deno platform: TCP through Deno's node:net (the Node adapter), HTTP
 * through Deno.serve. No SQLite: on Deno the roles run in the Redis modes
 * only, where the store is Redis.
 */
import type { Platform } from '../types.js';
import { serveHttp } from './http.js';
import { memory } from './memory.js';
import { connectTcp, listenTcp } from './tcp.js';

export const platform: Platform = {
  name: 'deno',
  listenTcp,
  connectTcp,
  serveHttp,
  memory,
  openSqlite(path: string) {
    throw new Error(
      `cannot open ${path}: the embedded SQLite store is not available on Deno; ` +
        'run Deno roles over Redis (`fishchat up --redis URL --runtime deno`, or with redis-server on PATH), ' +
        'or run embedded mode on Node or Bun',
    );
  },
};
