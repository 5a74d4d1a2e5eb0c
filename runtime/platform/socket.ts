/**
 * What the TcpSocket of every runtime shares: writes queued and handed over
 * once per event-loop turn, handlers set after the socket exists (data that
 * comes first is kept), and a handler that throws closing only its own
 * connection. Each runtime's adapter supplies how bytes reach the kernel.
 */
import type { TcpSocket } from './types.js';

/** A connect that gets no answer fails after this long. */
export const CONNECT_TIMEOUT_MS = 10_000;
/** After end(), a peer that does not read nor close is cut after this long. */
export const END_TIMEOUT_MS = 10_000;

const flushTurn = (socket: SocketBase): void => socket.flushQueued();

/** The empty write queue every idle socket shares (never written to: write() makes a queue of its own). */
export const NO_QUEUE: Uint8Array[] = Object.freeze([]) as unknown as Uint8Array[];

export abstract class SocketBase implements TcpSocket {
  /** written this turn, not yet handed to the kernel (NO_QUEUE when nothing is: set it back, never clear it) */
  protected queue: Uint8Array[] = NO_QUEUE;
  protected queued = 0;
  /** buffered went above 0 since the last onDrain call */
  private owing = false;
  private scheduled = false;
  protected ending = false;
  protected endTimer: ReturnType<typeof setTimeout> | undefined;
  protected isClosed = false;
  /** destroy() was called: nothing more is delivered */
  protected destroyed = false;
  private closeFired = false;
  /** data that arrived before onData was set, until its handler has run it */
  private early: Uint8Array[] | undefined;
  private dataHandler: ((chunk: Uint8Array) => void) | null = null;
  private closeHandler: (() => void) | null = null;
  private drainHandler: (() => void) | null = null;

  constructor(
    readonly remoteAddress: string,
    readonly remotePort: number,
  ) {}

  abstract get buffered(): number;
  abstract end(): void;
  /** Hands the queue to the kernel (called once per turn after writes). */
  protected abstract flush(): void;
  /** Closes the runtime's socket at once. */
  protected abstract terminate(): void;

  get closed(): boolean {
    return this.isClosed;
  }

  write(data: Uint8Array): void {
    if (this.isClosed || this.ending || data.length === 0) return;
    if (this.queue === NO_QUEUE) this.queue = [data];
    else this.queue.push(data);
    this.queued += data.length;
    this.owing = true;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(flushTurn, this);
    }
  }

  /** The turn's flush (called through the shared flushTurn: no closure per socket). */
  flushQueued(): void {
    this.scheduled = false;
    this.flush();
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.isClosed = true;
    this.queue = NO_QUEUE;
    this.queued = 0;
    this.terminate();
  }

  onData(handler: (chunk: Uint8Array) => void): void {
    const first = this.dataHandler === null;
    this.dataHandler = handler;
    if (!first || this.early === undefined) return;
    // Chunks that arrive before this runs join `early`, so order is kept.
    queueMicrotask(() => {
      const early = this.early ?? [];
      for (let i = 0; i < early.length && !this.destroyed; i++) this.call(this.dataHandler!, early[i]!);
      this.early = undefined;
    });
  }

  onClose(handler: () => void): void {
    this.closeHandler = handler;
    if (this.closeFired) queueMicrotask(handler);
  }

  onDrain(handler: () => void): void {
    this.drainHandler = handler;
  }

  /** The runtime got bytes from the peer. */
  protected received(chunk: Uint8Array): void {
    if (this.destroyed) return;
    if (this.dataHandler === null || this.early !== undefined) (this.early ??= []).push(chunk);
    else this.call(this.dataHandler, chunk);
  }

  /** Everything written so far reached the kernel: tell onDrain once. */
  protected drained(): void {
    if (!this.owing) return;
    this.owing = false;
    if (this.drainHandler) this.call(this.drainHandler);
  }

  /** The runtime's socket is closed (by either side): tell onClose once. */
  protected closedNow(): void {
    clearTimeout(this.endTimer);
    this.isClosed = true;
    this.queue = NO_QUEUE;
    this.queued = 0;
    if (this.closeFired) return;
    this.closeFired = true;
    if (this.closeHandler) this.call(this.closeHandler);
  }

  /** A handler that throws takes down its own connection, not the process. */
  protected call<A extends unknown[]>(fn: (...args: A) => void, ...args: A): void {
    try {
      fn(...args);
    } catch (err) {
      console.error('fishchat: a TCP socket handler threw; closing that connection:', err);
      this.destroy();
    }
  }
}
