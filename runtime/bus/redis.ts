/**
 * The Redis Bus (docs/architecture.md "Internal channels", "Three ways to run" 1 and 2):
 * Redis pub/sub with ioredis, sharded pub/sub (SSUBSCRIBE/SPUBLISH) on a
 * Redis Cluster.
 *
 * - Two connections: one publishes, one subscribes (a connection in
 *   subscriber mode cannot publish).
 * - Batching, as Centrifugo: publish() only queues; everything published in
 *   one event-loop turn (all the I/O callbacks of one poll phase) is flushed
 *   by one setImmediate as one pipeline, i.e. one socket write. On a cluster
 *   the flush issues every SPUBLISH in one tick with ioredis autopipelining,
 *   which groups them into one pipeline per node. Publish order is kept (per
 *   connection, hence per channel).
 * - Payloads are binary both ways (`messageBuffer` / `smessageBuffer`).
 * - Many subscribe() calls on one channel share one Redis subscription
 *   (reference counted; UNSUBSCRIBE when the last handler goes).
 * - After a reconnect the bus resubscribes every channel itself (ioredis'
 *   autoResubscribe is off, so the handler map is the one truth), waits for
 *   Redis to confirm, then calls the onResubscribe handlers: messages
 *   published while the subscriber was away are lost, and a msg_server then
 *   re-checks its sessions against the store.
 * - While Redis is unreachable publish() never throws: publishes wait in a
 *   bounded queue (maxQueued messages / maxQueuedBytes) and are sent once
 *   Redis is back; beyond the bound they are dropped with a log line. The
 *   ioredis offline queue is off on the publisher, so nothing else buffers.
 *   The store is the source of truth; a lost push is repaired by the push
 *   cursor and the next ping.
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { clusterNodes, whenReady } from '../redis/index.js';
import { type Bus, type BusHandler, callHandlers } from './bus.js';

export interface RedisBusOptions {
  /** `redis://[user:pass@]host:port[/db]` (`rediss://` for TLS); on a cluster, one or more startup nodes separated by commas. */
  url: string;
  /** A Redis Cluster: sharded pub/sub (SSUBSCRIBE/SPUBLISH). */
  cluster?: boolean;
  /** Where the bus reports outages, drops and handler failures (default: console.error). */
  log?: (msg: string) => void;
  /** Publishes held while Redis is unreachable; more are dropped (default 10 000). */
  maxQueued?: number;
  /** Payload bytes held while Redis is unreachable; more are dropped (default 64 MiB). */
  maxQueuedBytes?: number;
}

type Client = Redis | Cluster;

interface Subscription {
  readonly handlers: Set<BusHandler>;
  /** Resolves once Redis confirmed the (S)SUBSCRIBE. */
  readonly active: Promise<void>;
}

interface Queued {
  channel: string;
  payload: Buffer;
}

/** The URL without its password, for log lines. */
function redact(url: string): string {
  return url.replace(
    /\/\/([^@/]*)@/g,
    (_m, auth: string) => `//${auth.includes(':') ? `${auth.split(':')[0]}:***` : '***'}@`,
  );
}

class RedisBus implements Bus {
  private readonly subs = new Map<string, Subscription>();
  private readonly resubscribeHandlers = new Set<() => void>();
  private queue: Queued[] = [];
  private queuedBytes = 0;
  private scheduled = false;
  private closed = false;
  /** Drops since Redis became unreachable, reported once it is back. */
  private dropped = 0;
  private pubDown = false;
  private subDown = false;
  /** Set at the subscriber's first disconnect; the next `ready` is a resubscription. */
  private subLost = false;
  private resubscribing: Promise<void> | undefined;

  constructor(
    private readonly pub: Client,
    private readonly sub: Client,
    private readonly sharded: boolean,
    private readonly url: string,
    private readonly log: (msg: string) => void,
    private readonly maxQueued: number,
    private readonly maxQueuedBytes: number,
  ) {
    pub.on('error', (err: Error) => {
      if (!this.pubDown && !this.closed) this.log(`bus: publisher connection to ${this.url}: ${err.message}`);
      this.pubDown = true;
    });
    pub.on('close', () => {
      if (!this.pubDown && !this.closed) this.log(`bus: lost the publisher connection to ${this.url}; reconnecting`);
      this.pubDown = true;
    });
    pub.on('ready', () => {
      if (this.pubDown && !this.closed) {
        this.log(
          `bus: publisher reconnected to ${this.url}${this.dropped ? `; ${this.dropped} publishes were dropped meanwhile` : ''}`,
        );
      }
      this.pubDown = false;
      this.dropped = 0;
      // Not synchronously: ioredis resends the commands that were in flight
      // at the disconnect right after emitting `ready`; ours go after them.
      this.schedule();
    });

    sub.on('error', (err: Error) => {
      if (!this.subDown && !this.closed) this.log(`bus: subscriber connection to ${this.url}: ${err.message}`);
      this.subDown = true;
    });
    if (sharded) {
      sub.on('smessageBuffer', this.dispatch);
      // The sharded subscribers (one per master) are re-created and
      // resubscribed by ioredis after topology changes and node failures;
      // each time it says so with `subscribersReady`.
      sub.on('subscribersReady', () => {
        if (this.closed) return;
        this.subDown = false;
        setImmediate(this.fireResubscribe);
      });
    } else {
      sub.on('messageBuffer', this.dispatch);
      sub.on('close', () => {
        if (!this.subDown && !this.closed) this.log(`bus: lost the subscriber connection to ${this.url}; reconnecting`);
        this.subDown = true;
        this.subLost = true;
      });
      sub.on('ready', () => {
        if (this.closed || !this.subLost) return;
        this.log(`bus: subscriber reconnected to ${this.url}; resubscribing ${this.subs.size} channel(s)`);
        this.subDown = false;
        void this.resubscribe();
      });
    }
  }

  // ---- publishing ----------------------------------------------------------

  publish(channel: string, payload: Uint8Array): void {
    if (this.closed) return;
    const down = this.pub.status !== 'ready';
    if (down && (this.queue.length >= this.maxQueued || this.queuedBytes + payload.byteLength > this.maxQueuedBytes)) {
      if (this.dropped++ === 0) {
        this.log(
          `bus: Redis at ${this.url} unreachable and ${this.queue.length} publishes waiting; dropping further publishes until it is back`,
        );
      }
      return;
    }
    const buf = Buffer.isBuffer(payload)
      ? payload
      : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    this.queue.push({ channel, payload: buf });
    this.queuedBytes += buf.byteLength;
    if (!down) this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.closed || this.queue.length === 0) return;
    this.scheduled = true;
    setImmediate(this.flush);
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    if (this.queue.length === 0 || this.pub.status !== 'ready') return; // `ready` schedules again
    const batch = this.queue;
    this.queue = [];
    this.queuedBytes = 0;
    if (this.sharded) {
      // One tick of SPUBLISHes; autopipelining sends them as one pipeline per node.
      const cluster = this.pub as Cluster;
      let failed = 0;
      let first: Error | undefined;
      const fail = (err: Error) => {
        // A pipelined write command that gets MOVED/ASK is neither retried
        // nor does it refresh ioredis' slot map (only a lone command does):
        // refresh it here, or every later batch to those slots fails too.
        if (/^(MOVED|ASK) /.test(err.message)) this.refreshSlots(cluster);
        if (failed++ === 0) {
          first = err;
          // report once per batch, after the batch settled enough to count
          setImmediate(() => this.log(`bus: ${failed} of ${batch.length} publishes failed: ${first?.message}`));
        }
      };
      for (const { channel, payload } of batch) cluster.spublish(channel, payload).catch(fail);
      return;
    }
    const pipeline = (this.pub as Redis).pipeline();
    for (const { channel, payload } of batch) pipeline.publish(channel, payload);
    pipeline.exec().then(
      (results) => {
        const errors = (results ?? []).filter(([err]) => err);
        if (errors.length)
          this.log(`bus: ${errors.length} of ${batch.length} publishes failed: ${errors[0]![0]!.message}`);
      },
      (err: Error) => this.log(`bus: a batch of ${batch.length} publishes failed: ${err.message}`),
    );
  };

  private refreshingSlots = false;

  private refreshSlots(cluster: Cluster): void {
    if (this.refreshingSlots) return;
    this.refreshingSlots = true;
    cluster.refreshSlotsCache(() => {
      this.refreshingSlots = false;
    });
  }

  // ---- subscribing -----------------------------------------------------------

  private readonly dispatch = (channel: Buffer, message: Buffer): void => {
    const s = this.subs.get(channel.toString());
    if (!s) return;
    // A plain Uint8Array view (no copy), like the other Bus implementations hand out.
    const payload = new Uint8Array(message.buffer, message.byteOffset, message.byteLength);
    callHandlers(s.handlers, payload, (err) =>
      this.log(
        `bus: a handler of ${channel.toString()} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
      ),
    );
  };

  private redisSubscribe(channel: string): Promise<unknown> {
    return this.sharded ? this.sub.ssubscribe(channel) : this.sub.subscribe(channel);
  }

  private redisUnsubscribe(channel: string): Promise<unknown> {
    return this.sharded ? this.sub.sunsubscribe(channel) : this.sub.unsubscribe(channel);
  }

  async subscribe(channel: string, handler: BusHandler): Promise<() => Promise<void>> {
    if (this.closed) throw new Error('bus: closed');
    let s = this.subs.get(channel);
    if (!s) {
      const active = this.redisSubscribe(channel).then(() => undefined);
      const created: Subscription = { handlers: new Set(), active };
      s = created;
      this.subs.set(channel, created);
      // A failed SUBSCRIBE forgets the channel, so the next subscribe() retries it.
      active.catch(() => {
        if (this.subs.get(channel) === created) this.subs.delete(channel);
      });
    }
    // Wrap so the same function may subscribe twice and unsubscribe once.
    const h: BusHandler = (p) => handler(p);
    s.handlers.add(h);
    try {
      await s.active;
    } catch (err) {
      s.handlers.delete(h);
      throw new Error(`bus: cannot subscribe to ${channel}: ${err instanceof Error ? err.message : String(err)}`);
    }
    const mine = s;
    let done = false;
    return async () => {
      if (done) return;
      done = true;
      mine.handlers.delete(h);
      if (mine.handlers.size > 0 || this.subs.get(channel) !== mine) return;
      this.subs.delete(channel);
      if (this.closed) return;
      const p = this.redisUnsubscribe(channel).catch((err: Error) => {
        if (!this.closed) this.log(`bus: unsubscribe from ${channel} failed: ${err.message}`);
      });
      // Delivery stopped already (the handler is gone); wait for Redis only while it answers.
      if (this.sub.status === 'ready') await p;
    };
  }

  onResubscribe(handler: () => void): void {
    this.resubscribeHandlers.add(handler);
  }

  /** After a reconnect: subscribe every channel again, then tell the onResubscribe handlers. */
  private resubscribe(): Promise<void> {
    const run = async (): Promise<void> => {
      const channels = [...this.subs.keys()];
      try {
        if (channels.length) await (this.sub as Redis).subscribe(...channels);
      } catch (err) {
        // The connection dropped again; its next `ready` tries again.
        if (!this.closed) this.log(`bus: resubscribing failed: ${err instanceof Error ? err.message : String(err)}`);
        return;
      }
      this.fireResubscribe();
    };
    // Serialise: a `ready` during a resubscription runs another one after it.
    const next = (this.resubscribing ?? Promise.resolve()).then(run);
    this.resubscribing = next;
    return next;
  }

  private readonly fireResubscribe = (): void => {
    if (this.closed) return;
    for (const h of this.resubscribeHandlers) {
      try {
        h();
      } catch (err) {
        this.log(
          `bus: an onResubscribe handler failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
        );
      }
    }
  };

  // ---- closing ---------------------------------------------------------------

  async close(): Promise<void> {
    if (this.closed) return;
    // Send what is queued, if Redis is there to take it; QUIT waits for the replies.
    if (this.pub.status === 'ready') this.flush();
    this.closed = true;
    this.queue = [];
    this.queuedBytes = 0;
    this.subs.clear();
    this.resubscribeHandlers.clear();
    await Promise.all([end(this.pub), end(this.sub)]);
  }
}

