-- A counting semaphore shared by every worker through Redis: a sorted set of
-- lease ids scored by their expiry (Redis' own clock). A lease whose holder
-- died or hung simply expires, so a failed or timed-out chunk never keeps a
-- slot. Used by llm.lua to cap concurrent LLM calls; relies on shield.redis.

local shield = require "shield"
local service = require "shield.lightrag.steps.service"

local tostring, tonumber, type, error, setmetatable = tostring, tonumber, type, error, setmetatable
local min, random = math.min, math.random

local _M = {}
local mt = { __index = _M }

_M.MIN_WAIT_MS = 10
_M.MAX_WAIT_MS = 250

-- KEYS[1] the set; ARGV: lease id, limit, lease ms. 1 when acquired.
local ACQUIRE = [[
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
]]

local script

-- new{key=, limit=, lease_ms=, name=} -> semaphore
function _M.new(opts)
  if type(opts) ~= "table" or type(opts.key) ~= "string" or type(opts.limit) ~= "number"
    or type(opts.lease_ms) ~= "number" then
    error("bad argument #1 to 'new': {key=string, limit=number, lease_ms=number} expected", 2)
  end
  script = script or shield.redis.script(ACQUIRE)
  return setmetatable({ key = opts.key, limit = opts.limit, lease_ms = opts.lease_ms,
    name = opts.name or "semaphore" }, mt)
end

-- acquire() -> lease id; waits (sleep with jitter) while all slots are taken.
-- Raises a retryable failure when Redis fails or the thread's deadline passes.
function _M:acquire()
  local lease = shield.random_hex(8)
  local wait = _M.MIN_WAIT_MS
  while true do
    local got, err = script:call({ self.key }, { lease, self.limit, self.lease_ms })
    if got == nil then
      service.fail(self.name .. ": concurrency lease: " .. tostring(err), true)
    end
    if tonumber(got) == 1 then return lease end
    if not shield.sleep(wait + random() * wait) then
      service.fail(self.name .. ": timeout waiting for a concurrency lease", true)
    end
    wait = min(wait * 2, _M.MAX_WAIT_MS)
  end
end

-- release(lease): gives the slot back; an error only delays it until expiry.
function _M:release(lease)
  local _, err = shield.redis.call("ZREM", self.key, lease)
  if err then shield.log.warn(self.name .. ": cannot release a concurrency lease:", err) end
end

return _M
