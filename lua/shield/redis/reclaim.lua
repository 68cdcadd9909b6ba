-- reclaim.lua: the supervisor takes over entries left pending by gone consumers.
-- KEYS: S, R, D, E, dirty (common.lua); R is not used.
-- ARGV[1..3] now (ms), events maxlen, status ttl (common.lua)
-- ARGV[4]  consumer group
-- ARGV[5]  claimer: the supervisor's consumer name (holds entries only inside this call)
-- ARGV[6]  min idle, milliseconds
-- ARGV[7]  XAUTOCLAIM cursor ("0-0" to start)
-- ARGV[8]  at most this many entries per call
-- ARGV[9]  max deliveries (pool.retry_attempts)
-- XAUTOCLAIM moves entries idle for min idle to the claimer. Each one delivered
-- more than max deliveries times (its delivery count, which includes this claim
-- standing for the next delivery, plus the `deliveries` it carried) is
-- dead-lettered as in begin.lua; the others are re-added to S as new entries with
-- the same fields and `deliveries` = the deliveries made so far, so a poison entry
-- cannot cycle forever. Every claimed entry is then acknowledged and trimmed (trim_acked);
-- entries whose fields read back empty (deleted) are just acknowledged.
-- Returns {next cursor ("0-0" when the scan is complete), requeued, dead}.

local group, claimer, min_idle, cursor = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local count, max_deliveries = tonumber(ARGV[8]), tonumber(ARGV[9])
if not (count and max_deliveries and tonumber(min_idle)) then
  return redis.error_reply('bad arguments: group, claimer, min idle, cursor, count, max deliveries expected')
end

local r = call('XAUTOCLAIM', K_STREAM, group, claimer, min_idle, cursor, 'COUNT', count)
local claimed, ids = r[2], {}
local requeued, dead = 0, 0
for i = 1, #claimed do
  local id, flat = claimed[i][1], claimed[i][2]
  ids[i] = id
  if flat and #flat > 0 then
    local p = call('XPENDING', K_STREAM, group, id, id, 1, claimer)[1]
    local over, total = over_delivered(flat, p and p[4] or 1, max_deliveries)
    if over then
      if bury(flat, entry_job(flat), field(flat, 'chunk_id') or '',
              delivery_error(total - 1), total - 1) then
        dead = dead + 1
      end
    else
      local fresh = {}
      for k = 1, #flat, 2 do
        if flat[k] ~= 'deliveries' then
          fresh[#fresh + 1] = flat[k]
          fresh[#fresh + 1] = flat[k + 1]
        end
      end
      fresh[#fresh + 1] = 'deliveries'
      fresh[#fresh + 1] = total - 1
      call('XADD', K_STREAM, '*', unpack(fresh))
      requeued = requeued + 1
    end
  end
end

if #ids > 0 then call_many('XACK', K_STREAM, ids, group) end
flush_jobs()
trim_acked(ids) -- last: nothing it could raise may undo the accounting above
return { r[1], requeued, dead }
