/**
 * What the Lua scripts of the Redis store (../store.ts) share. Each script
 * touches the keys of ONE hash tag only (one user `{u:..}`, one topic `{t:..}`
 * or the leases `{lease}`), so each runs on one slot of a Redis Cluster.
 *
 * Value layouts (built by the TypeScript side, ../values.ts, read here only
 * where a script needs a field):
 * - inbox entry (list item): f64 BE seq | f64 BE ts | CBOR payload
 *   (the script prepends the seq; it reads ts at offset 9 to trim by age)
 * - topic log entry (hash field tseq): f64 BE ts | CBOR payload
 * - cid record (hash field `from \0 cid`): `ts \0 seq \0 mid`
 * - directory entry (hash field device): JSON [server, boot, gen]
 * - device record (hash field device): JSON [lastSeen, online, server]
 */

export interface ScriptDef {
  keys: number;
  lua: string;
}

/** Removes up to `limit` cid records older than `before` (exclusive); a helper pasted into scripts. */
export const TRIM_CIDS = `
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
export const READ_CID = `
local function readCid(hit)
  local a = string.find(hit, '\\0', 1, true)
  local b = string.find(hit, '\\0', a + 1, true)
  return string.sub(hit, 1, a - 1), tonumber(string.sub(hit, a + 1, b - 1)), string.sub(hit, b + 1)
end
`;
