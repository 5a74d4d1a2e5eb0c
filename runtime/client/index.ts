/** The FishChat client library (used by the CLI's send, chat, tail, bench, and the tests). */
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
export { encodeBody, RawCbor } from '../protocol/index.js';
