/**
 * The Redis Store (docs/architecture.md "Store: who owns what data", "Three ways to run" 1 and 2), with
 * ioredis; the same semantics as the SQLite store (../sqlite/), checked by
 * the same contract (test/store-contract.ts). Keys: ./keys.ts.
 *
 * Every atomic step is one Lua script (EVALSHA, ./lua/) over the keys of ONE
 * hash tag, so the store runs on Redis Cluster too. Calls made in one
 * event-loop turn go to Redis in one round trip (ioredis auto-pipelining), in
 * call order per connection (so per user and per topic); on a single Redis
 * the appends and directory reads of a turn go as one script call each
 * (./batch.ts). When Redis is unreachable calls wait in ioredis' offline
 * queue and reject after its retries; never a false success.
 */
import type { RedisClient } from '../../redis/index.js';
import { BoundStore, STORE_METHODS, type StoreOps } from '../bound.js';
import { closedError, resolveLimits } from '../common.js';
import type { StoreLimits } from '../store.js';
import type { RedisContext } from './context.js';
import * as fanout from './fanout.js';
import * as housekeeping from './housekeeping.js';
import * as inbox from './inbox.js';
import { Keys } from './keys.js';
import * as leases from './leases.js';
import * as records from './records.js';
import { defineScripts } from './scripts.js';
import * as sessions from './sessions.js';
import * as topics from './topics.js';

/** The Store methods, from the files of their concerns. */
const OPS: StoreOps<RedisContext> = {
  ...inbox,
  ...sessions,
  ...leases,
  ...topics,
  ...fanout,
  ...records,
  ...housekeeping,
};

/** How long close() waits for calls in flight. */
const CLOSE_WAIT_MS = 10_000;

export class RedisStore extends BoundStore<RedisContext> {
  readonly kind = 'redis' as const;
  readonly limits: StoreLimits;

  private readonly r: RedisContext;
  private pending = 0;
  private idle: (() => void) | undefined;

  /** Use openRedisStore(). */
  constructor(
    private readonly c: RedisClient,
    p: string,
    limits: Partial<StoreLimits> = {},
  ) {
    const l = resolveLimits(limits);
    const keys = new Keys(p);
    const r: RedisContext = {
      c,
      keys,
      limits: l,
      ...defineScripts(c, keys, l),
      known: new Set(),
      closed: false,
      open() {
        if (this.closed) throw closedError();
      },
    };
    super(r, OPS);
    this.limits = l;
    this.r = r;
    // Every Store method but close() is counted while in flight, so close() lets them finish first.
    const { appends, lookups } = r;
    const self = this as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
    for (const name of STORE_METHODS) {
      const method = self[name]!;
      const flushAppends = name !== 'appendP2P';
      const flushLookups = name !== 'sessions';
      self[name] = (...a: unknown[]) => {
        this.pending++;
        // Calls waiting for their batch go first: Redis sees the calls in call order.
        if (flushAppends && appends?.waiting) appends.flush();
        if (flushLookups && lookups?.waiting) lookups.flush();
        let call: Promise<unknown>;
        try {
          call = method(...a);
        } catch (err) {
          // e.g. a call after close(): a rejection, as from an async method
          this.settled();
          return Promise.reject(err);
        }
        return call.finally(this.settled);
      };
    }
  }

  private readonly settled = (): void => {
    if (--this.pending === 0 && this.idle !== undefined) this.idle();
  };

  async close(): Promise<void> {
    if (this.r.closed) return;
    this.r.closed = true;
    // calls made before close() still complete (QUIT skips ioredis' auto-pipeline queue)
    if (this.pending > 0) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.idle = resolve;
        timer = setTimeout(resolve, CLOSE_WAIT_MS);
      });
      clearTimeout(timer);
    }
    try {
      await this.c.quit();
    } catch {
      this.c.disconnect();
    }
  }
}
