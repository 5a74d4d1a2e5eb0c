/**
 * How both stores (./sqlite/, ./redis/) are put together: each Store method
 * is a function of the backend's context (its database or connection and
 * what goes with it), kept in a file per concern; a backend gathers those
 * files' functions (StoreOps), and BoundStore binds them to the context.
 */
import type { Store } from './store.js';

type StoreMethod = Exclude<keyof Store, 'kind' | 'close'>;

/** Every Store method but close(). */
export const STORE_METHODS = [
  'appendP2P',
  'readInbox',
  'head',
  'ack',
  'login',
  'check',
  'removeSession',
  'restoreSession',
  'sessions',
  'renewLease',
  'dropLease',
  'expiredLeases',
  'removeServerSessions',
  'trim',
  'topicCreate',
  'topicJoin',
  'topicLeave',
  'topicMembers',
  'topicAppend',
  'topicFanout',
  'topicsBehind',
  'topicInfo',
  'listTopics',
  'recordUserEvent',
  'userRecord',
  'listSessions',
  'deviceAcks',
] as const satisfies readonly StoreMethod[];

/** Every Store method as a function of a context `C`. */
export type StoreOps<C> = {
  [K in StoreMethod]: (c: C, ...args: Parameters<Store[K]>) => ReturnType<Store[K]>;
};

export abstract class BoundStore<C> implements Store {
  abstract readonly kind: Store['kind'];
  abstract close(): Promise<void>;

  declare readonly appendP2P: Store['appendP2P'];
  declare readonly readInbox: Store['readInbox'];
  declare readonly head: Store['head'];
  declare readonly ack: Store['ack'];
  declare readonly login: Store['login'];
  declare readonly check: Store['check'];
  declare readonly removeSession: Store['removeSession'];
  declare readonly restoreSession: Store['restoreSession'];
  declare readonly sessions: Store['sessions'];
  declare readonly renewLease: Store['renewLease'];
  declare readonly dropLease: Store['dropLease'];
  declare readonly expiredLeases: Store['expiredLeases'];
  declare readonly removeServerSessions: Store['removeServerSessions'];
  declare readonly trim: Store['trim'];
  declare readonly topicCreate: Store['topicCreate'];
  declare readonly topicJoin: Store['topicJoin'];
  declare readonly topicLeave: Store['topicLeave'];
  declare readonly topicMembers: Store['topicMembers'];
  declare readonly topicAppend: Store['topicAppend'];
  declare readonly topicFanout: Store['topicFanout'];
  declare readonly topicsBehind: Store['topicsBehind'];
  declare readonly topicInfo: Store['topicInfo'];
  declare readonly listTopics: Store['listTopics'];
  declare readonly recordUserEvent: Store['recordUserEvent'];
  declare readonly userRecord: Store['userRecord'];
  declare readonly listSessions: Store['listSessions'];
  declare readonly deviceAcks: Store['deviceAcks'];

  /**
   * Each Store method of `ops` (which may hold more: only STORE_METHODS are
   * taken), bound to `c`: a bound function, no wrapper of our own on the call path.
   */
  constructor(c: C, ops: StoreOps<C>) {
    const self = this as unknown as Record<string, unknown>;
    for (const name of STORE_METHODS) self[name] = (ops[name] as (c: C, ...a: unknown[]) => unknown).bind(undefined, c);
  }
}
