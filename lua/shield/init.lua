-- The `shield` module that processing scripts and the runtime's own Lua code use
-- (DESIGN.md section 8). Built on the C modules preloaded as shield.c.<name>;
-- every I/O call yields the calling light thread. Only valid inside the runtime.
local core = require "shield.c.core"
local cjson = require "cjson"
local cjson_safe = require "cjson.safe"

local select, tostring, type, error, setmetatable, table_concat =
  select, tostring, type, error, setmetatable, table.concat

local _M = {
  role = core.role,
  slot = core.slot,
  spawn = core.spawn,
  join = core.join,
  sleep = core.sleep,
  now = core.now,
  yield = core.yield,
  deadline_left = core.deadline_left,
  set_deadline = core.set_deadline,
  memory = core.memory,
  listdir = core.listdir,
  random_hex = core.random_hex,
  lua_dir = core.lua_dir,
}

-- JSON: strict for input (no NaN, Infinity or hex numbers), nil, err on bad input.
local decoder = cjson_safe.new()
decoder.decode_invalid_numbers(false)
decoder.decode_max_depth(128)
local encoder = cjson.new()
encoder.encode_invalid_numbers(false)
_M.json = {
  decode = function(s)
    if type(s) ~= "string" then
      return nil, "expected a JSON string, got " .. type(s)
    end
    return decoder.decode(s)
  end,
  encode = function(v)
    local ok, out = pcall(encoder.encode, v)
    if not ok then
      return nil, out
    end
    return out
  end,
  null = cjson.null,
}

local function join_args(...)
  local n = select("#", ...)
  local parts = {}
  for i = 1, n do
    parts[i] = tostring((select(i, ...)))
  end
  return table_concat(parts, " ")
end

local log = {}
for _, level in ipairs({ "debug", "info", "warn", "error" }) do
  log[level] = function(...)
    if core.log_enabled(level) then
      core.log(level, join_args(...))
    end
  end
end
_M.log = log

-- Errors raised by shield.fail carry whether a retry may help.
local failure_mt = {
  __tostring = function(e)
    return e.message
  end,
}

function _M.fail(message, opts)
  local retryable = true
  if type(opts) == "table" and opts.retryable == false then
    retryable = false
  end
  error(setmetatable({ message = tostring(message), retryable = retryable }, failure_mt), 2)
end

function _M.is_failure(e)
  return type(e) == "table" and getmetatable(e) == failure_mt
end

local config
function _M.config()
  if not config then
    config = decoder.decode(core.config_json)
  end
  return config
end

-- bindings
_M.pg = require "shield.pg"
_M.redis = require "shield.c.redis"
_M.http = require "shield.c.http"

-- Appends an event to the events stream (capped with MAXLEN ~). Returns the
-- entry id, or nil, err.
function _M.emit(kind, data)
  if type(kind) ~= "string" or kind == "" then
    error("bad argument #1 to 'emit': event kind expected", 2)
  end
  data = data or {}
  local payload, err = _M.json.encode(data)
  if not payload then
    return nil, "emit: " .. err
  end
  local s = _M.config().streams
  return _M.redis.call("XADD", s.events, "MAXLEN", "~", s.events_maxlen, "*", "type", kind,
    "job_id", type(data.job_id) == "string" and data.job_id or "", "data", payload)
end

return _M
