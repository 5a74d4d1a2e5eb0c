/** What the parts of the Redis store share: the connection, the keys, the scripts, the batches of a turn. */
import type { RedisClient } from '../../redis/index.js';
import type { AppendP2P, StoreLimits } from '../store.js';
import type { TurnBatch } from './batch.js';
import type { Keys } from './keys.js';
import type { ScriptName } from './lua/index.js';

export type ScriptFn = (...args: (string | Buffer | number)[]) => Promise<unknown>;

/** Users / topics / index members per step of trim, listing and scanning. */
export const PAGE = 500;

export interface RedisContext {
  readonly c: RedisClient;
  readonly keys: Keys;
  readonly limits: StoreLimits;
  /** the scripts (EVALSHA), replies with strings */
  readonly s: Record<ScriptName, ScriptFn>;
  /** the same scripts, replies with Buffers */
  readonly sb: Record<ScriptName, ScriptFn>;
  /** Single Redis only: the appends and the directory reads of a turn, one script call each; fishchat_copyMany. */
  readonly appends: TurnBatch<AppendP2P> | undefined;
  readonly lookups: TurnBatch<string> | undefined;
  readonly copyMany: ScriptFn | undefined;
  /** users remembered as already in the `users` index */
  readonly known: Set<string>;
  /** set by close() */
  closed: boolean;
  /** throws once the store is closed */
  open(): void;
}
