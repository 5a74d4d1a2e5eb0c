/**
 * A protocol-level WebSocket test client (the `ws` package), written from
 * docs/protocol.md §1a: one binary message is one CBOR map, no prefix.
 * The same shape as RawConn (raw.ts) so a test can hold one of each.
 */
import WebSocket from 'ws';
import { decodeFrame, encodeFrame, type WireValue } from '../../runtime/protocol/index.js';
import { FrameQueue } from './raw.js';

export class RawWs extends FrameQueue {
  /** the close status the server sent (1005 when none) */
  closeCode: number | undefined;

  private constructor(readonly ws: WebSocket) {
    super();
    ws.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
      this.received((frames) => {
        if (!isBinary) {
          frames.push({ op: '<text>', text: String(data) });
        } else {
          const bytes = new Uint8Array(Array.isArray(data) ? Buffer.concat(data) : (data as ArrayBuffer));
          frames.push(decodeFrame(bytes.slice()));
        }
      });
    });
    ws.on('error', () => undefined);
    ws.on('close', (code: number) => {
      this.closeCode = code;
      this.ended();
    });
  }

  protected override closedText(): string {
    return `closed (${this.closeCode})`;
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

  /** Resolves with the close status once the server closed the socket. */
  async waitClosed(timeoutMs = 3000): Promise<number> {
    await this.untilEnded(timeoutMs, 'WebSocket not closed in time');
    return this.closeCode!;
  }

  close(): void {
    this.ws.terminate();
  }
}
