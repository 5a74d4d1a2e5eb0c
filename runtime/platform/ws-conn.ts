/**
 * What the WebSocketConn of every runtime shares (as socket.ts is for TCP):
 * handlers set after the socket exists (messages that come first are kept),
 * the closed state and its one onClose, and the grace after which a close
 * that has not finished is cut. Each runtime's adapter supplies how a
 * message is sent, what is buffered, how the close starts and how a socket
 * is cut, and reports what its socket does with received / tooLarge /
 * drained / closedNow.
 */
import type { WebSocketConn } from './types.js';

/** A closing socket that has not finished its close handshake within this is cut, ms. */
export const WS_CLOSE_GRACE_MS = 2000;

export abstract class WsConnBase implements WebSocketConn {
  private messageHandler: ((data: Uint8Array | string) => void) | undefined;
  /** messages that arrived before onMessage was set (copies: a runtime may reuse its buffer) */
  private early: (Uint8Array | string)[] | undefined;
  private tooLargeHandler: (() => void) | undefined;
  private closeHandler: (() => void) | undefined;
  private drainHandler: (() => void) | undefined;
  private isClosed = false;
  private grace: ReturnType<typeof setTimeout> | undefined;

  constructor(readonly remoteAddress: string) {}

  abstract send(data: Uint8Array): void;
  abstract get buffered(): number;
  abstract terminate(): void;
  /** Starts the runtime's close handshake with `code`. */
  protected abstract startClose(code: number, reason?: string): void;

  get closed(): boolean {
    return this.isClosed;
  }

  close(code: number, reason?: string): void {
    if (this.isClosed) return;
    this.startClose(code, reason);
    this.grace ??= setTimeout(() => this.terminate(), WS_CLOSE_GRACE_MS);
    this.grace.unref?.();
  }

  onMessage(handler: (data: Uint8Array | string) => void): void {
    this.messageHandler = handler;
    const kept = this.early;
    this.early = undefined;
    if (kept) for (const m of kept) handler(m);
  }

  onTooLarge(handler: () => void): void {
    this.tooLargeHandler = handler;
  }

  onClose(handler: () => void): void {
    this.closeHandler = handler;
    if (this.isClosed) handler();
  }

  onDrain(handler: () => void): void {
    this.drainHandler = handler;
  }

  // ---- what the adapter reports -------------------------------------------------

  /** A message arrived (a view valid only during the call). */
  protected received(m: Uint8Array | string): void {
    if (this.isClosed) return;
    if (this.messageHandler) this.messageHandler(m);
    else (this.early ??= []).push(typeof m === 'string' ? m : m.slice());
  }

  /** A message over the route's maxMessage arrived and was not read. */
  protected tooLarge(): void {
    this.tooLargeHandler?.();
  }

  /** What was buffered has been sent. */
  protected drained(): void {
    if (!this.isClosed) this.drainHandler?.();
  }

  /** The socket is closed, by either side. */
  protected closedNow(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    clearTimeout(this.grace);
    this.closeHandler?.();
  }
}
