/**
 * The FishChat client library, `fishchat/client`: over TCP on Node, Bun and
 * Deno, over WebSocket everywhere (the browser included; a browser bundle is
 * built to dist/browser/fishchat-client.js). The CLI's send, chat and tail
 * and the tests use it too.
 */
export { FishChatClient, FishClient, newCid, route } from './client.js';
export type {
  ClientEvents,
  ConnectOptions,
  LoginInfo,
  Msg,
  RouteInfo,
  RouteServer,
  SendResult,
  SyncResult,
  TopicSendResult,
} from './client.js';
export { FishError, type FishErrorCode } from './errors.js';
export { Backoff, DEFAULT_BACKOFF, type BackoffSettings } from './backoff.js';
export { Queue } from './queue.js';
export { Connection, parseAddr, type ConnectionOptions, type Frame, type RequestOptions } from './connection.js';
export { hasTcp, isWebSocketUrl, transportOf, type Transport, type WireClose } from './wire.js';
export { RawCbor } from '../protocol/cbor.js';
export { encodeBody } from '../protocol/decode.js';
export {
  DEFAULT_SSE_BACKOFF,
  EventStream,
  EventStreamError,
  networkReason,
  SseParser,
  type EventStreamHandlers,
  type EventStreamOptions,
  type EventStreamState,
  type SseEvent,
} from './events.js';
