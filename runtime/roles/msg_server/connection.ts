/**
 * One client connection of a msg_server: framing in, coalesced writes out,
 * the ordered request queue, and the push cursor (DESIGN.md "Push cursor per
 * connection").
 */
import { encodeCbor, encodeFrame, FrameDecoder, RawCbor, type ErrorCode, type WireValue } from '../../protocol/index.js';
import type { TcpSocket } from '../../platform/types.js';
import type { StoredMessage } from '../../store/store.js';

/** A topic message's fields but `seq`, encoded once per fan-out: each member's frame adds only its seq. */
export class TopicFrame {
  private readonly rest: Uint8Array;

  constructor(m: { mid: string; from: string; topic: string; tseq: number; body: Uint8Array; ts: number }) {
    const f = encodeFrame({ op: 'msg', mid: m.mid, from: m.from, topic: m.topic, tseq: m.tseq, body: new RawCbor(m.body), ts: m.ts });
    // f = length(4) | map head (7 entries, 0xa7) | entries
    this.rest = f.slice(5);
  }

  forSeq(seq: number): Uint8Array {
    const seqItem = encodeCbor(seq);
    const len = 1 + this.rest.length + SEQ_KEY.length + seqItem.length;
    const out = new Uint8Array(4 + len);
    new DataView(out.buffer).setUint32(0, len);
    out[4] = 0xa8; // 8 entries: seq last
    out.set(this.rest, 5);
    out.set(SEQ_KEY, 5 + this.rest.length);
    out.set(seqItem, 5 + this.rest.length + SEQ_KEY.length);
    return out;
  }
}
const SEQ_KEY = encodeCbor('seq');

/** A message as pushed: a stored message, maybe with its encoded frame or its topic template. */
export type PushMessage = StoredMessage & { frame?: Uint8Array; tpl?: TopicFrame };

/** The frame of a pushed (or synced) message; cached on the message so one encode serves every connection. */
export function msgFrame(m: PushMessage, rid?: number): Uint8Array {
  if (rid === undefined && m.frame) return m.frame;
  if (rid === undefined && m.tpl) return (m.frame = m.tpl.forSeq(m.seq));
  const fields: Record<string, WireValue | undefined> =
    m.topic === undefined
      ? { op: 'msg', rid, seq: m.seq, mid: m.mid, from: m.from, to: m.to, body: new RawCbor(m.body), ts: m.ts }
      : { op: 'msg', rid, seq: m.seq, mid: m.mid, from: m.from, topic: m.topic, tseq: m.tseq, body: new RawCbor(m.body), ts: m.ts };
  const frame = encodeFrame(fields);
  if (rid === undefined) m.frame = frame;
  return frame;
}

export interface ConnHooks {
  /** reads inbox messages after `after` (at most `limit`) for the push cursor's gap filling */
  readInbox(user: string, after: number, limit: number): Promise<StoredMessage[]>;
  onPushed(n: number): void;
  /** a write left more than maxOutBuffer unsent */
  onSlow(conn: Conn): void;
}

const FILL_PAGE = 1000;

/** Per-connection limits (Settings), fixed for the connection's life. */
export interface ConnLimits {
  maxFrame: number;
  /** unsent bytes after which a live push kicks the connection `slow` */
  maxOutBuffer: number;
  /** send/topic_send token bucket: refill per second, capacity */
  sendRate: { rate: number; burst: number };
  /** how long a paced writer (backlog, sync, gap fill) waits for the client to read before kicking it `slow`, ms */
  drainTimeout: number;
}

export class Conn {
  readonly decoder: FrameDecoder;
  user: string | undefined;
  device = 'default';
  push = true;
  gen = 0;
  /** the push cursor: the next seq this connection must be sent */
  next = 0;
  lastSeen = Date.now();
  /** a request is being handled; later ones wait in `requests` */
  busy = false;
  requests: Uint8Array[] = [];
  /** bytes of the frames waiting in `requests` */
  queuedBytes = 0;
  closing = false;
  /** pushes wait here while the cursor fills a gap from the store */
  private filling = false;
  private held: StoredMessage[] = [];
  private fillTarget = 0;
  /** send token bucket: tokens left as of `tokenAt` (ms) */
  private tokens: number;
  private tokenAt = Date.now();
  /** closes the connection if no login succeeds in time (cleared at login and close) */
  loginTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly maxOutBuffer: number;
  /** paced writers fill the buffer up to here, leaving the rest for live pushes */
  private readonly paceAt: number;
  private drainWaiters: (() => void)[] = [];

