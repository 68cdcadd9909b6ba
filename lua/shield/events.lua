-- The script's event(kind, fields) hook, applied where events leave the
-- runtime: the supervisor's Server-Sent Events fan-out (runtime/sse.c).
--
-- Why there and not where events are appended: job events (ingestion.*,
-- chunk.*) are appended by the atomic Redis scripts that cause them
-- (lua/shield/redis), and the processing script cannot run inside Redis. So
-- the events stream always holds the default payloads, whoever reads it, and
-- every event a subscriber receives (job, worker, runtime or shield.emit ones)
-- passes through the one hook of the script version the supervisor validated
-- last. event() runs in the supervisor, outside any light thread: it must not
-- yield (no I/O); it returns the payload table, or nil to keep the default.
local shield = require "shield"

local _M = {}

-- _M.hook: the script's event function, or nil (runtime/sse.c reads it to
-- skip shape() when there is none).
local warned    -- kind -> true once a failure of the hook for it was logged

-- Installs the event function of a newly validated script (nil: none).
function _M.set_hook(fn)
  _M.hook = type(fn) == "function" and fn or nil
  warned = {}
end

-- One warning per kind and hook: a broken event() would otherwise log once
-- per event delivered.
local function warn_once(kind, ...)
  if warned[kind] then return end
  warned[kind] = true
  shield.log.warn("event() of the script failed for " .. kind .. ", sending the default payload:", ...)
end

-- The payload text to send for an event of kind whose default payload is data
-- (JSON text), or nil to send data as it is.
function _M.shape(kind, data)
  local hook = _M.hook
  if not hook then return nil end
  local fields = shield.json.decode(data)
  if type(fields) ~= "table" then fields = {} end
  local done, custom = pcall(hook, kind, fields)
  if not done then
    warn_once(kind, custom)
    return nil
  end
  if custom == nil then return nil end
  if type(custom) ~= "table" then
    warn_once(kind, "it returned a " .. type(custom) .. ", expected a table or nil")
    return nil
  end
  local text, err = shield.json.encode(custom)
  if not text then
    warn_once(kind, "its payload cannot be encoded: " .. tostring(err))
    return nil
  end
  return text
end

return _M
