/**
 * A Store on another thread (embedded mode on several threads,
 * runtime/cluster/embedded.ts): every method is a call over a thread link to
 * the thread that holds the real store (./server.ts), which resolves it
 * only once the real store resolved it: an append is acknowledged only after
 * SQLite committed it, as in one thread. The calls of one turn go as one
 * message (./link.ts), and reach the real store in call order, so its group
 * commit takes them into one transaction.
 */
import { STORE_METHODS } from '../bound.js';
import type { Store } from '../store.js';

/** The side of a thread link (./link.ts) a PortStore needs. */
export interface CallLink {
  call(method: string, args: unknown[]): Promise<unknown>;
}

/** Store methods as they cross: the method name, prefixed so the other side can tell a store call from others. */
export const STORE_CALL_PREFIX = 'store.';

/**
 * The Store over `link`; `kind` is the real store's. close() closes nothing
 * but this side: the real store is its owner's to close.
 */
export function createPortStore(link: CallLink, kind: Store['kind']): Store {
  let closed = false;
  const store: Record<string, unknown> = {
    kind,
    close: async () => {
      closed = true;
    },
  };
  for (const name of STORE_METHODS) {
    const method = STORE_CALL_PREFIX + name;
    store[name] = (...args: unknown[]) =>
      closed ? Promise.reject(new Error('the store is closed')) : link.call(method, args);
  }
  return store as unknown as Store;
}