  constructor(
    readonly sock: TcpSocket,
    private readonly hooks: ConnHooks,
    private readonly limits: ConnLimits,
  ) {
    this.decoder = new FrameDecoder(limits.maxFrame);
    this.maxOutBuffer = limits.maxOutBuffer;
    this.paceAt = limits.maxOutBuffer >>> 1;
    this.tokens = limits.sendRate.burst;
    sock.onDrain(() => this.wakeDrain());
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
    const queued = this.sock.buffered;
    if (queued === 0 || queued + len <= this.paceAt || this.closing) return undefined;
    return new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        this.hooks.onSlow(this);
        this.wakeDrain();
      }, this.limits.drainTimeout);
      t.unref?.();
      this.drainWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** The socket drained or closed: paced writers go on (or see `closing`). */
  wakeDrain(): void {
    if (this.drainWaiters.length === 0) return;
    const w = this.drainWaiters;
    this.drainWaiters = [];
    for (const f of w) f();
  }

  get loggedIn(): boolean {
    return this.user !== undefined;
  }

  write(frame: Uint8Array): void {
    if (this.sock.closed) return;
    this.sock.write(frame);
    if (this.sock.buffered > this.maxOutBuffer) this.hooks.onSlow(this);
  }

  reply(fields: Record<string, WireValue | undefined>): void {
    this.write(encodeFrame(fields));
  }

  error(code: ErrorCode, message: string, rid?: number): void {
    this.write(encodeFrame({ op: 'error', rid, code, message }));
  }

  /** Sends a kick and closes (the socket is destroyed if the close does not finish in time). */
  kick(reason: string): void {
    if (this.closing) return;
    this.closing = true;
    this.sock.write(encodeFrame({ op: 'kick', reason }));
    this.sock.end();
    const t = setTimeout(() => this.sock.destroy(), 2000);
    t.unref?.();
    this.wakeDrain();
  }

  /**
   * Starts the cursor at `next` and holds pushes until `release()`: used at
   * login while the backlog is read and sent.
   */
  hold(next: number): void {
    this.next = next;
    this.filling = true;
  }

  /** Ends a hold: sends what was held, in order, filling any gap from the store. */
  release(next: number): void {
    this.next = Math.max(this.next, next);
    this.filling = false;
    const held = this.held;
    this.held = [];
    for (const m of held.sort((a, b) => a.seq - b.seq)) this.pushMsg(m);
  }

  /** A push by any path (local, routed, repeated, late): sent once, in seq order. */
  pushMsg(m: StoredMessage): void {
    if (!this.push || this.closing || this.user === undefined) return;
    if (this.filling) {
      if (m.seq >= this.next) {
        this.held.push(m);
        if (m.seq > this.fillTarget) this.fillTarget = m.seq;
      }
      return;
    }
    if (m.seq < this.next) return;
    if (m.seq === this.next) {
      this.write(msgFrame(m));
      this.next++;
      this.hooks.onPushed(1);
      return;
    }
    this.held.push(m);
    void this.fill(m.seq);
  }

  /** Makes sure every message up to `target` has been sent (used by pushes with a gap and by ping). */
  async fill(target: number): Promise<void> {
    if (target > this.fillTarget) this.fillTarget = target;
    if (this.filling || !this.push || this.user === undefined) return;
    if (this.fillTarget < this.next) return;
    this.filling = true;
    const user = this.user;
    let failed = false;
    try {
      while (this.next <= this.fillTarget && !this.closing) {
        const want = Math.min(FILL_PAGE, this.fillTarget - this.next + 1);
        const page = await this.hooks.readInbox(user, this.next - 1, want);
        let n = 0;
        for (const m of page) {
          if (m.seq < this.next) continue;
          const f = msgFrame(m);
          const wait = this.room(f.length);
          if (wait) await wait;
          if (this.closing) break;
          // After a trimmed range the first message kept is the next one there is.
          this.write(f);
          this.next = m.seq + 1;
          n++;
        }
        this.hooks.onPushed(n);
        if (n === 0) break;
      }
    } catch {
      failed = true;
    } finally {
      this.filling = false;
      const held = this.held;
      this.held = [];
      held.sort((a, b) => a.seq - b.seq);
      for (const m of held) {
        if (m.seq < this.next) continue;
        if (failed && m.seq > this.next) {
          this.held.push(m);
          continue;
        }
        // In order, or past a range the store no longer has.
        this.write(msgFrame(m));
        this.next = m.seq + 1;
        this.hooks.onPushed(1);
      }
      if (this.held.length && !this.closing) {
        // The store was unavailable: try again shortly (pings retry too).
        const top = this.held[this.held.length - 1]!.seq;
        setTimeout(() => void this.fill(top), 200).unref?.();
      }
    }
  }
}
