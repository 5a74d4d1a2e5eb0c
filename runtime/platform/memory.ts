/**
 * A process's memory figure (`/health` of a msg_server, `fishchat bench
 * --idle`): what process.memoryUsage() says, optionally right after a full
 * garbage collection. Each runtime's adapter supplies how a GC is forced
 * (platform/node/memory.ts, platform/bun/memory.ts); this file names none.
 */
import type { MemoryFigure } from './types.js';

/** process.memoryUsage() as a MemoryFigure; `afterGc` says whether a full GC ran just before. */
export function memoryFigure(afterGc: boolean): MemoryFigure {
  const m = process.memoryUsage();
  return {
    rss: m.rss,
    heapTotal: m.heapTotal,
    heapUsed: m.heapUsed,
    external: m.external,
    arrayBuffers: m.arrayBuffers,
    afterGc,
  };
}
