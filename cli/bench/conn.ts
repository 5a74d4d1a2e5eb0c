/**
 * One load-generator connection: a thin link (raw TCP from the platform
 * layer, or a WebSocket), the protocol's frames, and a dispatch on the op of
 * each frame.
 *
 * Every frame the workloads write is a TCP frame (4-byte length, then the
 * CBOR map: wire.ts builds them so). The TCP link writes it as it is and cuts
 * what it reads with the FrameDecoder; the WebSocket link (docs/protocol.md
 * §1a: one binary message = one CBOR map, no length prefix) sends the frame
 * without its 4 bytes and hands each message on whole. Nothing else differs:
 * the workload, the scanner and the dispatch are the same code for both.
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
/** A WebSocket upgrade (TCP connect + HTTP handshake) may take this long. */
const WS_OPEN_TIMEOUT_MS = 30_000;

export type Transport = 'tcp' | 'ws';

/**
 * What BenchConn needs of a connection. `write` takes a length-prefixed
 * frame; `start` hands over the handlers (each frame's CBOR bytes, valid
 * during the call; the close, with a reason when the link knows one).
 */
export interface Link {
  write(frame: Uint8Array): void;
  /** Bytes not yet taken by the kernel. */
  readonly buffered: number;
  destroy(): void;
  start(onFrame: (p: Uint8Array) => void, onClose: (why?: string) => void, fail: (why: string) => void): void;
}

/** Raw TCP: frames as they are, read back through the FrameDecoder. */
export function tcpLink(sock: TcpSocket): Link {
  const decoder = new FrameDecoder(MAX_FRAME);
  return {
    write: (frame) => sock.write(frame),
    get buffered() {
      return sock.buffered;
    },
    destroy: () => sock.destroy(),
    start(onFrame, onClose, fail) {
      sock.onData((chunk) => {
        const err = decoder.feed(chunk, onFrame);
        if (err) fail(`unreadable frame from the server (${err})`);
      });
      sock.onClose(() => onClose());
    },
  };
}

/** The part of a WebSocket (the `ws` package's or the standard one) the link uses. */
interface AnyWebSocket {
  binaryType: string;
  readonly bufferedAmount: number;
  readonly readyState: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: { message?: string; error?: unknown }) => void) | null;
  /** `ws` only: cut the TCP connection at once */
  terminate?: () => void;
}

type WebSocketCtor = new (url: string, options?: Record<string, unknown>) => AnyWebSocket;

let wsCtor: Promise<{ ctor: WebSocketCtor; native: boolean }> | undefined;

/**
 * The runtime's standard WebSocket when it has one (Bun, Deno, Node ≥ 22),
 * else the `ws` package (Node 20 has no global WebSocket). Loaded on the
 * first WebSocket connection only.
 */
export function webSocketImpl(): Promise<{ ctor: WebSocketCtor; native: boolean }> {
  wsCtor ??= (async () => {
    const g = (globalThis as { WebSocket?: WebSocketCtor }).WebSocket;
    if (typeof g === 'function') return { ctor: g, native: true };
    const mod = (await import('ws')) as unknown as { default: WebSocketCtor };
    return { ctor: mod.default, native: false };
  })();
  return wsCtor;
}

/** A frame's CBOR bytes, as a Uint8Array, from what a WebSocket hands over; undefined for a text message. */
function messageBytes(data: unknown): Uint8Array | undefined {
  if (data instanceof Uint8Array) return data; // ws: a Buffer
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (Array.isArray(data)) return Buffer.concat(data as Uint8Array[]); // ws 'fragments' (not asked for)
  return undefined;
}

/**
 * Opens a WebSocket to `url` (ws:// or wss://) and resolves once it is open.
 * `localAddress` (the source address) only with the `ws` package.
 */
