/**
 * The in-process Bus for embedded mode: every role in one process.
 * Deliveries are asynchronous (as over a network) and batched: everything
 * published in one event-loop turn is handed out in one later turn, in
 * publish order.
 */
import { type Bus, type BusHandler, callHandlers } from './bus.js';

export class MemoryBus implements Bus {
  private readonly subs = new Map<string, Set<BusHandler>>();
  private queue: { channel: string; payload: Uint8Array }[] = [];
  private scheduled = false;
  private closed = false;

  publish(channel: string, payload: Uint8Array): void {
    if (this.closed) return;
    this.queue.push({ channel, payload });
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    for (const { channel, payload } of batch) {
      const handlers = this.subs.get(channel);
      if (handlers)
        callHandlers(handlers, payload, (err) => console.error(`bus: a handler of ${channel} failed:`, err));
    }
  };

  async subscribe(channel: string, handler: BusHandler): Promise<() => Promise<void>> {
    let set = this.subs.get(channel);
    if (!set) this.subs.set(channel, (set = new Set()));
    // Wrap so the same function may subscribe twice and unsubscribe once.
    const h: BusHandler = (p) => handler(p);
    set.add(h);
    return async () => {
      const s = this.subs.get(channel);
      if (!s) return;
      s.delete(h);
      if (s.size === 0) this.subs.delete(channel);
    };
  }

  onResubscribe(_handler: () => void): void {
    // An in-process bus never loses its subscriptions.
  }

  async close(): Promise<void> {
    this.closed = true;
    this.queue = [];
    this.subs.clear();
  }
}

export function createMemoryBus(): Bus {
  return new MemoryBus();
}
