-- enqueue.lua: a job and all its chunk entries in one atomic step (invariant 4).
-- KEYS: S, R, D, E, dirty (common.lua); only S, E and dirty are used.
-- ARGV[1..3] now (ms), events maxlen, status ttl (common.lua)
-- ARGV[4]  job id
-- ARGV[5]  job_type
-- ARGV[6]  job metadata (a JSON object, stored as given)
-- ARGV[7]  idempotency key, "" for none (stored as shield:idempotency:<key> -> job id)
-- ARGV[8]  idempotency key TTL, seconds
-- ARGV[9..] per chunk, 3 values: chunk_id (<job_id>:<index>), content, metadata (JSON)
-- Writes the job hash (status queued, counters 0, created_at, rev 1), one task
-- entry per chunk (chunk_id, content, and metadata unless it is "{}"), the
-- ingestion.queued event and the dirty mark. What the readers can tell without
-- it is left out of the entries: no job_id means the chunk_id up to its last
-- ':', no metadata means {}, no attempt means 1 (the worker, begin.lua,
-- settle.lua and reclaim.lua read them so). That saves Redis writing, logging
-- to the AOF and reading back three fields per chunk.
-- Returns {job_id, 1}, or {existing job id, 0} when the idempotency key is
-- already taken (nothing enqueued). Error replies: "bad arguments: ...",
-- "job exists" (the id is taken).

local job_id, job_type, metadata = ARGV[4], ARGV[5], ARGV[6]
local idem_key, idem_ttl = ARGV[7], ARGV[8]
local ttl, nchunks = tonumber(idem_ttl), (#ARGV - 8) / 3
if not ttl or (idem_key ~= '' and ttl <= 0) or job_id == ''
   or nchunks < 1 or nchunks ~= floor(nchunks) then
  return redis.error_reply('bad arguments: job id, type, metadata, idempotency key, ttl, then chunk triples expected')
end

-- Every check comes before the first write, so a refused call changes nothing.
local idem = idem_key ~= '' and 'shield:idempotency:' .. idem_key or nil
if idem then
  local existing = call('GET', idem)
  if existing then return { existing, 0 } end
end
local key = 'job:' .. job_id
if call('EXISTS', key) == 1 then return redis.error_reply('job exists') end

if idem then call('SET', idem, job_id, 'EX', idem_ttl) end
call('HSET', key, 'status', 'queued', 'job_type', job_type, 'metadata', metadata,
     'chunks_total', nchunks, 'chunks_processed', 0, 'chunks_failed', 0,
     'chunks_skipped', 0, 'created_at', format('%d', NOW), 'rev', 1)
for i = 9, #ARGV, 3 do
  if ARGV[i + 2] == '{}' then
    call('XADD', K_STREAM, '*', 'chunk_id', ARGV[i], 'content', ARGV[i + 1])
  else
    call('XADD', K_STREAM, '*', 'chunk_id', ARGV[i], 'content', ARGV[i + 1], 'metadata', ARGV[i + 2])
  end
end
emit('ingestion.queued', job_id, { job_id = job_id, job_type = job_type, chunks_total = nchunks })
call('SADD', K_DIRTY, job_id)
return { job_id, 1 }
