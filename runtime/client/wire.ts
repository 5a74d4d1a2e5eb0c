/**
 * A wire carries whole CBOR maps between a client and a server; Connection
 * (connection.ts) sits on one and never knows which:
 * - TCP (docs/protocol.md §1): each map behind a uint32 big-endian length;
 *   the platform (node:net, Bun's or Deno's sockets) is imported only when a
 *   TCP wire is opened, so nothing here loads a `node:` module at load time;
 * - WebSocket (§1a): one binary message = one map, no prefix; the standard
 *   global `WebSocket` (browsers, Bun, Deno, Node ≥ 22), or the `ws` package,
 *   imported when the first WebSocket is opened, on a runtime without one
 *   (Node 20).
 * An address that is a `ws://` or `wss://` URL is a WebSocket; `host:port` is TCP.
 */
import type { WireValue } from '../protocol/cbor.js';
import { FishError } from './errors.js';

export type Transport = 'tcp' | 'ws';

/** How the wire closed. `code`/`reason`: a WebSocket's close status (absent on TCP, 1006 when the socket just died). */
export interface WireClose {
  code?: number;
  reason?: string;
}

export interface WireHandlers {
  /** The CBOR bytes of one map (valid during the call only). */
  onMap(payload: Uint8Array): void;
  /** The stream cannot be read on: the wire is useless (the caller destroys it). */
  onBad(code: 'bad_frame' | 'frame_too_large', detail: string): void;
  /** Once, when the wire is gone (also after destroy()). */
  onClose(info: WireClose): void;
}

export interface Wire {
  readonly transport: Transport;
  readonly closed: boolean;
  /** Bytes accepted by send() that are not on the network yet. */
  readonly buffered: number;
  /** Sets the handlers; what arrived before is handed on then. Call once. */
  start(handlers: WireHandlers): void;
  /** Sends one map. Dropped when closed. */
  send(map: { [k: string]: WireValue | undefined }): void;
  /** Sends what is queued, then closes. */
  end(): void;
  /** Closes at once (onClose follows). */
  destroy(): void;
}

export interface OpenWireOptions {
  /** the largest map accepted from the server, bytes */
  maxFrame: number;
}

/** Splits `host:port` (or `[v6]:port`). */
export function parseAddr(addr: string): { host: string; port: number } {
  const at = addr.lastIndexOf(':');
  const port = Number(addr.slice(at + 1));
  let host = at > 0 ? addr.slice(0, at) : '';
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (!host || !Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new FishError('bad_request', `not a host:port address: ${JSON.stringify(addr)}`);
  }
  return { host, port };
}

/** True for a `ws://` or `wss://` URL. */
export function isWebSocketUrl(addr: string): boolean {
  return /^wss?:\/\//i.test(addr);
}

/** The transport an address is dialled with. */
export function transportOf(addr: string): Transport {
  return isWebSocketUrl(addr) ? 'ws' : 'tcp';
}

/**
 * Whether this runtime can open TCP connections (Node, Bun, Deno). In a
 * browser it cannot, and the client defaults to WebSocket.
 */
export function hasTcp(): boolean {
  const g = globalThis as { process?: { versions?: { node?: unknown } }; Deno?: unknown };
  return typeof g.process?.versions?.node === 'string' || typeof g.Deno !== 'undefined';
}

/** Opens a wire to `addr`: a ws(s):// URL or `host:port`. */
export async function openWire(addr: string, opts: OpenWireOptions): Promise<Wire> {
  if (isWebSocketUrl(addr)) {
    const { openWebSocketWire } = await import('./wire-ws.js');
    return openWebSocketWire(addr, opts);
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(addr)) {
    throw new FishError(
      'bad_request',
      `a msg_server address is host:port or a ws:// or wss:// URL, not ${JSON.stringify(addr)}`,
    );
  }
  const { openTcpWire } = await import('./wire-tcp.js');
  return openTcpWire(addr, opts);
}
