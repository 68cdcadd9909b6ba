-- verify.lua MODE JOB_ID_FILE: checks the books after a run. MODE "once": every
-- chunk ran exactly once; "atleast": at least once (a kill -9 may repeat one).
-- Always: stream empty, nothing pending, lag 0, every job completed with
-- chunks_processed == chunks_total.
package.path = os.getenv("SHIELD_SOURCE_DIR") .. "/tests/lib/?.lua;" .. package.path
local shield = require "shield"
local t = require "tap"
local mode, file = arg[1], arg[2]
local s = shield.config().streams

local ids = {}
for line in io.lines(file) do
  ids[#ids + 1] = line
end

t.eq(shield.redis.call("XLEN", s.ingestion), 0, "the task stream is empty")
local groups = shield.redis.call("XINFO", "GROUPS", s.ingestion)
local g = {}
for i = 1, #groups[1], 2 do
  g[groups[1][i]] = groups[1][i + 1]
end
t.eq(g.pending, 0, "nothing pending")
t.eq(g.lag, 0, "group lag 0")

local seen = shield.redis.call("HGETALL", "test:seen")
local counts = {}
for i = 1, #seen, 2 do
  counts[seen[i]] = tonumber(seen[i + 1])
end
local bad_jobs, missing, repeated, total = 0, 0, 0, 0
for _, id in ipairs(ids) do
  local h = shield.redis.call("HGETALL", "job:" .. id)
  local f = {}
  for i = 1, #h, 2 do
    f[h[i]] = h[i + 1]
  end
  if f.status ~= "completed" or f.chunks_processed ~= f.chunks_total then
    bad_jobs = bad_jobs + 1
    if bad_jobs <= 3 then
      print("job " .. id .. ": " .. tostring(f.status) .. " " .. tostring(f.chunks_processed) .. "/" .. tostring(f.chunks_total))
    end
  end
  for i = 0, tonumber(f.chunks_total or 0) - 1 do
    local n = counts[id .. ":" .. i] or 0
    total = total + 1
    if n == 0 then
      missing = missing + 1
    elseif n > 1 then
      repeated = repeated + 1
    end
  end
end
t.eq(bad_jobs, 0, "every job completed with chunks_processed == chunks_total")
t.eq(missing, 0, "no chunk lost (of " .. total .. ")")
if mode == "once" then
  t.eq(repeated, 0, "no chunk ran twice")
end
return t.done()
