-- A processing script for the stream tests: counts every run of every chunk in
-- Redis (test:seen, test:attempts:<chunk>), and misbehaves on request through
-- the chunk's metadata: fail_until (fail while attempt < n), always_fail,
-- crash (the worker exits), slow_ms (sleeps first); its result carries the
-- metadata's counts, if any.
local shield = require "shield"

local M = {}
M.VERSION = "v1"

function M.init(config) end

function M.process(task, ctx)
  local meta = task.metadata
  shield.redis.pipeline({
    { "HINCRBY", "test:seen", task.chunk_id, 1 },
    { "RPUSH", "test:attempts:" .. task.chunk_id, string.format("%d", shield.now()) },
    { "HINCRBY", "test:versions", M.VERSION, 1 },
  })
  if meta.slow_ms then
    shield.sleep(meta.slow_ms)
  end
  if meta.crash then
    os.exit(9)
  end
  if meta.always_fail then
    error("the model server refused chunk " .. task.chunk_id)
  end
  if meta.fail_until and task.attempt < meta.fail_until then
    error("transient failure on attempt " .. task.attempt)
  end
  return { version = M.VERSION, counts = meta.counts }
end

function M.retry(task, err, attempt)
  return { retry = true, delay_ms = 300 }
end

return M
