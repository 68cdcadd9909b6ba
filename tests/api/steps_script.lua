-- A processing script that reports two steps in its result, as the LightRAG
-- script does, for the per-step metrics.
local shield = require "shield"
local M = {}

function M.process(task, ctx)
  -- One query a chunk: the workers hold PostgreSQL sessions (reconnect metric).
  local rows, err = shield.pg.query("SELECT 1 AS one")
  if not rows then error("postgres: " .. err) end
  return { steps = { { name = "extract", ms = 1.5 }, { name = "embed", ms = 0.5 } } }
end

return M
