-- A script whose init takes a while, as one that warms a model or a cache
-- would: the supervisor's READY=1 must wait for it in every worker.
local shield = require "shield"
local M = {}

function M.init()
  shield.sleep(1500)
end

function M.process() return {} end

return M
