/** What both stores (./sqlite/, ./redis/) share beside the Store interface. */
import { DEFAULT_LIMITS, type Store, type StoreLimits } from './store.js';

/** The body of a message whose body is gone (or was never kept). */
export const EMPTY = new Uint8Array(0);

export const closedError = (): Error => new Error('the store is closed');

/**
 * The limits a store runs with: the defaults, overridden; the cid window is
 * at most the retention window (docs/protocol.md 4.2).
 */
export function resolveLimits(limits: Partial<StoreLimits>): StoreLimits {
  const l = { ...DEFAULT_LIMITS, ...limits };
  return {
    retentionMs: l.retentionMs,
    maxInbox: Math.max(1, Math.floor(l.maxInbox)),
    cidWindowMs: Math.min(l.cidWindowMs, l.retentionMs),
  };
}

/** A client-status event, as recordUserEvent takes it. */
export type UserEvent = Parameters<Store['recordUserEvent']>[0];
