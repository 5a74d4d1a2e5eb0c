/** The Node platform: node:net, Hono's Node server, better-sqlite3. (Deno reuses its TCP part.) */
import type { Platform } from '../types.js';
import { serveHttp } from './http.js';
import { memory } from './memory.js';
import { openSqlite } from './sqlite.js';
import { connectTcp, listenTcp } from './tcp.js';

export const platform: Platform = {
  name: 'node',
  listenTcp,
  connectTcp,
  serveHttp,
  openSqlite,
  memory,
};
