-- The default retry policy for failed chunks: exponential backoff with full
-- jitter (base 1 s, cap 60 s) for at most pool.retry_attempts deliveries;
-- errors marked {retryable=false} (shield.fail) go straight to dead letters.
-- Used by the worker when a script has no retry() of its own. Pure Lua.

local floor, random, min = math.floor, math.random, math.min

local _M = {}

_M.BASE_MS = 1000
_M.CAP_MS = 60000

local function positive_int(v)
  return type(v) == "number" and v >= 1 and v == floor(v)
end

-- decide(err, attempt, max_attempts[, rand[, {base_ms=, cap_ms=}]])
--   err: the chunk's error (a table with retryable == false is final)
--   attempt: the delivery that just failed, 1 for the first
--   max_attempts: deliveries allowed in all (pool.retry_attempts)
--   rand: returns a number in [0, 1] (default math.random)
-- -> {retry=true, delay_ms=n} with n uniform in [0, min(cap, base * 2^(attempt-1))]
--    or {retry=false, reason="non-retryable" | "attempts exhausted"}
function _M.decide(err, attempt, max_attempts, rand, opts)
  if not positive_int(attempt) then
    error("bad argument #2 to 'decide': positive integer attempt expected", 2)
  end
  if not positive_int(max_attempts) then
    error("bad argument #3 to 'decide': positive integer max_attempts expected", 2)
  end
  if rand ~= nil and type(rand) ~= "function" then
    error("bad argument #4 to 'decide': function expected, got " .. type(rand), 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("bad argument #5 to 'decide': table expected, got " .. type(opts), 2)
  end
  if type(err) == "table" and err.retryable == false then
    return { retry = false, reason = "non-retryable" }
  end
  if attempt >= max_attempts then
    return { retry = false, reason = "attempts exhausted" }
  end
  local base = opts and opts.base_ms or _M.BASE_MS
  local cap = opts and opts.cap_ms or _M.CAP_MS
  -- the exponent is bounded so 2^k stays finite however large attempt gets
  local ceiling = min(cap, base * 2 ^ min(attempt - 1, 52))
  local r = (rand or random)()
  if type(r) ~= "number" or r < 0 or r > 1 then
    error("rand() must return a number in [0, 1], got " .. tostring(r), 2)
  end
  return { retry = true, delay_ms = floor(r * ceiling) }
end

return _M
