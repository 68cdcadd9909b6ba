-- The extraction LLM: chat completions from Ollama (/api/chat) or any
-- OpenAI-compatible server (/v1/chat/completions), behind a concurrency cap
-- shared by all workers (semaphore.lua). Used by the extract step; relies on
-- service.lua for HTTP, error classification and Retry-After.

local shield = require "shield"
local settings = require "shield.lightrag.steps.settings"
local service = require "shield.lightrag.steps.service"
local semaphore = require "shield.lightrag.steps.semaphore"

local type, setmetatable, floor, getenv = type, setmetatable, math.floor, os.getenv

local _M = {}
local mt = { __index = _M }

local SPEC = {
  provider = { { "ollama", "openai" }, "ollama" },
  url = { "string" },
  model = { "string" },
  api_key_env = { "string", false },       -- the environment variable holding the API key
  timeout_seconds = { "number", 120 },
  temperature = { "fraction", 0 },
  max_concurrency = { "positive", 4 },     -- LLM calls in flight across all workers
  retries = { "count", 2 },                -- in-place retries of 429, 5xx and timeouts
  lease_key = { "string", "shield:lightrag:llm_leases" },
}

-- new(cfg[, request]) -> client; cfg is the lightrag.llm table. request
-- defaults to shield.http.request. Raises naming the bad key.
function _M.new(cfg, request)
  local s = settings.read(cfg, "lightrag.llm", SPEC)
  for _, k in ipairs({ "url", "model" }) do
    if s[k] == nil then error("lightrag.llm." .. k .. ": required", 0) end
  end
  request = request or (shield.http and shield.http.request)
  if not request then error("lightrag.llm: this runtime has no HTTP client (shield.http)", 0) end
  local headers = {}
  if s.api_key_env then
    local key = getenv(s.api_key_env)
    if key and key ~= "" then headers.authorization = "Bearer " .. key end
  end
  local timeout_ms = floor(s.timeout_seconds * 1000)
  local sem = semaphore.new({ key = s.lease_key, limit = s.max_concurrency,
    lease_ms = timeout_ms + 5000, name = "llm" })
  local self = setmetatable({ settings = s, request = request, headers = headers,
    timeout_ms = timeout_ms, model = s.model }, mt)
  self.gate = {
    enter = function() return sem:acquire() end,
    leave = function(lease) sem:release(lease) end,
  }
  if s.provider == "ollama" then
    self.url = settings.join_url(s.url, "/api/chat")
  else
    -- an OpenAI base URL usually ends in /v1 already
    local base = s.url:gsub("/+$", "")
    self.url = base:match("/v1$") and base .. "/chat/completions" or base .. "/v1/chat/completions"
  end
  return self
end

-- chat(messages) -> the assistant's answer text; raises a failure.
function _M:chat(messages)
  local s = self.settings
  local body
  if s.provider == "ollama" then
    body = { model = s.model, messages = messages, stream = false, options = { temperature = s.temperature } }
  else
    body = { model = s.model, messages = messages, temperature = s.temperature, stream = false }
  end
  local answer = service.json({
    name = "llm", request = self.request, method = "POST", url = self.url, headers = self.headers,
    body = body, timeout_ms = self.timeout_ms, retries = s.retries, gate = self.gate,
  })
  local content
  if s.provider == "ollama" then
    content = type(answer.message) == "table" and answer.message.content
  else
    local choice = type(answer.choices) == "table" and answer.choices[1]
    content = type(choice) == "table" and type(choice.message) == "table" and choice.message.content
  end
  if type(content) ~= "string" then
    local detail = shield.json.encode(answer) or "?"
    service.fail("llm: bad answer from " .. self.url .. ": no message content: " .. service.excerpt(detail), false)
  end
  return content
end

return _M
