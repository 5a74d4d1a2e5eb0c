/**
 * The WebSocket wire (docs/protocol.md §1a): one binary message = one CBOR
 * map, no length prefix. It uses the standard global `WebSocket` (browsers,
 * Bun, Deno, Node ≥ 22), or on a runtime without one (Node 20) the `ws`
 * package, imported when the first WebSocket is opened.
 *
 * Closing as the page says: the server sends its `error` or `kick` map, then
 * closes with a status (1000 after logout, 1001 after a `draining` kick, 1003
 * or 1007 after `bad_frame`, 1008 for `auth_failed`, `overloaded` and other
 * kicks, 1009 after `frame_too_large`); the maps reach Connection first, the
 * status comes with onClose. Nothing travels in the URL but the URL itself:
 * the token goes in the `login` map.
 */
import { acquireWriter, releaseWriter, type WireValue } from '../protocol/cbor.js';
import { FishError } from './errors.js';
import type { OpenWireOptions, Wire, WireHandlers } from './wire.js';

/** What this wire uses of a WebSocket: the part the standard one and the `ws` package share. */
interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  readonly bufferedAmount: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code?: number; reason?: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  /** the `ws` package only: drop the connection at once */
  terminate?(): void;
}

type WebSocketClass = new (url: string) => WebSocketLike;

const OPEN = 1;
let wsClass: Promise<WebSocketClass> | null = null;

/** The runtime's WebSocket class: the global one, else the `ws` package's. */
function webSocketClass(): Promise<WebSocketClass> {
  const global = (globalThis as { WebSocket?: unknown }).WebSocket;
  if (typeof global === 'function') return Promise.resolve(global as WebSocketClass);
  wsClass ??= import('ws').then(
    (mod) => {
      const ctor = (mod as { WebSocket?: unknown; default?: unknown }).WebSocket ?? mod.default;
      if (typeof ctor !== 'function') throw new Error('the ws package has no WebSocket class');
      return ctor as unknown as WebSocketClass;
    },
    (err: unknown) => {
      wsClass = null;
      throw new FishError(
        'internal',
        `this runtime has no WebSocket and the ws package cannot be loaded (npm install ws): ${String(err)}`,
      );
    },
  );
  return wsClass;
}

/** Encodes one map as CBOR, no prefix: a view of the shared writer's slab (never written over later). */
function encodeMap(map: { [k: string]: WireValue | undefined }): Uint8Array {
  const w = acquireWriter();
  try {
    w.map(map);
    return w.view();
  } finally {
    releaseWriter(w);
  }
}

/** Opens `url` (ws:// or wss://); resolves once the WebSocket is open. */
export async function openWebSocketWire(url: string, opts: OpenWireOptions): Promise<Wire> {
  const WS = await webSocketClass();
  let ws: WebSocketLike;
  try {
    ws = new WS(url);
  } catch (err) {
    throw new FishError('bad_request', `cannot open a WebSocket to ${JSON.stringify(url)}: ${String(err)}`);
  }
  ws.binaryType = 'arraybuffer';
  await new Promise<void>((resolve, reject) => {
    const failed = (detail: string) => {
      ws.onopen = ws.onerror = ws.onclose = null;
      try {
        ws.close();
      } catch {
        // not open yet: nothing to close
      }
      reject(new FishError('internal', `cannot connect to ${url}: ${detail}`, 'disconnected'));
    };
    ws.onopen = () => {
      ws.onopen = ws.onerror = ws.onclose = null;
      resolve();
    };
    // A browser tells nothing of why (a refused origin's 403 looks like a dead server).
    ws.onerror = (ev) => failed(errorText(ev) ?? 'the WebSocket failed to open');
    ws.onclose = (ev) => failed(`closed before it opened (status ${ev.code ?? 'none'})`);
  });
  return new WebSocketWire(ws, opts.maxFrame);
}

