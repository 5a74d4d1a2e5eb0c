/** Housekeeping scripts: trimming one user, one topic. */
import { TRIM_CIDS, type ScriptDef } from './common.js';

/** The trim scripts, by name. */
export const HOUSEKEEPING_SCRIPTS = {
  /**
   * Trims one user. KEYS: meta inbox cid cidz topiccopies.
   * ARGV: inboxCutoff, cidCutoff, maxInbox, maxSteps. → {removed, more}
   */
  trimUser: {
    keys: 5,
    lua: `${TRIM_CIDS}
local n = redis.call('LLEN', KEYS[2])
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local max = tonumber(ARGV[3])
if n > max then
  redis.call('LTRIM', KEYS[2], n - max, -1)
  n = max
end
local cutoff = tonumber(ARGV[1])
local steps = tonumber(ARGV[4])
local idx = 0
local more = 0
while true do
  local chunk = redis.call('LRANGE', KEYS[2], idx, idx + 99)
  local stop = #chunk < 100
  for k = 1, #chunk do
    if struct.unpack('>d', chunk[k], 9) >= cutoff then
      stop = true
      break
    end
    idx = idx + 1
  end
  if stop then break end
  if idx >= steps then
    more = 1
    break
  end
end
if idx > 0 then redis.call('LTRIM', KEYS[2], idx, -1) end
n = n - idx
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', seq - n)
if trimCids(KEYS[3], KEYS[4], ARGV[2], steps) >= steps then more = 1 end
return {idx, more}
`,
  },

  /**
   * Trims one topic: log by age (oldest first, never past the fan-out
   * position), member tombstones the fan-out has passed, old topic cids.
   * KEYS: meta log joined members gone cid cidz. ARGV: cutoff, cidCutoff, maxSteps. → {removed, more}
   */
  trimTopic: {
    keys: 7,
    lua: `${TRIM_CIDS}
local t = redis.call('HMGET', KEYS[1], 'fanned', 'lf')
if not t[1] then return {0, 0} end
local fanned = tonumber(t[1])
local lf = tonumber(t[2] or '1')
local cutoff = tonumber(ARGV[1])
local steps = tonumber(ARGV[3])
local removed, iter, more = 0, 0, 0
while lf <= fanned do
  if iter >= steps then
    more = 1
    break
  end
  iter = iter + 1
  local v = redis.call('HGET', KEYS[2], lf)
  if v then
    if struct.unpack('>d', v, 1) >= cutoff then break end
    redis.call('HDEL', KEYS[2], lf)
    removed = removed + 1
  end
  lf = lf + 1
end
redis.call('HSET', KEYS[1], 'lf', lf)
local gone = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', fanned, 'LIMIT', 0, steps)
for i = 1, #gone do
  redis.call('HDEL', KEYS[3], gone[i])
  redis.call('ZREM', KEYS[4], gone[i])
  redis.call('ZREM', KEYS[5], gone[i])
end
if #gone >= steps then more = 1 end
if trimCids(KEYS[6], KEYS[7], ARGV[2], steps) >= steps then more = 1 end
return {removed, more}
`,
  },
} satisfies Record<string, ScriptDef>;
