-- A processing script that keeps each chunk in flight for metadata.hold_ms
-- milliseconds (default 1000) and succeeds: the memory benchmark measures a
-- worker holding a full pool of chunks, and the HTTP benchmarks park the
-- workers with it so they measure the API alone. Used by bench/scenarios/.
local shield = require "shield"

local tonumber = tonumber

local M = {}

function M.process(task, ctx)
  shield.sleep(tonumber(task.metadata.hold_ms) or 1000)
  return { ok = true }
end

return M
