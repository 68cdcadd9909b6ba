-- A processing script that reports two steps in its result, as the LightRAG
-- script does, for the per-step metrics.
local M = {}

function M.process(task, ctx)
  return { steps = { { name = "extract", ms = 1.5 }, { name = "embed", ms = 0.5 } } }
end

return M
