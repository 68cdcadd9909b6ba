-- The job routes of the HTTP API (DESIGN.md section 6): ingest (202 Accepted,
-- one atomic enqueue), job status from Redis with the PostgreSQL fallback,
-- recent jobs, cancellation. Handlers take the request table and return
-- status, body (a table sent as JSON, or JSON text), headers.
local shield = require "shield"
local jobs = require "shield.jobs"
local scripts = require "shield.redis_scripts"
local problem = require "shield.api.problem"

local tonumber, ipairs, pairs, type = tonumber, ipairs, pairs, type

local _M = {}

local JOB_TYPE = "lightrag_ingest"
local STATUSES = { queued = true, processing = true, completed = true, failed = true, cancelled = true }

local function links(id)
  return "/jobs/" .. id, "/events/stream?job_id=" .. id
end

-- Redis or PostgreSQL could not answer: 503, the client may retry. The
-- detail names the server once (shield.redis' transport errors name it already).
local function unavailable(what, err)
  local detail = tostring(err)
  if detail:sub(1, #what + 1) ~= what .. ":" then detail = what .. ": " .. detail end
  return problem(503, "Service Unavailable", detail, { ["Retry-After"] = "1" })
end

-- Transport failures of shield.redis start with these words; anything else
-- is an error reply from the server.
local function transport_failure(err)
  return err == nil or err:match("^redis:") or err:match("^timeout") or err:match("^closed")
end

function _M.ingest(req)
  local body, err = shield.json.decode(req.body)
  if body == nil then
    return problem(400, "Bad Request", "the body is not valid JSON: " .. tostring(err))
  end
  local cfg = shield.config()
  local chunks, meta_or_status, detail = jobs.validate_ingest(body, cfg.jobs, shield.json.encode)
  if not chunks then
    return problem(meta_or_status, "Unprocessable Content", detail)
  end
  local id = jobs.new_id(shield.random_hex(16))
  local idem = req.headers["idempotency-key"] or ""
  if #idem > 200 then
    return problem(400, "Bad Request", "Idempotency-Key: at most 200 characters")
  end
  local args = { id, JOB_TYPE, meta_or_status, idem, cfg.jobs.idempotency_ttl }
  for i, chunk in ipairs(chunks) do
    args[#args + 1] = id .. ":" .. (i - 1)
    args[#args + 1] = chunk.text
    args[#args + 1] = chunk.metadata
  end
  local r, rerr = scripts.call("enqueue", args)
  if not r then
    if transport_failure(rerr) then
      return unavailable("redis", rerr)
    end
    error("enqueue refused: " .. tostring(rerr))
  end
  local job_id, created = r[1], r[2] == 1
  local total, status = #chunks, "queued"
  if not created then
    local h = shield.redis.call("HMGET", "job:" .. job_id, "status", "chunks_total")
    if type(h) == "table" and h[1] then
      status, total = h[1], tonumber(h[2]) or total
    end
  end
  local status_url, events_url = links(job_id)
  return 202, {
    job_id = job_id,
    status = status,
    chunks_total = total,
    status_url = status_url,
    events_url = events_url,
  }, { Location = status_url }
end

local COLUMNS = "id, job_type, status, chunks_total, chunks_processed, chunks_failed, chunks_skipped, "
  .. "metadata::text AS metadata, counts::text AS counts, error_message, "
  .. "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS created_at, "
  .. "to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS started_at, "
  .. "to_char(completed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS completed_at"

-- A job_status row with its counts (jsonb, read as text) as a {name = n} table.
local function row_fields(row)
  local decoded = shield.json.decode(row.counts)
  local counts = {}
  for name, n in pairs(type(decoded) == "table" and decoded or {}) do
    if type(n) == "number" then
      counts[name] = n
    end
  end
  row.counts = counts
  return row
end

local function from_postgres(id)
  local rows, err = shield.pg.query("SELECT " .. COLUMNS .. " FROM job_status WHERE id = $1", id)
  if not rows then
    return nil, err
  end
  return rows[1] and row_fields(rows[1]) or false
end

-- The whole hash: the count:<name> fields are not known in advance. Every job
-- hash has a status, so none means no job.
local function from_redis(id)
  local f, err = shield.redis.hgetall("job:" .. id)
  if not f then
    return nil, err
  end
  jobs.take_counts(f)
  if not f.status then
    return false
  end
  return f
end

function _M.get(req, id)
  if not jobs.valid_id(id) then
    return problem(400, "Bad Request", "not a job id: " .. id)
  end
  local f, err = from_redis(id)
  if f then
    return 200, jobs.view_json(id, f, shield.json.encode)
  end
  -- Expired from Redis (or Redis is down): the audit trail answers.
  local row, perr = from_postgres(id)
  if row then
    return 200, jobs.view_json(id, row, shield.json.encode)
  end
  if row == nil then
    return unavailable(err and "redis" or "postgres", err or perr)
  end
  if f == nil then
    return unavailable("redis", err)
  end
  return problem(404, "Not Found", "no job " .. id)
end

function _M.list(req)
  local status = req.query.status
  if status and not STATUSES[status] then
    return problem(400, "Bad Request", "status: one of queued, processing, completed, failed, cancelled")
  end
  local limit = 50
  if req.query.limit then
    limit = tonumber(req.query.limit)
    if not limit or limit < 1 or limit > 1000 or limit ~= math.floor(limit) then
      return problem(400, "Bad Request", "limit: an integer from 1 to 1000")
    end
  end
  local rows, err
  if status then
    rows, err = shield.pg.query("SELECT " .. COLUMNS .. " FROM job_status WHERE status = $1 "
      .. "ORDER BY created_at DESC LIMIT $2", status, limit)
  else
    rows, err = shield.pg.query("SELECT " .. COLUMNS .. " FROM job_status ORDER BY created_at DESC LIMIT $1", limit)
  end
  if not rows then
    return unavailable("postgres", err)
  end
  local out = {}
  for i, row in ipairs(rows) do
    out[i] = jobs.view(row.id, row_fields(row))
  end
  return 200, { jobs = out, count = #out }
end

function _M.cancel(req, id)
  if not jobs.valid_id(id) then
    return problem(400, "Bad Request", "not a job id: " .. id)
  end
  local r, err = scripts.call("cancel", { id })
  if not r then
    if err == "not found" then
      return problem(404, "Not Found", "no job " .. id .. " in progress")
    end
    if err and err:match("^already ") then
      return problem(409, "Conflict", "job " .. id .. " is " .. err)
    end
    return unavailable("redis", err)
  end
  return 200, { job_id = id, status = "cancelled" }
end

return _M
