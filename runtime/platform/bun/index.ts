/** The Bun platform. */
import type { Platform } from '../types.js';
import { serveHttp } from './http.js';
import { memory } from './memory.js';
import { openSqlite } from './sqlite.js';
import { connectTcp, listenTcp } from './tcp.js';

export const platform: Platform = {
  name: 'bun',
  listenTcp,
  connectTcp,
  serveHttp,
  openSqlite,
  memory,
};
