-- Qdrant's REST API as a vector store: the collection is created on first use
-- with the vectors' size and cosine distance, points are upserted with
-- ?wait=true under ids derived from content hashes (a redelivery overwrites).
-- Used by the vectors step; relies on service.lua and md5.lua.

local shield = require "shield"
local settings = require "shield.lightrag.steps.settings"
local service = require "shield.lightrag.steps.service"
local md5 = require "shield.lightrag.steps.md5"

local type, setmetatable, floor, getenv, tostring = type, setmetatable, math.floor, os.getenv, tostring
local format, min = string.format, math.min

local _M = {}
local mt = { __index = _M }

_M.BATCH = 128   -- points per request

local SPEC = {
  store = { { "qdrant" } },
  url = { "string" },
  collection = { "string", "shield_lightrag" },
  api_key_env = { "string", false },
  timeout_seconds = { "number", 30 },
  retries = { "count", 2 },
}

-- new(cfg[, request]) -> store; cfg is the lightrag.vectors table.
function _M.new(cfg, request)
  local s = settings.read(cfg, "lightrag.vectors", SPEC)
  if s.url == nil then error("lightrag.vectors.url: required for store qdrant", 0) end
  if s.collection:find("[^%w_%-]") then
    error("lightrag.vectors.collection: letters, digits, _ and - only", 0)
  end
  request = request or (shield.http and shield.http.request)
  if not request then error("lightrag.vectors: this runtime has no HTTP client (shield.http)", 0) end
  local headers = {}
  if s.api_key_env then
    local key = getenv(s.api_key_env)
    if key and key ~= "" then headers["api-key"] = key end
  end
  return setmetatable({
    settings = s, request = request, headers = headers, timeout_ms = floor(s.timeout_seconds * 1000),
    base = settings.join_url(s.url, "/collections/" .. s.collection),
    ready = nil,     -- the vector size the collection was checked or created for
  }, mt)
end

function _M:call(method, url, body, accept)
  return service.json({
    name = "qdrant", request = self.request, method = method, url = url, headers = self.headers,
    body = body, timeout_ms = self.timeout_ms, retries = self.settings.retries, accept = accept,
  })
end

local function stored_size(info)
  local r = type(info) == "table" and info.result
  local vectors = type(r) == "table" and type(r.config) == "table" and type(r.config.params) == "table"
    and r.config.params.vectors
  return type(vectors) == "table" and vectors.size or nil
end

-- ensure(dim): the collection exists with vectors of size dim (once per worker).
function _M:ensure(dim)
  if self.ready == dim then return end
  local name = self.settings.collection
  local info, status = self:call("GET", self.base, nil, { [404] = true })
  if status == 404 then
    local _, created = self:call("PUT", self.base, { vectors = { size = dim, distance = "Cosine" } },
      { [409] = true })
    if created == 409 then       -- another worker created it first
      info = self:call("GET", self.base)
    else
      info = nil
    end
  end
  local size = info and stored_size(info)
  if info and size ~= dim then
    service.fail(format("qdrant: collection %s holds vectors of size %s, these have %d",
      name, tostring(size), dim), false)
  end
  self.ready = dim
end

-- upsert(items, dim, model) -> count; items: {id=, kind=, ref=, content=, vector=}.
function _M:upsert(items, dim, model)
  if #items == 0 then return 0 end
  self:ensure(dim)
  local url = self.base .. "/points?wait=true"
  for first = 1, #items, _M.BATCH do
    local points = {}
    for i = first, min(#items, first + _M.BATCH - 1) do
      local it = items[i]
      points[#points + 1] = {
        id = md5.uuid(it.id), vector = it.vector,
        payload = { key = it.id, kind = it.kind, ref = it.ref, content = it.content, model = model },
      }
    end
    self:call("PUT", url, { points = points })
  end
  return #items
end

return _M
