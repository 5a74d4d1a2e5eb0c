/**
 * The platform of the runtime we run on, chosen once. Roles get it through
 * their RoleContext; nothing outside runtime/platform/ names a runtime.
 */
import type { Platform } from './types.js';

export * from './types.js';

/** Which runtime this process runs on. */
export function detectRuntime(): Platform['name'] {
  const g = globalThis as { Bun?: unknown; Deno?: unknown };
  if (g.Bun !== undefined) return 'bun';
  if (g.Deno !== undefined) return 'deno';
  return 'node';
}

let chosen: Promise<Platform> | undefined;

export function getPlatform(): Promise<Platform> {
  chosen ??= load();
  return chosen;
}

async function load(): Promise<Platform> {
  switch (detectRuntime()) {
    case 'bun':
      return (await import('./bun/index.js')).platform;
    case 'deno':
      return (await import('./deno/index.js')).platform;
    case 'node':
      return (await import('./node/index.js')).platform;
  }
}
