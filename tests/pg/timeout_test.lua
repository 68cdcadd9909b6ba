-- A query in flight when its thread's deadline passes: nil, "timeout" on
-- time, the statement cancelled on the server, the session usable again.
-- Run with `shield-runtime run`.
package.path = os.getenv("SHIELD_SOURCE_DIR") .. "/tests/lib/?.lua;" .. package.path
local shield = require "shield"
local t = require "tap"
local pg = shield.pg

local function sleepy(ms, sql)
  return shield.spawn(function()
    shield.set_deadline(ms)
    local t0 = shield.now()
    local rows, err = pg.query(sql)
    return rows, err, shield.now() - t0
  end)
end

local function active_sleeps()
  return pg.query("SELECT count(*) AS n FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'SELECT pg_sleep(10)%'")[1].n
end

-- Polls f until it returns want or ms pass; the last value.
local function poll(f, want, ms)
  local deadline = shield.now() + ms
  local v = f()
  while v ~= want and shield.now() < deadline do
    shield.sleep(20)
    v = f()
  end
  return v
end

local _, rows, err, elapsed = shield.join(sleepy(200, "SELECT pg_sleep(10)"))
t.eq(rows, nil, "a query past its deadline gives nil")
t.eq(err, "timeout", "and timeout")
t.ok(elapsed >= 190 and elapsed < 1000, "at the deadline (" .. elapsed .. " ms)")
local one = pg.query("SELECT 1 AS one")
t.eq(one and one[1].one, 1, "the next query on the pool works")
t.eq(poll(active_sleeps, 0, 2000), 0, "the server stopped the statement")

-- Every session busy with a statement past its deadline: all are cancelled,
-- and a query queued behind them runs soon after, on the same sessions.
local st0 = pg.stats()
local threads = {}
for i = 1, 8 do threads[i] = sleepy(200, "SELECT pg_sleep(10)") end
local t0 = shield.now()
local after = shield.spawn(function() return pg.query("SELECT 'after' AS v") end)
local timeouts = 0
for i = 1, 8 do
  local _, r, e = shield.join(threads[i])
  if r == nil and e == "timeout" then timeouts = timeouts + 1 end
end
t.eq(timeouts, 8, "8 queries past their deadline time out")
local _, arows, aerr = shield.join(after)
t.eq(arows and arows[1].v, "after", "the query queued behind them succeeds")
t.eq(aerr, 1, "with its row count")
t.ok(shield.now() - t0 < 1500, "soon after the deadline")
t.eq(poll(active_sleeps, 0, 2000), 0, "no statement left running on the server")
local st = pg.stats()
t.eq(st.cancels - st0.cancels, 8, "8 cancels")
t.eq(st.reconnects, 0, "the sessions were kept, not reopened")
t.eq(st.connects, 8, "8 sessions in all")
-- A session stays reserved until its PQcancel call returned.
t.eq(poll(function() return pg.stats().busy end, 0, 2000), 0, "every session free again")

-- A deadline already past: the query is not even sent.
local past = shield.spawn(function()
  shield.set_deadline(0)
  shield.sleep(1)
  local q0 = pg.stats().queries
  local r, e = pg.query("SELECT 1")
  return r, e, pg.stats().queries - q0
end)
local _, prows, perr, sent = shield.join(past)
t.eq(prows, nil, "an expired thread's query gives nil")
t.eq(perr, "timeout", "and timeout")
t.eq(sent, 0, "without reaching the pool")

return t.done()
