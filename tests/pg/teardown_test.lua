-- The main thread ends while other threads wait on PostgreSQL: statements in
-- flight (plain and in transactions), queued queries and acquires. The
-- runtime exits at once with the main thread's status; teardown.sh checks
-- that the server stopped the statements. Run with `shield-runtime run`.
local shield = require "shield"
local pg = shield.pg

local function running()
  local rows = pg.query("SELECT count(*) AS n FROM pg_stat_activity WHERE state = 'active' AND query = 'SELECT pg_sleep(30)'")
  return rows and rows[1].n or -1
end

for _ = 1, 3 do
  shield.spawn(function() return pg.query("SELECT pg_sleep(30)") end)
  shield.spawn(function()
    return pg.transaction(function() return pg.query("SELECT pg_sleep(30)") end)
  end)
end
-- Six sessions run the statements; the other two answer this probe.
local n, deadline = running(), shield.now() + 5000
while n < 6 and shield.now() < deadline do
  shield.sleep(10)
  n = running()
end
for i = 1, 20 do
  shield.spawn(function() return pg.query("SELECT $1::int", i) end)
  shield.spawn(function() return pg.transaction(function() return pg.query("SELECT pg_sleep(30)") end) end)
end
shield.yield()
print("statements running: " .. n .. ", queued: " .. pg.stats().queued)
return n == 6 and 0 or 1
