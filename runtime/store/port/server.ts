/**
 * The other end of PortStores (./client.ts): runs their calls on the real
 * store, in the order they came, and gives back what it resolved with.
 */
import { STORE_METHODS } from '../bound.js';
import type { Store } from '../store.js';
import { APPEND_FLAT, flatResult, STORE_CALL_PREFIX, unflatAppend } from './client.js';

const METHODS = new Set<string>(STORE_METHODS);

/**
 * What a link's onCall does with a store call: `undefined` when `method` is
 * not one (for the caller's other calls), else the store's answer (a promise).
 */
export function storeCall(store: Store, method: string, args: unknown[]): Promise<unknown> | undefined {
  if (method === APPEND_FLAT)
    return store.appendP2P(unflatAppend(args as Parameters<typeof unflatAppend>[0])).then(flatResult);
  if (!method.startsWith(STORE_CALL_PREFIX)) return undefined;
  const name = method.slice(STORE_CALL_PREFIX.length);
  if (!METHODS.has(name)) return Promise.reject(new Error(`not a store method: ${name}`));
  return (store[name as keyof Store] as (...a: unknown[]) => Promise<unknown>)(...args);
}
