-- promote.lua: the supervisor moves due retries back onto the task stream.
-- KEYS: S, R, D, E, dirty (common.lua); S, R and D are used.
-- ARGV[1..3] now (ms), events maxlen, status ttl (common.lua)
-- ARGV[4]  at most this many retries per call
-- Each member of R scored <= now (a JSON array of the entry's fields, written by
-- settle.lua) is re-added to S with those fields and removed from R, in one step.
-- A member that does not decode is moved to D (field raw, error) rather than
-- blocking the queue. Returns the number moved to S.

local limit = tonumber(ARGV[4])
if not limit or limit < 1 then
  return redis.error_reply('bad arguments: limit expected')
end

local due = call('ZRANGEBYSCORE', K_RETRY, '-inf', NOW, 'LIMIT', 0, limit)
local moved = 0
for i = 1, #due do
  local ok, flat = pcall(cjson.decode, due[i])
  if ok and type(flat) == 'table' and #flat > 0 and #flat % 2 == 0 then
    call('XADD', K_STREAM, '*', unpack(flat))
    moved = moved + 1
  else
    call('XADD', K_DEAD, '*', 'raw', due[i], 'error', 'undecodable retry entry',
         'failed_at', format('%d', NOW))
  end
end
if #due > 0 then call_many('ZREM', K_RETRY, due) end
return moved
