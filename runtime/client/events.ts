/**
 * A small client for server-sent events (the monitor's GET /events), built on
 * fetch and a stream reader only, so it runs on Node, Bun and Deno alike.
 *
 * - `SseParser` turns text chunks into events (`event:`, `data:`, `id:`
 *   fields; `:` comments; a blank line ends an event; LF, CRLF or CR lines),
 *   with eventsource-parser.
 * - `EventStream` keeps one stream open: `open()` resolves once the first
 *   response is there (and rejects when it is not, so a CLI can say so and
 *   exit); afterwards a dropped stream is reconnected with backoff until
 *   `close()`. A stream silent for `idleTimeoutMs` (the monitor sends a
 *   comment every 15 s) is taken as dead and reconnected. Headers may be a
 *   function, so each attempt can carry a freshly minted token.
 */
import { createParser, type EventSourceMessage, type EventSourceParser } from 'eventsource-parser';
import { Backoff, type BackoffSettings } from './backoff.js';

export interface SseEvent {
  /** the `event:` field; "message" when there was none */
  event: string;
  /** the `data:` lines, joined with "\n" */
  data: string;
  /** the last `id:` seen on the stream, if any */
  id?: string;
}

/**
 * Incremental SSE parser: eventsource-parser does the parsing; this keeps the
 * last event id across events (the spec's "last event ID string", which the
 * library hands on per event only) and returns each chunk's events. An `id:`
 * in a block without `data:` is dropped with the block (the monitor sends no ids).
 */
export class SseParser {
  private readonly parser: EventSourceParser;
  private out: SseEvent[] = [];
  /** last event id, kept across events as the spec says */
  lastEventId: string | undefined;

  constructor() {
    // `retry:` and unknown fields go to onError, which is left out: ignored.
    this.parser = createParser({ onEvent: (m) => this.onEvent(m) });
  }

  /** Feeds a chunk of text; returns the events it completed. */
  feed(chunk: string): SseEvent[] {
    this.parser.feed(chunk);
    const out = this.out;
    this.out = [];
    return out;
  }

  /** Forgets a half-read event (after a reconnect). */
  reset(): void {
    this.parser.reset();
    this.out = [];
  }

  private onEvent(m: EventSourceMessage): void {
    if (m.id !== undefined) this.lastEventId = m.id;
    const e: SseEvent = { event: m.event || 'message', data: m.data };
    if (this.lastEventId !== undefined) e.id = this.lastEventId;
    this.out.push(e);
  }
}

