-- A script without retry(): the runtime's default policy decides. Chunks with
-- metadata {"final":true} fail with shield.fail{retryable=false}; the others
-- raise a plain error every time. Each run records what task and ctx held.
local shield = require "shield"
local M = {}

function M.process(task, ctx)
  shield.redis.call("RPUSH", "test:attempts:" .. task.chunk_id, task.attempt)
  shield.redis.call("HSET", "test:seen:" .. task.chunk_id, "message_id", task.message_id, "slot", ctx.slot,
    "script_version", ctx.script_version, "lightrag", type(ctx.lightrag))
  if task.metadata.final then shield.fail("bad input in " .. task.chunk_id, { retryable = false }) end
  error("flaky service for " .. task.chunk_id)
end

return M
