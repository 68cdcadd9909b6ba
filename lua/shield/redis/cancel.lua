-- cancel.lua: DELETE /jobs/<id>.
-- KEYS: S, R, D, E, dirty (common.lua); E and dirty are used.
-- ARGV[1..3] now (ms), events maxlen, status ttl (common.lua)
-- ARGV[4]  job id
-- A queued or processing job becomes cancelled (rev + 1, dirty mark,
-- ingestion.cancelled). Its chunks still queued or scheduled for retry are
-- skipped later (begin.lua says skip; settle.lua counts them in chunks_skipped);
-- chunks in flight still record their outcome. The hash and done set get their
-- TTL once every chunk is final.
-- Returns "cancelled". Error replies: "not found" (no such job, or expired),
-- "already <status>" (completed, failed or cancelled).

local job_id = ARGV[4]
if not job_id then return redis.error_reply('bad arguments: job id expected') end
local j = job(job_id)
if not j then return redis.error_reply('not found') end
if FINAL[j.status] then return redis.error_reply('already ' .. j.status) end

j.status = 'cancelled'
job_set(j, 'status', 'cancelled')
emit('ingestion.cancelled', job_id, { job_id = job_id, chunks_processed = j.processed,
  chunks_failed = j.failed, chunks_skipped = j.skipped, chunks_total = j.total })
flush_jobs()
return 'cancelled'
