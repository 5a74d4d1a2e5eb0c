/** Error codes of docs/protocol.md §2. */
export const ERROR_CODES = [
  'bad_frame',
  'frame_too_large',
  'unknown_op',
  'bad_request',
  'not_logged_in',
  'auth_failed',
  'no_such_topic',
  'topic_exists',
  'not_a_member',
  'rate_limited',
  'overloaded',
  'internal',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** A request that failed with a docs/protocol.md error code. */
export class ProtocolError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly rid?: number,
  ) {
    super(message);
    this.name = 'ProtocolError';
  }
}
