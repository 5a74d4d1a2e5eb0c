/**
 * The WebSocket transport (docs/protocol.md §1a "WebSocket transport"): one
 * binary message is one CBOR map, without the length prefix; the close codes
 * say why the server closed. The only file of the msg_server that knows
 * WebSocket; the socket itself comes from the platform (WebSocketConn).
 */
import type { WebSocketConn } from '../../platform/types.js';
import type { CloseReason, Transport, TransportHandlers } from './transport.js';

/** RFC 6455 status codes the server closes with. */
export const WS_CLOSE = {
  normal: 1000,
  goingAway: 1001,
  unsupportedData: 1003,
  invalidPayload: 1007,
  policy: 1008,
  tooBig: 1009,
} as const;

/** The status a close for `reason` carries (a text message that was the bad frame: 1003). */
export function closeCode(reason: CloseReason, textWasBad: boolean): number {
  switch (reason.why) {
    case 'bad_frame':
      return textWasBad ? WS_CLOSE.unsupportedData : WS_CLOSE.invalidPayload;
    case 'frame_too_large':
      return WS_CLOSE.tooBig;
    case 'logout':
      return WS_CLOSE.normal;
    case 'kick':
      return reason.reason === 'draining' ? WS_CLOSE.goingAway : WS_CLOSE.policy;
    case 'stopping':
      return WS_CLOSE.goingAway;
    case 'auth_failed':
    case 'overloaded':
    case 'login_timeout':
    case 'idle':
      return WS_CLOSE.policy;
  }
}

export function wsTransport(ws: WebSocketConn): Transport {
  return new WsTransport(ws);
}

/** A class, not an object of closures (as the TCP transport): its methods shared by every connection. */
class WsTransport implements Transport {
  private started = false;
  private textWasBad = false;
  private handlers: TransportHandlers | undefined;

  constructor(private readonly ws: WebSocketConn) {}

  get remoteAddress(): string {
    return this.ws.remoteAddress;
  }

  // The core's frames carry the TCP length prefix; a message is the map alone.
  write(frame: Uint8Array): void {
    this.ws.send(frame.subarray(4));
  }

  get buffered(): number {
    return this.ws.buffered;
  }

  get closed(): boolean {
    return this.ws.closed;
  }

  start(h: TransportHandlers): void {
    this.started = true;
    this.handlers = h;
    this.ws.onMessage(this.onMessage);
    this.ws.onTooLarge(this.onTooLarge);
    this.ws.onDrain(h.drain);
    this.ws.onClose(h.close);
  }

  private readonly onMessage = (data: Uint8Array | string): void => {
    const h = this.handlers!;
    if (typeof data === 'string') {
      this.textWasBad = true;
      h.bad('bad_frame', 'a text message; send each map as one binary message');
    } else h.map(data);
    h.readEnd();
  };

  private readonly onTooLarge = (): void => {
    const h = this.handlers!;
    h.bad('frame_too_large');
    h.readEnd();
  };

  close(reason: CloseReason): void {
    if (reason.why === 'idle') {
      this.ws.terminate();
      return;
    }
    if (!this.started) this.ws.onMessage(ignore); // never started: nothing it sends is read, nor kept
    this.ws.close(closeCode(reason, this.textWasBad));
  }
}

const ignore = (): void => undefined;
