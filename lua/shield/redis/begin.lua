-- begin.lua: a worker's verdict on the entries of one XREADGROUP batch, before running any.
-- KEYS: S, R, D, E, dirty (common.lua); R is not used.
-- ARGV[1..3] now (ms), events maxlen, status ttl (common.lua)
-- ARGV[4]  consumer group
-- ARGV[5]  consumer name (the worker's)
-- ARGV[6]  max deliveries (pool.retry_attempts)
-- ARGV[7]  r: how many runs of first deliveries follow
-- ARGV[8..7+r] per run, its job_id: a run is consecutive entries of one job
--          that are first deliveries (read with ">", attempt 1, no carried
--          deliveries). Such a chunk cannot be in its job's done set yet (the
--          chunk's only earlier entries are retries and reclaims, which are not
--          first deliveries), so only the job's state decides, once per run,
--          and a run costs the same whatever its length.
-- ARGV[8+r..] per other entry, 4 values: msg_id, job_id ("" when the entry has
--          none or its fields read back empty), chunk_id, pending pass ("1" when
--          the entry came from the worker's own id-0 read, else "0")
-- Returns r verdicts for the runs, then one per other entry, in order:
--   "run"   process it, then settle its outcome;
--   "skip"  settle it with op skip without running: its job is cancelled, final or
--           gone, or the chunk is already in the done set;
--   "dead"  settled here: dead-lettered (a pending-pass entry delivered more than
--           max deliveries times, counted failed once; or a malformed entry with no
--           job_id or no chunk_id), acknowledged and trimmed (trim_acked);
--   "gone"  nothing to do: a pending-pass entry no longer pending for this consumer
--           (settled or reclaimed meanwhile), or one deleted (acknowledged here).
-- A run's verdict is "run" or "skip" and holds for each of its entries.
-- Each queued job with an entry to run becomes processing (started_at,
-- ingestion.started, dirty mark).

local group, consumer, max_deliveries = ARGV[4], ARGV[5], tonumber(ARGV[6])
local runs = tonumber(ARGV[7])
local first_entry = 8 + (runs or 0)
local n = (#ARGV - first_entry + 1) / 4
if not max_deliveries or not runs or runs < 0 or n < 0 or n ~= floor(n) then
  return redis.error_reply('bad arguments: group, consumer, max deliveries, runs, run job ids, then entry quadruples expected')
end

-- "skip" when job_id's job is final or gone, else "run" (a queued job starts).
local function job_verdict(job_id)
  local j = job(job_id)
  if not j or FINAL[j.status] then return 'skip' end
  if j.status == 'queued' then
    j.status, j.started_at = 'processing', NOW
    job_set(j, 'status', 'processing')
    job_set(j, 'started_at', format('%d', NOW))
    emit('ingestion.started', job_id, { job_id = job_id, started_at = NOW })
  end
  return 'run'
end

local verdicts, settled = {}, {}
for r = 1, runs do
  verdicts[r] = job_verdict(ARGV[7 + r])
end

for i = first_entry, #ARGV, 4 do
  local id, job_id, chunk_id, pending = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3] == '1'
  local verdict, count
  if pending then
    local p = call('XPENDING', K_STREAM, group, id, id, 1, consumer)[1]
    if p then count = p[4] else verdict = 'gone' end
  end
  if not verdict and (job_id == '' or chunk_id == '') then
    -- Malformed: dead-lettered with no job accounting (an entry without a chunk_id
    -- is none of its job's chunks).
    local flat = entry_fields(id)
    if flat then
      bury(flat, '', chunk_id, 'malformed entry: no ' .. (job_id == '' and 'job_id' or 'chunk_id'),
           field(flat, 'attempt') or '1')
      verdict = 'dead'
    else
      verdict = 'gone'
    end
    settled[#settled + 1] = id
  end
  if not verdict then
    local j = job(job_id)
    if not j or FINAL[j.status] or call('SISMEMBER', j.done, chunk_id) == 1 then
      verdict = 'skip'
    elseif count then
      local flat = entry_fields(id)
      local over, total = over_delivered(flat or {}, count, max_deliveries)
      if over then
        bury(flat, job_id, chunk_id, delivery_error(total - 1), total - 1)
        settled[#settled + 1] = id
        verdict = 'dead'
      end
    end
    if not verdict then verdict = job_verdict(job_id) end
  end
  verdicts[#verdicts + 1] = verdict
end

if #settled > 0 then call_many('XACK', K_STREAM, settled, group) end
flush_jobs()
trim_acked(settled) -- last: nothing it could raise may undo the accounting above
return verdicts
