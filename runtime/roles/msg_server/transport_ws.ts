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
  let started = false;
  let textWasBad = false;
  return {
    get remoteAddress() {
      return ws.remoteAddress;
    },
    // The core's frames carry the TCP length prefix; a message is the map alone.
    write: (frame) => ws.send(frame.subarray(4)),
    get buffered() {
      return ws.buffered;
    },
    get closed() {
      return ws.closed;
    },
    start(h: TransportHandlers) {
      started = true;
      ws.onMessage((data) => {
        if (typeof data === 'string') {
          textWasBad = true;
          h.bad('bad_frame', 'a text message; send each map as one binary message');
        } else h.map(data);
        h.readEnd();
      });
      ws.onTooLarge(() => {
        h.bad('frame_too_large');
        h.readEnd();
      });
      ws.onDrain(h.drain);
      ws.onClose(h.close);
    },
    close(reason: CloseReason) {
      if (reason.why === 'idle') {
        ws.terminate();
        return;
      }
      if (!started) ws.onMessage(() => undefined); // never started: nothing it sends is read, nor kept
      ws.close(closeCode(reason, textWasBad));
    },
  };
}
