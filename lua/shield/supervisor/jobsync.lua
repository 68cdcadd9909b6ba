-- Writes dirty jobs from Redis (the live truth) to PostgreSQL's job_status (the
-- audit trail) in batches: one pipelined read of the hashes, one multi-row
-- upsert that never replaces a newer row (rev), then clean.lua clears the dirty
-- marks whose rev did not move meanwhile. A PostgreSQL outage only delays it.
local shield = require "shield"
local jobs = require "shield.jobs"
local scripts = require "shield.redis_scripts"

local ipairs, tonumber, table_concat, string_format = ipairs, tonumber, table.concat, string.format

local _M = {}

local DIRTY_KEY = scripts.DIRTY_KEY
-- 200 rows of 14 parameters: well inside LuaJIT's limit on a C call's stack.
local BATCH = 200
local COLUMNS = 14

local function timestamp(v)
  if v == nil or v == "" then
    return nil
  end
  if v:match("^%d+$") then
    return jobs.iso8601(v)
  end
  return v
end

local upsert_cache = {}

-- INSERT ... VALUES ($1..$14), ($15..$28), ... for n rows.
local function upsert_sql(n)
  local sql = upsert_cache[n]
  if sql then
    return sql
  end
  local rows = {}
  for r = 0, n - 1 do
    local b = r * COLUMNS
    rows[#rows + 1] = string_format(
      "($%d, $%d, $%d, $%d::int, $%d::int, $%d::int, $%d::int, $%d::jsonb, $%d, $%d::timestamptz, $%d::timestamptz, $%d::timestamptz, $%d::bigint, $%d::jsonb)",
      b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7, b + 8, b + 9, b + 10, b + 11, b + 12, b + 13, b + 14)
  end
  sql = "INSERT INTO job_status (id, job_type, status, chunks_total, chunks_processed, chunks_failed, "
    .. "chunks_skipped, metadata, error_message, created_at, started_at, completed_at, rev, counts) VALUES "
    .. table_concat(rows, ", ")
    .. " ON CONFLICT (id) DO UPDATE SET job_type = EXCLUDED.job_type, status = EXCLUDED.status, "
    .. "chunks_total = EXCLUDED.chunks_total, chunks_processed = EXCLUDED.chunks_processed, "
    .. "chunks_failed = EXCLUDED.chunks_failed, chunks_skipped = EXCLUDED.chunks_skipped, "
    .. "metadata = EXCLUDED.metadata, error_message = EXCLUDED.error_message, "
    .. "created_at = EXCLUDED.created_at, started_at = EXCLUDED.started_at, "
    .. "completed_at = EXCLUDED.completed_at, rev = EXCLUDED.rev, counts = EXCLUDED.counts, updated_at = now() "
    .. "WHERE job_status.rev < EXCLUDED.rev"
  upsert_cache[n] = sql
  return sql
end

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
  local params, clean_args, n = {}, {}, 0
  for i, id in ipairs(ids) do
    local h = jobs.hash_fields(hashes[i] or {})
    if h.status then
      local p = n * COLUMNS
      params[p + 1] = id
      params[p + 2] = h.job_type or "lightrag_ingest"
      params[p + 3] = h.status
      params[p + 4] = tonumber(h.chunks_total) or 0
      params[p + 5] = tonumber(h.chunks_processed) or 0
      params[p + 6] = tonumber(h.chunks_failed) or 0
      params[p + 7] = tonumber(h.chunks_skipped) or 0
      params[p + 8] = (h.metadata and h.metadata ~= "") and h.metadata or "{}"
      params[p + 9] = (h.error_message and h.error_message ~= "") and h.error_message or shield.pg.null
      params[p + 10] = timestamp(h.created_at) or shield.pg.null
      params[p + 11] = timestamp(h.started_at) or shield.pg.null
      params[p + 12] = timestamp(h.completed_at) or shield.pg.null
      params[p + 13] = tonumber(h.rev) or 0
      params[p + 14] = jobs.counts_json(h.counts, shield.json.encode)
      n = n + 1
    end
    clean_args[#clean_args + 1] = id
    clean_args[#clean_args + 1] = h.rev or "0"
  end
  if n > 0 then
    local written, qerr = shield.pg.query(upsert_sql(n), unpack(params, 1, n * COLUMNS))
    if not written then
      return nil, "postgres: " .. tostring(qerr)
    end
  end
  local cleaned, cerr = scripts.call("clean", clean_args)
  if not cleaned then
    return nil, cerr
  end
  return n
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
