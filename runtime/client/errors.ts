/**
 * The error every FishClient call rejects with.
 */
import type { ErrorCode } from '../protocol/errors.js';

/** A docs/protocol.md §2 code; a newer server may send codes this version does not know. */
export type FishErrorCode = ErrorCode | (string & {});

/**
 * A request failed. `code` is the server's docs/protocol.md code, or `internal`
 * for failures made on this side, which `local` then names:
 * - `disconnected`: the connection was lost before the reply came (or there
 *   was none); the request may or may not have taken effect;
 * - `timeout`: no reply within the request timeout; same uncertainty.
 * Retrying is the caller's choice: `send`/`topicSend` with a `cid` are safe to
 * retry (the server returns the first result); without one, a retry may store
 * the message twice.
 */
export class FishError extends Error {
  constructor(
    readonly code: FishErrorCode,
    message: string,
    readonly local?: 'disconnected' | 'timeout',
  ) {
    super(message);
    this.name = 'FishError';
  }
}
