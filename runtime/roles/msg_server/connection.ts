/**
 * One client connection of a msg_server: its session state, the ordered
 * request queue, the send rate, coalesced and paced writes out, and its push
 * cursor. It knows its transport only as a duplex of maps (transport.ts).
 */
import { encodeFrame, type ErrorCode, type WireValue } from '../../protocol/index.js';
import { PushCursor, type CursorHooks } from './cursor.js';
import type { CloseReason, Transport } from './transport.js';

export interface ConnHooks extends CursorHooks {
  /** a write left more than maxOutBuffer unsent */
  onSlow(conn: Conn): void;
}

/** Per-connection limits (Settings), fixed for the connection's life (one object shared by the connections of a msg_server). */
export interface ConnLimits {
  /** unsent bytes after which a live push kicks the connection `slow` */
  maxOutBuffer: number;
  /** send/topic_send token bucket: refill per second, capacity */
  sendRate: { rate: number; burst: number };
  /** how long a paced writer (backlog, sync, gap fill) waits for the client to read before kicking it `slow`, ms */
  drainTimeout: number;
}

/**
 * Memory: an idle logged-in connection is this object, its PushCursor, its
 * transport and the socket under it. The hooks and limits are shared by
 * every connection of the msg_server; arrays that are usually empty
 * (`drainWaiters`, the cursor's held pushes) are made when first needed.
 */
export class Conn {
  user: string | undefined;
  device = 'default';
  push = true;
  gen = 0;
  readonly cursor: PushCursor;
  lastSeen = Date.now();
  /** a request is being handled; later ones wait in `requests` */
  busy = false;
  requests: Uint8Array[] = [];
  /** bytes of the frames waiting in `requests` */
  queuedBytes = 0;
  /** input that could not be framed, queued after the requests of its read */
  badInput: 'bad_frame' | 'frame_too_large' | undefined;
  /** the transport's words for badInput, when it had some */
  badWhy: string | undefined;
  closing = false;
  /** send token bucket: tokens left as of `tokenAt` (ms) */
  private tokens: number;
  private tokenAt = Date.now();
  /** closes the connection if no login succeeds in time (cleared at login and close) */
  loginTimer: ReturnType<typeof setTimeout> | undefined;
  /** paced writers waiting for the client to read (see room) */
  private drainWaiters: (() => void)[] | undefined;

  constructor(
    readonly transport: Transport,
    private readonly hooks: ConnHooks,
    private readonly limits: ConnLimits,
  ) {
    this.tokens = limits.sendRate.burst;
    this.cursor = new PushCursor(this, hooks);
  }

  /** Takes one send token; false when the bucket is empty (the request is `rate_limited`). */
  takeToken(now: number): boolean {
    const { rate, burst } = this.limits.sendRate;
    const elapsed = now - this.tokenAt;
    let t = this.tokens;
    if (elapsed > 0) {
      t = Math.min(burst, t + (elapsed * rate) / 1000);
      this.tokenAt = now;
    }
    if (t < 1) {
      this.tokens = t;
      return false;
    }
    this.tokens = t - 1;
    return true;
  }

  /**
   * For writers that can wait (login backlog, sync, gap fill): resolves at
   * once when `len` more bytes fit under half of maxOutBuffer, else when the
   * client has read what is queued. A client that reads nothing for
   * `drainTimeout` is kicked `slow`; its messages stay in its inbox.
   */
  room(len: number): Promise<void> | undefined {
    const queued = this.transport.buffered;
    // Paced writers fill the buffer up to half of maxOutBuffer, leaving the rest for live pushes.
    if (queued === 0 || queued + len <= this.limits.maxOutBuffer >>> 1 || this.closing) return undefined;
    return new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        this.hooks.onSlow(this);
        this.wakeDrain();
      }, this.limits.drainTimeout);
      t.unref?.();
      (this.drainWaiters ??= []).push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** The transport drained or closed: paced writers go on (or see `closing`). */
  wakeDrain(): void {
    const w = this.drainWaiters;
    if (w === undefined) return;
    this.drainWaiters = undefined;
    for (const f of w) f();
  }

  get loggedIn(): boolean {
    return this.user !== undefined;
  }

  write(frame: Uint8Array): void {
    const t = this.transport;
    if (t.closed) return;
    t.write(frame);
    if (t.buffered > this.limits.maxOutBuffer) this.hooks.onSlow(this);
  }

  reply(fields: Record<string, WireValue | undefined>): void {
    this.write(encodeFrame(fields));
  }

  error(code: ErrorCode, message: string, rid?: number): void {
    this.write(encodeFrame({ op: 'error', rid, code, message }));
  }

  /** Closes after what is queued is sent; nothing more is handled. */
  close(reason: CloseReason): void {
    this.closing = true;
    this.transport.close(reason);
  }

  /** Sends a kick and closes (the transport cuts the connection if the close does not finish in time). */
  kick(reason: string): void {
    if (this.closing) return;
    this.closing = true;
    this.transport.write(encodeFrame({ op: 'kick', reason }));
    this.transport.close({ why: 'kick', reason });
    this.wakeDrain();
  }
}
