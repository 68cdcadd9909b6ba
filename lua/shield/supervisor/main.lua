-- The supervisor's own light threads: the consumer group, the PostgreSQL
-- migrations and job sync, due retries back onto the stream, and reclaiming
-- entries left pending by consumers that are gone. Started by runtime/
-- supervisor.c once the processing script is probed; stopped by killing them.
local shield = require "shield"
local scripts = require "shield.redis_scripts"
local migrate = require "shield.supervisor.migrate"
local jobsync = require "shield.supervisor.jobsync"

local _M = {}

-- Runs fn every interval_ms for ever; an error (returned or raised) is logged
-- once per outage and retried every second, so a thread never dies quietly.
local function forever(name, fn, interval_ms)
  return shield.spawn(function()
    local failing = false
    while true do
      local ran, ok, err = pcall(fn)
      if not ran then
        ok, err = nil, ok
      end
      if ok == nil and err then
        if not failing then
          shield.log.warn(name .. ":", err)
        end
        failing = true
      elseif failing then
        shield.log.info(name .. ": working again")
        failing = false
      end
      shield.sleep(failing and 1000 or interval_ms)
    end
  end)
end

function _M.ensure_group()
  local s = shield.config().streams
  local ok, err = shield.redis.call("XGROUP", "CREATE", s.ingestion, s.group, "0", "MKSTREAM")
  if not ok and err and not err:find("BUSYGROUP", 1, true) then
    return nil, err
  end
  return true
end

-- Moves due retries back onto the stream, in batches, until none is due.
function _M.promote()
  while true do
    local moved, err = scripts.call("promote", { 1000 })
    if not moved then
      return nil, err
    end
    if moved < 1000 then
      return true
    end
  end
end

-- One full XAUTOCLAIM scan for entries idle past the per-chunk deadline.
function _M.reclaim(claimer)
  local cfg = shield.config()
  local min_idle = (cfg.pool.timeout_seconds + 30) * 1000
  local cursor = "0-0"
  repeat
    local r, err = scripts.call("reclaim", { cfg.streams.group, claimer, min_idle, cursor, 100,
      cfg.pool.retry_attempts })
    if not r then
      return nil, err
    end
    if r[2] > 0 or r[3] > 0 then
      shield.log.warn(string.format("reclaimed entries of gone consumers: %d requeued, %d dead-lettered", r[2], r[3]))
    end
    cursor = r[1]
  until cursor == "0-0"
  return true
end

-- One attempt at the migrations: logs what it applied, or (when asked) why
-- it could not. Returns whether the schema is up to date.
local function try_migrate(report_failure)
  local applied, err = migrate.apply()
  if not applied then
    if report_failure then
      shield.log.warn(err, "(retrying every 2 s; job sync waits)")
    end
    return false
  end
  for _, v in ipairs(applied) do
    shield.log.info("migration applied:", v)
  end
  return true
end

-- Runs before the workers are forked (runtime/supervisor.c forks them when it
-- returns): the consumer group and, when PostgreSQL answers, the schema exist
-- before the first chunk is read. An unreachable PostgreSQL does not hold the
-- pool back: the first attempt fails fast and the migrations go on retrying
-- behind the workers, ahead of the job sync.
function _M.run(host)
  local ok, err = _M.ensure_group()
  if not ok then
    shield.log.warn("consumer group:", err)
  end
  local migrated = try_migrate(true)
  return {
    forever("consumer group", _M.ensure_group, 10000),
    forever("retries", _M.promote, 250),
    forever("reclaim", function() return _M.reclaim(host .. "-supervisor") end, 5000),
    shield.spawn(function()
      while not migrated do
        shield.sleep(2000)
        migrated = try_migrate(false)
      end
      jobsync.run(200)
    end),
  }
end

-- A last sync before exit: what the workers settled while draining.
function _M.final_sync()
  for _ = 1, 20 do
    local n, err = jobsync.sync_once()
    if not n then
      return nil, err
    end
    if n == 0 then
      return true
    end
  end
  return true
end

return _M
