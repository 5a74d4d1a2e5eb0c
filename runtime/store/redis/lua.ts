/**
 * The Lua scripts of the Redis store (./../redis.ts). Each one touches the
 * keys of ONE hash tag only (one user `{u:..}`, one topic `{t:..}` or the
 * leases `{lease}`), so each runs on one slot of a Redis Cluster.
 *
 * Value layouts (built by the TypeScript side, read here only where a script
 * needs a field):
 * - inbox entry (list item): f64 BE seq | f64 BE ts | CBOR payload
 *   (the script prepends the seq; it reads ts at offset 9 to trim by age)
 * - topic log entry (hash field tseq): f64 BE ts | CBOR payload
 * - cid record (hash field `from \0 cid`): `ts \0 seq \0 mid`
 * - directory entry (hash field device): JSON [server, boot, gen]
 * - device record (hash field device): JSON [lastSeen, online, server]
 */

/** Removes up to `limit` cid records older than `before` (exclusive); a helper pasted into scripts. */
const TRIM_CIDS = `
local function trimCids(hash, zset, before, limit)
  local old = redis.call('ZRANGEBYSCORE', zset, '-inf', '(' .. before, 'LIMIT', 0, limit)
  local i = 1
  while i <= #old do
    local j = math.min(i + 499, #old)
    redis.call('HDEL', hash, unpack(old, i, j))
    redis.call('ZREM', zset, unpack(old, i, j))
    i = j + 1
  end
  return #old
end
`;

/** Reads a cid record: ts string, seq/tseq number, mid. */
const READ_CID = `
local function readCid(hit)
  local a = string.find(hit, '\\0', 1, true)
  local b = string.find(hit, '\\0', a + 1, true)
  return string.sub(hit, 1, a - 1), tonumber(string.sub(hit, a + 1, b - 1)), string.sub(hit, b + 1)
end
`;

/**
 * One p2p append (the body of `append`, and of each step of APPEND_MANY):
 * cid check, seq, inbox entry, cid record, count trim, directory read.
 * → {1, mid, seq, ts, dir} (duplicate) | {0, seq, dir}
 */
const APPEND_ONE = `${TRIM_CIDS}${READ_CID}
local function appendOne(km, ki, kc, kcz, kt, kd, cf, entry, tsArg, window, max, epoch, mid)
  local ts = tonumber(tsArg)
  if cf ~= '' then
    local hit = redis.call('HGET', kc, cf)
    if hit then
      local hts, hseq, hmid = readCid(hit)
      if tonumber(hts) > ts - window then
        return {1, hmid, hseq, hts, redis.call('HGETALL', kd)}
      end
    end
  end
  redis.call('HSETNX', km, 'epoch', epoch)
  local seq = redis.call('HINCRBY', km, 'seq', 1)
  local n = redis.call('RPUSH', ki, struct.pack('>d', seq) .. entry)
  if cf ~= '' then
    redis.call('HSET', kc, cf, tsArg .. '\\0' .. seq .. '\\0' .. mid)
    redis.call('ZADD', kcz, tsArg, cf)
    trimCids(kc, kcz, ts - window, 4)
  end
  if n > max then
    redis.call('LTRIM', ki, n - max, -1)
    redis.call('ZREMRANGEBYSCORE', kt, '-inf', seq - max)
  end
  return {0, seq, redis.call('HGETALL', kd)}
end
`;

/**
 * Many p2p appends in one call: on a single Redis (never a Redis Cluster,
 * whose scripts must stay on one slot) the store sends every append of an
 * event-loop turn as one script, so Redis and the client pay the call once.
 * Each step is exactly `append`, in order; the call is atomic as a whole.
 * KEYS: 6 per append (as `append`). ARGV: cidWindow, maxInbox, then 5 per
 * append: cidField, entry, ts, newEpoch, mid. → one `append` reply per append
 */
export const APPEND_MANY = `${APPEND_ONE}
local window = tonumber(ARGV[1])
local max = tonumber(ARGV[2])
local out = {}
for i = 0, #KEYS / 6 - 1 do
  local k = i * 6
  local a = 2 + i * 5
  out[i + 1] = appendOne(KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4], KEYS[k + 5], KEYS[k + 6],
    ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], window, max, ARGV[a + 4], ARGV[a + 5])
end
return out
`;

/** One topic copy (the body of `copy`, and of each step of COPY_MANY). → seq | 0 (had it) */
const COPY_ONE = `
local function copyOne(km, ki, kt, copyKey, entry, max, epoch)
  if redis.call('ZSCORE', kt, copyKey) then return 0 end
  redis.call('HSETNX', km, 'epoch', epoch)
  local seq = redis.call('HINCRBY', km, 'seq', 1)
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
 * as APPEND_MANY). KEYS: 3 per member (as `copy`). ARGV: copyKey, entry,
 * maxInbox, then one newEpoch per member. → one `copy` reply per member
 */
export const COPY_MANY = `${COPY_ONE}
local max = tonumber(ARGV[3])
local out = {}
for i = 0, #KEYS / 3 - 1 do
  local k = i * 3
  out[i + 1] = copyOne(KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], ARGV[1], ARGV[2], max, ARGV[4 + i])
