// The build starts from an empty dist/: a file left by an earlier build (a module since moved or
// removed) would otherwise be shipped by `npm pack` and found by stale imports.
import { rmSync } from 'node:fs';

rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });
