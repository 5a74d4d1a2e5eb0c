/**
 * A Bus on another thread (embedded mode on several threads,
 * runtime/cluster/embedded.ts): publishes and subscriptions go over a thread
 * link (runtime/store/port/link.ts: batched per turn, in order with the
 * store calls of the same thread) to the thread that holds the in-process
 * bus (./memory.ts); BusRelay there publishes them on it and forwards what
 * this thread subscribed to. Deliveries stay asynchronous and, per
 * publisher, in publish order, as on the in-process bus. What this thread
 * publishes on a channel it subscribed to itself is delivered here (in a
 * later turn) and not sent back: two msg_servers on one worker push to each
 * other without a round trip through the main thread.
 */
import { type Bus, type BusHandler, callHandlers } from './bus.js';

/** The side of a thread link a PortBus (and a BusRelay) needs. */
export interface BusLink {
  call(method: string, args: unknown[]): Promise<unknown>;
  event(kind: string, a?: unknown, b?: unknown, c?: unknown): void;
}

/** Link call names and event kinds of the bus. */
export const BUS_SUBSCRIBE = 'bus.subscribe';
export const BUS_UNSUBSCRIBE = 'bus.unsubscribe';
export const BUS_PUBLISH = 'bus.publish';
export const BUS_DELIVER = 'bus.deliver';

export class PortBus implements Bus {
  private readonly subs = new Map<string, Set<BusHandler>>();
  private closed = false;
  private local: { channel: string; payload: Uint8Array }[] = [];
  private localScheduled = false;

  constructor(private readonly link: BusLink) {}

  publish(channel: string, payload: Uint8Array): void {
    if (this.closed) return;
    const here = this.subs.has(channel);
    // the relay delivers to every other subscriber; `here` tells it this thread has it already
    this.link.event(BUS_PUBLISH, channel, payload, here);
    if (!here) return;
    this.local.push({ channel, payload });
    if (!this.localScheduled) {
      this.localScheduled = true;
      setImmediate(this.flushLocal);
    }
  }

  private readonly flushLocal = (): void => {
    this.localScheduled = false;
    const batch = this.local;
    this.local = [];
    for (const { channel, payload } of batch) this.deliver(channel, payload);
  };

  /** A BUS_DELIVER event of the link: to this thread's handlers of the channel. */
  deliver(channel: string, payload: Uint8Array): void {
    const handlers = this.subs.get(channel);
    if (handlers) callHandlers(handlers, payload, (err) => console.error(`bus: a handler of ${channel} failed:`, err));
  }

  async subscribe(channel: string, handler: BusHandler): Promise<() => Promise<void>> {
    if (this.closed) throw new Error('the bus is closed');
    let set = this.subs.get(channel);
    const first = set === undefined;
    if (!set) this.subs.set(channel, (set = new Set()));
    // Wrap so the same function may subscribe twice and unsubscribe once.
    const h: BusHandler = (p) => handler(p);
    set.add(h);
    if (first) await this.link.call(BUS_SUBSCRIBE, [channel]);
    return async () => {
      const s = this.subs.get(channel);
      if (!s?.delete(h)) return;
      if (s.size > 0) return;
      this.subs.delete(channel);
      if (!this.closed) await this.link.call(BUS_UNSUBSCRIBE, [channel]).catch(() => {});
    };
  }

  onResubscribe(_handler: () => void): void {
    // The link never loses its subscriptions (one process).
  }

  async close(): Promise<void> {
    this.closed = true;
    this.subs.clear();
  }
}

/**
 * The in-process bus's side of one thread's PortBus: publishes its
 * publishes, and forwards to it what it subscribed to (once per channel,
 * however many handlers it has there).
 */
export class BusRelay {
  private readonly unsubs = new Map<string, Promise<() => Promise<void>>>();
  /** payloads the thread published and delivered to itself: not sent back to it */
  private readonly delivered = new WeakSet<Uint8Array>();

  constructor(
    private readonly bus: Bus,
    private readonly link: BusLink,
  ) {}

  /** A link call, if it is one of the bus's: its answer; else undefined. */
  call(method: string, args: unknown[]): Promise<unknown> | undefined {
    if (method === BUS_SUBSCRIBE) {
      const channel = String(args[0]);
      let sub = this.unsubs.get(channel);
      if (sub === undefined) {
        sub = this.bus.subscribe(channel, (payload) => {
          if (!this.delivered.has(payload)) this.link.event(BUS_DELIVER, channel, payload);
        });
        this.unsubs.set(channel, sub);
      }
      return sub.then(() => undefined);
    }
    if (method === BUS_UNSUBSCRIBE) {
      const channel = String(args[0]);
      const sub = this.unsubs.get(channel);
      this.unsubs.delete(channel);
      return sub === undefined ? Promise.resolve() : sub.then((unsub) => unsub());
    }
    return undefined;
  }

  /** A link event, if it is one of the bus's: true when handled. `here`: the thread delivered it to itself. */
  event(kind: string, a: unknown, b: unknown, here?: unknown): boolean {
    if (kind !== BUS_PUBLISH) return false;
    if (typeof a === 'string' && b instanceof Uint8Array) {
      if (here === true) this.delivered.add(b);
      this.bus.publish(a, b);
    }
    return true;
  }

  /** Drops every subscription of the thread (it stopped). */
  async close(): Promise<void> {
    const subs = [...this.unsubs.values()];
    this.unsubs.clear();
    for (const s of subs) await (await s)().catch(() => {});
  }
}
