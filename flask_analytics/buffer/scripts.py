"""The buffer's Lua scripts: each runs atomically, in one round trip to Redis.

Kept apart from the Python that calls them (:class:`~.client.RedisBuffer`), as rq keeps
its Lua in ``rq/scripts.py``.
"""

from __future__ import annotations

from ..ingest.ratelimit import ACQUIRE_SLIDING_WINDOW_LUA

if ACQUIRE_SLIDING_WINDOW_LUA.lstrip().startswith("#!"):  # pragma: no cover - a new `limits`
    raise ImportError("the limits library's sliding-window script has flags: cannot embed it")

#: Counts the rate limit and appends the rows of one request (one entry), in one round
#: trip. The rate limit is the ``limits`` library's own sliding-window script, run as a
#: function on its own keys, sustained window first, then the burst window (as
#: ``CollectLimiter.hit`` does); a refused request appends nothing.
#: KEYS = stream, flush-request flag, (previous, current) key of each rate-limit window,
#:        then one dedupe key per row when ARGV[2] > 0.
#: ARGV = max_len (0: none), dedupe ttl (0: off), flush threshold (0: none), flag ttl ms,
#:        columns (tab-separated), events counted, rate-limit windows (0-2), (limit,
#:        expiry seconds) of each window, then one COPY text line per row (dedupe on),
#:        or all the lines joined by newlines (dedupe off: no row is dropped), or nothing
#:        (only the rate limit is counted).
#: Returns {entry id or false, stream length, flush due (0/1), {indexes of duplicates},
#:          refused by the rate limit (0/1)}.
APPEND_SCRIPT = (
    "local function acquire(KEYS, ARGV)\n"
    + ACQUIRE_SLIDING_WINDOW_LUA
    + """
end
local windows = tonumber(ARGV[7])
if windows > 0 then
  if not acquire({KEYS[3], KEYS[4]}, {ARGV[8], ARGV[9], ARGV[6]}) then
    if windows < 2 or not acquire({KEYS[5], KEYS[6]}, {ARGV[10], ARGV[11], ARGV[6]}) then
      return {false, 0, 0, {}, 1}
    end
  end
end
local first_row = 8 + 2 * windows
local first_key = 3 + 2 * windows
local len = redis.call('XLEN', KEYS[1])
local max_len = tonumber(ARGV[1])
if max_len > 0 and len >= max_len then
  return {false, len, 0, {}, 0}
end
local ttl = tonumber(ARGV[2])
local kept = {}
local dups = {}
for i = first_row, #ARGV do
  if ttl == 0 or redis.call('SET', KEYS[i - first_row + first_key], '1', 'NX', 'EX', ttl) then
    kept[#kept + 1] = ARGV[i]
  else
    dups[#dups + 1] = i - first_row
  end
end
local id = false
if #kept > 0 then
  id = redis.call('XADD', KEYS[1], '*', 'v', '2', 'c', ARGV[5], 'r', table.concat(kept, '\\n'))
  len = len + 1
end
local due = 0
local threshold = tonumber(ARGV[3])
if threshold > 0 and len >= threshold then
  if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[4]) then
    due = 1
  end
end
return {id, len, due, dups, 0}
"""
)

#: Removes this group's consumers that own no pending entry and were idle ARGV[2] ms,
#: plus the consumer named ARGV[3] when it owns nothing. Atomic, so a consumer cannot
#: take an entry between the check and the removal (its entry would be orphaned).
CLEANUP_SCRIPT = """
local removed = 0
local ok, consumers = pcall(redis.call, 'XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
if not ok then
  return 0
end
for _, info in ipairs(consumers) do
  local c = {}
  for i = 1, #info, 2 do
    c[info[i]] = info[i + 1]
  end
  if c['pending'] == 0 and (c['idle'] >= tonumber(ARGV[2]) or c['name'] == ARGV[3]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], c['name'])
    removed = removed + 1
  end
end
return removed
"""


#: Moves the dead-lettered rows (KEYS[1]) after id ARGV[2] ("-": from the start), up to
#: ARGV[1] of them, back into the stream (KEYS[2]), oldest first, each as an entry of its
#: own; an entry missing a field stays where it is. Atomic: a row is in exactly one of
#: the two streams whatever happens. Returns {rows moved, entries scanned, last id}.
REQUEUE_SCRIPT = """
local moved, last = 0, false
local items = redis.call('XRANGE', KEYS[1], ARGV[2], '+', 'COUNT', ARGV[1])
for _, item in ipairs(items) do
  local f = {}
  for i = 1, #item[2], 2 do
    f[item[2][i]] = item[2][i + 1]
  end
  if f['v'] and f['c'] and f['r'] then
    redis.call('XADD', KEYS[2], '*', 'v', f['v'], 'c', f['c'], 'r', f['r'])
    redis.call('XDEL', KEYS[1], item[1])
    moved = moved + 1
  end
  last = item[1]
end
return {moved, #items, last}
"""
