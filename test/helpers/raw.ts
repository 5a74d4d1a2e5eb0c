/**
 * A protocol-level test client over node:net, written from docs/protocol.md:
 * frames out with encodeFrame or raw bytes, frames in decoded with cbor-x.
 */
import net from 'node:net';
import { decodeFrame, encodeFrame, FrameDecoder, type WireValue } from '../../runtime/protocol/index.js';

export type Frame = Record<string, unknown>;

/**
 * What a test client of any transport keeps: the frames received and not
 * taken yet, and the waits on them and on the close (RawConn here, RawWs in
 * ws.ts). A transport adds frames with `received`, reports its close with
 * `ended`, and sends with `send`.
 */
export abstract class FrameQueue {
  private readonly frames: Frame[] = [];
  private waiters: (() => void)[] = [];
  closed = false;
  private closeWaiters: (() => void)[] = [];

  abstract send(map: Record<string, WireValue | undefined>): void;

  /** How a wait's error names the close. */
  protected closedText(): string {
    return 'connection closed';
  }

  /** Frames came in (one read may bring many: wake the waits once, after `add`). */
  protected received(add: (frames: Frame[]) => void): void {
    add(this.frames);
    this.wake();
  }

  /** The connection is closed. */
  protected ended(): void {
    this.closed = true;
    this.wake();
    for (const w of this.closeWaiters) w();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** The next frame (optionally the next one matching `pred`, skipping others into `skipped`). */
  async next(timeoutMs = 3000, pred?: (f: Frame) => boolean): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const idx = pred ? this.frames.findIndex(pred) : this.frames.length ? 0 : -1;
      if (idx >= 0) return this.frames.splice(idx, 1)[0]!;
      if (this.closed)
        throw new Error(`${this.closedText()} while waiting; frames left: ${JSON.stringify(this.frames)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for a frame; frames left: ${JSON.stringify(this.frames)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** Sends a request and returns the frame that carries its rid (ok or error). */
  async request(map: Record<string, WireValue | undefined>, timeoutMs = 3000): Promise<Frame> {
    this.send(map);
    return this.next(timeoutMs, (f) => f.rid === map.rid && (f.op === 'ok' || f.op === 'error' || f.op === 'pong'));
  }

  /** Frames received and not yet taken. */
  pending(): Frame[] {
    return this.frames;
  }

  /** Waits for `n` pushed msg frames (frames without rid). */
  async msgs(n: number, timeoutMs = 3000): Promise<Frame[]> {
    const out: Frame[] = [];
    while (out.length < n) out.push(await this.next(timeoutMs, (f) => f.op === 'msg' && f.rid === undefined));
    return out;
  }

  /** Resolves once the server closed the connection; rejects with `what` after `timeoutMs`. */
  protected untilEnded(timeoutMs: number, what: string): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(what)), timeoutMs);
      this.closeWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}

export class RawConn extends FrameQueue {
  private readonly decoder = new FrameDecoder(16 << 20);

  private constructor(readonly sock: net.Socket) {
    super();
    sock.on('data', (chunk) => {
      this.received((frames) =>
        this.decoder.feed(chunk, (p) => {
          const raw = p.slice();
          const f = decodeFrame(raw);
          Object.defineProperty(f, 'raw', { value: raw, enumerable: false });
          frames.push(f);
        }),
      );
    });
    sock.on('error', () => undefined);
    sock.on('close', () => this.ended());
  }

  static connect(addr: string): Promise<RawConn> {
    const i = addr.lastIndexOf(':');
    const host = addr.slice(0, i).replace(/^\[|\]$/g, '');
    const port = Number(addr.slice(i + 1));
    return new Promise((resolve, reject) => {
      const s = net.connect({ host, port }, () => resolve(new RawConn(s)));
      s.once('error', reject);
    });
  }

  send(map: Record<string, WireValue | undefined>): void {
    this.sock.write(encodeFrame(map));
  }

  writeRaw(bytes: Uint8Array): void {
    this.sock.write(bytes);
  }

  /** Resolves when the server closed the connection. */
  waitClosed(timeoutMs = 3000): Promise<void> {
    return this.untilEnded(timeoutMs, 'connection not closed in time');
  }

  close(): void {
    this.sock.destroy();
  }
}

let ridSeq = 1;
export function rid(): number {
  return ridSeq++;
}
