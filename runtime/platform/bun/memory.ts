/// <reference types="bun" />
/** Memory on Bun: Bun.gc(true) runs a full, synchronous collection. */
import { memoryFigure } from '../memory.js';
import type { MemoryFigure } from '../types.js';

export function memory(gc: boolean): MemoryFigure {
  if (gc) Bun.gc(true);
  return memoryFigure(gc);
}
