/**
 * Requests of docs/protocol.md §3–4 as they look after validation.
 * `body` is kept as the raw CBOR bytes the client sent, so it is passed on
 * unchanged in type and value (integer map keys, byte strings, tags).
 */
export interface RouteReq {
  op: 'route';
  rid?: number;
  user?: string;
}
export interface LoginReq {
  op: 'login';
  rid?: number;
  user: string;
  token?: string;
  device: string;
  push: boolean;
}
export interface PingReq {
  op: 'ping';
  rid?: number;
}
export interface LogoutReq {
  op: 'logout';
  rid?: number;
}
export interface SendReq {
  op: 'send';
  rid?: number;
  to: string;
  body: Uint8Array;
  cid?: string;
}
export interface AckReq {
  op: 'ack';
  rid?: number;
  seq: number;
}
export interface SyncReq {
  op: 'sync';
  rid?: number;
  after: number;
  limit: number;
}
export interface TopicCreateReq {
  op: 'topic_create';
  rid?: number;
  topic: string;
}
export interface TopicJoinReq {
  op: 'topic_join';
  rid?: number;
  topic: string;
}
export interface TopicLeaveReq {
  op: 'topic_leave';
  rid?: number;
  topic: string;
}
export interface TopicSendReq {
  op: 'topic_send';
  rid?: number;
  topic: string;
  body: Uint8Array;
  cid?: string;
}
export interface TopicMembersReq {
  op: 'topic_members';
  rid?: number;
  topic: string;
  after?: string;
  limit: number;
}

export type Request =
  | RouteReq
  | LoginReq
  | PingReq
  | LogoutReq
  | SendReq
  | AckReq
  | SyncReq
  | TopicCreateReq
  | TopicJoinReq
  | TopicLeaveReq
  | TopicSendReq
  | TopicMembersReq;

export type Op = Request['op'];

/** Every op of docs/protocol.md, by the role that serves it. */
export const GATEWAY_OPS: ReadonlySet<Op> = new Set<Op>(['route', 'ping']);
export const MSG_SERVER_OPS: ReadonlySet<Op> = new Set<Op>([
  'login',
  'ping',
  'logout',
  'send',
  'ack',
  'sync',
  'topic_create',
  'topic_join',
  'topic_leave',
  'topic_send',
  'topic_members',
]);

/**
 * An inbox message, as a `msg` frame carries it (docs/protocol.md §4.2): the
 * store keeps `body` as the sender's raw CBOR bytes, a client sees it decoded.
 */
export interface InboxMessage<Body> {
  /** the recipient's inbox seq */
  seq: number;
  mid: string;
  from: string;
  /** p2p: the recipient */
  to?: string;
  /** topic messages: the topic and its tseq */
  topic?: string;
  tseq?: number;
  body: Body;
  ts: number;
}
