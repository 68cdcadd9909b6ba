-- shield.http under load from one worker: 500 requests in flight at once
-- against a slow server, all answered with their own answer; a request to a
-- server that never answers ends with nil, "timeout" at its thread's deadline
-- while other requests keep completing; 100 sequential requests reuse their
-- connection. Run with `shield-runtime run` under tests/httpc/with-fake.sh.
package.path = os.getenv("SHIELD_SOURCE_DIR") .. "/tests/lib/?.lua;" .. package.path
local shield = require "shield"
local t = require "tap"
local http, json = shield.http, shield.json

local base = assert(os.getenv("SHIELD_FAKE_URL"), "SHIELD_FAKE_URL")

local function control(body)
  local res = http.request({ method = "POST", url = base .. "/_control", body = json.encode(body) })
  assert(res and res.status == 200, "control failed")
end

local function fake_stats()
  local res = assert(http.request({ url = base .. "/_stats" }))
  return json.decode(res.body)
end

-- ---- 500 at once, each answered 200 ms late ----
local N, DELAY = 500, 200
control({ mode = "slow", delay_ms = DELAY, count = N, route = "/_echo" })
local threads = {}
local t0 = shield.now()
for i = 1, N do
  threads[i] = shield.spawn(function()
    local res, err = http.request({ method = "POST", url = base .. "/_echo?i=" .. i, body = "n" .. i,
      timeout_ms = 30000 })
    if not res then return nil, err end
    local e = json.decode(res.body)
    return res.status == 200 and e.query == "i=" .. i and e.body == "n" .. i
  end)
end
local wait_until = shield.now() + 2000
while http.stats().active < N and shield.now() < wait_until do shield.sleep(1) end
t.eq(http.stats().active, N, N .. " transfers in flight at once")
local good, errs = 0, {}
for i = 1, N do
  local ok, right, err = shield.join(threads[i])
  if ok and right then good = good + 1 elseif #errs < 3 then errs[#errs + 1] = tostring(err) end
end
local took = shield.now() - t0
t.eq(good, N, "all " .. N .. " answered with their own answer" .. (#errs > 0 and " (" .. table.concat(errs, "; ") .. ")" or ""))
t.ok(took >= DELAY and took < 15000, "in " .. took .. " ms")
local fs = fake_stats()
t.eq(fs.requests["POST /_echo"], N, "the server saw " .. N .. " requests")
t.ok(fs.connections <= 70, "over at most 64 connections to the host, pool.concurrency (" .. fs.connections .. " accepted)")
t.eq(http.stats().active, 0, "nothing left in flight")

-- ---- a hung request times out at its deadline; others keep completing ----
local c0 = http.stats().cancelled
local hung = shield.spawn(function()
  shield.set_deadline(400)
  local s0 = shield.now()
  local res, err = http.request({ url = base .. "/_hang", timeout_ms = 60000 })
  return res, err, shield.now() - s0
end)
local done_meanwhile = 0
local others = {}
for i = 1, 20 do
  others[i] = shield.spawn(function()
    local res = http.request({ url = base .. "/_echo?delay_ms=50&j=" .. i })
    if res and res.status == 200 then done_meanwhile = done_meanwhile + 1 end
  end)
end
for i = 1, 20 do shield.join(others[i]) end
local _, res, err, elapsed = shield.join(hung)
t.eq(done_meanwhile, 20, "20 requests completed while one hung")
t.eq(res, nil, "the hung request: nil")
t.eq(err, "timeout", "the hung request: timeout")
t.ok(elapsed >= 390 and elapsed < 1500, "at its deadline (" .. elapsed .. " ms)")
t.eq(http.stats().cancelled - c0, 1, "its transfer was removed")
t.eq(http.stats().active, 0, "nothing left in flight")
res = http.request({ url = base .. "/_echo" })
t.eq(res and res.status, 200, "the client works on")

-- A thread killed by its deadline before it even asks gets timeout at once.
local late = shield.spawn(function()
  shield.set_deadline(1)
  shield.sleep(20)
  return http.request({ url = base .. "/_echo" })
end)
local _, lres, lerr = shield.join(late)
t.eq(lres, nil, "past the deadline: nil")
t.eq(lerr, "timeout", "past the deadline: timeout")

-- ---- connection reuse ----
local before = fake_stats().connections
local connects0 = http.stats().connects
local ok200 = 0
for i = 1, 100 do
  local r = http.request({ url = base .. "/_echo?seq=" .. i })
  if r and r.status == 200 then ok200 = ok200 + 1 end
end
t.eq(ok200, 100, "100 sequential requests")
local opened = fake_stats().connections - before
t.ok(opened <= 1, "they used the pooled connections (" .. opened .. " new accepted)")
t.ok(http.stats().connects - connects0 <= 1, "the client opened at most one (" ..
  (http.stats().connects - connects0) .. ")")
return t.done()
