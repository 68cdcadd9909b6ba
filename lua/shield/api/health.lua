-- GET /health and GET /health/detailed (DESIGN.md section 6). The detailed view
-- answers even with Redis or PostgreSQL down, showing them as down with the error.
local shield = require "shield"
local stats = require "shield.api.stats"

local _M = {}

function _M.basic()
  return 200, { status = "up" }
end

function _M.detailed()
  local workers = stats.workers()
  local active = 0
  local list = {}
  for i, w in ipairs(workers) do
    if w.pid > 0 and (w.state == "idle" or w.state == "busy" or w.state == "starting") then
      active = active + 1
    end
    list[i] = {
      slot = w.slot, pid = w.pid, state = w.state, tasks_done = w.tasks_done, in_flight = w.in_flight,
      last_heartbeat_ms_ago = w.heartbeat_age_ms, generation = w.generation, restarts = w.restarts,
      script_version = w.script_version,
    }
  end
  local redis = stats.redis()
  local postgres = stats.postgres()
  local script = stats.script()
  local degraded = redis.status ~= "up" or postgres.status ~= "up" or active < #workers
  return 200, {
    status = degraded and "degraded" or "up",
    worker_pool = {
      status = active > 0 and "running" or "stopped",
      active_workers = active,
      queue_depth = redis.queue_depth,
      processing_rate = stats.processing_rate(),
      size = #workers,
      pending = redis.pending,
      lag = redis.lag,
      scheduled_retries = redis.scheduled_retries,
      dead_letters = redis.dead_letters,
      workers = list,
    },
    redis = { status = redis.status, error = redis.error },
    postgres = { status = postgres.status, error = postgres.error },
    script = {
      path = shield.config().script,
      version = script.version,
      last_reload_error = script.last_reload_error,
    },
  }
end

return _M