/** The first connection failed: `status` is set when the server answered (with `body`), else it was the network. */
export class EventStreamError extends Error {
  override name = 'EventStreamError';
  constructor(
    message: string,
    readonly status?: number,
    readonly body?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface EventStreamOptions {
  url: string;
  /** request headers, or a function called before every attempt (fresh tokens) */
  headers?: Record<string, string> | (() => Record<string, string>);
  /** reconnect delays (default base 1 s, max 15 s, full jitter; the first retry is immediate) */
  backoff?: BackoffSettings;
  /** no byte for this long and the stream is taken as dead (default 45 s) */
  idleTimeoutMs?: number;
  /** how long a connection attempt may take until the response starts (default 5 s) */
  connectTimeoutMs?: number;
  /** for tests */
  fetch?: typeof fetch;
}

export interface EventStreamHandlers {
  event: (e: SseEvent) => void;
  /** the stream is open; `reconnect` is false the first time */
  open?: (info: { reconnect: boolean }) => void;
  /** the stream dropped (or an attempt failed); the next attempt is in `retryInMs` */
  disconnect?: (info: { reason: string; retryInMs: number; attempt: number }) => void;
}

export type EventStreamState = 'idle' | 'connecting' | 'open' | 'waiting' | 'closed';

export const DEFAULT_SSE_BACKOFF: BackoffSettings = { base: 1000, max: 15_000 };

export class EventStream {
  private readonly backoff: Backoff;
  private readonly parser = new SseParser();
  private controller: AbortController | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private wakeRetry: (() => void) | undefined;
  private opened = false;
  #state: EventStreamState = 'idle';

  constructor(
    private readonly options: EventStreamOptions,
    private readonly handlers: EventStreamHandlers,
  ) {
    this.backoff = new Backoff(options.backoff ?? DEFAULT_SSE_BACKOFF);
  }

  get state(): EventStreamState {
    return this.#state;
  }

  /**
   * Connects. Resolves when the first response has started (HTTP 2xx) and
   * keeps the stream, reconnecting, until close(); rejects with an
   * EventStreamError when that first attempt fails (nothing is retried then).
   */
  open(): Promise<void> {
    if (this.#state !== 'idle') return Promise.reject(new Error('EventStream.open() was already called'));
    return new Promise<void>((resolve, reject) => {
      void this.loop(resolve, reject);
    });
  }

  /** Ends the stream and any pending reconnect. */
  close(): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.controller?.abort();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.wakeRetry?.();
  }

  /** (a method, so TypeScript does not narrow the state across awaits) */
  private isClosed(): boolean {
    return this.#state === 'closed';
  }

  private async loop(resolve: () => void, reject: (err: Error) => void): Promise<void> {
    let first = true;
    while (!this.isClosed()) {
      let reason: string;
      try {
        reason = await this.attempt(() => {
          if (first) resolve();
        });
      } catch (err) {
        if (first) {
          this.#state = 'closed';
          reject(err instanceof Error ? err : new Error(String(err)));
          return;
        }
        reason = err instanceof Error ? err.message : String(err);
      }
      first = false;
      if (this.isClosed()) return;
      const retryInMs = this.backoff.next();
      this.#state = 'waiting';
      try {
        this.handlers.disconnect?.({ reason, retryInMs, attempt: this.backoff.attempt });
      } catch {
        // a handler's failure must not stop the stream
      }
      await new Promise<void>((r) => {
        this.wakeRetry = r;
        this.retryTimer = setTimeout(r, retryInMs);
      });
      this.wakeRetry = undefined;
      this.retryTimer = undefined;
    }
  }

  /**
   * One connection: resolves with why it ended (the stream ended or broke);
   * throws an EventStreamError when it never opened.
   */
  private async attempt(onOpen: () => void): Promise<string> {
    this.#state = 'connecting';
    const controller = new AbortController();
    this.controller = controller;
    const headers: Record<string, string> = { accept: 'text/event-stream', ...resolveHeaders(this.options.headers) };
    if (this.parser.lastEventId !== undefined) headers['last-event-id'] = this.parser.lastEventId;
    const connectMs = this.options.connectTimeoutMs ?? 5000;
    let timedOut = false;
    const connectTimer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, connectMs);
    const doFetch = this.options.fetch ?? fetch;
    let res: Response;
    try {
      res = await doFetch(this.options.url, { headers, signal: controller.signal });
    } catch (err) {
      if (timedOut)
        throw new EventStreamError(`no answer within ${connectMs / 1000} s`, undefined, undefined, { cause: err });
      throw new EventStreamError(networkReason(err), undefined, undefined, { cause: err });
    } finally {
      clearTimeout(connectTimer);
    }
    if (!res.ok || !res.body) {
      const body = await res.text().catch(() => '');
      throw new EventStreamError(`HTTP ${res.status}${res.body ? '' : ' without a body'}`, res.status, body);
    }

    this.parser.reset();
    this.#state = 'open';
    const reconnect = this.opened;
    this.opened = true;
    this.backoff.reset();
    onOpen();
    try {
      this.handlers.open?.({ reconnect });
    } catch {
      // ignore handler failures
    }

    const idleMs = this.options.idleTimeoutMs ?? 45_000;
    let idle = false;
    let idleTimer: ReturnType<typeof setTimeout> | undefined;
    const arm = () => {
      if (idleTimer) clearTimeout(idleTimer);
      idleTimer = setTimeout(() => {
        idle = true;
        controller.abort();
      }, idleMs);
    };
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    try {
      arm();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return 'the server ended the stream';
        arm();
        for (const e of this.parser.feed(decoder.decode(value, { stream: true }))) {
          if (this.isClosed()) return 'closed';
          try {
            this.handlers.event(e);
          } catch {
            // ignore handler failures
          }
        }
      }
    } catch (err) {
      if (this.isClosed()) return 'closed';
      if (idle) return `no data for ${Math.round(idleMs / 1000)} s`;
      return networkReason(err);
    } finally {
      if (idleTimer) clearTimeout(idleTimer);
      controller.abort();
      try {
        reader.releaseLock();
      } catch {
        // already released, or a read is still pending on an aborted body
      }
    }
  }
}

function resolveHeaders(h: EventStreamOptions['headers']): Record<string, string> {
  if (!h) return {};
  return typeof h === 'function' ? h() : h;
}

/** "connection refused", "ECONNRESET", "terminated", ... */
export function networkReason(err: unknown): string {
  const e = err as
    | { name?: string; message?: string; code?: string; cause?: { code?: string; message?: string } }
    | undefined;
  const code = e?.cause?.code ?? e?.code;
  if (code === 'ECONNREFUSED' || code === 'ConnectionRefused') return 'connection refused';
  if (code) return code;
  if (e?.name === 'AbortError' || e?.name === 'TimeoutError') return 'aborted';
  return e?.cause?.message ?? e?.message ?? String(err);
}
