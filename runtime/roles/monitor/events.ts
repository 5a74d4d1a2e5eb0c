/**
 * GET /events: server-sent events of what the monitor hears on the bus
 * (`event: beat|client-status|topic-status`, `data: <json>`).
 *
 * Each reader has its own bounded queue: the bus side only pushes into it and
 * never waits; a slow reader loses its oldest events (and is told so in a
 * comment) instead of growing memory. A comment goes out every HEARTBEAT_MS
 * when there is nothing else, so proxies and readers see the stream is alive.
 */
import type { Context } from 'hono';
import { streamSSE } from 'hono/streaming';

export type EventName = 'beat' | 'client-status' | 'topic-status';

export const HEARTBEAT_MS = 15_000;
/** Events queued per reader before the oldest are dropped. */
export const MAX_QUEUE = 1000;

interface Taken {
  text: string;
  dropped: number;
}

/** One reader: a bounded queue the bus side fills and the stream side drains. */
class Reader {
  private queue: string[] = [];
  private dropped = 0;
  private wake: (() => void) | undefined;
  closed = false;

  constructor(private readonly max: number) {}

  push(chunk: string): void {
    if (this.closed) return;
    if (this.queue.length >= this.max) {
      this.queue.shift();
      this.dropped++;
    }
    this.queue.push(chunk);
    this.wake?.();
  }

  /** What is queued (waiting up to `ms` for something); '' on timeout; null once closed. */
  async take(ms: number): Promise<Taken | null> {
    if (!this.closed && this.queue.length === 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, ms);
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.wake = done;
      });
      this.wake = undefined;
    }
    if (this.closed) return null;
    const out = { text: this.queue.join(''), dropped: this.dropped };
    this.queue = [];
    this.dropped = 0;
    return out;
  }

  close(): void {
    this.closed = true;
    this.queue = [];
    this.wake?.();
  }
}

export class EventHub {
  private readonly readers = new Set<Reader>();

  constructor(
    private readonly heartbeatMs = HEARTBEAT_MS,
    private readonly maxQueue = MAX_QUEUE,
  ) {}

  get size(): number {
    return this.readers.size;
  }

  /** Sends an event to every reader; the JSON is made once, only when someone reads. */
  publish(event: EventName, value: unknown): void {
    if (this.readers.size === 0) return;
    let data: string;
    try {
      data = JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? Number(v) : v));
    } catch {
      return;
    }
    if (data === undefined) return;
    // JSON.stringify never writes a raw line break, so the data is one `data:` line.
    const chunk = `event: ${event}\ndata: ${data}\n\n`;
    for (const r of this.readers) r.push(chunk);
  }

  /** Ends every stream (on stop). */
  closeAll(): void {
    for (const r of this.readers) r.close();
    this.readers.clear();
  }

  /** The streaming response of one reader; cleans up when the client goes away. */
  serve(c: Context): Response {
    return streamSSE(c, async (stream) => {
      const reader = new Reader(this.maxQueue);
      this.readers.add(reader);
      const gone = () => reader.close();
      // Hono aborts the stream when the response body is cancelled (Node
      // adapter, Bun); the request signal covers runtimes that only abort that.
      stream.onAbort(gone);
      const signal = c.req.raw.signal;
      signal.addEventListener('abort', gone, { once: true });
      try {
        // Something at once, so the client sees the response start.
        await stream.write(': fishchat monitor events\n\n');
        for (;;) {
          const taken = await reader.take(this.heartbeatMs);
          if (taken === null || stream.aborted || stream.closed) break;
          let text = taken.text;
          if (taken.dropped > 0) text = `: ${taken.dropped} events dropped: this reader is too slow\n\n` + text;
          if (text === '') text = ': heartbeat\n\n';
          // One write per batch; it waits while the client is slow, and the queue absorbs (and bounds) the rest.
          await stream.write(text);
        }
      } finally {
        reader.close();
        this.readers.delete(reader);
        signal.removeEventListener('abort', gone);
      }
    });
  }
}
