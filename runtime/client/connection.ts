/**
 * One client connection to a gateway or a msg_server, over a wire (wire.ts:
 * TCP with length-prefixed frames, or a WebSocket with one map per message):
 * pipelined requests matched by `rid` with a timeout each, and everything the
 * server sends unasked (pushed `msg`, `kick`, errors without `rid`) handed on.
 * It knows nothing of sessions or reconnects (client.ts does).
 *
 * Nothing here (nor anywhere under runtime/client/) imports a `node:` module
 * at load time, so the library bundles for a browser: the platform, and with
 * it node:net or Bun's sockets, is imported only when a TCP connection is
 * made, and the `ws` package only when a WebSocket is opened on a runtime
 * without a global one.
 */
import type { WireValue } from '../protocol/cbor.js';
import { decodeFrame } from '../protocol/decode.js';
import { FishError } from './errors.js';
import { openWire, type Transport, type Wire, type WireClose } from './wire.js';

export { parseAddr } from './wire.js';

/** A decoded server frame. */
export interface Frame {
  op: string;
  rid?: number;
  [field: string]: unknown;
}

export type Fields = { [k: string]: WireValue | undefined };

export interface ConnectionOptions {
  /** default timeout of request(), ms */
  requestTimeoutMs: number;
  /**
   * Largest frame accepted from the server. The server's own maxFrame is a
   * cluster setting the client does not know, so this is generous.
   */
  maxFrame?: number;
  /** A frame without `rid` (or whose `rid` is no longer awaited), other than `error`. */
  onPush?(frame: Frame): void;
  /** An `error` frame without `rid` (bad_frame, overloaded, ...), or a frame we cannot read. */
  onError?(error: FishError): void;
  /**
   * Called once when the connection is gone, after the pending requests were
   * rejected; `info` has a WebSocket's close status (none on TCP).
   */
  onClose?(info: WireClose): void;
}

export interface RequestOptions {
  /** ms; default: the connection's requestTimeoutMs */
  timeoutMs?: number;
  /** `msg` frames carrying this request's rid (the pages of a `sync`) */
  onMsg?(frame: Frame): void;
  /**
   * Called with the `ok` reply synchronously, before any later frame is read
   * (the promise resolves only after the whole chunk was read): login uses it
   * to know its state before the backlog that follows the reply.
   */
  onOk?(frame: Frame): void;
}

interface Pending {
  resolve(frame: Frame): void;
  reject(err: FishError): void;
  timer: ReturnType<typeof setTimeout>;
  onMsg?: (frame: Frame) => void;
  onOk?: (frame: Frame) => void;
}

export const DEFAULT_CLIENT_MAX_FRAME = 16 * 1024 * 1024;
const RID_LIMIT = 0xffff_ffff;

export class Connection {
  readonly addr: string;
  readonly #wire: Wire;
  readonly #opts: ConnectionOptions;
  readonly #pending = new Map<number, Pending>();
  #nextRid = 1;
  #closed = false;

  /** Connects to `host:port` (TCP) or a `ws://`/`wss://` URL (WebSocket). */
  static async open(addr: string, opts: ConnectionOptions): Promise<Connection> {
    const wire = await openWire(addr, { maxFrame: opts.maxFrame ?? DEFAULT_CLIENT_MAX_FRAME });
    return new Connection(addr, wire, opts);
  }

  constructor(addr: string, wire: Wire, opts: ConnectionOptions) {
    this.addr = addr;
    this.#wire = wire;
    this.#opts = opts;
    wire.start({
      onMap: (payload) => this.#onFrame(payload),
      onBad: (code, detail) => this.#fail(new FishError(code, `unreadable frame from ${this.addr}: ${detail}`)),
      onClose: (info) => this.#onClosed(info),
    });
  }

  /** `tcp` or `ws`. */
  get transport(): Transport {
    return this.#wire.transport;
  }

