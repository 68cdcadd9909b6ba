-- 1,000 light threads querying at once through the pool: every thread gets
-- its own answer, the pool opens no more than its sessions, and queries run
-- in parallel on them. Run with `shield-runtime run`.
package.path = os.getenv("SHIELD_SOURCE_DIR") .. "/tests/lib/?.lua;" .. package.path
local shield = require "shield"
local t = require "tap"
local pg = shield.pg

local N = 1000
local threads = {}
for i = 1, N do
  threads[i] = shield.spawn(function(x)
    local rows, err = pg.query("SELECT $1::int * 2 AS v, $2::text AS s, pg_backend_pid() AS pid", x, "t" .. x)
    if not rows then return nil, err end
    return rows[1].v, rows[1].s, rows[1].pid
  end, i)
end
local right, pids, npids, errors = 0, {}, 0, {}
for i = 1, N do
  local ok, v, s, pid = shield.join(threads[i])
  if ok and v == 2 * i and s == "t" .. i then
    right = right + 1
    if not pids[pid] then pids[pid] = true; npids = npids + 1 end
  else
    errors[#errors + 1] = tostring(s)
  end
end
t.eq(right, N, "1,000 threads got their own answers")
t.eq(#errors, 0, "no errors: " .. table.concat(errors, "; "))
t.eq(npids, 8, "served by the pool's 8 sessions")
local st = pg.stats()
t.eq(st.connects, 8, "8 sessions opened")
t.eq(st.queries, N, "1,000 queries counted")
t.eq(st.errors, 0, "no errors counted")
t.eq(st.queued, 0, "the queue drained")
t.eq(st.busy, 0, "no session busy")

-- Queries run in parallel on the sessions: 40 sleeps of 100 ms on 8 sessions
-- take about 0.5 s, not 4 s.
local t0 = shield.now()
local sleepers = {}
for i = 1, 40 do
  sleepers[i] = shield.spawn(function() return pg.query("SELECT pg_sleep(0.1)") end)
end
local slept = 0
for i = 1, 40 do
  local ok, rows = shield.join(sleepers[i])
  if ok and rows then slept = slept + 1 end
end
local elapsed = shield.now() - t0
t.eq(slept, 40, "40 sleeping queries finished")
t.ok(elapsed >= 500 and elapsed < 2500, "and ran 8 at a time (" .. elapsed .. " ms)")

return t.done()
