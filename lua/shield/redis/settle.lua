-- settle.lua: the hot path; ONE call records the outcomes of a whole batch.
-- KEYS: S, R, D, E, dirty (common.lua)
-- ARGV[1..3] now (ms), events maxlen, status ttl (common.lua)
-- ARGV[4]  consumer group
-- ARGV[5]  n: how many records the call settles
-- ARGV[6..5+n] the msg_id of every record (acknowledged and trimmed)
-- ARGV[6+n] r: how many runs of ok records follow; a run is consecutive ok
--          records of one job (the worker groups them, runtime/outbox.c), so
--          the chunks of a run are added to the done set by one SADD straight
--          from ARGV, with no Lua work per chunk:
--            job_id, k, c, then k chunk_ids, then c pairs (chunk_id, counts)
--          for the chunks of the run that carry counts ("name=n,...").
-- then, to the end, the other records, 6 values each: op, msg_id, job_id, chunk_id, num, text
--   retry  run it again at num (epoch ms), text = the error
--   dead   dead-letter it, text = the error
--   skip   not run: its job is cancelled (or begin said skip)
--   An empty job_id marks a malformed entry: dead-lettered with no job accounting.
--   (An ok record of a malformed entry is in no run: it is only acknowledged.)
-- Invariant 1: every msg_id is acknowledged (one XACK, then trim_acked) in
-- the same step that records its outcome. Invariant 2: the job's done set decides
-- whether an outcome counts, so settling a record twice (a re-sent batch after a
-- lost reply) changes nothing. Within a batch, ok records are applied first.
-- The counts of an ok chunk are added to its job's count:<name> fields only
-- when the done set counts the chunk now: one SMISMEMBER per run for the
-- chunks that carry counts, one HINCRBY per run and name (noop chunks, which
-- carry none, cost nothing more).
-- A retry whose chunk is already final, or whose entry is not pending (settled before),
-- does nothing; a retry or a dead outcome of a cancelled job counts as skipped and
-- as failed respectively; outcomes of jobs whose hash no longer exists are only
-- acknowledged. Per touched job: one ingestion.progress event, and the final
-- status, event and TTLs once every chunk is final (common.lua flush_jobs).
-- Returns {records, processed, retried, dead, skipped}: how many records, and
-- how many counted or scheduled by each kind (duplicates count nowhere).

local group, n = ARGV[4], tonumber(ARGV[5])
local nruns = n and tonumber(ARGV[6 + n])
if not group or not nruns or n < 0 or nruns < 0 or n ~= floor(n) or nruns ~= floor(nruns) then
  return redis.error_reply('bad arguments: group, record count, msg ids, run count expected')
end

local gmatch, match = string.gmatch, string.match
-- shield.counts' bound on one chunk's value; over it a value is ignored, as it
-- could overflow HINCRBY, an error that cannot undo the writes before it.
local MAX_COUNT = 1e9

-- Read every record before the first write, so a refused call changes nothing.
-- runs[i]: {job_id, first chunk index in ARGV, last, counted chunks, their counts}.
local runs, others, p = {}, {}, 7 + n
for r = 1, nruns do
  local job_id, k, c = ARGV[p], tonumber(ARGV[p + 1]), tonumber(ARGV[p + 2])
  if not (k and c and k >= 1 and c >= 0 and c <= k and k == floor(k) and c == floor(c)
          and job_id ~= '') then
    return redis.error_reply('bad arguments: run ' .. r .. ': job id, chunk count, counted count expected')
  end
  local run = { job_id = job_id, from = p + 3, to = p + 2 + k, chunks = {}, texts = {} }
  for q = p + 3 + k, p + 1 + k + 2 * c, 2 do
    run.chunks[#run.chunks + 1] = ARGV[q]
    run.texts[#run.texts + 1] = ARGV[q + 1]
  end
  runs[r] = run
  p = p + 3 + k + 2 * c
end
if p > #ARGV + 1 or (#ARGV - p + 1) % 6 ~= 0 then
  return redis.error_reply('bad arguments: the runs overrun the arguments, or the other records are not of 6 values')
end
for i = p, #ARGV, 6 do
  local op = ARGV[i]
  if op == 'dead' or op == 'skip' or (op == 'retry' and tonumber(ARGV[i + 4])) then
    others[#others + 1] = i
  else
    return redis.error_reply('bad arguments: the record at ARGV[' .. i .. ']: bad op or due time')
  end
end

-- The counts of chunks (their texts beside them) that the job's done set does
-- not hold yet, summed by name; read before count_final adds them. A chunk
-- twice counts once.
local function new_counts(j, chunks, texts)
  local sums, seen = {}, {}
  for first = 1, #chunks, 1000 do
    local known = call('SMISMEMBER', j.done, unpack(chunks, first, min(first + 999, #chunks)))
    for k = 1, #known do
      local chunk = chunks[first + k - 1]
      if known[k] == 0 and not seen[chunk] then
        seen[chunk] = true
        for item in gmatch(texts[first + k - 1], '[^,]+') do
          local name, value = match(item, '^([a-z0-9_]+)=(%d+)$')
          local v = tonumber(value)
          if v and v <= MAX_COUNT then sums[name] = (sums[name] or 0) + v end
        end
      end
    end
  end
  return sums
end

local processed, retried, dead, skipped = 0, 0, 0, 0
for r = 1, #runs do
  local run = runs[r]
  local j = job(run.job_id)
  if j then
    local sums = #run.chunks > 0 and new_counts(j, run.chunks, run.texts)
    processed = processed + count_final(j, ARGV, 'processed', run.from, run.to)
    for name, v in pairs(sums or {}) do
      call('HINCRBY', j.key, 'count:' .. name, format('%d', v))
    end
  end
end

-- A retry: the entry's fields with attempt + 1 (and no carried deliveries: a
-- retry is an outcome) as a JSON array, so promote.lua re-adds them in order.
local function schedule(flat, job_id, chunk_id, due, err)
  local given = field(flat, 'attempt')
  local member, attempt = {}, (given and tonumber(given) or 1) + 1
  for i = 1, #flat, 2 do
    local name = flat[i]
    if name ~= 'deliveries' then
      member[#member + 1] = name
      member[#member + 1] = name == 'attempt' and tostring(attempt) or flat[i + 1]
    end
  end
  if not given then
    member[#member + 1] = 'attempt'
    member[#member + 1] = tostring(attempt)
  end
  call('ZADD', K_RETRY, due, encode(member))
  emit('chunk.retry', job_id, { job_id = job_id, chunk_id = chunk_id, attempt = attempt,
                                due_at = tonumber(due), error = err })
end

for k = 1, #others do
  local i = others[k]
  local op, id, job_id, chunk_id, num, text =
    ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
  local j = job_id ~= '' and job(job_id)
  if op == 'dead' then
    local flat = entry_fields(id, group)
    if bury(flat, job_id, chunk_id, text, flat and field(flat, 'attempt') or '1') then
      dead = dead + 1
    end
  elseif j and (op == 'skip' or j.status == 'cancelled') then
    skipped = skipped + count_final(j, { chunk_id }, 'skipped')
  elseif j and call('SISMEMBER', j.done, chunk_id) == 0 then
    local flat = entry_fields(id, group)
    if flat then
      schedule(flat, job_id, chunk_id, num, text)
      retried = retried + 1
    end
  end
end

call_many('XACK', K_STREAM, ARGV, group, 6, 5 + n)
flush_jobs()
trim_acked(ARGV, 6, 5 + n) -- last: nothing it could raise may undo the accounting above
return { n, processed, retried, dead, skipped }
