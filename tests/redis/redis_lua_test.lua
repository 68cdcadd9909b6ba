-- shield.redis from Lua (runtime/lua_redis.c): reply types, argument
-- formatting, misuse, hgetall, pipelines, server scripts, 1,000 concurrent light
-- threads, deadlines, and a Redis restart mid-run. Run with `shield-runtime run`
-- under tests/harness/with-servers.sh.
package.path = os.getenv("SHIELD_SOURCE_DIR") .. "/tests/lib/?.lua;" .. package.path
local shield = require "shield"
local t = require "tap"
local redis = shield.redis

local function wait_until(pred, ms)
  local deadline = shield.now() + ms
  while not pred() do
    if shield.now() > deadline then
      return false
    end
    shield.sleep(20)
  end
  return true
end

local function server(what)
  local cmd = string.format("%s/tests/harness/servers.sh %s '%s'", os.getenv("SHIELD_SOURCE_DIR"), what,
    os.getenv("SHIELD_TEST_DIR"))
  assert(os.execute(cmd) == 0, cmd)
end

t.ok(wait_until(redis.connected, 3000), "connected")

-- Reply types.
t.eq(redis.call("FLUSHDB"), "OK", "status reply as a string")
t.eq(redis.call("PING"), "PONG", "PONG")
t.eq(redis.call("SET", "k", "v"), "OK", "SET")
t.eq(redis.call("GET", "k"), "v", "bulk string")
t.eq(select("#", redis.call("GET", "missing")), 1, "nil reply: one value")
t.eq(redis.call("GET", "missing"), nil, "nil reply is nil")
t.eq(redis.call("INCR", "n"), 1, "integer reply")
t.eq(type(redis.call("INCR", "n")), "number", "integer as a number")
redis.call("RPUSH", "l", "a", "b", "c")
local l = redis.call("LRANGE", "l", 0, -1)
t.eq(table.concat(l, ","), "a,b,c", "array reply")
t.eq(#redis.call("LRANGE", "none", 0, -1), 0, "empty array")
local nested = redis.call("EVAL", "return {1, {2, 'x', {}}, false, 'y'}", 0)
t.eq(nested[1], 1, "nested: integer")
t.eq(nested[2][1], 2, "nested: inner integer")
t.eq(nested[2][2], "x", "nested: inner string")
t.eq(type(nested[2][3]), "table", "nested: empty inner array")
t.eq(nested[3], false, "nil inside an array is false")
t.eq(nested[4], "y", "elements after a nil keep their place")
local inner_err = redis.call("EVAL", "return {1, redis.error_reply('E1 inner')}", 0)
t.eq(inner_err[2].err, "E1 inner", "error inside an array is {err = ...}")

-- Error replies: nil and the server's text.
local v, err = redis.call("NOSUCHCMD", "x")
t.eq(v, nil, "error reply: nil")
t.eq(err, "ERR unknown command 'NOSUCHCMD', with args beginning with: 'x' ", "error reply: server text")
v, err = redis.call("INCR", "l")
t.eq(err, "WRONGTYPE Operation against a key holding the wrong kind of value", "WRONGTYPE")

-- hgetall: the hash keyed by field, values as strings.
local function fields_text(fields)
  local items = {}
  for name, value in pairs(fields) do
    items[#items + 1] = name .. "=" .. value
  end
  table.sort(items)
  return table.concat(items, ",")
end
redis.call("HSET", "h", "status", "completed", "count:entities", 12, "count:relations", 0, "empty", "")
local h = redis.hgetall("h")
t.eq(fields_text(h), "count:entities=12,count:relations=0,empty=,status=completed", "hgetall: fields by name")
t.eq(type(h["count:entities"]), "string", "hgetall: a number stored is a string")
t.eq(fields_text(redis.hgetall("missing")), "", "hgetall of a missing key: an empty table")
redis.call("HSET", 42, "f", "v")
t.eq(fields_text(redis.hgetall(42)), "f=v", "hgetall: a number key")
v, err = redis.hgetall("l")
t.eq(v, nil, "hgetall of a list: nil")
t.eq(err, "WRONGTYPE Operation against a key holding the wrong kind of value", "hgetall of a list: WRONGTYPE")
local ok, e = pcall(redis.hgetall)
t.like(e, "bad argument #1 to 'hgetall' %(string or number expected, got no value%)", "hgetall without a key raises")

-- Arguments: integral numbers as integers, others round-trip exact; binary-safe strings.
redis.call("SET", "num", 42)
t.eq(redis.call("GET", "num"), "42", "integer argument")
redis.call("SET", "num", -7.0)
t.eq(redis.call("GET", "num"), "-7", "integral float as integer")
redis.call("SET", "num", 1.5)
t.eq(redis.call("GET", "num"), "1.5", "fraction")
redis.call("SET", "num", 0.1)
t.eq(tonumber(redis.call("GET", "num")), 0.1, "0.1 round-trips")
redis.call("SET", "num", 2 ^ 53)
t.eq(redis.call("GET", "num"), "9007199254740992", "2^53")
redis.call("SET", "num", 1e20)
t.eq(redis.call("GET", "num"), "1e+20", "beyond 64-bit integers")
redis.call("SET", "bin", "a\0b")
t.eq(redis.call("GET", "bin"), "a\0b", "binary-safe")

-- Misuse raises.
ok, e = pcall(redis.call, "SET", "k", true)
t.eq(ok, false, "boolean argument raises")
t.like(e, "bad argument #3 to 'call' %(string or number expected, got boolean%)", "boolean argument message")
ok, e = pcall(redis.call)
t.like(e, "bad argument #1 to 'call' %(string or number expected, got no value%)", "no command raises")
ok, e = pcall(redis.pipeline, { { "PING" }, "GET" })
t.like(e, "command 2: table expected, got string", "pipeline of a non-table raises")
ok, e = pcall(redis.pipeline, { { "PING" }, {} })
t.like(e, "command 2 is empty", "empty pipeline command raises")
ok, e = pcall(redis.pipeline, { { "SET", "k", {} } })
t.like(e, "command 1, element 3: string or number expected, got table", "pipeline bad element raises")
local co = coroutine.create(function() return redis.call("PING") end)
ok, e = coroutine.resume(co)
t.like(e, "must be called from a shield light thread", "plain coroutine raises")

-- Pipelines: one reply per command, error replies listed apart.
redis.call("DEL", "p", "pl")
local res, errs = redis.pipeline({ { "SET", "p", 1 }, { "INCR", "p" }, { "GET", "nokey" }, { "LPUSH", "p", "x" },
  { "RPUSH", "pl", "a", "b" }, { "LRANGE", "pl", 0, -1 } })
t.eq(#res, 6, "pipeline: one result per command")
t.eq(res[1], "OK", "pipeline: status")
t.eq(res[2], 2, "pipeline: integer")
t.eq(res[3], false, "pipeline: nil reply is false")
t.eq(res[4], false, "pipeline: error reply is false")
t.eq(errs and errs[4], "WRONGTYPE Operation against a key holding the wrong kind of value", "pipeline: errors[i]")
t.eq(errs and errs[3], nil, "pipeline: a nil reply is no error")
t.eq(res[6] and table.concat(res[6], ","), "a,b", "pipeline: array")
res, errs = redis.pipeline({ { "PING" }, { "PING" } })
t.eq(errs, nil, "pipeline without error replies: no errors table")
t.eq(#redis.pipeline({}), 0, "empty pipeline")
local big = {}
for i = 1, 5000 do
  big[i] = { "INCR", "pbig" }
end
res = redis.pipeline(big)
t.eq(res[5000], 5000, "5,000 commands in one pipeline, in order")

-- Server scripts.
local s = redis.script("return {KEYS[1], ARGV[1], tonumber(ARGV[2]) + 1}")
for i = 1, 3 do
  local r = s:call({ "key" }, { "arg", 41 })
  t.eq(r and table.concat(r, ","), "key,arg,42", "script call " .. i)
end
local nokeys = redis.script("return #KEYS + #ARGV")
t.eq(nokeys:call(), 0, "script without keys or args")
local failing = redis.script("return redis.error_reply('MYERR nope')")
v, err = failing:call({}, {})
t.eq(err, "MYERR nope", "script error reply: nil, text")
ok, e = pcall(s.call, s, "notatable")
t.like(e, "keys table expected, got string", "script keys must be a table")

-- 1,000 light threads at once, each with its own answers.
redis.call("DEL", "shared")
local threads = {}
for i = 1, 1000 do
  threads[i] = shield.spawn(function()
    local key = "own:" .. i
    assert(redis.call("SET", key, i * 3) == "OK")
    local n = redis.call("INCR", "shared")
    local got = redis.call("GET", key)
    local pr = redis.pipeline({ { "INCRBY", key, 1 }, { "GET", key } })
    local sr = s:call({ key }, { i, i })
    return tonumber(got), n, pr[1], pr[2], sr[3]
  end)
end
local right, seen = 0, {}
for i = 1, 1000 do
  local okj, got, n, incr, after, sr = shield.join(threads[i])
  if okj and got == i * 3 and incr == i * 3 + 1 and after == tostring(i * 3 + 1) and sr == i + 1 and not seen[n] then
    right = right + 1
  end
  if n then
    seen[n] = true
  end
end
t.eq(right, 1000, "1,000 threads got their own answers")
t.eq(redis.call("GET", "shared"), "1000", "1,000 increments")

-- A deadline cuts the wait: nil, "timeout"; the late reply is dropped.
local th = shield.spawn(function()
  shield.set_deadline(100)
  local t0 = shield.now()
  local r, why = redis.call("BLPOP", "never", 1)
  return r, why, shield.now() - t0
end)
local _, r, why, took = shield.join(th)
t.eq(r, nil, "deadline: nil")
t.eq(why, "timeout", "deadline: timeout")
t.ok(took >= 80 and took < 900, "deadline: answered at the deadline, not the reply")
t.eq(redis.call("PING"), "PONG", "the connection still works after a dropped reply")
th = shield.spawn(function()
  shield.set_deadline(50)
  return redis.pipeline({ { "BLPOP", "never", 1 }, { "PING" } })
end)
_, r, why = shield.join(th)
t.eq(why, "timeout", "deadline: pipeline timeout")

-- Blocking commands have a connection of their own: ordinary calls of other
-- threads go on while they wait.
local function ping_while(blocking_call)
  local blocker = shield.spawn(blocking_call)
  shield.sleep(20)
  local t0 = shield.now()
  local pong = redis.call("PING")
  local ping_ms = shield.now() - t0
  local _, a, b = shield.join(blocker)
  return pong, ping_ms, a, b
end
local pong, ping_ms, got = ping_while(function() return redis.call("BLPOP", "never", 1) end)
t.eq(pong, "PONG", "blocking: PING answered during a BLPOP")
t.ok(ping_ms < 300, "... at once (" .. ping_ms .. " ms), not after the BLPOP's second")
t.eq(got, nil, "... and the BLPOP still times out with nil")
pong, ping_ms = ping_while(function() return redis.call("xread", "block", 500, "streams", "nostream", "$") end)
t.ok(pong == "PONG" and ping_ms < 300, "blocking: XREAD BLOCK (any case) too (" .. ping_ms .. " ms)")
pong, ping_ms, got = ping_while(function() return redis.pipeline({ { "PING" }, { "BRPOP", "never", 1 } }) end)
t.ok(pong == "PONG" and ping_ms < 300, "blocking: a pipeline with a BRPOP too (" .. ping_ms .. " ms)")
t.eq(got and got[1], "PONG", "... and the pipeline answers in order")
redis.call("RPUSH", "handoff", "x")
local popped = redis.call("BLPOP", "handoff", 1)
t.eq(popped and popped[1] .. "=" .. popped[2], "handoff=x", "blocking: a BLPOP that finds an element returns it")

-- Restart mid-run: in-flight calls fail, new ones fail fast, reconnect, scripts reload.
local waiting = {}
for i = 1, 5 do
  waiting[i] = shield.spawn(function() return redis.call("BLPOP", "never", 10) end)
end
shield.sleep(50)
server("redis-stop")
local lost = 0
for i = 1, 5 do
  local _, rr, w = shield.join(waiting[i])
  if rr == nil and w == "redis: connection lost" then
    lost = lost + 1
  end
end
t.eq(lost, 5, "in-flight calls: nil, redis: connection lost")
local t0 = shield.now()
v, err = redis.call("PING")
t.eq(err, "redis: not connected", "while down: redis: not connected")
t.ok(shield.now() - t0 < 500, "while down: fails fast")
v, err = s:call({ "key" }, { "arg", 1 })
t.eq(err, "redis: not connected", "script while down")
v, err = redis.hgetall("h")
t.eq(v, nil, "hgetall while down: nil")
t.eq(err, "redis: not connected", "hgetall while down: error")
res, err = redis.pipeline({ { "PING" }, { "PING" } })
t.eq(res, nil, "pipeline while down: nil")
t.eq(err, "redis: not connected", "pipeline while down: error")
server("redis-start")
t.ok(wait_until(redis.connected, 15000), "reconnected")
t.eq(redis.call("PING"), "PONG", "PING after the restart")
local after = s:call({ "key" }, { "arg", 1 })
t.eq(after and table.concat(after, ","), "key,arg,2", "script after the restart (NOSCRIPT reload)")
after = s:call({ "key" }, { "arg", 2 })
t.eq(after and after[3], 3, "script again after the reload")

-- Threads still waiting when the file ends are killed and their requests
-- released when the client closes (the sanitizer build checks for leaks).
for i = 1, 3 do
  shield.spawn(function() return redis.call("BLPOP", "never", 5) end)
end
shield.sleep(20)

return t.done()
