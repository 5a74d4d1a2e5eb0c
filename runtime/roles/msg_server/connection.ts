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
  closing = false;
  /** pushes wait here while the cursor fills a gap from the store */
  private filling = false;
  private held: StoredMessage[] = [];
  private fillTarget = 0;

  constructor(
    readonly sock: TcpSocket,
    maxFrame: number,
    private readonly hooks: ConnHooks,
    private readonly maxOutBuffer: number,
  ) {
    this.decoder = new FrameDecoder(maxFrame);
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
          // After a trimmed range the first message kept is the next one there is.
          this.write(msgFrame(m));
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
