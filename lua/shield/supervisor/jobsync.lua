-- Writes dirty jobs from Redis (the live truth) to PostgreSQL's job_status (the
-- audit trail) in batches: one pipelined read of the hashes, one multi-row
-- upsert that never replaces a newer row (rev), then clean.lua clears the dirty
-- marks whose rev did not move meanwhile. A PostgreSQL outage only delays it.
local shield = require "shield"
local jobs = require "shield.jobs"
local scripts = require "shield.redis_scripts"

local ipairs, tonumber = ipairs, tonumber

local _M = {}

local DIRTY_KEY = scripts.DIRTY_KEY
local BATCH = 200

local function timestamp(v)
  if v == nil or v == "" then
    return nil
  end
  if v:match("^%d+$") then
    return jobs.iso8601(v)
  end
  return v
end

-- The rows travel as one JSON array, so every batch size runs the same
-- prepared statement (a VALUES list per size would prepare each size anew).
-- metadata and counts are JSON texts already: cast, not decoded and re-encoded.
local UPSERT = [[
INSERT INTO job_status (id, job_type, status, chunks_total, chunks_processed, chunks_failed,
  chunks_skipped, metadata, error_message, created_at, started_at, completed_at, rev, counts)
SELECT r.id, r.job_type, r.status, r.chunks_total, r.chunks_processed, r.chunks_failed,
  r.chunks_skipped, r.metadata::jsonb, r.error_message, r.created_at, r.started_at, r.completed_at, r.rev,
  r.counts::jsonb
  FROM jsonb_to_recordset($1::jsonb) AS r(id text, job_type text, status text, chunks_total int,
    chunks_processed int, chunks_failed int, chunks_skipped int, metadata text, error_message text,
    created_at timestamptz, started_at timestamptz, completed_at timestamptz, rev bigint, counts text)
ON CONFLICT (id) DO UPDATE SET job_type = EXCLUDED.job_type, status = EXCLUDED.status,
  chunks_total = EXCLUDED.chunks_total, chunks_processed = EXCLUDED.chunks_processed,
  chunks_failed = EXCLUDED.chunks_failed, chunks_skipped = EXCLUDED.chunks_skipped,
  metadata = EXCLUDED.metadata, error_message = EXCLUDED.error_message,
  created_at = EXCLUDED.created_at, started_at = EXCLUDED.started_at,
  completed_at = EXCLUDED.completed_at, rev = EXCLUDED.rev, counts = EXCLUDED.counts, updated_at = now()
WHERE job_status.rev < EXCLUDED.rev]]

-- One pass: returns the number of jobs written, or nil, err.
function _M.sync_once()
  local ids, err = shield.redis.call("SRANDMEMBER", DIRTY_KEY, BATCH)
  if not ids then
    return nil, err
  end
  if #ids == 0 then
    return 0
  end
  local cmds = {}
  for i, id in ipairs(ids) do
    cmds[i] = { "HGETALL", "job:" .. id }
  end
  local hashes, perr = shield.redis.pipeline(cmds)
  if not hashes then
    return nil, perr
  end
  local rows, clean_args = {}, {}
  for i, id in ipairs(ids) do
    local h = jobs.hash_fields(hashes[i] or {})
    if h.status then
      rows[#rows + 1] = {
        id = id,
        job_type = h.job_type or "lightrag_ingest",
        status = h.status,
        chunks_total = tonumber(h.chunks_total) or 0,
        chunks_processed = tonumber(h.chunks_processed) or 0,
        chunks_failed = tonumber(h.chunks_failed) or 0,
        chunks_skipped = tonumber(h.chunks_skipped) or 0,
        metadata = (h.metadata and h.metadata ~= "") and h.metadata or "{}",
        error_message = (h.error_message and h.error_message ~= "") and h.error_message or nil,
        created_at = timestamp(h.created_at),
        started_at = timestamp(h.started_at),
        completed_at = timestamp(h.completed_at),
        rev = tonumber(h.rev) or 0,
        counts = jobs.counts_json(h.counts, shield.json.encode),
      }
    end
    clean_args[#clean_args + 1] = id
    clean_args[#clean_args + 1] = h.rev or "0"
  end
  if #rows > 0 then
    local written, qerr = shield.pg.query(UPSERT, shield.json.encode(rows))
    if not written then
      return nil, "postgres: " .. tostring(qerr)
    end
  end
  local cleaned, cerr = scripts.call("clean", clean_args)
  if not cleaned then
    return nil, cerr
  end
  return #rows
end

-- Runs forever (until the thread is killed): sync, then sleep when idle. A
-- raised error is handled like a returned one: logged once, retried.
function _M.run(interval_ms)
  local failing = false
  while true do
    local ran, n, err = pcall(_M.sync_once)
    if not ran then
      n, err = nil, n
    end
    if not n then
      if not failing then
        shield.log.warn("job sync to PostgreSQL delayed:", err)
      end
      failing = true
      shield.sleep(1000)
    else
      if failing then
        shield.log.info("job sync to PostgreSQL resumed")
      end
      failing = false
      if n < BATCH then
        shield.sleep(interval_ms or 200)
      end
    end
  end
end

return _M
