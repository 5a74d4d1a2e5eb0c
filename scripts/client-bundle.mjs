// Builds the browser bundle of `fishchat/client` into dist/browser/fishchat-client.js (+ .map): one ES module,
// minified, for <script type="module"> or a bundler (the package exports it as "fishchat/client/browser", and as
// "fishchat/client" under the "browser" condition). In a browser the client speaks WebSocket only: the TCP wire
// (and with it the platform, node:net, Bun's sockets) is replaced by a module that refuses TCP, and the `ws`
// package (the WebSocket of Node 20) by one that says there is no WebSocket. The build fails if anything else
// would pull in a Node built-in or a native module: the inputs are checked after the build.
import { mkdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = new URL('../', import.meta.url);
const outfile = fileURLToPath(new URL('dist/browser/fishchat-client.js', root));
const clientDir = fileURLToPath(new URL('runtime/client/', root));
mkdirSync(fileURLToPath(new URL('dist/browser/', root)), { recursive: true });

const browserStubs = {
  name: 'fishchat-browser-stubs',
  setup(b) {
    b.onResolve({ filter: /^\.\/wire-tcp\.js$/ }, () => ({ path: 'wire-tcp', namespace: 'fishchat-stub' }));
    b.onResolve({ filter: /^ws$/ }, () => ({ path: 'ws', namespace: 'fishchat-stub' }));
    b.onLoad({ filter: /^wire-tcp$/, namespace: 'fishchat-stub' }, () => ({
      contents: `import { FishError } from './errors.js';
export async function openTcpWire(addr) {
  throw new FishError('bad_request', 'a browser has no TCP: dial a ws:// or wss:// URL, not ' + JSON.stringify(addr));
}`,
      resolveDir: clientDir,
      loader: 'js',
    }));
    b.onLoad({ filter: /^ws$/, namespace: 'fishchat-stub' }, () => ({
      contents: `throw new Error('this runtime has no WebSocket');`,
      loader: 'js',
    }));
  },
};

const result = await build({
  entryPoints: [fileURLToPath(new URL('runtime/client/index.ts', root))],
  outfile,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  sourcemap: true,
  charset: 'utf8',
  legalComments: 'none',
  logLevel: 'warning',
  metafile: true,
  plugins: [browserStubs],
});

const bad = [];
for (const [path, input] of Object.entries(result.metafile.inputs)) {
  if (/runtime\/platform\/|\.node$|cbor-extract|node_modules\/ws\//.test(path)) bad.push(path);
  for (const imp of input.imports)
    if (imp.external || imp.path.startsWith('node:')) bad.push(`${path} imports ${imp.path}`);
}
if (bad.length > 0) {
  console.error(`client-bundle: the browser bundle must not contain:\n  ${bad.join('\n  ')}`);
  process.exit(1);
}
const kib = (statSync(outfile).size / 1024).toFixed(1);
console.log(`client bundle: ${outfile} (${kib} KiB)`);
