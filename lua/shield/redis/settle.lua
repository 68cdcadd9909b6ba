-- settle.lua: the hot path; ONE call records the outcomes of a whole batch.
-- KEYS: S, R, D, E, dirty (common.lua)
-- ARGV[1..3] now (ms), events maxlen, status ttl (common.lua)
-- ARGV[4]  consumer group
-- ARGV[5..] records of 6 values: op, msg_id, job_id, chunk_id, num, text
--   ok     the chunk succeeded (num unused), text = its counts: "name=n,..." or ""
--   retry  run it again at num (epoch ms), text = the error
--   dead   dead-letter it, text = the error
--   skip   not run: its job is cancelled (or begin said skip)
--   An empty job_id marks a malformed entry: dead-lettered with no job accounting.
-- Invariant 1: every msg_id is acknowledged (one XACK, then trim_acked) in
-- the same step that records its outcome. Invariant 2: the job's done set decides
-- whether an outcome counts, so settling a record twice (a re-sent batch after a
-- lost reply) changes nothing. Within a batch, ok records are applied first.
-- The counts of an ok chunk are added to its job's count:<name> fields only
-- when the done set counts the chunk now: one SMISMEMBER per job for the
-- chunks that carry counts, one HINCRBY per job and name (noop chunks, which
-- carry none, cost nothing more).
-- A retry whose chunk is already final, or whose entry is not pending (settled before),
-- does nothing; a retry or a dead outcome of a cancelled job counts as skipped and
-- as failed respectively; outcomes of jobs whose hash no longer exists are only
-- acknowledged. Per touched job: one ingestion.progress event, and the final
-- status, event and TTLs once every chunk is final (common.lua flush_jobs).
-- Returns {records, processed, retried, dead, skipped}: how many records, and
-- how many counted or scheduled by each kind (duplicates count nowhere).

local group = ARGV[4]
local n = (#ARGV - 4) / 6
if not group or n ~= floor(n) then
  return redis.error_reply('bad arguments: group, then records of 6 expected')
end

local gmatch, match = string.gmatch, string.match
-- shield.counts' bound on one chunk's value; over it a value is ignored, as it
-- could overflow HINCRBY, an error that cannot undo the writes before it.
local MAX_COUNT = 1e9

-- Read every record before the first write, so a refused call changes nothing.
-- counted[job_id]: the ok chunks that carry counts, {chunks = {...}, texts = {...}}.
local ids, ok_jobs, ok_chunks, counted, others = {}, {}, {}, {}, {}
for i = 5, #ARGV, 6 do
  local op, job_id = ARGV[i], ARGV[i + 2]
  ids[#ids + 1] = ARGV[i + 1]
  if op == 'ok' then
    if job_id ~= '' then
      local list = ok_chunks[job_id]
      if not list then
        list = {}
        ok_chunks[job_id] = list
        ok_jobs[#ok_jobs + 1] = job_id
      end
      list[#list + 1] = ARGV[i + 3]
      if ARGV[i + 5] ~= '' then
        local c = counted[job_id]
        if not c then
          c = { chunks = {}, texts = {} }
          counted[job_id] = c
        end
        c.chunks[#c.chunks + 1] = ARGV[i + 3]
        c.texts[#c.texts + 1] = ARGV[i + 5]
      end
    end
  elseif op == 'dead' or op == 'skip' or (op == 'retry' and tonumber(ARGV[i + 4])) then
    others[#others + 1] = i
  else
    return redis.error_reply('bad arguments: record ' .. ((i - 5) / 6 + 1) .. ': bad op or due time')
  end
end

-- The counts of c's chunks that the job's done set does not hold yet, summed
-- by name; read before count_final adds them. A chunk twice in the batch
-- counts once.
local function new_counts(j, c)
  local sums, seen, chunks = {}, {}, c.chunks
  for first = 1, #chunks, 1000 do
    local known = call('SMISMEMBER', j.done, unpack(chunks, first, min(first + 999, #chunks)))
    for k = 1, #known do
      local chunk = chunks[first + k - 1]
      if known[k] == 0 and not seen[chunk] then
        seen[chunk] = true
        for item in gmatch(c.texts[first + k - 1], '[^,]+') do
          local name, value = match(item, '^([a-z0-9_]+)=(%d+)$')
          local n = tonumber(value)
          if n and n <= MAX_COUNT then sums[name] = (sums[name] or 0) + n end
        end
      end
    end
  end
  return sums
end

local processed, retried, dead, skipped = 0, 0, 0, 0
for k = 1, #ok_jobs do
  local id = ok_jobs[k]
  local j = job(id)
  if j then
    local sums = counted[id] and new_counts(j, counted[id])
    processed = processed + count_final(j, ok_chunks[id], 'processed')
    for name, n in pairs(sums or {}) do
      call('HINCRBY', j.key, 'count:' .. name, format('%d', n))
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

call_many('XACK', K_STREAM, ids, group)
flush_jobs()
trim_acked(ids) -- last: nothing it could raise may undo the accounting above
return { n, processed, retried, dead, skipped }
