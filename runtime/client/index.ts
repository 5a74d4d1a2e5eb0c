/** The FishChat client library (used by the CLI's send, chat and tail, and the tests): `fishchat/client`. */
export { FishClient, route } from './client.js';
export type {
  ClientEvents,
  ConnectOptions,
  LoginInfo,
  Msg,
  RouteInfo,
  SendResult,
  SyncResult,
  TopicSendResult,
} from './client.js';
export { FishError, type FishErrorCode } from './errors.js';
export { Backoff, DEFAULT_BACKOFF, type BackoffSettings } from './backoff.js';
export { Queue } from './queue.js';
export { Connection, parseAddr, type ConnectionOptions, type Frame, type RequestOptions } from './connection.js';
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
