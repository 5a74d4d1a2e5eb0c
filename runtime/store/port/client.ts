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
import type { AppendP2P, AppendResult, DirEntry, Store } from '../store.js';

/** The side of a thread link (./link.ts) a PortStore needs. */
export interface CallLink {
  call(method: string, args: unknown[]): Promise<unknown>;
}

/** Store methods as they cross: the method name, prefixed so the other side can tell a store call from others. */
export const STORE_CALL_PREFIX = 'store.';

/**
 * appendP2P, the call of every message, crosses flat (arrays of plain values
 * clone at about half the cost of objects): [from, to, mid, body, ts, cid]
 * and back [mid, seq, ts, duplicate, then device, server, boot, gen of each
 * session of `to`].
 */
export const APPEND_FLAT = 'store.appendP2P/flat';

type FlatAppend = [from: string, to: string, mid: string, body: Uint8Array, ts: number, cid: string | undefined];
type FlatResult = (string | number | boolean)[];

export function flatAppend(m: AppendP2P): FlatAppend {
  return [m.from, m.to, m.mid, m.body, m.ts, m.cid];
}

export function unflatAppend(a: FlatAppend): AppendP2P {
  const m: AppendP2P = { from: a[0], to: a[1], mid: a[2], body: a[3], ts: a[4] };
  if (a[5] !== undefined && a[5] !== null) m.cid = a[5];
  return m;
}

export function flatResult(r: AppendResult): FlatResult {
  const out: FlatResult = [r.mid, r.seq, r.ts, r.duplicate];
  for (const e of r.sessions) out.push(e.device, e.server, e.boot, e.gen);
  return out;
}

export function unflatResult(user: string, f: FlatResult): AppendResult {
  const n = (f.length - 4) >> 2;
  const sessions = new Array<DirEntry>(n);
  for (let i = 0, j = 4; i < n; i++, j += 4)
    sessions[i] = {
      user,
      device: f[j] as string,
      server: f[j + 1] as string,
      boot: f[j + 2] as string,
      gen: f[j + 3] as number,
    };
  return { mid: f[0] as string, seq: f[1] as number, ts: f[2] as number, duplicate: f[3] as boolean, sessions };
}

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
  store.appendP2P = (m: AppendP2P) =>
    closed
      ? Promise.reject(new Error('the store is closed'))
      : link.call(APPEND_FLAT, flatAppend(m)).then((f) => unflatResult(m.to, f as FlatResult));
  return store as unknown as Store;
}
