/**
 * The Lua scripts of the Redis store, by area. SCRIPTS are defined on every
 * connection; APPEND_MANY, COPY_MANY and SESSIONS_MANY only on a single Redis
 * (they touch many hash tags in one call).
 */
import { FANOUT_SCRIPTS } from './fanout.js';
import { HOUSEKEEPING_SCRIPTS } from './housekeeping.js';
import { INBOX_SCRIPTS } from './inbox.js';
import { SESSION_SCRIPTS } from './sessions.js';
import { TOPIC_SCRIPTS } from './topics.js';

export type { ScriptDef } from './common.js';
export { COPY_MANY } from './fanout.js';
export { APPEND_MANY } from './inbox.js';
export { SESSIONS_MANY } from './sessions.js';

export const SCRIPTS = {
  ...INBOX_SCRIPTS,
  ...FANOUT_SCRIPTS,
  ...SESSION_SCRIPTS,
  ...TOPIC_SCRIPTS,
  ...HOUSEKEEPING_SCRIPTS,
};

export type ScriptName = keyof typeof SCRIPTS;
