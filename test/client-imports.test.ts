/**
 * `fishchat/client` bundles for a browser: nothing in its import graph loads
 * a Node built-in (`node:…`, or a bare `fs`, `net`, …) when the module loads.
 * Walks the sources from runtime/client/index.ts with TypeScript's parser,
 * following the static imports and re-exports that stay in the JavaScript
 * (type-only ones are erased; dynamic import(), such as the platform's on a
 * TCP connect, is not followed).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const ENTRY = join(ROOT, 'runtime', 'client', 'index.ts');
/** The packages the client may load; a new one should be checked for Node built-ins before it is added. */
const PACKAGES = ['cbor-x/index-no-eval', 'eventsource-parser'];

/** The module specifiers of `file` that remain imports in the emitted JavaScript. */
function runtimeImports(file: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, false);
  const out: string[] = [];
  for (const st of source.statements) {
    if (ts.isImportDeclaration(st)) {
      const clause = st.importClause;
      if (clause?.isTypeOnly) continue;
      const named = clause?.namedBindings;
      const onlyTypes =
        clause !== undefined &&
        clause.name === undefined &&
        named !== undefined &&
        ts.isNamedImports(named) &&
        named.elements.length > 0 &&
        named.elements.every((e) => e.isTypeOnly);
      if (!onlyTypes) out.push((st.moduleSpecifier as ts.StringLiteral).text);
    } else if (ts.isExportDeclaration(st) && st.moduleSpecifier !== undefined) {
      if (st.isTypeOnly) continue;
      const named = st.exportClause;
      const onlyTypes = named !== undefined && ts.isNamedExports(named) && named.elements.every((e) => e.isTypeOnly);
      if (!onlyTypes) out.push((st.moduleSpecifier as ts.StringLiteral).text);
    }
  }
  return out;
}

test('fishchat/client imports no Node built-in at load time', () => {
  const builtins = new Set(builtinModules);
  const seen = new Set<string>();
  const packages = new Set<string>();
  const bad: string[] = [];
  const queue = [ENTRY];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const spec of runtimeImports(file)) {
      const where = `${relative(ROOT, file)} imports ${spec}`;
      if (spec.startsWith('.')) {
        queue.push(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
      } else if (spec.startsWith('node:') || builtins.has(spec) || builtins.has(spec.split('/')[0]!)) {
        bad.push(where);
      } else {
        packages.add(spec);
      }
    }
  }
  assert.deepEqual(bad, [], 'static imports of Node built-ins');
  assert.ok(seen.has(join(ROOT, 'runtime', 'client', 'connection.ts')), 'the walk reached connection.ts');
  assert.ok(![...seen].some((f) => f.includes(join('runtime', 'platform', 'node'))), 'the Node platform is not loaded');
  assert.deepEqual([...packages].sort(), PACKAGES);
});
