/**
 * The TCP wire (docs/protocol.md §1): uint32 big-endian length || one CBOR
 * map. The platform, and with it node:net or Bun's/Deno's sockets, is
 * imported here only when a connection is made (the browser bundle replaces
 * this module with one that refuses TCP).
 */
import type { TcpSocket } from '../platform/types.js';
import type { WireValue } from '../protocol/cbor.js';
import { encodeFrame, FrameDecoder } from '../protocol/frame.js';
import { parseAddr, type Wire, type WireHandlers, type OpenWireOptions } from './wire.js';

export async function openTcpWire(addr: string, opts: OpenWireOptions): Promise<Wire> {
  const { host, port } = parseAddr(addr);
  const { getPlatform } = await import('../platform/index.js');
  const platform = await getPlatform();
  const sock = await platform.connectTcp(host, port);
  return new TcpWire(sock, opts.maxFrame);
}

export class TcpWire implements Wire {
  readonly transport = 'tcp' as const;
  readonly #sock: TcpSocket;
  readonly #decoder: FrameDecoder;
  #handlers: WireHandlers | null = null;
  #closeSent = false;

  constructor(sock: TcpSocket, maxFrame: number) {
    this.#sock = sock;
    this.#decoder = new FrameDecoder(maxFrame);
  }

  get closed(): boolean {
    return this.#sock.closed;
  }

  get buffered(): number {
    return this.#sock.buffered;
  }

  start(handlers: WireHandlers): void {
    this.#handlers = handlers;
    this.#sock.onData((chunk) => {
      const err = this.#decoder.feed(chunk, handlers.onMap);
      if (err !== null)
        handlers.onBad(err, err === 'frame_too_large' ? 'a frame over the size limit' : 'an empty frame');
    });
    this.#sock.onClose(() => this.#closedNow());
    if (this.#sock.closed) this.#closedNow();
  }

  send(map: { [k: string]: WireValue | undefined }): void {
    this.#sock.write(encodeFrame(map));
  }

  end(): void {
    this.#sock.end();
  }

  destroy(): void {
    this.#sock.destroy();
    this.#closedNow();
  }

  #closedNow(): void {
    if (this.#closeSent || this.#handlers === null) return;
    this.#closeSent = true;
    this.#handlers.onClose({});
  }
}