/** QUIT when connected (bounded wait), else just drop the connection; never throws. */
async function end(client: Client): Promise<void> {
  if (client.status === 'end') return;
  if (client.status === 'ready') {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        client.quit(),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, 2000);
        }),
      ]);
    } catch {
      // fall through to disconnect
    } finally {
      clearTimeout(timer);
    }
  }
  client.disconnect();
}

/**
 * Connects both connections and returns the Bus once both are ready; throws
 * (and leaves nothing open) when Redis cannot be reached.
 */
export async function createRedisBus(opts: RedisBusOptions): Promise<Bus> {
  const log = opts.log ?? ((msg: string) => console.error(msg));
  const safeUrl = redact(opts.url);
  let pub: Client;
  let sub: Client;
  if (opts.cluster) {
    const { nodes, redisOptions } = clusterNodes(opts.url, 'bus');
    const base: ClusterOptions = {
      lazyConnect: true,
      redisOptions: { ...redisOptions, connectionName: 'fishchat-bus' },
    };
    pub = new Cluster(nodes, { ...base, enableOfflineQueue: false, enableAutoPipelining: true });
    sub = new Cluster(nodes, { ...base, shardedSubscribers: true });
  } else {
    const common: RedisOptions = { lazyConnect: true };
    pub = new Redis(opts.url, { ...common, connectionName: 'fishchat-bus-pub', enableOfflineQueue: false });
    sub = new Redis(opts.url, { ...common, connectionName: 'fishchat-bus-sub', autoResubscribe: false });
  }
  // Error listeners before connecting: ioredis reports unhandled errors itself otherwise.
  const startupError = (err: Error) => void err;
  pub.on('error', startupError);
  sub.on('error', startupError);
  const ready = Promise.all([whenReady(pub), whenReady(sub)]);
  try {
    pub.connect().catch(() => undefined);
    sub.connect().catch(() => undefined);
    await ready;
  } catch (err) {
    pub.disconnect();
    sub.disconnect();
    throw new Error(`bus: cannot connect to Redis at ${safeUrl}: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    pub.off('error', startupError);
    sub.off('error', startupError);
  }
  return new RedisBus(
    pub,
    sub,
    !!opts.cluster,
    safeUrl,
    log,
    opts.maxQueued ?? 10_000,
    opts.maxQueuedBytes ?? 64 * 1024 * 1024,
  );
}
