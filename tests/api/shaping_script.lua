-- A processing script with an event() hook, for shaping_test.py: it tags the
-- payloads it shapes with `pipeline` (the tag is read from this file's
-- folder, so the test edits it to check reloads), keeps progress events'
-- defaults (nil), and raises for chunk.dead. A chunk whose text is "die"
-- fails for good.
local shield = require "shield"
local M = {}

local TAG = "v1"

function M.process(task)
  if task.content == "die" then shield.fail("told to die", { retryable = false }) end
  return {}
end

function M.event(kind, fields)
  if kind == "ingestion.progress" then return nil end
  if kind == "chunk.dead" then error("no payload for dead chunks") end
  fields.pipeline = TAG
  fields.shaped_kind = kind
  return fields
end

return M