function errorText(ev: unknown): string | undefined {
  const e = ev as { message?: unknown; error?: { message?: unknown; code?: unknown } } | null;
  if (typeof e?.error?.code === 'string') return e.error.code;
  if (typeof e?.message === 'string' && e.message !== '') return e.message;
  if (typeof e?.error?.message === 'string') return e.error.message;
  return undefined;
}

class WebSocketWire implements Wire {
  readonly transport = 'ws' as const;
  readonly #ws: WebSocketLike;
  readonly #maxFrame: number;
  #handlers: WireHandlers | null = null;
  /** messages that arrived before start() */
  #early: Uint8Array[] | null = [];
  #closed = false;
  #destroyed = false;
  #closeInfo: { code?: number; reason?: string } | null = null;

  constructor(ws: WebSocketLike, maxFrame: number) {
    this.#ws = ws;
    this.#maxFrame = maxFrame;
    ws.onmessage = (ev) => this.#onMessage(ev.data);
    ws.onclose = (ev) => this.#closedNow({ code: ev.code, reason: ev.reason });
    // An error is followed by a close event; the close reports it.
    ws.onerror = () => {};
    if (ws.readyState !== OPEN) this.#closedNow({ code: 1006 });
  }

  get closed(): boolean {
    return this.#closed;
  }

  get buffered(): number {
    return this.#ws.bufferedAmount;
  }

  start(handlers: WireHandlers): void {
    this.#handlers = handlers;
    const early = this.#early ?? [];
    this.#early = null;
    for (const m of early) {
      if (this.#destroyed) break;
      handlers.onMap(m);
    }
    if (this.#closeInfo !== null) {
      const info = this.#closeInfo;
      this.#closeInfo = null;
      handlers.onClose(info);
    }
  }

  send(map: { [k: string]: WireValue | undefined }): void {
    if (this.#closed || this.#ws.readyState !== OPEN) return;
    this.#ws.send(encodeMap(map));
  }

  end(): void {
    if (this.#closed) return;
    // Queued messages go out before the close frame.
    try {
      this.#ws.close(1000);
    } catch {
      this.destroy();
    }
  }

  destroy(): void {
    this.#destroyed = true;
    if (this.#closed) return;
    try {
      if (this.#ws.terminate) this.#ws.terminate();
      else this.#ws.close(1000);
    } catch {
      // already closing
    }
    this.#closedNow({ code: 1006, reason: 'destroyed' });
  }

  #onMessage(data: unknown): void {
    if (this.#closed) return;
    const bytes = this.#bytesOf(data);
    if (bytes === null) return;
    if (this.#early !== null) this.#early.push(bytes.slice());
    else this.#handlers?.onMap(bytes);
  }

  /** The bytes of a message that may be a map, or null after reporting one that cannot be. */
  #bytesOf(data: unknown): Uint8Array | null {
    let bytes: Uint8Array;
    if (data instanceof ArrayBuffer) bytes = new Uint8Array(data);
    else if (ArrayBuffer.isView(data)) bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    else {
      this.#bad(
        'bad_frame',
        typeof data === 'string' ? 'a text WebSocket message' : 'a WebSocket message that is not binary',
      );
      return null;
    }
    if (bytes.length === 0) {
      this.#bad('bad_frame', 'an empty WebSocket message');
      return null;
    }
    if (bytes.length > this.#maxFrame) {
      this.#bad('frame_too_large', `a ${bytes.length}-byte WebSocket message`);
      return null;
    }
    return bytes;
  }

  #bad(code: 'bad_frame' | 'frame_too_large', detail: string): void {
    if (this.#handlers) this.#handlers.onBad(code, detail);
    else this.destroy();
  }

  #closedNow(info: { code?: number; reason?: string }): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#ws.onmessage = this.#ws.onclose = null;
    if (this.#handlers) this.#handlers.onClose(info);
    else this.#closeInfo = info;
  }
}
