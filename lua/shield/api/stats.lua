-- What the supervisor knows about the pool for /health/detailed and /metrics:
-- the scoreboard (through shield.c.supervisor), the queue's Redis figures in one
-- pipelined round trip, PostgreSQL reachability, and the processing rate over
-- the last minute from samples taken every 5 s. Supervisor state only.
local shield = require "shield"
local reply = require "shield.reply"
local sup = require "shield.c.supervisor"

local ipairs, tonumber, pcall = ipairs, tonumber, pcall

local _M = {}

local SAMPLE_MS = 5000
local WINDOW = 13 -- 12 intervals of 5 s: one minute
local samples = {}

local function chunks_total(workers)
  local n = 0
  for _, w in ipairs(workers) do
    n = n + w.chunks_ok + w.chunks_retried + w.chunks_dead + w.chunks_skipped
  end
  return n
end

-- Light thread body: samples the settled-chunk count every 5 s.
function _M.sample_forever()
  while true do
    samples[#samples + 1] = { at = shield.now(), total = chunks_total(sup.workers()) }
    if #samples > WINDOW then
      table.remove(samples, 1)
    end
    shield.sleep(SAMPLE_MS)
  end
end

-- Chunks per second over the last minute (or since start).
function _M.processing_rate()
  local first = samples[1]
  if not first then
    return 0
  end
  local now, total = shield.now(), chunks_total(sup.workers())
  local seconds = (now - first.at) / 1000
  if seconds < 1 then
    return 0
  end
  return math.floor((total - first.total) / seconds * 100 + 0.5) / 100
end

-- {status = "up", queue_depth, lag, pending, scheduled_retries, dead_letters}
-- or {status = "down", error}.
function _M.redis()
  local s = shield.config().streams
  local r, err = shield.redis.pipeline({
    { "XLEN", s.ingestion },
    { "XINFO", "GROUPS", s.ingestion },
    { "ZCARD", s.retry },
    { "XLEN", s.dead_letter },
  })
  if not r then
    return { status = "down", error = err }
  end
  local out = { status = "up", queue_depth = tonumber(r[1]) or 0, scheduled_retries = tonumber(r[3]) or 0,
    dead_letters = tonumber(r[4]) or 0, pending = 0, lag = 0 }
  for _, g in ipairs(type(r[2]) == "table" and r[2] or {}) do
    local info = reply.fields(g)
    if info.name == s.group then
      out.pending = tonumber(info.pending) or 0
      local lag = tonumber(info.lag)
      out.lag = lag or 0
      -- The stream also keeps acknowledged entries until the trim passes them
      -- (common.lua trim_acked): the depth is what is left to do.
      if lag then out.queue_depth = lag + out.pending end
    end
  end
  return out
end

function _M.postgres()
  local ok, rows, err = pcall(shield.pg.query, "SELECT 1 AS up")
  if ok and rows then
    return { status = "up" }
  end
  return { status = "down", error = ok and err or rows }
end

function _M.workers()
  return sup.workers()
end

function _M.durations()
  return sup.durations()
end

function _M.steps()
  return sup.steps()
end

function _M.script()
  return sup.script()
end

return _M
