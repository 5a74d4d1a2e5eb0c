/** Session scripts: logins, the directory, leases, user records. */
import type { ScriptDef } from './common.js';

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

/** The session, lease and user-record scripts, by name. */
export const SESSION_SCRIPTS = {
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
} satisfies Record<string, ScriptDef>;
