-- A processing script that does nothing: for tests and benchmarks.
local M = {}

function M.process(task, ctx)
  return { ok = true }
end

return M
