/** The scripts of the Redis store, defined on its connection (ioredis defineCommand: EVALSHA, EVAL on NOSCRIPT). */
import { Cluster } from 'ioredis';
import type { RedisClient } from '../../redis/index.js';
import type { AppendP2P, StoreLimits } from '../store.js';
import { TurnBatch } from './batch.js';
import type { RedisContext, ScriptFn } from './context.js';
import { sendAppends } from './inbox.js';
import type { Keys } from './keys.js';
import { APPEND_MANY, COPY_MANY, SCRIPTS, SESSIONS_MANY, type ScriptName } from './lua/index.js';

/** Appends per fishchat_appendMany call: Redis runs a call without a break (~5 µs per append). */
const APPEND_BATCH = 256;
/** Users per fishchat_sessionsMany call. */
const SESSIONS_BATCH = 1000;

type Scripts = Pick<RedisContext, 's' | 'sb' | 'appends' | 'lookups' | 'copyMany'>;

/** The script functions, and on a single Redis the batches of a turn (a Cluster script must stay on one slot). */
export function defineScripts(c: RedisClient, keys: Keys, limits: StoreLimits): Scripts {
  const s = {} as Record<ScriptName, ScriptFn>;
  const sb = {} as Record<ScriptName, ScriptFn>;
  const cmd = c as unknown as Record<string, ScriptFn>;
  for (const name of Object.keys(SCRIPTS) as ScriptName[]) {
    const id = `fishchat_${name}`;
    const { keys: numberOfKeys, lua } = SCRIPTS[name];
    if (typeof cmd[id] !== 'function') c.defineCommand(id, { numberOfKeys, lua });
    s[name] = cmd[id]!.bind(c);
    sb[name] = cmd[`${id}Buffer`]!.bind(c);
  }
  if (c instanceof Cluster) return { s, sb, appends: undefined, lookups: undefined, copyMany: undefined };
  if (typeof cmd.fishchat_appendMany !== 'function') c.defineCommand('fishchat_appendMany', { lua: APPEND_MANY });
  // Buffer reply: the packed replies of every append (lua/inbox.ts APPEND_MANY).
  const appendMany = cmd.fishchat_appendManyBuffer!.bind(c);
  const appends = new TurnBatch<AppendP2P>(APPEND_BATCH, (ms) => sendAppends(keys, limits, appendMany, ms));
  if (typeof cmd.fishchat_copyMany !== 'function')
    c.defineCommand('fishchat_copyMany', { numberOfKeys: 0, lua: COPY_MANY });
  // Buffer reply: the packed seqs (lua/fanout.ts COPY_MANY).
  const copyMany = cmd.fishchat_copyManyBuffer!.bind(c);
  if (typeof cmd.fishchat_sessionsMany !== 'function') c.defineCommand('fishchat_sessionsMany', { lua: SESSIONS_MANY });
  const sessionsMany = cmd.fishchat_sessionsMany!.bind(c);
  const lookups = new TurnBatch<string>(SESSIONS_BATCH, (users) => {
    const dirKeys = users.map((u) => `${keys.user(u)}d`);
    return sessionsMany(dirKeys.length, ...dirKeys) as Promise<unknown[]>;
  });
  return { s, sb, appends, lookups, copyMany };
}
