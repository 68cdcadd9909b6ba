-- Text embeddings, batched: Ollama (/api/embed), any OpenAI-compatible server
-- (/v1/embeddings), or the offline feature-hashing embedder (embed_hash.lua).
-- Used by the embed step; relies on service.lua for HTTP and errors.

local shield = require "shield"
local settings = require "shield.lightrag.steps.settings"
local service = require "shield.lightrag.steps.service"
local embed_hash = require "shield.lightrag.embed_hash"

local type, setmetatable, floor, getenv, tostring, huge = type, setmetatable, math.floor, os.getenv, tostring, math.huge
local format = string.format

local _M = {}
local mt = { __index = _M }

local SPEC = {
  provider = { { "hash", "ollama", "openai" }, "hash" },
  url = { "string", false },
  model = { "string", false },
  api_key_env = { "string", false },
  dim = { "positive", false },             -- hash: the size (default 256); else the size expected
  batch_size = { "positive", 32 },
  timeout_seconds = { "number", 60 },
  retries = { "count", 2 },
}

-- new(cfg[, request]) -> embedder with .model (the name stored with vectors)
-- and :embed(texts); cfg is the lightrag.embedding table (nil: offline).
function _M.new(cfg, request)
  local s = settings.read(cfg, "lightrag.embedding", SPEC)
  local self = setmetatable({ settings = s }, mt)
  if s.provider == "hash" then
    s.dim = s.dim or embed_hash.DEFAULT_DIM
    self.model = "hash-" .. s.dim
    return self
  end
  for _, k in ipairs({ "url", "model" }) do
    if s[k] == nil then error("lightrag.embedding." .. k .. ": required for provider " .. s.provider, 0) end
  end
  self.request = request or (shield.http and shield.http.request)
  if not self.request then error("lightrag.embedding: this runtime has no HTTP client (shield.http)", 0) end
  self.headers = {}
  if s.api_key_env then
    local key = getenv(s.api_key_env)
    if key and key ~= "" then self.headers.authorization = "Bearer " .. key end
  end
  self.model = s.model
  self.timeout_ms = floor(s.timeout_seconds * 1000)
  if s.provider == "ollama" then
    self.url = settings.join_url(s.url, "/api/embed")
  else
    local base = s.url:gsub("/+$", "")
    self.url = base:match("/v1$") and base .. "/embeddings" or base .. "/v1/embeddings"
  end
  return self
end

local function bad(self, msg)
  service.fail(format("embedding: bad answer from %s: %s", self.url, msg), false)
end

-- A vector is a non-empty array of finite numbers (the vectors step writes
-- them as the text of a real[]).
local function finite_numbers(v)
  if type(v) ~= "table" or #v == 0 then return false end
  for j = 1, #v do
    local x = v[j]
    if type(x) ~= "number" or x ~= x or x == huge or x == -huge then return false end
  end
  return true
end

-- One request for a batch; returns its vectors in input order.
function _M:remote(batch)
  local s = self.settings
  local answer = service.json({
    name = "embedding", request = self.request, method = "POST", url = self.url, headers = self.headers,
    body = { model = s.model, input = batch }, timeout_ms = self.timeout_ms, retries = s.retries,
  })
  local vectors = {}
  if s.provider == "ollama" then
    if type(answer.embeddings) ~= "table" then bad(self, "no embeddings") end
    vectors = answer.embeddings
  else
    if type(answer.data) ~= "table" then bad(self, "no data") end
    for i, item in ipairs(answer.data) do
      local index = type(item) == "table" and (item.index or (i - 1))
      if type(index) ~= "number" or type(item.embedding) ~= "table" then bad(self, "malformed data item " .. i) end
      vectors[index + 1] = item.embedding
    end
  end
  if #vectors ~= #batch then
    bad(self, format("%d vectors for %d inputs", #vectors, #batch))
  end
  return vectors
end

-- embed(texts) -> vectors (arrays of numbers, one per text, all of one size);
-- raises a failure. The hash embedder gives nil for a text without words.
function _M:embed(texts)
  local s, out = self.settings, {}
  if s.provider == "hash" then
    for i = 1, #texts do out[i] = embed_hash.embed(texts[i], { dim = s.dim }) or false end
    return out
  end
  for first = 1, #texts, s.batch_size do
    local batch = {}
    for i = first, math.min(#texts, first + s.batch_size - 1) do batch[#batch + 1] = texts[i] end
    local vectors = self:remote(batch)
    for i = 1, #vectors do
      local v = vectors[i]
      if not finite_numbers(v) then bad(self, "vector " .. i .. " is not numbers") end
      local want = s.dim or self.dim
      if want and #v ~= want then
        service.fail(format("embedding: %s gave a vector of size %d, expected %d", tostring(s.model), #v, want), false)
      end
      self.dim = #v
      out[first + i - 1] = v
    end
  end
  return out
end

return _M
