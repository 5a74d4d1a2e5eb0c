/**
 * `fishchat/client` bundles for a browser: nothing in its import graph loads
 * a Node built-in (`node:…`, or a bare `fs`, `net`, …) when the module loads.
 * Walks what ships, the compiled dist/runtime/client/index.js (run `npm run
 * build` first): tsc has erased type-only imports there, so every static
 * import and re-export left is one that runs; dynamic import(), such as the
 * platform's on a TCP connect, is not followed.
 * (A plain scan of the emitted statements, not the TypeScript parser: loading
 * the compiler would add ~100 MiB to the test process, which Bun shares with
 * the other test files.)
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const ENTRY = join(ROOT, 'dist', 'runtime', 'client', 'index.js');
/** The packages the client may load; a new one should be checked for Node built-ins before it is added. */
const PACKAGES = ['cbor-x/index-no-eval', 'eventsource-parser'];

/** `import … from 'x';`, `export … from 'x';` and `import 'x';` at the start of a line of emitted JavaScript. */
const STATIC_IMPORT = /^(?:(?:import|export)\b[^;]*?\bfrom\s*|import\s*)(['"])([^'"]+)\1\s*;/gm;

export function staticImports(js: string): string[] {
  return [...js.matchAll(STATIC_IMPORT)].map((m) => m[2]!);
}

test('the scan finds static imports and re-exports, not dynamic ones', () => {
  const js = [
    "import { a } from './a.js';",
    'import {\n  b,\n  c,\n} from "./b.js";',
    "export * from './c.js';",
    "export { d } from './d.js';",
    "import './side.js';",
    'export const e = 1;',
    "const p = await import('./lazy.js');",
    "export function f() { return g.from('x'); }",
  ].join('\n');
  assert.deepEqual(staticImports(js), ['./a.js', './b.js', './c.js', './d.js', './side.js']);
});

test('fishchat/client imports no Node built-in at load time', () => {
  assert.ok(existsSync(ENTRY), `${ENTRY} is missing: run npm run build`);
  const builtins = new Set(builtinModules);
  const seen = new Set<string>();
  const packages = new Set<string>();
  const bad: string[] = [];
  const queue = [ENTRY];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const spec of staticImports(readFileSync(file, 'utf8'))) {
      const where = `${relative(ROOT, file)} imports ${spec}`;
      if (spec.startsWith('.')) {
        queue.push(resolve(dirname(file), spec));
      } else if (spec.startsWith('node:') || builtins.has(spec) || builtins.has(spec.split('/')[0]!)) {
        bad.push(where);
      } else {
        packages.add(spec);
      }
    }
  }
  assert.deepEqual(bad, [], 'static imports of Node built-ins');
  assert.ok(seen.has(join(ROOT, 'dist', 'runtime', 'client', 'connection.js')), 'the walk reached connection.js');
  assert.ok(![...seen].some((f) => f.includes(join('runtime', 'platform', 'node'))), 'the Node platform is not loaded');
  assert.deepEqual([...packages].sort(), PACKAGES);
});