end
return out
`;

/**
 * The directory entries of many users in one call (single Redis only, as
 * APPEND_MANY): the router's lookups for a topic fan-out step.
 * KEYS: each user's directory hash. → one HGETALL reply per key
 */
export const SESSIONS_MANY = `
local out = {}
for i = 1, #KEYS do out[i] = redis.call('HGETALL', KEYS[i]) end
return out
`;

export interface ScriptDef {
  keys: number;
  lua: string;
}

export const SCRIPTS = {
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

  /**
   * login. KEYS: meta inbox gens dir acks. ARGV: device, server, boot, push ('1'/'0'), newEpoch.
   * → {gen, seq, epoch, length, acked, previous entry or nil}
   */
  login: {
    keys: 5,
    lua: `
local gen = 0
local prev = false
if ARGV[4] == '1' then
  gen = redis.call('HINCRBY', KEYS[3], ARGV[1], 1)
  prev = redis.call('HGET', KEYS[4], ARGV[1])
  redis.call('HSET', KEYS[4], ARGV[1], cjson.encode({ARGV[2], ARGV[3], gen}))
end
redis.call('HSETNX', KEYS[1], 'epoch', ARGV[5])
local h = redis.call('HMGET', KEYS[1], 'seq', 'epoch')
local acked = tonumber(redis.call('HGET', KEYS[5], ARGV[1]) or '0')
return {gen, tonumber(h[1] or '0'), h[2], redis.call('LLEN', KEYS[2]), acked, prev}
`,
  },

  /** removeSession. KEYS: dir. ARGV: device, gen. → 1 | 0 */
  removeSession: {
    keys: 1,
    lua: `
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v and cjson.decode(v)[3] == tonumber(ARGV[2]) then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 1
end
return 0
`,
  },

  /** removeServerSessions, one user: KEYS: dir. ARGV: device, server, boot. → 1 | 0 */
  removeIfServer: {
    keys: 1,
    lua: `
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v then
  local e = cjson.decode(v)
  if e[1] == ARGV[2] and e[2] == ARGV[3] then
    redis.call('HDEL', KEYS[1], ARGV[1])
    return 1
  end
end
return 0
`,
  },

  /** restoreSession. KEYS: gens dir. ARGV: device, server, boot, gen. → 1 | 0 */
  restore: {
    keys: 2,
    lua: `
local g = redis.call('HGET', KEYS[1], ARGV[1])
if g and tonumber(g) == tonumber(ARGV[4]) then
  redis.call('HSET', KEYS[2], ARGV[1], cjson.encode({ARGV[2], ARGV[3], tonumber(ARGV[4])}))
  return 1
end
return 0
`,
  },

  /** renewLease. KEYS: lease key, lease index. ARGV: member, ttlMs, expiresAt. → 1 alive | 0 */
  leaseRenew: {
    keys: 2,
    lua: `
local alive = redis.call('EXISTS', KEYS[1])
redis.call('SET', KEYS[1], '1', 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return alive
`,
  },

  /** dropLease. KEYS: lease key, lease index. ARGV: member. */
  leaseDrop: {
    keys: 2,
    lua: `
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
`,
  },

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

  /** recordUserEvent. KEYS: record devices. ARGV: k, device, server, ts. */
  record: {
    keys: 2,
    lua: `
local ts = tonumber(ARGV[4])
local r = redis.call('HMGET', KEYS[1], 'first', 'last')
if not r[1] or ts < tonumber(r[1]) then redis.call('HSET', KEYS[1], 'first', ARGV[4]) end
if not r[2] or ts > tonumber(r[2]) then redis.call('HSET', KEYS[1], 'last', ARGV[4]) end
local cur = redis.call('HGET', KEYS[2], ARGV[2])
local last, online, server = ARGV[4], 1, ARGV[3]
if cur then
  local d = cjson.decode(cur)
  if tonumber(d[1]) > ts then last = d[1] end
  if ARGV[1] ~= 'login' then
    server = d[3]
    if d[3] == ARGV[3] then online = 0 else online = d[2] end
  end
elseif ARGV[1] ~= 'login' then
  online = 0
end
redis.call('HSET', KEYS[2], ARGV[2], cjson.encode({last, online, server}))
return 1
`,
  },

  // ---- topics: KEYS of a topic are meta joined(hash) members(zset, lex) gone(zset by left tseq) log cid cidz

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

export type ScriptName = keyof typeof SCRIPTS;
