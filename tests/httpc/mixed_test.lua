-- 1,000 light threads in one worker, each doing Redis, PostgreSQL and HTTP
-- calls at once, each checking that every answer is its own: the three
-- clients share the loop without mixing replies up or blocking one another.
-- Run with `shield-runtime run` under with-servers.sh and with-fake.sh.
package.path = os.getenv("SHIELD_SOURCE_DIR") .. "/tests/lib/?.lua;" .. package.path
local shield = require "shield"
local t = require "tap"
local json = shield.json

local base = assert(os.getenv("SHIELD_FAKE_URL"), "SHIELD_FAKE_URL")
local N = 1000

local function one(i)
  local key = "mixed:" .. i
  local replies, rerr = shield.redis.pipeline({ { "SET", key, "v" .. i }, { "INCRBY", key .. ":n", i }, { "GET", key } })
  if not replies then return nil, "redis: " .. tostring(rerr) end
  if replies[3] ~= "v" .. i or replies[2] ~= i then
    return nil, "redis answered " .. tostring(replies[3]) .. ", " .. tostring(replies[2])
  end
  local rows, perr = shield.pg.query("SELECT $1::int + 1 AS next, $2::text AS echo", i, "t" .. i)
  if not rows then return nil, "postgres: " .. tostring(perr) end
  if rows[1].next ~= i + 1 or rows[1].echo ~= "t" .. i then return nil, "postgres answered " .. json.encode(rows[1]) end
  local res, herr = shield.http.request({ method = "POST", url = base .. "/_echo?i=" .. i, body = "b" .. i,
    timeout_ms = 30000 })
  if not res then return nil, "http: " .. tostring(herr) end
  local echo = json.decode(res.body)
  if res.status ~= 200 or echo.query ~= "i=" .. i or echo.body ~= "b" .. i then
    return nil, "http answered " .. res.status .. " " .. res.body
  end
  -- The same thread again, after the others ran meanwhile.
  local again = shield.redis.call("GET", key)
  if again ~= "v" .. i then return nil, "redis answered " .. tostring(again) .. " on the second read" end
  return true
end

local t0 = shield.now()
local threads = {}
for i = 1, N do
  threads[i] = shield.spawn(one, i)
end
local right, errors = 0, {}
for i = 1, N do
  local ran, ok, err = shield.join(threads[i])
  if ran and ok then
    right = right + 1
  elseif #errors < 5 then
    errors[#errors + 1] = i .. ": " .. tostring(ok or err)
  end
end
t.eq(right, N, "1,000 threads got their own Redis, PostgreSQL and HTTP answers"
  .. (#errors > 0 and " (" .. table.concat(errors, "; ") .. ")" or ""))
t.ok(shield.now() - t0 < 60000, "in " .. (shield.now() - t0) .. " ms")
t.eq(shield.redis.call("DBSIZE"), 2 * N, "every thread's keys are there")
t.eq(shield.pg.stats().queued, 0, "the PostgreSQL queue drained")
t.eq(shield.http.stats().active, 0, "no HTTP transfer left")
os.exit(t.done())
