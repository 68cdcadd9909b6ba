-- The job system's atomic Redis scripts (lua/shield/redis/*.lua), each sent as
-- common.lua followed by the script, loaded once per state and called by sha
-- (shield.redis.script reloads them after NOSCRIPT). Used by the supervisor's
-- maintenance loops and the API handlers.
local shield = require "shield"

local _M = { DIRTY_KEY = "shield:jobs:dirty" }
local cache = {}

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

function _M.source(name)
  local dir = shield.lua_dir .. "/shield/redis/"
  return read(dir .. "common.lua") .. "\n" .. read(dir .. name .. ".lua")
end

-- The script object of lua/shield/redis/<name>.lua.
function _M.get(name)
  local s = cache[name]
  if not s then
    s = shield.redis.script(_M.source(name))
    cache[name] = s
  end
  return s
end

-- Calls a script with common.lua's convention: the five fixed keys, then now,
-- events maxlen and status ttl, then args. Returns the reply or nil, err.
function _M.call(name, args)
  local cfg = shield.config()
  local s = cfg.streams
  local keys = { s.ingestion, s.retry, s.dead_letter, s.events, _M.DIRTY_KEY }
  local argv = { string.format("%d", shield.now()), s.events_maxlen, cfg.jobs.status_ttl }
  for i = 1, #args do
    argv[i + 3] = args[i]
  end
  return _M.get(name):call(keys, argv)
end

return _M
