-- drain_wait.lua IDS_FILE CHUNKS_PER_JOB TIMEOUT_S: waits until the jobs of
-- IDS_FILE are drained (task stream empty, nothing pending: XLEN polled every
-- 10 ms), snapshots INFO commandstats and INFO cpu at that moment, then checks
-- the accounting of every job and reads the events stream for the first and
-- last ack (event ids are Redis' clock in ms). Prints one JSON object; exits 1
-- on a timeout. Run by bench/run.sh with `shield-runtime --config CFG run`.
local shield = require "shield"

local ids_file, per, timeout_s = arg[1], tonumber(arg[2]), tonumber(arg[3])
assert(ids_file and per and timeout_s, "usage: drain_wait.lua IDS_FILE CHUNKS_PER_JOB TIMEOUT_S")
local cfg = shield.config()
local S, E, G = cfg.streams.ingestion, cfg.streams.events, cfg.streams.group
local redis = shield.redis.call

local ids = {}
for line in io.lines(ids_file) do
  if line ~= "" then
    ids[#ids + 1] = line
  end
end

-- Polls until drained; counts its own commands so the report can leave them out.
local own = { xlen = 0, xpending = 0 }
local deadline = shield.now() + timeout_s * 1000
while true do
  own.xlen = own.xlen + 1
  local n = assert(redis("XLEN", S))
  if n == 0 then
    own.xpending = own.xpending + 1
    local p = assert(redis("XPENDING", S, G))
    if p[1] == 0 then
      break
    end
  end
  if shield.now() > deadline then
    io.stderr:write("drain_wait: not drained after ", timeout_s, " s (", n, " entries left)\n")
    os.exit(1)
  end
  shield.sleep(10)
end
local drained_ms = shield.now()
local commandstats = assert(redis("INFO", "commandstats"))
local cpu = assert(redis("INFO", "cpu"))

-- The accounting of every job.
local completed, processed, failed, other = 0, 0, 0, {}
for first = 1, #ids, 500 do
  local cmds = {}
  for i = first, math.min(first + 499, #ids) do
    cmds[#cmds + 1] = { "HMGET", "job:" .. ids[i], "status", "chunks_total", "chunks_processed", "chunks_failed" }
  end
  local replies = assert(shield.redis.pipeline(cmds))
  for _, h in ipairs(replies) do
    if h[1] == "completed" and tonumber(h[2]) == per and tonumber(h[3]) == per then
      completed = completed + 1
    else
      other[#other + 1] = tostring(h[1])
    end
    processed = processed + (tonumber(h[3]) or 0)
    failed = failed + (tonumber(h[4]) or 0)
  end
end

-- The events: counts by type, first and last ack (ingestion.progress is
-- written by the same settle call that acknowledges the chunks).
local counts, first_ack, last_ack, first_begin = {}, nil, nil, nil
local start = "-"
while true do
  local page = assert(redis("XRANGE", E, start, "+", "COUNT", 10000))
  for _, e in ipairs(page) do
    local id, f = e[1], e[2]
    local kind
    for i = 1, #f, 2 do
      if f[i] == "type" then
        kind = f[i + 1]
      end
    end
    counts[kind] = (counts[kind] or 0) + 1
    local ms = tonumber(id:match("^(%d+)"))
    if kind == "ingestion.progress" then
      first_ack = first_ack or ms
      last_ack = ms
    elseif kind == "ingestion.started" then
      first_begin = first_begin or ms
    end
  end
  if #page < 10000 then
    break
  end
  start = "(" .. page[#page][1]
end

print(shield.json.encode({
  jobs = #ids,
  jobs_completed = completed,
  jobs_not_completed = #other,
  chunks_processed = processed,
  chunks_failed = failed,
  events = counts,
  first_begin_ms = first_begin,
  first_ack_ms = first_ack,
  last_ack_ms = last_ack,
  drained_seen_ms = drained_ms,
  own_commands = own,
  commandstats = commandstats,
  cpu = cpu,
}))
