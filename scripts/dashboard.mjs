// Builds the monitor's dashboard into dist/runtime/roles/monitor/dashboard/: page.ts bundled by esbuild into
// page.js, one classic script (the monitor inlines it into the page under a CSP hash), beside index.html and
// style.css. The type check is `tsc -p runtime/roles/monitor/dashboard/tsconfig.json` (the DOM lib, no Node).
import { copyFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const src = new URL('../runtime/roles/monitor/dashboard/', import.meta.url);
const out = new URL('../dist/runtime/roles/monitor/dashboard/', import.meta.url);
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
console.log(`dashboard: ${fileURLToPath(out)}{index.html,style.css,page.js}`);
