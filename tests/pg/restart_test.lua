-- PostgreSQL stops mid-run and comes back: queries in flight and queued fail
-- cleanly with an error, queries while it is down fail at once, and once it
-- is back queries work again without restarting anything. Run with
-- `shield-runtime run` under the test harness (SERVERS).
package.path = os.getenv("SHIELD_SOURCE_DIR") .. "/tests/lib/?.lua;" .. package.path
local shield = require "shield"
local t = require "tap"
local pg = shield.pg

local servers = os.getenv("SHIELD_SOURCE_DIR") .. "/tests/harness/servers.sh"
local dir = os.getenv("SHIELD_TEST_DIR")
local port = os.getenv("SHIELD_TEST_PG_PORT")

local function poll(f, ms)
  local deadline = shield.now() + ms
  local a, b = f()
  while not a and shield.now() < deadline do
    shield.sleep(50)
    a, b = f()
  end
  return a, b
end

-- Open every session, and leave one statement running.
local warm = {}
for i = 1, 8 do warm[i] = shield.spawn(function() return pg.query("SELECT pg_sleep(0.05)") end) end
for i = 1, 8 do shield.join(warm[i]) end
t.eq(pg.stats().open, 8, "8 sessions open")
local inflight = shield.spawn(function() return pg.query("SELECT pg_sleep(30)") end)
t.ok(poll(function()
  return pg.query("SELECT 1 FROM pg_stat_activity WHERE state = 'active' AND query = 'SELECT pg_sleep(30)'")[1]
end, 5000), "a statement is running")

t.eq(os.execute(servers .. " pg-stop " .. dir), 0, "PostgreSQL stopped")

local _, irows, ierr = shield.join(inflight)
t.eq(irows, nil, "the statement in flight fails")
t.eq(ierr, "closed: terminating connection due to administrator command", "with the server's last word")

local refused = 'connection refused: connection to server at "127.0.0.1", port ' .. port
  .. " failed: Connection refused"
local _, err = poll(function()
  local r, e = pg.query("SELECT 1")
  assert(r == nil, "a query succeeded while the server is down")
  assert(e:find("^closed: ") or e:find("^connection refused: "), e)
  return e == refused, e
end, 5000)
t.eq(err, refused, "queries while it is down fail with connection refused")
t.eq(pg.healthy(), false, "the pool reports unhealthy")
local t0 = shield.now()
local down = {}
for i = 1, 20 do down[i] = shield.spawn(function() return pg.query("SELECT 1") end) end
local fast = 0
for i = 1, 20 do
  local _, r, e = shield.join(down[i])
  if r == nil and e == refused then fast = fast + 1 end
end
t.eq(fast, 20, "20 queries fail cleanly")
t.ok(shield.now() - t0 < 2500, "without waiting for a deadline")
local st = pg.stats()
t.eq(st.open, 0, "no session open")
t.ok(st.connect_failures >= 1, "connect failures counted")

t.eq(os.execute(servers .. " pg-start " .. dir), 0, "PostgreSQL started again")
local rows = poll(function() return pg.query("SELECT 'back' AS v") end, 10000)
t.eq(rows and rows[1].v, "back", "queries work again")
t.eq(pg.healthy(), true, "the pool reports healthy")

local again = {}
for i = 1, 16 do
  again[i] = shield.spawn(function(x) return pg.query("SELECT $1::int AS x", x) end, i)
end
local good = 0
for i = 1, 16 do
  local _, r = shield.join(again[i])
  if r and r[1].x == i then good = good + 1 end
end
t.eq(good, 16, "16 concurrent queries after the restart")
t.ok(pg.stats().reconnects >= 1, "reconnects counted")

local tx = pg.transaction(function() return pg.query("SELECT 1 AS one")[1].one end)
t.eq(tx, 1, "transactions work again")
return t.done()
