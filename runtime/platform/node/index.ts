/** The Node platform (also used on Deno for now, through its node: modules). */
import type { Platform } from '../types.js';
import { serveHttp } from './http.js';
import { openSqlite } from './sqlite.js';
import { connectTcp, listenTcp } from './tcp.js';

export const platform: Platform = {
  name: 'node',
  listenTcp,
  connectTcp,
  serveHttp,
  openSqlite,
};
