-- GET /metrics in the Prometheus text exposition format (version 0.0.4).
-- render(s) is pure: s holds the figures (workers from the scoreboard, chunk
-- durations, queue figures, script reloads, HTTP request counts), so specs can
-- check the text; collect() gathers them in the supervisor.
local stats = require "shield.api.stats"

local ipairs, pairs, string_format, table_concat, table_sort, tostring =
  ipairs, pairs, string.format, table.concat, table.sort, tostring

local _M = {}

local function number(v)
  if v == math.huge then
    return "+Inf"
  end
  if v == math.floor(v) and v < 1e15 and v > -1e15 then
    return string_format("%d", v)
  end
  return string_format("%.17g", v)
end

local function label_value(v)
  return (tostring(v):gsub("\\", "\\\\"):gsub("\n", "\\n"):gsub('"', '\\"'))
end

local function labels(t)
  if not t then
    return ""
  end
  local keys = {}
  for k in pairs(t) do
    keys[#keys + 1] = k
  end
  table_sort(keys)
  local parts = {}
  for i, k in ipairs(keys) do
    parts[i] = k .. '="' .. label_value(t[k]) .. '"'
  end
  return "{" .. table_concat(parts, ",") .. "}"
end

local function family(out, name, kind, help, samples)
  out[#out + 1] = "# HELP " .. name .. " " .. help
  out[#out + 1] = "# TYPE " .. name .. " " .. kind
  for _, s in ipairs(samples) do
    out[#out + 1] = (s.name or name) .. labels(s.labels) .. " " .. number(s.value)
  end
end

local STATES = { "starting", "idle", "busy", "draining", "backoff", "stopped", "empty" }

function _M.render(s)
  local out = {}
  local ok, retried, dead, skipped, restarts, redis_rc, pg_rc = 0, 0, 0, 0, 0, 0, 0
  local by_state = {}
  for _, st in ipairs(STATES) do
    by_state[st] = 0
  end
  for _, w in ipairs(s.workers) do
    ok = ok + w.chunks_ok
    retried = retried + w.chunks_retried
    dead = dead + w.chunks_dead
    skipped = skipped + w.chunks_skipped
    restarts = restarts + w.restarts
    redis_rc = redis_rc + w.redis_reconnects
    pg_rc = pg_rc + w.pg_reconnects
    by_state[w.state] = (by_state[w.state] or 0) + 1
  end
  family(out, "shield_chunks_total", "counter", "Chunk outcomes settled by the workers.", {
    { labels = { outcome = "ok" }, value = ok },
    { labels = { outcome = "retried" }, value = retried },
    { labels = { outcome = "dead" }, value = dead },
    { labels = { outcome = "skipped" }, value = skipped },
  })
  local d = s.durations
  local hist = {}
  for i, bound in ipairs(d.bounds) do
    hist[#hist + 1] = { name = "shield_chunk_duration_seconds_bucket", labels = { le = number(bound) }, value = d.counts[i] }
  end
  local count = d.counts[#d.counts]
  hist[#hist + 1] = { name = "shield_chunk_duration_seconds_bucket", labels = { le = "+Inf" }, value = count }
  hist[#hist + 1] = { name = "shield_chunk_duration_seconds_sum", value = d.sum }
  hist[#hist + 1] = { name = "shield_chunk_duration_seconds_count", value = count }
  family(out, "shield_chunk_duration_seconds", "histogram", "Time from a chunk's start to its outcome.", hist)
  local step_names = {}
  for name in pairs(s.steps or {}) do
    step_names[#step_names + 1] = name
  end
  table_sort(step_names)
  local step_samples = {}
  for _, name in ipairs(step_names) do
    local st = s.steps[name]
    step_samples[#step_samples + 1] = { name = "shield_step_duration_seconds_sum", labels = { step = name }, value = st.sum }
    step_samples[#step_samples + 1] = { name = "shield_step_duration_seconds_count", labels = { step = name },
      value = st.count }
  end
  family(out, "shield_step_duration_seconds", "summary", "Time in each step the processing script reports.",
    step_samples)
  if s.queue then
    family(out, "shield_queue_depth", "gauge", "Entries in the task stream.", { { value = s.queue.queue_depth } })
    family(out, "shield_queue_lag", "gauge", "Entries not yet delivered to any worker.", { { value = s.queue.lag } })
    family(out, "shield_pending", "gauge", "Entries delivered and not yet settled.", { { value = s.queue.pending } })
    family(out, "shield_retries_scheduled", "gauge", "Chunks waiting for a retry.",
      { { value = s.queue.scheduled_retries } })
    family(out, "shield_dead_letters", "gauge", "Entries in the dead-letter stream.", { { value = s.queue.dead_letters } })
  end
  local states = {}
  for _, st in ipairs(STATES) do
    states[#states + 1] = { labels = { state = st }, value = by_state[st] }
  end
  family(out, "shield_workers", "gauge", "Worker slots by state.", states)
  family(out, "shield_worker_restarts_total", "counter", "Workers re-forked after an unexpected exit.",
    { { value = restarts } })
  family(out, "shield_reloads_total", "counter", "Script reloads by result.", {
    { labels = { result = "ok" }, value = s.script.reloads_ok },
    { labels = { result = "failed" }, value = s.script.reloads_failed },
  })
  local http = {}
  for key, n in pairs(s.http or {}) do
    local route, status = key:match("^(.*) (%d+)$")
    http[#http + 1] = { labels = { route = route, status = status }, value = n }
  end
  table_sort(http, function(a, b)
    return a.labels.route .. a.labels.status < b.labels.route .. b.labels.status
  end)
  family(out, "shield_http_requests_total", "counter", "HTTP requests by route and status.", http)
  family(out, "shield_reconnects_total", "counter", "Client reconnects of the workers.", {
    { labels = { server = "redis" }, value = redis_rc },
    { labels = { server = "postgres" }, value = pg_rc },
  })
  return table_concat(out, "\n") .. "\n"
end

function _M.collect(http_counts)
  local queue = stats.redis()
  return {
    workers = stats.workers(),
    durations = stats.durations(),
    steps = stats.steps(),
    script = stats.script(),
    queue = queue.status == "up" and queue or nil,
    http = http_counts,
  }
end

return _M
