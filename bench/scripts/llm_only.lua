-- A processing script that makes one OpenAI-style chat call per chunk to
-- lightrag.llm.url and nothing else: the slow-service benchmark's measure of
-- the runtime's own concurrency (HTTP client, scheduler, settling), apart
-- from what the LightRAG steps cost. Used by bench/scenarios/slow.sh.
local shield = require "shield"

local M = {}
local url, headers

function M.init(config)
  url = config.llm.url:gsub("/+$", "") .. "/v1/chat/completions"
  headers = { ["content-type"] = "application/json" }
end

function M.process(task, ctx)
  local body = shield.json.encode({ model = "fake", stream = false,
    messages = { { role = "user", content = task.content } } })
  local res, err = shield.http.request({ method = "POST", url = url, headers = headers, body = body,
    timeout_ms = 60000 })
  if not res then
    error("llm: " .. tostring(err))
  end
  if res.status ~= 200 then
    error("llm: status " .. res.status)
  end
  return { ok = true }
end

return M
