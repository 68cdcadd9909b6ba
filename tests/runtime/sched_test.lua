-- Light threads: spawn/join, sleep ordering, deadlines, errors with tracebacks,
-- plain coroutine yields. Run with `shield-runtime run`.
package.path = os.getenv("SHIELD_SOURCE_DIR") .. "/tests/lib/?.lua;" .. package.path
local shield = require "shield"
local t = require "tap"

-- 1,000 threads sleeping concurrently finish in about one sleep, not 1,000.
local t0 = shield.now()
local threads = {}
for i = 1, 1000 do
  threads[i] = shield.spawn(function(x)
    shield.sleep(50)
    return x, x * 2
  end, i)
end
local sum = 0
for i = 1, 1000 do
  local ok, a, b = shield.join(threads[i])
  assert(ok and a == i and b == 2 * i)
  sum = sum + b
end
t.eq(sum, 1001000, "1,000 joined results")
t.ok(shield.now() - t0 < 1000, "1,000 sleeps of 50 ms ran concurrently")

-- Sleeps wake in deadline order.
local order = {}
local a = shield.spawn(function() shield.sleep(30) order[#order + 1] = "30" end)
local b = shield.spawn(function() shield.sleep(10) order[#order + 1] = "10" end)
local c = shield.spawn(function() shield.sleep(20) order[#order + 1] = "20" end)
shield.join(a) shield.join(b) shield.join(c)
t.eq(table.concat(order, ","), "10,20,30", "sleeps wake in order")

-- An error in a thread: join answers false and the message with position.
local e = shield.spawn(function() error("boom") end)
local ok, err = shield.join(e)
t.eq(ok, false, "join of a failed thread answers false")
t.like(err, "sched_test.lua:%d+: boom", "the error keeps its position")

-- Joining a finished thread twice gives the same answer.
local twice = shield.spawn(function() return "once" end)
shield.sleep(1)
t.eq(select(2, shield.join(twice)), "once", "join after finish")
t.eq(select(2, shield.join(twice)), "once", "join twice")

-- A plain coroutine.yield() inside a light thread is a scheduling point.
local steps = {}
local y1 = shield.spawn(function() for i = 1, 3 do steps[#steps + 1] = "a" .. i; coroutine.yield() end end)
local y2 = shield.spawn(function() for i = 1, 3 do steps[#steps + 1] = "b" .. i; coroutine.yield() end end)
shield.join(y1) shield.join(y2)
t.eq(table.concat(steps, " "), "a1 b1 a2 b2 a3 b3", "yields interleave threads")

-- shield I/O from a plain coroutine is refused with a clear error.
local co = coroutine.create(function() shield.sleep(1) end)
local cok, cerr = coroutine.resume(co)
t.eq(cok, false, "sleep inside a plain coroutine is refused")
t.like(cerr, "must be called from a shield light thread", "with a clear message")

-- shield.now is wall-clock milliseconds.
t.ok(math.abs(shield.now() - os.time() * 1000) < 2000, "now() is epoch milliseconds")

-- Deadlines: the wait is cancelled with nil, "timeout"; later waits answer at
-- once; spawned threads inherit the deadline.
local d = shield.spawn(function()
  shield.set_deadline(50)
  local child = shield.spawn(function() return shield.sleep(5000) end)
  local started = shield.now()
  local r1, e1 = shield.sleep(5000)
  local waited = shield.now() - started
  local r2, e2 = shield.sleep(10)
  return r1, e1, waited, r2, e2, child, shield.deadline_left()
end)
local _, r1, e1, waited, r2, e2, child, left = shield.join(d)
local _, r3, e3 = shield.join(child)
t.eq(r1, nil, "sleep past the deadline answers nil")
t.eq(e1, "timeout", "... and \"timeout\"")
t.ok(waited >= 40 and waited < 1000, "... at the deadline (" .. waited .. " ms)")
t.eq(e2, "timeout", "a wait after the deadline times out at once")
t.eq(r3, nil, "a spawned thread inherits the deadline")
t.eq(e3, "timeout", "... and times out")
t.eq(left, 0, "deadline_left is 0 after expiry")

-- The deadline timer may be due before the earliest deadline (a thread that
-- finishes leaves it armed): a nearer deadline set after a farther one, and
-- one left behind by a thread that finished early, still expire on time.
local far = shield.spawn(function()
  shield.set_deadline(5000)
  return shield.sleep(150)
end)
local early = shield.spawn(function()
  shield.set_deadline(30)
  return shield.sleep(10)
end)
local near = shield.spawn(function()
  shield.set_deadline(100)
  local started = shield.now()
  local r, e = shield.sleep(5000)
  return r, e, shield.now() - started
end)
local _, early_done = shield.join(early)
local _, near_r, near_e, near_waited = shield.join(near)
local _, far_done = shield.join(far)
t.eq(early_done, true, "a thread done before its deadline is not expired")
t.eq(near_e, "timeout", "a nearer deadline set after a farther one expires")
t.ok(near_waited >= 90 and near_waited < 1000, "... at its time (" .. near_waited .. " ms)")
t.eq(near_r, nil, "... with nil")
t.eq(far_done, true, "the farther deadline has not passed")

return t.done()
