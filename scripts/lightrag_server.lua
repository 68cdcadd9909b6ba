-- A processing script that hands each chunk to a LightRAG server instead of
-- running the steps itself: POST /documents/text {"text", "file_source"},
-- then GET /documents/track_status/<track_id> until every document of the
-- track is processed (the chunk succeeds) or one failed (the chunk fails with
-- the server's error_msg). The track id is kept in Redis per chunk, so a
-- retried chunk resumes waiting instead of inserting the text again.
--
-- Settings (`lightrag.server` in the configuration):
--   url = "http://127.0.0.1:9621" (required), api_key_env = "LIGHTRAG_API_KEY"
--   (sent as X-API-Key), timeout_seconds = 30 (per request), poll_ms = 500
--   (first status poll; doubles up to 5 s), retries = 2 (in place).
local shield = require "shield"
local settings = require "shield.lightrag.steps.settings"
local service = require "shield.lightrag.steps.service"

local type, tostring, floor, min, getenv = type, tostring, math.floor, math.min, os.getenv
local format = string.format

local M = {}
local s, headers

local TRACK_TTL = 7 * 24 * 3600   -- seconds a chunk's track id is remembered
local MAX_POLL_MS = 5000

local function call(method, url, body)
  return service.json({
    name = "lightrag server", request = shield.http and shield.http.request, method = method, url = url,
    headers = headers, body = body, timeout_ms = floor(s.timeout_seconds * 1000), retries = s.retries,
  })
end

function M.init(config)
  local root = settings.read(config, "lightrag", { server = { "table" } })
  s = settings.read(root.server, "lightrag.server", {
    url = { "string" },
    api_key_env = { "string", false },
    timeout_seconds = { "number", 30 },
    poll_ms = { "positive", 500 },
    retries = { "count", 2 },
  })
  if not s.url then error("lightrag.server.url: required", 0) end
  if not shield.http then error("lightrag.server: this runtime has no HTTP client (shield.http)", 0) end
  headers = {}
  local key = s.api_key_env and getenv(s.api_key_env)
  if key and key ~= "" then headers["x-api-key"] = key end
end

local function track_key(task)
  return "shield:lightrag_server:track:" .. task.chunk_id
end

-- Inserts the text; returns the track id.
local function insert(task)
  local source = type(task.metadata) == "table" and task.metadata.source_uri
  local answer = call("POST", settings.join_url(s.url, "/documents/text"), {
    text = task.content, file_source = type(source) == "string" and source or task.chunk_id,
  })
  local status, track = answer.status, answer.track_id
  if (status ~= "success" and status ~= "duplicated") or type(track) ~= "string" or track == "" then
    service.fail(format("lightrag server: insert refused (%s): %s", tostring(status),
      service.excerpt(tostring(answer.message))), false)
  end
  local ok, err = shield.redis.call("SET", track_key(task), track, "EX", TRACK_TTL)
  if not ok then shield.log.warn("lightrag server: cannot remember track " .. track .. ":", err) end
  return track
end

-- Polls the track until it settles; returns the number of documents.
local function wait(task, track)
  local url = settings.join_url(s.url, "/documents/track_status/" .. track)
  local delay = s.poll_ms
  while true do
    local answer = call("GET", url)
    local docs = type(answer.documents) == "table" and answer.documents or {}
    local done = #docs > 0
    for _, d in ipairs(docs) do
      if d.status == "failed" then
        shield.redis.call("DEL", track_key(task))    -- a replay of the chunk inserts again
        service.fail(format("lightrag server: document %s failed: %s", tostring(d.id),
          d.error_msg ~= nil and service.excerpt(tostring(d.error_msg)) or "no error message"), false)
      end
      if d.status ~= "processed" then done = false end
    end
    if done then return #docs end
    if not shield.sleep(delay) then
      service.fail("lightrag server: timeout waiting for track " .. track, true)
    end
    delay = min(delay * 2, MAX_POLL_MS)
  end
end

function M.process(task)
  local t0 = shield.now()
  local track = shield.redis.call("GET", track_key(task))
  local resumed = type(track) == "string"
  if not resumed then track = insert(task) end
  local t1 = shield.now()
  local documents = wait(task, track)
  local t2 = shield.now()
  shield.redis.call("DEL", track_key(task))
  return {
    steps = { { name = "insert", ms = t1 - t0 }, { name = "wait", ms = t2 - t1 } },
    track_id = track, documents = documents, resumed = resumed,
  }
end

function M.retry(task, err, attempt)
  return service.retry(err, attempt)
end

return M