export async function openWebSocket(url: string, localAddress?: string): Promise<Link> {
  const { ctor, native } = await webSocketImpl();
  const ws = native
    ? new ctor(url)
    : new ctor(url, {
        perMessageDeflate: false,
        maxPayload: MAX_FRAME,
        handshakeTimeout: WS_OPEN_TIMEOUT_MS,
        ...(localAddress ? { localAddress } : {}),
      });
  ws.binaryType = native ? 'arraybuffer' : 'nodebuffer';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      fail(new Error(`no WebSocket open within ${WS_OPEN_TIMEOUT_MS / 1000} s`));
    }, WS_OPEN_TIMEOUT_MS);
    const fail = (err: Error) => {
      clearTimeout(timer);
      ws.onopen = ws.onerror = ws.onclose = null;
      try {
        if (ws.terminate) ws.terminate();
        else ws.close();
      } catch {
        // not open yet
      }
      reject(err);
    };
    ws.onopen = () => {
      clearTimeout(timer);
      ws.onopen = ws.onerror = ws.onclose = null;
      resolve();
    };
    ws.onerror = (ev) => {
      const e = ev.error as { message?: string; code?: string } | undefined;
      fail(Object.assign(new Error(e?.message ?? ev.message ?? 'WebSocket error'), { code: e?.code }));
    };
    ws.onclose = (ev) => fail(new Error(`closed before it opened (${ev.code}${ev.reason ? ` ${ev.reason}` : ''})`));
  });
  return {
    write: (frame) => {
      // OPEN only: a send on a closing socket is dropped, as the TCP socket drops it.
      if (ws.readyState === 1) ws.send(frame.subarray(4));
    },
    get buffered() {
      return ws.bufferedAmount;
    },
    destroy: () => {
      if (ws.terminate) ws.terminate();
      else ws.close(1000);
    },
    start(onFrame, onClose, fail) {
      let error: string | undefined;
      ws.onmessage = (ev) => {
        const p = messageBytes(ev.data);
        if (p === undefined) fail('a text message from the server (docs/protocol.md §1a: binary only)');
        else if (p.length === 0) fail('an empty message from the server');
        else onFrame(p);
      };
      ws.onerror = (ev) => {
        error ??= (ev.error as { message?: string } | undefined)?.message ?? ev.message;
      };
      ws.onclose = (ev) => {
        const why = `WebSocket close ${ev.code}${ev.reason ? ` ${ev.reason}` : ''}${error ? `, ${error}` : ''}`;
        onClose(why);
      };
    },
  };
}

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

  constructor(
    private readonly link: Link,
    /** host:port, or the WebSocket URL */
    readonly addr: string,
  ) {
    link.start(
      this.frame,
      (why) => {
        this.closed = true;
        this.closeReason ??= why;
        for (const [rid, p] of this.pending) {
          clearTimeout(p.timer);
          this.pending.delete(rid);
          p.reject(new Error(`${this.addr} closed the connection${this.closeReason ? ` (${this.closeReason})` : ''}`));
        }
        this.onClose?.();
      },
      (why) => {
        this.closeReason = why;
        this.link.destroy();
      },
    );
  }

  /** Raw TCP to host:port. */
  static async open(host: string, port: number, localAddress?: string): Promise<BenchConn> {
    const platform = await getPlatform();
    const sock = await platform.connectTcp(host, port, localAddress ? { localAddress } : {});
    return new BenchConn(tcpLink(sock), `${host.includes(':') ? `[${host}]` : host}:${port}`);
  }

  /** A WebSocket to url (a msg_server's `ws` from the route reply). */
  static async openWs(url: string, localAddress?: string): Promise<BenchConn> {
    return new BenchConn(await openWebSocket(url, localAddress), url);
  }

  /** A length-prefixed frame (the link drops the prefix on a WebSocket). */
  write(frame: Uint8Array): void {
    this.wrote = true;
    this.link.write(frame);
  }

  ping(): void {
    this.link.write(PING);
  }

  /** Bytes not yet taken by the kernel. */
  get buffered(): number {
    return this.link.buffered;
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
    this.link.destroy();
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
      this.link.destroy();
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
