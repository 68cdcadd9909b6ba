-- JSON over HTTP for the pipeline's backends (LLM, embeddings, Qdrant): one
-- request function that sorts failures into retryable (429, 5xx, 408,
-- timeouts, transport errors; carrying the server's Retry-After) and final
-- (other 4xx, answers that are not JSON), retrying in place a few times,
-- and the scripts' retry() that waits at least what Retry-After asked.
-- Used by llm.lua, embedding.lua and qdrant.lua; relies on shield.http.

local shield = require "shield"
local retry_policy = require "shield.retry"

local type, tostring, tonumber, pcall, error, setmetatable = type, tostring, tonumber, pcall, error, setmetatable
local format, gsub, match, sub = string.format, string.gsub, string.match, string.sub
local floor, min, max, random = math.floor, math.min, math.max, math.random

local _M = {}

_M.MAX_WAIT_MS = 10000     -- a longer Retry-After is left to the chunk's own retry
_M.BACKOFF_MS = 500        -- first in-place retry waits up to this (full jitter)

-- fail(message, retryable[, retry_after_ms]): raises a shield failure (as
-- shield.fail does) that also carries the server's Retry-After.
function _M.fail(message, retryable, retry_after_ms)
  local _, e = pcall(shield.fail, message, { retryable = retryable })
  e.retry_after_ms = retry_after_ms
  error(e, 0)
end

-- Whether a PostgreSQL failure may pass on a retry: transport errors (no
-- SQLSTATE), connection (08), transaction rollback (40), resources (53),
-- operator intervention (57), system errors (58), and an undefined table
-- (42P01): workers may start before the supervisor has applied the
-- migrations. Other data and syntax errors would only repeat.
local PG_RETRYABLE = { ["08"] = true, ["40"] = true, ["53"] = true, ["57"] = true, ["58"] = true }
function _M.pg_retryable(sqlstate)
  return type(sqlstate) ~= "string" or sqlstate == "42P01" or PG_RETRYABLE[sub(sqlstate, 1, 2)] == true
end

local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6,
                 Jul = 7, Aug = 8, Sep = 9, Oct = 10, Nov = 11, Dec = 12 }

-- Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

-- retry_after_ms(value, now_ms) -> milliseconds to wait, or nil: the header
-- is either delta-seconds or an IMF-fixdate (RFC 9110 section 10.2.3).
function _M.retry_after_ms(value, now_ms)
  if type(value) ~= "string" then return nil end
  local secs = match(value, "^%s*(%d+)%s*$")
  if secs then return tonumber(secs) * 1000 end
  local d, mon, y, hh, mm, ss = match(value, "^%s*%a%a%a, (%d%d) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT%s*$")
  if not d or not MONTHS[mon] then return nil end
  local at = ((days_from_civil(tonumber(y), MONTHS[mon], tonumber(d)) * 24 + tonumber(hh)) * 60
    + tonumber(mm)) * 60 + tonumber(ss)
  return max(0, at * 1000 - now_ms)
end

-- A short one-line excerpt of a body for error messages.
local function excerpt(body)
  if type(body) ~= "string" or body == "" then return "(empty body)" end
  body = gsub(body, "%s+", " ")
  if #body > 200 then body = sub(body, 1, 200) .. "..." end
  return body
end
_M.excerpt = excerpt

-- One request. Returns decoded, status for a 2xx answer or an accepted
-- status, else nil, {message=, retryable=, retry_after_ms=}.
local function attempt(req)
  local timeout = req.timeout_ms
  local left = shield.deadline_left()
  if left then timeout = min(timeout, max(left, 1)) end
  local res, err = req.request({
    method = req.method, url = req.url, headers = req.headers, body = req.body, timeout_ms = timeout,
  })
  local what = req.name .. ": " .. req.method .. " " .. req.url
  if not res then
    return nil, { message = format("%s: %s", what, tostring(err or "no answer")), retryable = true }
  end
  local status = res.status
  local ok_status = type(status) == "number" and status >= 200 and status < 300
  if ok_status or (req.accept and req.accept[status]) then
    if res.body == nil or res.body == "" then
      if not ok_status or req.empty_ok then return {}, status end
    end
    local decoded, derr = shield.json.decode(res.body or "")
    if type(decoded) ~= "table" then
      if not ok_status then return {}, status end
      return nil, { message = format("%s: bad answer (%s): %s", what, derr or "not a JSON object",
        excerpt(res.body)), retryable = false }
    end
    return decoded, status
  end
  local retryable = status == 429 or status == 408 or (type(status) == "number" and status >= 500)
  local headers = res.headers or {}
  return nil, {
    message = format("%s: http %s: %s", what, tostring(status), excerpt(res.body)),
    retryable = retryable,
    retry_after_ms = retryable and _M.retry_after_ms(headers["retry-after"], shield.now()) or nil,
  }
end

-- json(req) -> decoded answer (a table), status; raises a failure.
--   req: name (the error prefix), request (shield.http.request or a stand-in),
--   method, url, headers, body (a table, sent as JSON), timeout_ms, retries
--   (in-place retries of retryable failures), accept ({[status]=true}: non-2xx
--   statuses returned instead of raised), empty_ok (an empty 2xx body is {}),
--   gate ({enter=fn, leave=fn} around each attempt, e.g. a concurrency lease).
function _M.json(req)
  local headers = { ["content-type"] = "application/json", accept = "application/json" }
  for k, v in pairs(req.headers or {}) do headers[k] = v end
  local body
  if req.body ~= nil then
    local encoded, err = shield.json.encode(req.body)
    if not encoded then _M.fail(req.name .. ": cannot encode the request: " .. tostring(err), false) end
    body = encoded
  end
  local call = setmetatable({ headers = headers, body = body }, { __index = req })
  local tries = 1 + (req.retries or 0)
  for i = 1, tries do
    local token = req.gate and req.gate.enter()
    local ok, decoded, status = pcall(attempt, call)
    if req.gate then req.gate.leave(token) end
    if not ok then error(decoded, 0) end
    if decoded then return decoded, status end
    local failure = status
    local wait = failure.retry_after_ms
      or floor(random() * _M.BACKOFF_MS * 2 ^ (i - 1))
    local left = shield.deadline_left()
    if not failure.retryable or i == tries or wait > _M.MAX_WAIT_MS or (left and wait >= left) then
      _M.fail(failure.message, failure.retryable, failure.retry_after_ms)
    end
    shield.log.debug(failure.message, "- retrying in", wait, "ms")
    if not shield.sleep(wait) then _M.fail(failure.message .. " (then timeout)", true) end
  end
end

-- retry(err, attempt) -> the default policy's decision (shield.retry), its
-- delay raised to the server's Retry-After when the error carries one.
function _M.retry(err, attempt)
  local pool = shield.config().pool
  local d = retry_policy.decide(err, attempt, pool and pool.retry_attempts or 3)
  if d.retry and type(err) == "table" and type(err.retry_after_ms) == "number" then
    d.delay_ms = max(d.delay_ms, err.retry_after_ms)
  end
  return d
end

return _M
