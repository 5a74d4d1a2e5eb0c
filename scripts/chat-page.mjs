// Builds the gateway's chat page into dist/runtime/roles/gateway/chat/: page.ts and the client library bundled
// by esbuild into page.js, one classic script for the browser, beside index.html and style.css. The gateway
// serves the three from its own origin (script-src 'self').
// The client is the browser build of `fishchat/client` (dist/browser/fishchat-client.js, made just before by
// scripts/client-bundle.mjs, WebSocket only, checked there for Node built-ins): page.ts imports the library's
// sources for the type check, and the build takes that bundle in their place.
// The type check is `tsc -p runtime/roles/gateway/chat/tsconfig.json` (the DOM lib, no Node).
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const src = new URL('../runtime/roles/gateway/chat/', import.meta.url);
const out = new URL('../dist/runtime/roles/gateway/chat/', import.meta.url);
const client = fileURLToPath(new URL('../dist/browser/fishchat-client.js', import.meta.url));
if (!existsSync(client)) {
  console.error(`chat page: ${client} is missing: run node scripts/client-bundle.mjs first (npm run build does)`);
  process.exit(1);
}
const browserClient = {
  name: 'fishchat-browser-client',
  setup(b) {
    b.onResolve({ filter: /\/client\/index\.js$/ }, () => ({ path: client }));
  },
};
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [fileURLToPath(new URL('page.ts', src))],
  outfile: fileURLToPath(new URL('page.js', out)),
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: 'es2022',
  charset: 'utf8',
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
  plugins: [browserClient],
});
for (const name of ['index.html', 'style.css']) copyFileSync(new URL(name, src), new URL(name, out));
console.log(`chat page: ${fileURLToPath(out)}{index.html,style.css,page.js}`);
