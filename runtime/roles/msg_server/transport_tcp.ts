/**
 * The TCP transport: length-prefixed frames (docs/protocol.md §1) over the
 * platform's TcpSocket. The only file of the msg_server that knows either.
 */
import { FrameDecoder } from '../../protocol/index.js';
import type { TcpSocket } from '../../platform/types.js';
import type { CloseReason, Transport, TransportHandlers } from './transport.js';

/** How long a closing connection may take to finish before its socket is destroyed, ms. */
const CLOSE_GRACE = 2000;

export function tcpTransport(sock: TcpSocket, maxFrame: number): Transport {
  let decoder: FrameDecoder | undefined;
  return {
    get remoteAddress() {
      return sock.remoteAddress;
    },
    write: (frame) => sock.write(frame),
    get buffered() {
      return sock.buffered;
    },
    get closed() {
      return sock.closed;
    },
    start(h: TransportHandlers) {
      decoder = new FrameDecoder(maxFrame);
      const onMap = h.map;
      sock.onData((chunk) => {
        const err = decoder!.feed(chunk, onMap);
        if (err) h.bad(err);
        h.readEnd();
      });
      sock.onDrain(h.drain);
      sock.onClose(h.close);
    },
    close(reason: CloseReason) {
      if (reason.why === 'idle' || reason.why === 'stopping') {
        sock.destroy();
        return;
      }
      if (!decoder) sock.onData(() => undefined); // never started: nothing it sends is read, nor kept
      sock.end();
      if (reason.why === 'kick' || reason.why === 'login_timeout' || (reason.why === 'overloaded' && !decoder)) {
        const t = setTimeout(() => sock.destroy(), CLOSE_GRACE);
        t.unref?.();
      }
    },
  };
}
