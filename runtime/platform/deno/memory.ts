/** Memory on Deno: a full GC only when `gc` is exposed (`--v8-flags=--expose-gc`); Deno sets no V8 flag at run time. */
import { memoryFigure } from '../memory.js';
import type { MemoryFigure } from '../types.js';

export function memory(gc: boolean): MemoryFigure {
  const f = gc ? (globalThis as { gc?: () => void }).gc : undefined;
  if (typeof f === 'function') f();
  return memoryFigure(typeof f === 'function');
}
