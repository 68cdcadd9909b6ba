-- The LightRAG pipeline's shared parts for scripts/lightrag.lua: the step
-- table, the backends built from the `lightrag` settings (offline stand-ins
-- where nothing is configured), running the script's step order on one chunk
-- with per-step timings, and the chunk's record in PostgreSQL.

local shield = require "shield"
local steps = require "shield.lightrag.steps"
local settings = require "shield.lightrag.steps.settings"
local service = require "shield.lightrag.steps.service"
local md5 = require "shield.lightrag.steps.md5"
local llm = require "shield.lightrag.steps.llm"
local embedding = require "shield.lightrag.steps.embedding"
local qdrant = require "shield.lightrag.steps.qdrant"

local type, tostring, pcall, error, assert = type, tostring, pcall, error, assert

local _M = {}

-- The built-in steps, by the names a step order uses.
_M.STEPS = {
  extract = require("shield.lightrag.steps.extract").run,
  graph = require("shield.lightrag.steps.graph").run,
  embed = require("shield.lightrag.steps.embed").run,
  vectors = require("shield.lightrag.steps.vectors").run,
}

local SPEC = {
  llm = { "table", false },            -- each section is checked by its backend
  embedding = { "table", false },
  vectors = { "table", false },
  entity_types = { "strings", false },
  language = { "string", false },
  max_gleaning = { "count", 1 },
}

-- new(config[, {request=}]) -> the pipeline (backends and options); raises
-- naming a bad setting. config is the `lightrag` table; request replaces
-- shield.http.request (tests).
function _M.new(config, deps)
  local s = settings.read(config, "lightrag", SPEC)
  local request = deps and deps.request
  local p = {
    max_gleaning = s.max_gleaning,
    extract_opts = { entity_types = s.entity_types, language = s.language },
    embedder = embedding.new(s.embedding, request),
  }
  if s.llm ~= nil then p.llm = llm.new(s.llm, request) end
  local store = s.vectors and s.vectors.store or "postgres"
  if store == "qdrant" then
    p.qdrant = qdrant.new(s.vectors, request)
  elseif store == "postgres" then
    settings.read(s.vectors, "lightrag.vectors", { store = { "string", false } })
  else
    error("lightrag.vectors.store: one of postgres, qdrant expected, got " .. tostring(store), 0)
  end
  return p
end

local RECORD = [[
INSERT INTO lightrag_chunks (id, content, job_id, chunk_id, metadata, report)
VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb)
ON CONFLICT (id) DO UPDATE SET report = excluded.report, updated_at = now()]]

-- Writes the chunk's row: its text and the report of this run.
local function record(state, result)
  local task = state.task
  local metadata = type(task.metadata) == "table" and shield.json.encode(task.metadata) or "{}"
  local report = assert(shield.json.encode(result))
  local ok, err, sqlstate = shield.pg.query(RECORD, state.chunk_key, state.content, tostring(task.job_id),
    tostring(task.chunk_id), metadata, report)
  if not ok then service.fail("record: " .. tostring(err), service.pg_retryable(sqlstate)) end
end

-- process(p, plan, task, ctx) -> result {steps=, total_ms=, counts =
-- {entities=, relations=, vectors=}, chunk=, script_version=}; plan is an
-- order for steps.run. The runtime adds result.counts to the job's counts
-- (GET /jobs/<id>); the whole result is the chunk's report in
-- lightrag_chunks. A failing step's error is raised again with the step's
-- name in front of its message.
function _M.process(p, plan, task, ctx)
  local content = type(task.content) == "string" and task.content or ""
  local state = { task = task, content = content, chunk_key = "chunk-" .. md5.hex(content), pipeline = p }
  local ok, report = pcall(steps.run, plan, _M.STEPS, state, { clock = shield.now, ctx = ctx })
  if not ok then
    local e = report
    if type(e) == "table" and e.step and type(e.message) == "string" then
      e.message = "step " .. e.step .. ": " .. e.message
    end
    error(e, 0)
  end
  local result = {
    steps = report.steps, total_ms = report.total_ms,
    counts = {
      entities = state.extraction and #state.extraction.entities or 0,
      relations = state.extraction and #state.extraction.relations or 0,
      vectors = state.vectors and #state.vectors.items or 0,
    },
    chunk = state.chunk_key,
    script_version = ctx and ctx.script_version,
  }
  record(state, result)
  return result
end

return _M
