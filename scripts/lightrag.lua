-- The default processing script: LightRAG's indexing steps for each chunk.
--
-- STEP ORDER below is the whole plan: reorder, remove or add steps by editing
-- it; the running pool reloads this file and tasks started afterwards use the
-- new order. An entry is a built-in step's name or a function(state, ctx)
-- that may return a table of counts (state: task, content, chunk_key, and what
-- earlier steps left: extraction, graph, vectors).
--   extract  entities and relations: the LLM (with gleaning) or, with no
--            `lightrag.llm`, the offline rule-based extractor
--   graph    merge them into lightrag_entities / lightrag_relations
--   embed    vectors for the chunk and the entities and relations it touched
--   vectors  store them in lightrag_vectors or Qdrant
--
-- Settings (`lightrag` in the configuration; every key optional):
--   llm = { provider = "ollama" | "openai", url = "http://127.0.0.1:11434",
--     model = "qwen2.5:7b", api_key_env = "OPENAI_API_KEY", timeout_seconds = 120,
--     temperature = 0, max_concurrency = 4 (LLM calls in flight across all
--     workers, held in Redis), retries = 2 (in place, for 429/5xx/timeouts) },
--   max_gleaning = 1, entity_types = { "Person", ... }, language = "English",
--   embedding = { provider = "hash" (offline, default) | "ollama" | "openai",
--     url =, model =, api_key_env =, dim =, batch_size = 32, timeout_seconds = 60 },
--   vectors = { store = "postgres" (default) | "qdrant", url =, collection =
--     "shield_lightrag", api_key_env =, timeout_seconds = 30 },
local pipeline = require "shield.lightrag.steps.pipeline"
local steps = require "shield.lightrag.steps"
local service = require "shield.lightrag.steps.service"

-- STEP ORDER
local ORDER = { "extract", "graph", "embed", "vectors" }

local M = {}
local p

function M.init(config)
  steps.resolve(ORDER, pipeline.STEPS)   -- a bad order fails the load, not the chunks
  p = pipeline.new(config)
end

function M.process(task, ctx)
  return pipeline.process(p, ORDER, task, ctx)
end

function M.retry(task, err, attempt)
  return service.retry(err, attempt)
end

return M
