/**
 * Memory on Node: a full GC through V8's `gc` function. Without
 * `--expose-gc` the flag is set at run time and the function taken from a
 * fresh context (the flag only exposes `gc` to contexts created after it).
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { memoryFigure } from '../memory.js';
import type { MemoryFigure } from '../types.js';

let gcFn: (() => void) | null | undefined;

function fullGc(): (() => void) | null {
  if (gcFn !== undefined) return gcFn;
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (typeof exposed === 'function') return (gcFn = exposed);
  try {
    v8.setFlagsFromString('--expose-gc');
    const f = vm.runInNewContext('gc') as unknown;
    gcFn = typeof f === 'function' ? (f as () => void) : null;
  } catch {
    gcFn = null;
  }
  return gcFn;
}

export function memory(gc: boolean): MemoryFigure {
  const f = gc ? fullGc() : null;
  if (f) f();
  return memoryFigure(f !== null);
}
