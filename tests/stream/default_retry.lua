-- A script without retry(): the runtime's default policy decides. Chunks with
-- metadata {"final":true} fail with shield.fail{retryable=false}; the others
-- raise a plain error every time.
local shield = require "shield"
local M = {}

function M.process(task)
  shield.redis.call("RPUSH", "test:attempts:" .. task.chunk_id, task.attempt)
  if task.metadata.final then shield.fail("bad input in " .. task.chunk_id, { retryable = false }) end
  error("flaky service for " .. task.chunk_id)
end

return M
