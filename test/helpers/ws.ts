/**
 * A protocol-level WebSocket test client (the `ws` package), written from
 * docs/protocol.md §1a: one binary message is one CBOR map, no prefix.
 * The same shape as RawConn (raw.ts) so a test can hold one of each.
 */
import WebSocket from 'ws';
import { decodeFrame, encodeFrame, type WireValue } from '../../runtime/protocol/index.js';
import type { Frame } from './raw.js';

export class RawWs {
  private readonly frames: Frame[] = [];
  private waiters: (() => void)[] = [];
  closed = false;
  /** the close status the server sent (1005 when none) */
  closeCode: number | undefined;
  private closeWaiters: (() => void)[] = [];

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
      if (!isBinary) {
        this.frames.push({ op: '<text>', text: String(data) });
      } else {
        const bytes = new Uint8Array(Array.isArray(data) ? Buffer.concat(data) : (data as ArrayBuffer));
        const f = decodeFrame(bytes.slice());
        this.frames.push(f);
      }
      this.wake();
    });
    ws.on('error', () => undefined);
    ws.on('close', (code: number) => {
      this.closed = true;
      this.closeCode = code;
      this.wake();
      for (const w of this.closeWaiters) w();
    });
  }

  /** Opens `url`; rejects with the HTTP status when the upgrade is refused (`err.status`). */
  static connect(url: string, opts: { origin?: string; timeoutMs?: number } = {}): Promise<RawWs> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers: opts.origin ? { Origin: opts.origin } : {}, perMessageDeflate: false });
      const t = setTimeout(() => {
        ws.terminate();
        reject(new Error(`no WebSocket to ${url} within ${opts.timeoutMs ?? 3000} ms`));
      }, opts.timeoutMs ?? 3000);
      ws.once('open', () => {
        clearTimeout(t);
        resolve(new RawWs(ws));
      });
      ws.once('unexpected-response', (_req: unknown, res: { statusCode?: number }) => {
        clearTimeout(t);
        ws.terminate();
        reject(Object.assign(new Error(`upgrade refused: HTTP ${res.statusCode}`), { status: res.statusCode }));
      });
      ws.once('error', (err: Error) => {
        clearTimeout(t);
        const m = /Unexpected server response: (\d+)/.exec(err.message);
        reject(m ? Object.assign(err, { status: Number(m[1]) }) : err);
      });
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  send(map: Record<string, WireValue | undefined>): void {
    this.ws.send(encodeFrame(map).subarray(4), { binary: true });
  }

  /** One binary message of exactly these bytes. */
  sendBytes(bytes: Uint8Array): void {
    this.ws.send(bytes, { binary: true });
  }

  sendText(text: string): void {
    this.ws.send(text);
  }

  async next(timeoutMs = 3000, pred?: (f: Frame) => boolean): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const idx = pred ? this.frames.findIndex(pred) : this.frames.length ? 0 : -1;
      if (idx >= 0) return this.frames.splice(idx, 1)[0]!;
      if (this.closed)
        throw new Error(`closed (${this.closeCode}) while waiting; frames left: ${JSON.stringify(this.frames)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for a message; frames left: ${JSON.stringify(this.frames)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  async request(map: Record<string, WireValue | undefined>, timeoutMs = 3000): Promise<Frame> {
    this.send(map);
    return this.next(timeoutMs, (f) => f.rid === map.rid && (f.op === 'ok' || f.op === 'error' || f.op === 'pong'));
  }

  async msgs(n: number, timeoutMs = 3000): Promise<Frame[]> {
    const out: Frame[] = [];
    while (out.length < n) out.push(await this.next(timeoutMs, (f) => f.op === 'msg' && f.rid === undefined));
    return out;
  }

  /** Resolves with the close status once the server closed the socket. */
  waitClosed(timeoutMs = 3000): Promise<number> {
    if (this.closed) return Promise.resolve(this.closeCode!);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('WebSocket not closed in time')), timeoutMs);
      this.closeWaiters.push(() => {
        clearTimeout(t);
        resolve(this.closeCode!);
      });
    });
  }

  close(): void {
    this.ws.terminate();
  }
}
