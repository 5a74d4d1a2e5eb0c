/**
 * One load-generator connection: raw TCP from the platform layer, the
 * protocol's FrameDecoder, and a dispatch on the op of each frame.
 *
 * Two phases. Setup (route, login, topic_create/join): requests with a rid
 * and a timeout each, replies decoded in full. Run: no per-request state at
 * all; pushes go to `onMsg` with only seq and body located (wire.ts), a
 * reply `ok` to `onOk` undecoded, an error decoded (rare) to `onError`.
 */
import { getPlatform, type TcpSocket } from '../../runtime/platform/index.js';
import { decodeFrame, encodeFrame, FrameDecoder, type WireValue } from '../../runtime/protocol/index.js';
import { MsgScanner, OP_MSG, OP_OK, OP_PONG, opOf, PING } from './wire.js';

/** What the server may send us, at most: maxFrame is a server setting; 16 MiB is its upper bound. */
const MAX_FRAME = 16 * 1024 * 1024;

export class ServerError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ServerError';
  }
}

export interface Reply {
  [k: string]: unknown;
}

interface Pending {
  resolve: (r: Reply) => void;
  reject: (e: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

export class BenchConn {
  private readonly decoder = new FrameDecoder(MAX_FRAME);
  private readonly pending = new Map<number, Pending>();
  private readonly msg = new MsgScanner();
  private nextRid = 1;
  /** something was written since the last keepalive sweep */
  wrote = false;
  closed = false;
  /** why it closed, when the server said (kick reason, or an error code) */
  closeReason: string | undefined;

  /** a pushed msg: `seq` and the body's position in `p` (valid during the call only) */
  onMsg: ((p: Uint8Array, seq: number, bodyAt: number, bodyLen: number) => void) | null = null;
  /** an `ok` that answers no setup request (the run's send/topic_send replies) */
  onOk: (() => void) | null = null;
  /** an `error` that answers no setup request */
  onError: ((code: string, message: string) => void) | null = null;
  onClose: (() => void) | null = null;

  private constructor(
    private readonly sock: TcpSocket,
    readonly addr: string,
  ) {
    sock.onData((chunk) => {
      const err = this.decoder.feed(chunk, this.frame);
      if (err) {
        this.closeReason = `unreadable frame from the server (${err})`;
        this.sock.destroy();
      }
    });
    sock.onClose(() => {
      this.closed = true;
      for (const [rid, p] of this.pending) {
        clearTimeout(p.timer);
        this.pending.delete(rid);
        p.reject(new Error(`${this.addr} closed the connection${this.closeReason ? ` (${this.closeReason})` : ''}`));
      }
      this.onClose?.();
    });
  }

  static async open(host: string, port: number, localAddress?: string): Promise<BenchConn> {
    const platform = await getPlatform();
    const sock = await platform.connectTcp(host, port, localAddress ? { localAddress } : {});
    return new BenchConn(sock, `${host.includes(':') ? `[${host}]` : host}:${port}`);
  }

  write(frame: Uint8Array): void {
    this.wrote = true;
    this.sock.write(frame);
  }

  ping(): void {
    this.sock.write(PING);
  }

  /** Bytes not yet taken by the kernel. */
  get buffered(): number {
    return this.sock.buffered;
  }

  /** A setup request: resolves with the `ok` reply, rejects with ServerError on `error`, or on timeout/close. */
  request(fields: { [k: string]: WireValue | undefined }, timeoutMs: number): Promise<Reply> {
    if (this.closed)
      return Promise.reject(
        new Error(`${this.addr}: the connection is closed${this.closeReason ? ` (${this.closeReason})` : ''}`),
      );
    const rid = this.nextRid++;
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(rid);
        reject(new Error(`${this.addr} did not answer ${String(fields.op)} within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.pending.set(rid, { resolve, reject, timer });
      this.write(encodeFrame({ ...fields, rid }));
    });
  }

  close(): void {
    if (this.closed) return;
    this.sock.destroy();
  }

  /** Every frame from the server. */
  private readonly frame = (p: Uint8Array): void => {
    switch (opOf(p)) {
      case OP_MSG:
        if (this.msg.scan(p)) {
          this.onMsg?.(p, this.msg.seq, this.msg.bodyAt, this.msg.bodyLen);
          return;
        }
        this.slow(p);
        return;
      case OP_OK:
        if (this.pending.size === 0) {
          this.onOk?.();
          return;
        }
        this.slow(p);
        return;
      case OP_PONG:
        return;
      default:
        this.slow(p);
        return;
    }
  };

  /** The decoded path: setup replies, errors, kicks, anything unexpected. */
  private slow(p: Uint8Array): void {
    let f: Reply;
    try {
      f = decodeFrame(p);
    } catch {
      this.closeReason = 'undecodable frame from the server';
      this.sock.destroy();
      return;
    }
    const op = f.op;
    const rid = typeof f.rid === 'number' ? f.rid : undefined;
    const waiting = rid === undefined ? undefined : this.pending.get(rid);
    if (op === 'ok' || op === 'error') {
      if (waiting) {
        clearTimeout(waiting.timer);
        this.pending.delete(rid!);
        if (op === 'ok') waiting.resolve(f);
        else waiting.reject(new ServerError(String(f.code), `${String(f.code)}: ${String(f.message ?? '')}`));
        return;
      }
      if (op === 'ok') this.onOk?.();
      else {
        const code = String(f.code);
        // Errors that close the connection (docs/protocol.md §2): say why when it goes.
        if (code === 'overloaded' || code === 'auth_failed' || code === 'bad_frame' || code === 'frame_too_large')
          this.closeReason = code;
        this.onError?.(code, String(f.message ?? ''));
      }
      return;
    }
    if (op === 'kick') {
      this.closeReason = `kicked: ${String(f.reason)}`;
      return;
    }
    if (op === 'msg' && this.onMsg) {
      // A push the scanner did not read (an odd body type): time it if it carries one.
      const body = f.body;
      if (body instanceof Uint8Array && typeof f.seq === 'number') {
        // Re-encode nothing: hand the copy over as its own buffer.
        this.onMsg(body, f.seq, 0, body.length);
      }
    }
  }
}
