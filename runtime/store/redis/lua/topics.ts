/** Topic scripts: create, join, leave, members, append to the log. */
import { READ_CID, TRIM_CIDS, type ScriptDef } from './common.js';

/** The topic scripts, by name. */
export const TOPIC_SCRIPTS = {
  // KEYS of a topic: meta joined(hash) members(zset, lex) gone(zset by left tseq) log cid cidz

  /** topicCreate. KEYS: meta joined members. ARGV: creator, ts. → 1 | 0 */
  topicCreate: {
    keys: 3,
    lua: `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'creator', ARGV[1], 'created', ARGV[2], 'members', 1, 'tseq', 0,
  'fanned', 0, 'fm', '', 'lf', 1)
redis.call('HSET', KEYS[2], ARGV[1], 0)
redis.call('ZADD', KEYS[3], 0, ARGV[1])
return 1
`,
  },

  /**
   * topicJoin. KEYS: meta joined members gone. ARGV: user.
   * → {0} no topic | {1, members} | {2, leftTseq}: fan out up to leftTseq first, then call again
   */
  topicJoin: {
    keys: 4,
    lua: `
local t = redis.call('HMGET', KEYS[1], 'tseq', 'fanned', 'members')
if not t[1] then return {0} end
local tseq, fanned, members = tonumber(t[1]), tonumber(t[2]), tonumber(t[3])
local j = redis.call('HGET', KEYS[2], ARGV[1])
local l = redis.call('ZSCORE', KEYS[4], ARGV[1])
if j and not l then return {1, members} end
if j and l and tonumber(l) >= tseq then
  redis.call('ZREM', KEYS[4], ARGV[1])
else
  if j and l and tonumber(l) > fanned then return {2, tonumber(l)} end
  redis.call('HSET', KEYS[2], ARGV[1], tseq)
  redis.call('ZREM', KEYS[4], ARGV[1])
  redis.call('ZADD', KEYS[3], 0, ARGV[1])
end
redis.call('HINCRBY', KEYS[1], 'members', 1)
return {1, members + 1}
`,
  },

  /** topicLeave. KEYS: meta joined members gone. ARGV: user. → 0 no topic | 1 not a member | 2 ok */
  topicLeave: {
    keys: 4,
    lua: `
local t = redis.call('HMGET', KEYS[1], 'tseq', 'fanned')
if not t[1] then return 0 end
if not redis.call('HGET', KEYS[2], ARGV[1]) or redis.call('ZSCORE', KEYS[4], ARGV[1]) then return 1 end
if tonumber(t[2]) >= tonumber(t[1]) then
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
else
  redis.call('ZADD', KEYS[4], t[1], ARGV[1])
end
redis.call('HINCRBY', KEYS[1], 'members', -1)
return 2
`,
  },

  /** topicMembers. KEYS: meta members gone. ARGV: after ('' none), n. → nil | {members (n + 1 at most)} */
  topicMembers: {
    keys: 3,
    lua: `
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local want = tonumber(ARGV[2]) + 1
local out = {}
local cursor = '-'
if ARGV[1] ~= '' then cursor = '(' .. ARGV[1] end
while #out < want do
  local ask = want - #out + 8
  local batch = redis.call('ZRANGEBYLEX', KEYS[2], cursor, '+', 'LIMIT', 0, ask)
  for i = 1, #batch do
    if not redis.call('ZSCORE', KEYS[3], batch[i]) then
      out[#out + 1] = batch[i]
      if #out >= want then break end
    end
  end
  if #batch < ask then break end
  cursor = '(' .. batch[#batch]
end
return {out}
`,
  },

  /**
   * topicAppend. KEYS: meta joined gone log cid cidz.
   * ARGV: from, cidField ('' none), mid, ts, cidWindow, entry.
   * → {0} no topic | {1} not a member | {2, mid, tseq, ts, duplicate}
   */
  topicAppend: {
    keys: 6,
    lua: `${TRIM_CIDS}${READ_CID}
if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
if not redis.call('HGET', KEYS[2], ARGV[1]) or redis.call('ZSCORE', KEYS[3], ARGV[1]) then return {1} end
local cf = ARGV[2]
local ts = tonumber(ARGV[4])
local window = tonumber(ARGV[5])
if cf ~= '' then
  local hit = redis.call('HGET', KEYS[5], cf)
  if hit then
    local hts, htseq, hmid = readCid(hit)
    if tonumber(hts) > ts - window then return {2, hmid, htseq, hts, 1} end
  end
end
local tseq = redis.call('HINCRBY', KEYS[1], 'tseq', 1)
redis.call('HSET', KEYS[4], tseq, ARGV[6])
if cf ~= '' then
  redis.call('HSET', KEYS[5], cf, ARGV[4] .. '\\0' .. tseq .. '\\0' .. ARGV[3])
  redis.call('ZADD', KEYS[6], ARGV[4], cf)
  trimCids(KEYS[5], KEYS[6], ts - window, 4)
end
return {2, ARGV[3], tseq, ARGV[4], 0}
`,
  },
} satisfies Record<string, ScriptDef>;
