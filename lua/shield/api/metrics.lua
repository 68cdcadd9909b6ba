-- GET /metrics in the Prometheus text exposition format (version 0.0.4).
-- render(s) is pure: s holds the figures (workers from the scoreboard, chunk
-- durations, queue figures, script reloads, HTTP request counts), so specs can
-- check the text; collect() gathers them in the supervisor.
local stats = require "shield.api.stats"

local ipairs, pairs, next, tonumber, string_format, table_concat, table_sort, tostring =
  ipairs, pairs, next, tonumber, string.format, table.concat, table.sort, tostring

local _M = {}

local function number(v)
  if v == math.huge then
    return "+Inf"
  end
  if v == math.floor(v) and v < 1e15 and v > -1e15 then
    return string_format("%d", v)
  end
  -- The shortest text that reads back as v: %.17g alone prints the bucket
  -- bound 0.005 as 0.0050000000000000001.
  for digits = 15, 16 do
    local text = string_format("%." .. digits .. "g", v)
    if tonumber(text) == v then
      return text
    end
  end
  return string_format("%.17g", v)
end

local function label_value(v)
  return (tostring(v):gsub("\\", "\\\\"):gsub("\n", "\\n"):gsub('"', '\\"'))
end

local function labels(t)
  if not t or next(t) == nil then
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

-- Appends to samples the series of one histogram h ({bounds, counts, sum}:
-- counts cumulative, one per bound and a last one for +Inf) under labels:
-- name_bucket for each bound and +Inf, name_sum, name_count. Returns samples.
local function histogram_samples(samples, name, labels, h)
  local function add(suffix, value, le)
    local l = {}
    for k, v in pairs(labels or {}) do
      l[k] = v
    end
    l.le = le
    samples[#samples + 1] = { name = name .. suffix, labels = l, value = value }
  end
  for i, bound in ipairs(h.bounds) do
    add("_bucket", h.counts[i], number(bound))
  end
  local count = h.counts[#h.counts]
  add("_bucket", count, "+Inf")
  add("_sum", h.sum)
  add("_count", count)
  return samples
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
  family(out, "shield_chunk_duration_seconds", "histogram", "Time from a chunk's start to its outcome.",
    histogram_samples({}, "shield_chunk_duration_seconds", nil, s.durations))
  local step_names = {}
  for name in pairs(s.steps or {}) do
    step_names[#step_names + 1] = name
  end
  table_sort(step_names)
  local step_samples = {}
  for _, name in ipairs(step_names) do
    histogram_samples(step_samples, "shield_step_duration_seconds", { step = name }, s.steps[name])
  end
  family(out, "shield_step_duration_seconds", "histogram", "Time in each step the processing script reports.",
    step_samples)
  if s.queue then
    family(out, "shield_queue_depth", "gauge", "Chunks on the task stream not yet acknowledged: waiting or in flight.", { { value = s.queue.queue_depth } })
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
