/**
 * Fan-out scripts: the topic's side (read the position and the members due,
 * then store the new position) and the members' side (one copy per inbox).
 */
import type { ScriptDef } from './common.js';

/** One topic copy (the body of `copy`, and of each step of COPY_MANY). → seq | 0 (had it) */
const COPY_ONE = `
local function copyOne(km, ki, kt, copyKey, entry, max, epoch)
  if redis.call('ZSCORE', kt, copyKey) then return 0 end
  local seq = redis.call('HINCRBY', km, 'seq', 1)
  if seq == 1 then redis.call('HSETNX', km, 'epoch', epoch) end
  local n = redis.call('RPUSH', ki, struct.pack('>d', seq) .. entry)
  redis.call('ZADD', kt, seq, copyKey)
  if n > max then
    redis.call('LTRIM', ki, n - max, -1)
    redis.call('ZREMRANGEBYSCORE', kt, '-inf', seq - max)
  end
  return seq
end
`;

/**
 * One topic message copied to many members in one call (single Redis only,
 * as APPEND_MANY): the members travel packed in one argument and the seqs
 * come back packed in one string (../fanout.ts), each member's three keys
 * derived from its user key prefix (not declared: a single Redis only).
 * ARGV: copyKey, entry, maxInbox, newEpoch, members (u16 len | user key prefix, per member).
 * → f64 BE per member: its new seq, or 0 (had the copy)
 */
export const COPY_MANY = `${COPY_ONE}
local max = tonumber(ARGV[3])
local b = ARGV[5]
local out = {}
local pos = 1
local n = #b
while pos <= n do
  local l = struct.unpack('>H', b, pos)
  local k = string.sub(b, pos + 2, pos + 1 + l)
  pos = pos + 2 + l
  out[#out + 1] = struct.pack('>d', copyOne(k .. 'm', k .. 'i', k .. 't', ARGV[1], ARGV[2], max, ARGV[4]))
end
return table.concat(out)
`;

/** The fan-out scripts, by name. */
export const FANOUT_SCRIPTS = {
  /**
   * A topic copy into one member's inbox, once per (topic, tseq).
   * KEYS: meta inbox topiccopies. ARGV: copyKey, entry, maxInbox, newEpoch. → seq | 0 (had it)
   */
  copy: {
    keys: 3,
    lua: `${COPY_ONE}
return copyOne(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4])
`,
  },

  /**
   * Fan-out, step 1: from the stored position, the next messages and the
   * members of the moment of each, at most `limit` members in all.
   * KEYS: meta log joined members gone. ARGV: limit, until ('' none).
   * → nil (no topic) | {tseq, fanned, fanMember, newFanned, newFanMember, {{tseq, entry, members...}...}}
   */
  fanRead: {
    keys: 5,
    lua: `
local t = redis.call('HMGET', KEYS[1], 'tseq', 'fanned', 'fm')
if not t[1] then return false end
local top = tonumber(t[1])
local fanned = tonumber(t[2])
local member = t[3] or ''
local last = top
if ARGV[2] ~= '' then last = math.min(top, tonumber(ARGV[2])) end
local budget = tonumber(ARGV[1])
local f, m = fanned, member
local msgs = {}
while f < last and budget > 0 do
  local T = f + 1
  local v = redis.call('HGET', KEYS[2], T)
  if not v then
    f = T
    m = ''
  else
    local want = budget + 1
    local rows = {}
    local cursor = '-'
    if m ~= '' then cursor = '(' .. m end
    while #rows < want do
      local ask = want - #rows
      local batch = redis.call('ZRANGEBYLEX', KEYS[4], cursor, '+', 'LIMIT', 0, ask)
      for i = 1, #batch do
        local u = batch[i]
        local j = redis.call('HGET', KEYS[3], u)
        if j and tonumber(j) < T then
          local l = redis.call('ZSCORE', KEYS[5], u)
          if not l or tonumber(l) >= T then rows[#rows + 1] = u end
        end
      end
      if #batch < ask then break end
      cursor = '(' .. batch[#batch]
    end
    local take = math.min(#rows, budget)
    local entry = {T, v}
    for i = 1, take do entry[#entry + 1] = rows[i] end
    msgs[#msgs + 1] = entry
    budget = budget - take
    if #rows > take then
      m = rows[take]
      break
    end
    f = T
    m = ''
  end
end
return {top, fanned, member, f, m, msgs}
`,
  },

  /**
   * Fan-out, step 3: stores the new position only if it still is the one read.
   * KEYS: meta. ARGV: fanned, fanMember, newFanned, newFanMember. → {stored, tseq, fanned}
   */
  fanCommit: {
    keys: 1,
    lua: `
local t = redis.call('HMGET', KEYS[1], 'tseq', 'fanned', 'fm')
if not t[1] then return {0, 0, 0} end
if tonumber(t[2]) == tonumber(ARGV[1]) and (t[3] or '') == ARGV[2] then
  redis.call('HSET', KEYS[1], 'fanned', ARGV[3], 'fm', ARGV[4])
  return {1, tonumber(t[1]), tonumber(ARGV[3])}
end
return {0, tonumber(t[1]), tonumber(t[2])}
`,
  },
} satisfies Record<string, ScriptDef>;
