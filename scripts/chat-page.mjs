// Builds the gateway's chat page into dist/runtime/roles/gateway/chat/: page.ts and the client library
// (runtime/client, over WebSocket) bundled by esbuild into page.js, one classic script for the browser, beside
// index.html and style.css. The gateway serves the three from its own origin (script-src 'self').
// The type check is `tsc -p runtime/roles/gateway/chat/tsconfig.json` (the DOM lib, no Node).
import { copyFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const src = new URL('../runtime/roles/gateway/chat/', import.meta.url);
const out = new URL('../dist/runtime/roles/gateway/chat/', import.meta.url);
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [fileURLToPath(new URL('page.ts', src))],
  outfile: fileURLToPath(new URL('page.js', out)),
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: 'es2022',
  charset: 'utf8',
  legalComments: 'none',
  logLevel: 'warning',
});
for (const name of ['index.html', 'style.css']) copyFileSync(new URL(name, src), new URL(name, out));
console.log(`chat page: ${fileURLToPath(out)}{index.html,style.css,page.js}`);
