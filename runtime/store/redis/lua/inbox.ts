/** Inbox scripts: p2p appends (one, or many in one call), reads, heads, acks. */
import { READ_CID, TRIM_CIDS, type ScriptDef } from './common.js';

/**
 * One p2p append (the body of `append`, and of each step of APPEND_MANY):
 * cid check, seq, inbox entry, cid record, count trim, directory read.
 * The epoch is written with the first seq (a user's meta hash never loses
 * it: never trimmed nor expired). kc, kcz and kt may be nil: then they are
 * derived from the user key prefix k when needed (APPEND_MANY).
 * → {1, mid, seq, ts, dir} (duplicate) | {0, seq, dir}
 */
const APPEND_ONE = `${TRIM_CIDS}${READ_CID}
local function appendOne(km, ki, kc, kcz, kt, kd, cf, entry, tsArg, window, max, epoch, mid, k)
  local ts = tonumber(tsArg)
  if cf ~= '' then
    kc = kc or (k .. 'c')
    kcz = kcz or (k .. 'cz')
    local hit = redis.call('HGET', kc, cf)
    if hit then
      local hts, hseq, hmid = readCid(hit)
      if tonumber(hts) > ts - window then
        return {1, hmid, hseq, hts, redis.call('HGETALL', kd)}
      end
    end
  end
  local seq = redis.call('HINCRBY', km, 'seq', 1)
  if seq == 1 then redis.call('HSETNX', km, 'epoch', epoch) end
  local n = redis.call('RPUSH', ki, struct.pack('>d', seq) .. entry)
  if cf ~= '' then
    redis.call('HSET', kc, cf, tsArg .. '\\0' .. seq .. '\\0' .. mid)
    redis.call('ZADD', kcz, tsArg, cf)
    trimCids(kc, kcz, ts - window, 4)
  end
  if n > max then
    redis.call('LTRIM', ki, n - max, -1)
    redis.call('ZREMRANGEBYSCORE', kt or (k .. 't'), '-inf', seq - max)
  end
  return {0, seq, redis.call('HGETALL', kd)}
end
`;

/**
 * Many p2p appends in one call: on a single Redis (never a Redis Cluster,
 * whose scripts must stay on one slot) the store sends every append of an
 * event-loop turn as one script, so Redis and the client pay the call once.
 * Each step is exactly `append`, in order; the call is atomic as a whole.
 *
 * The appends travel packed in ONE argument and the replies come back packed
 * in one string (../inbox.ts packAppends / unpackAppends), so a call costs
 * the client a few arguments however many appends it carries, and no reply
 * array per append. The script derives each append's six keys from its user
 * key prefix (a single Redis only: the keys are not declared).
 * ARGV: cidWindow, maxInbox, newEpoch, appends; each append:
 *   u16 len | user key prefix | u16 len | cidField | u32 len | entry | u16 len | ts | u16 len | mid
 * → per append: u8 0 | f64 seq | dir, or (a cid repeat) u8 1 | f64 seq | f64 ts | u16 len | mid | dir;
 *   dir = u16 pairs | (u16 len | device | u16 len | entry) per pair
 */
export const APPEND_MANY = `${APPEND_ONE}
local window = tonumber(ARGV[1])
local max = tonumber(ARGV[2])
local epoch = ARGV[3]
local b = ARGV[4]
local function s16(p)
  local l = struct.unpack('>H', b, p)
  return string.sub(b, p + 2, p + 1 + l), p + 2 + l
end
local function packDir(d)
  if #d == 0 then return struct.pack('>H', 0) end
  if #d == 2 then return struct.pack('>HH', 1, #d[1]) .. d[1] .. struct.pack('>H', #d[2]) .. d[2] end
  local parts = {struct.pack('>H', #d / 2)}
  for i = 1, #d do parts[i + 1] = struct.pack('>H', #d[i]) .. d[i] end
  return table.concat(parts)
end
local out = {}
local pos = 1
local n = #b
while pos <= n do
  local k, cf, e, ts, mid
  k, pos = s16(pos)
  cf, pos = s16(pos)
  local el = struct.unpack('>I4', b, pos)
  e = string.sub(b, pos + 4, pos + 3 + el)
  pos = pos + 4 + el
  ts, pos = s16(pos)
  mid, pos = s16(pos)
  local r = appendOne(k .. 'm', k .. 'i', nil, nil, nil, k .. 'd', cf, e, ts, window, max, epoch, mid, k)
  if r[1] == 1 then
    out[#out + 1] = struct.pack('>BddH', 1, r[3], tonumber(r[4]), #r[2]) .. r[2] .. packDir(r[5])
  else
    out[#out + 1] = struct.pack('>Bd', 0, r[2]) .. packDir(r[3])
  end
end
return table.concat(out)
`;

/** The inbox scripts, by name. */
export const INBOX_SCRIPTS = {
  /**
   * appendP2P. KEYS: meta inbox cid cidz topiccopies dir.
   * ARGV: cidField ('' none), entry (ts|cbor), ts, cidWindow, maxInbox, newEpoch, mid.
   * → {1, mid, seq, ts, dir} (duplicate) | {0, seq, dir}
   */
  append: {
    keys: 6,
    lua: `${APPEND_ONE}
return appendOne(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6], ARGV[7])
`,
  },

  /**
   * readInbox. KEYS: meta inbox. ARGV: after, limit, newEpoch.
   * → {seq, epoch, length, entries...}
   */
  read: {
    keys: 2,
    lua: `
redis.call('HSETNX', KEYS[1], 'epoch', ARGV[3])
local h = redis.call('HMGET', KEYS[1], 'seq', 'epoch')
local seq = tonumber(h[1] or '0')
local n = redis.call('LLEN', KEYS[2])
local out = {seq, h[2], n}
local limit = math.floor(tonumber(ARGV[2]))
if limit > 0 then
  local first = seq - n + 1
  local from = math.max(math.floor(tonumber(ARGV[1])), first - 1)
  local start = from - first + 1
  if start < n then
    local items = redis.call('LRANGE', KEYS[2], start, start + limit - 1)
    for i = 1, #items do out[#out + 1] = items[i] end
  end
end
return out
`,
  },

  /**
   * head / check. KEYS: meta inbox gens. ARGV: newEpoch, device ('' none).
   * → {seq, epoch, length, gen}
   */
  head: {
    keys: 3,
    lua: `
redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1])
local h = redis.call('HMGET', KEYS[1], 'seq', 'epoch')
local gen = 0
if ARGV[2] ~= '' then gen = tonumber(redis.call('HGET', KEYS[3], ARGV[2]) or '0') end
return {tonumber(h[1] or '0'), h[2], redis.call('LLEN', KEYS[2]), gen}
`,
  },

  /** ack. KEYS: meta acks. ARGV: device, seq. → cursor */
  ack: {
    keys: 2,
    lua: `
local cur = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
local top = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local want = math.min(tonumber(ARGV[2]), top)
if want > cur then
  redis.call('HSET', KEYS[2], ARGV[1], want)
  return want
end
return cur
`,
  },
} satisfies Record<string, ScriptDef>;