  /** Bytes written and not yet on the network. */
  get buffered(): number {
    return this.#wire.buffered;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Requests awaiting their reply. */
  get pending(): number {
    return this.#pending.size;
  }

  /**
   * Sends `{op, rid, ...fields}` and resolves with the `ok` (or `pong`) reply;
   * rejects with a FishError: the server's `error`, or `internal` when the
   * reply does not come in time or the connection is lost first.
   */
  request(op: string, fields: Fields = {}, ro: RequestOptions = {}): Promise<Frame> {
    if (this.#closed) {
      return Promise.reject(new FishError('internal', `not connected to ${this.addr}`, 'disconnected'));
    }
    const rid = this.#takeRid();
    const timeoutMs = ro.timeoutMs ?? this.#opts.requestTimeoutMs;
    return new Promise<Frame>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(rid);
        reject(new FishError('internal', `no reply to ${op} from ${this.addr} within ${timeoutMs} ms`, 'timeout'));
      }, timeoutMs);
      this.#pending.set(rid, { resolve, reject, timer, onMsg: ro.onMsg, onOk: ro.onOk });
      this.#wire.send({ ...fields, op, rid });
    });
  }

  /** Sends a frame that has no reply (`ack`). Dropped when closed. */
  send(op: string, fields: Fields = {}): void {
    if (this.#closed) return;
    this.#wire.send({ ...fields, op });
  }

  /** Flushes what is written, then closes. */
  end(): void {
    this.#wire.end();
  }

  /** Closes at once. */
  destroy(): void {
    this.#wire.destroy();
    this.#onClosed({});
  }

  #takeRid(): number {
    let rid = this.#nextRid;
    while (this.#pending.has(rid)) rid = rid >= RID_LIMIT ? 1 : rid + 1;
    this.#nextRid = rid >= RID_LIMIT ? 1 : rid + 1;
    return rid;
  }

  #onFrame(payload: Uint8Array): void {
    if (this.#closed) return;
    let frame: Frame;
    try {
      const map = decodeFrame(payload);
      if (typeof map.op !== 'string') throw new Error('no op');
      frame = map as Frame;
    } catch {
      this.#fail(new FishError('bad_frame', `unreadable frame from ${this.addr}`));
      return;
    }
    try {
      this.#dispatch(frame);
    } catch (err) {
      this.#opts.onError?.(new FishError('internal', `handling ${frame.op} from ${this.addr} failed: ${String(err)}`));
    }
  }

  #dispatch(frame: Frame): void {
    const rid = typeof frame.rid === 'number' ? frame.rid : undefined;
    if (rid !== undefined) {
      const p = this.#pending.get(rid);
      // A frame whose rid is no longer awaited (a late reply after a
      // timeout, a late sync page) is dropped: it is not a push.
      if (p === undefined) return;
      if (frame.op === 'msg') {
        p.onMsg?.(frame);
        return;
      }
      this.#pending.delete(rid);
      clearTimeout(p.timer);
      if (frame.op === 'error') {
        p.reject(errorOf(frame));
        return;
      }
      try {
        p.onOk?.(frame);
      } finally {
        p.resolve(frame);
      }
      return;
    }
    if (frame.op === 'error') this.#opts.onError?.(errorOf(frame));
    else this.#opts.onPush?.(frame);
  }

  #fail(err: FishError): void {
    this.#opts.onError?.(err);
    this.destroy();
  }

  #onClosed(info: WireClose): void {
    if (this.#closed) return;
    this.#closed = true;
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) {
      clearTimeout(p.timer);
      p.reject(new FishError('internal', `connection to ${this.addr} lost before the reply`, 'disconnected'));
    }
    this.#opts.onClose?.(info);
  }
}

function errorOf(frame: Frame): FishError {
  const code = typeof frame.code === 'string' ? frame.code : 'internal';
  const message = typeof frame.message === 'string' ? frame.message : code;
  return new FishError(code, message);
}
