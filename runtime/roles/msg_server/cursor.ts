/**
 * The push cursor of a connection (docs/architecture.md "Push cursor per connection"):
 * every push, by any path (local, routed, repeated, late), is sent once and
 * in seq order; a gap is filled from the store.
 */
import type { StoredMessage } from '../../store/store.js';
import { msgFrame, type PushMessage } from './frames.js';

const FILL_PAGE = 1000;

/** What the cursor needs of its connection. */
export interface CursorConn {
  readonly user: string | undefined;
  readonly push: boolean;
  readonly closing: boolean;
  write(frame: Uint8Array): void;
  /** resolves when `len` more bytes may be written by a paced writer (see Conn.room) */
  room(len: number): Promise<void> | undefined;
}

export interface CursorHooks {
  /** reads inbox messages after `after` (at most `limit`) for the push cursor's gap filling */
  readInbox(user: string, after: number, limit: number): Promise<StoredMessage[]>;
  onPushed(n: number): void;
}

export class PushCursor {
  /** the next seq this connection must be sent */
  next = 0;
  /** pushes wait here while the cursor fills a gap from the store */
  private filling = false;
  /** (made at the first held push: most connections never hold one) */
  private held: PushMessage[] | undefined;
  private fillTarget = 0;

  constructor(
    private readonly conn: CursorConn,
    private readonly hooks: CursorHooks,
  ) {}

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
    if (held === undefined) return;
    this.held = undefined;
    for (const m of held.sort((a, b) => a.seq - b.seq)) this.pushMsg(m);
  }

  /** A push by any path (local, routed, repeated, late): sent once, in seq order. */
  pushMsg(m: PushMessage): void {
    const conn = this.conn;
    if (!conn.push || conn.closing || conn.user === undefined) return;
    if (this.filling) {
      if (m.seq >= this.next) {
        (this.held ??= []).push(m);
        if (m.seq > this.fillTarget) this.fillTarget = m.seq;
      }
      return;
    }
    if (m.seq < this.next) return;
    if (m.seq === this.next) {
      conn.write(msgFrame(m));
      this.next++;
      this.hooks.onPushed(1);
      return;
    }
    (this.held ??= []).push(m);
    void this.fill(m.seq);
  }

  /** Makes sure every message up to `target` has been sent (used by pushes with a gap and by ping). */
  async fill(target: number): Promise<void> {
    const conn = this.conn;
    if (target > this.fillTarget) this.fillTarget = target;
    if (this.filling || !conn.push || conn.user === undefined) return;
    if (this.fillTarget < this.next) return;
    this.filling = true;
    const user = conn.user;
    let failed = false;
    try {
      while (this.next <= this.fillTarget && !conn.closing) {
        const want = Math.min(FILL_PAGE, this.fillTarget - this.next + 1);
        const page = await this.hooks.readInbox(user, this.next - 1, want);
        let n = 0;
        for (const m of page) {
          if (m.seq < this.next) continue;
          const f = msgFrame(m);
          const wait = conn.room(f.length);
          if (wait) await wait;
          if (conn.closing) break;
          // After a trimmed range the first message kept is the next one there is.
          conn.write(f);
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
      const held = this.held ?? [];
      this.held = undefined;
      held.sort((a, b) => a.seq - b.seq);
      for (const m of held) {
        if (m.seq < this.next) continue;
        if (failed && m.seq > this.next) {
          (this.held ??= []).push(m);
          continue;
        }
        // In order, or past a range the store no longer has.
        conn.write(msgFrame(m));
        this.next = m.seq + 1;
        this.hooks.onPushed(1);
      }
      if (this.held !== undefined && !conn.closing) {
        // The store was unavailable: try again shortly (pings retry too).
        const top = this.held[this.held.length - 1]!.seq;
        setTimeout(() => void this.fill(top), 200).unref?.();
      }
    }
  }
}
