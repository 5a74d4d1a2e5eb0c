/**
 * What carries a connection's frames: a duplex of whole CBOR maps with a
 * backpressure count. The session core (connection.ts and the handlers) only
 * sees this; each transport is an adapter (transport_tcp.ts: length-prefixed
 * frames over a TCP socket; transport_ws.ts: one map per WebSocket message).
 *
 * Outgoing maps: the core encodes each map once, as encodeFrame makes it,
 * with its 4-byte length prefix (the same bytes go to every connection a push
 * reaches). A length-prefixed transport writes the bytes as they are; a
 * message-oriented one sends `frame.subarray(4)` (no copy).
 */

/** Why the core closes a connection (a WebSocket maps these to close codes, docs/protocol.md §1a). */
export type CloseReason =
  /** input that is not a well-formed map, after the `bad_frame` error */
  | { why: 'bad_frame' }
  /** a frame over maxFrame, after the `frame_too_large` error */
  | { why: 'frame_too_large' }
  /** a login whose token failed, after the `auth_failed` error */
  | { why: 'auth_failed' }
  /** the msg_server is full (at accept) or the client queued too many requests, after the `overloaded` error */
  | { why: 'overloaded' }
  /** after the `ok` of a logout */
  | { why: 'logout' }
  /** after a `kick` with this reason (`replaced`, `draining`, `slow`) */
  | { why: 'kick'; reason: string }
  /** no login within loginTimeout */
  | { why: 'login_timeout' }
  /** nothing arrived for 2.5 × heartbeat: cut at once */
  | { why: 'idle' }
  /** the msg_server is stopping and takes no new connection: cut at once */
  | { why: 'stopping' };

/** What a transport tells the core; set once with `start`. */
export interface TransportHandlers {
  /** One received map's bytes (the CBOR map alone, no length prefix); the view is valid only during the call. */
  map(bytes: Uint8Array): void;
  /**
   * Input that cannot be a map (`bad_frame`) or is over maxFrame
   * (`frame_too_large`); nothing more is read. `why`: what the error's
   * message says (the core has one of its own for each code).
   */
  bad(code: 'bad_frame' | 'frame_too_large', why?: string): void;
  /** End of one read (a chunk, a message): the maps and errors reported since the last call arrived together. */
  readEnd(): void;
  /** `buffered` fell back to 0 after being non-zero. */
  drain(): void;
  /** The connection is closed (by either side). */
  close(): void;
}

export interface Transport {
  readonly remoteAddress: string;
  /** Queues one encoded map (with its 4-byte length prefix, see above); dropped when closed. */
  write(frame: Uint8Array): void;
  /** Bytes written and not yet sent (maxOutBuffer and pacing count these). */
  readonly buffered: number;
  readonly closed: boolean;
  /** Starts reading; input that arrived before is kept until then. */
  start(handlers: TransportHandlers): void;
  /** Sends what is queued, then closes (at once for `idle` and `stopping`). */
  close(reason: CloseReason): void;
}
