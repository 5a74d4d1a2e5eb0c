/**
 * The TCP transport: length-prefixed frames (docs/protocol.md §1) over the
 * platform's TcpSocket. The only file of the msg_server that knows either.
 *
 * A class, not an object of closures: one per connection, its methods
 * shared (an object literal with getters took ~1 KB per connection on Node:
 * six closures, their context, and a dictionary of properties).
 */
import { FrameDecoder } from '../../protocol/index.js';
import type { TcpSocket } from '../../platform/types.js';
import type { CloseReason, Transport, TransportHandlers } from './transport.js';

/** How long a closing connection may take to finish before its socket is destroyed, ms. */
const CLOSE_GRACE = 2000;

export function tcpTransport(sock: TcpSocket, maxFrame: number): Transport {
  return new TcpTransport(sock, maxFrame);
}

class TcpTransport implements Transport {
  private decoder: FrameDecoder | undefined;
  private handlers: TransportHandlers | undefined;

  constructor(
    private readonly sock: TcpSocket,
    private readonly maxFrame: number,
  ) {}

  get remoteAddress(): string {
    return this.sock.remoteAddress;
  }

  write(frame: Uint8Array): void {
    this.sock.write(frame);
  }

  get buffered(): number {
    return this.sock.buffered;
  }

  get closed(): boolean {
    return this.sock.closed;
  }

  start(h: TransportHandlers): void {
    this.decoder = new FrameDecoder(this.maxFrame);
    this.handlers = h;
    this.sock.onData(this.onData);
    this.sock.onDrain(h.drain);
    this.sock.onClose(h.close);
  }

  /** One closure per connection (the socket calls it unbound), instead of one per start. */
  private readonly onData = (chunk: Uint8Array): void => {
    const h = this.handlers!;
    const err = this.decoder!.feed(chunk, h.map);
    if (err) h.bad(err);
    h.readEnd();
  };

  close(reason: CloseReason): void {
    const sock = this.sock;
    if (reason.why === 'idle' || reason.why === 'stopping') {
      sock.destroy();
      return;
    }
    if (!this.decoder) sock.onData(ignore); // never started: nothing it sends is read, nor kept
    sock.end();
    if (reason.why === 'kick' || reason.why === 'login_timeout' || (reason.why === 'overloaded' && !this.decoder)) {
      const t = setTimeout(() => sock.destroy(), CLOSE_GRACE);
      t.unref?.();
    }
  }
}

const ignore = (): void => undefined;
