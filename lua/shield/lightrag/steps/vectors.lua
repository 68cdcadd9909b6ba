-- Step "vectors": stores state.vectors in the configured vector store: the
-- lightrag_vectors table (float4 arrays with the model name and dimension)
-- or Qdrant (qdrant.lua). Upserts by id, so a redelivery overwrites.
-- Concurrent chunks merge the same entity one after another but embed it at
-- the same time, so an entity's vector could end up older than its merged
-- description: under the graph step's locks, a vector whose text no longer
-- matches its entity or relation row is skipped (the chunk that wrote the
-- newer description stores the vector of it).

local shield = require "shield"
local service = require "shield.lightrag.steps.service"
local graph = require "shield.lightrag.steps.graph"
local embed = require "shield.lightrag.steps.embed"

local assert, ipairs, min, format, unpack = assert, ipairs, math.min, string.format, unpack
local encode, query, real_array = shield.json.encode, graph.query, shield.pg.real_array

local _M = {}

_M.BATCH = 100    -- rows per INSERT

-- The embeddings of a batch travel as one real[] in binary (pg.real_array),
-- row i's vector being its slice i: no number formatting in the worker and
-- no float4in per number in PostgreSQL. The rest of the rows go as JSON.
local UPSERT = [[
INSERT INTO lightrag_vectors (id, kind, ref, content, model, dim, embedding)
SELECT r.id, r.kind, r.ref, r.content, $2, $3::int, ($4::real[])[(r.i - 1) * $3::int + 1 : r.i * $3::int]
  FROM jsonb_to_recordset($1::jsonb) AS r(id text, kind text, ref text, content text, i int)
ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, ref = excluded.ref, content = excluded.content,
  model = excluded.model, dim = excluded.dim, embedding = excluded.embedding, updated_at = now()]]

-- The texts of the entity rows (name set) and relation rows, in one answer.
local TEXTS = [[
SELECT name, NULL AS source, NULL AS target, NULL AS keywords, description
  FROM lightrag_entities WHERE ]] .. graph.WHERE_NAMES .. [[

UNION ALL
SELECT NULL, source, target, keywords, description FROM lightrag_relations WHERE ]] .. graph.WHERE_PAIRS

-- The items still current: entities and relations whose row (if any) has the
-- text that was embedded. Runs under the locks of their keys.
local function current(items)
  local names, keys, pairs_ = {}, {}, {}
  for _, it in ipairs(items) do
    if it.kind == "entity" then
      names[#names + 1] = it.ref
    elseif it.kind == "relation" then
      keys[#keys + 1] = it.ref
      local lo, hi = it.ref:match("^(.-)" .. graph.US .. "(.*)$")
      pairs_[#pairs_ + 1] = { source = lo, target = hi }
    end
  end
  graph.lock(names, keys)
  local now = {}
  if #names + #pairs_ > 0 then
    for _, r in ipairs(query(TEXTS, graph.array(names), graph.array(pairs_))) do
      if r.name then
        now[r.name] = embed.entity_text(r.name, r.description)
      else
        now[r.source .. graph.US .. r.target] = embed.relation_text(r.keywords, r.source, r.target, r.description)
      end
    end
  end
  local keep = {}
  for _, it in ipairs(items) do
    local text = it.kind ~= "chunk" and now[it.ref]
    if not text or text == it.content then keep[#keep + 1] = it end
  end
  return keep
end

local function to_postgres(items, v)
  for first = 1, #items, _M.BATCH do
    local rows, vectors = {}, {}
    for i = first, min(#items, first + _M.BATCH - 1) do
      local it = items[i]
      if #it.vector ~= v.dim then
        service.fail(format("vectors: %s has %d numbers, the others %d", it.id, #it.vector, v.dim), false)
      end
      rows[#rows + 1] = { id = it.id, kind = it.kind, ref = it.ref, content = it.content, i = #rows + 1 }
      vectors[#vectors + 1] = it.vector
    end
    query(UPSERT, assert(encode(rows)), v.model, v.dim, real_array(unpack(vectors)))
  end
end

-- run(state) -> counts. Uses state.vectors and state.pipeline.qdrant.
function _M.run(state)
  local v = state.vectors
  if not v then
    service.fail("vectors: nothing embedded: the step order must run embed before vectors", false)
  end
  if #v.items == 0 then return { stored = 0, stale = 0 } end
  local q = state.pipeline.qdrant
  local stored = graph.transaction("vectors", function()
    local keep = current(v.items)
    if q then q:upsert(keep, v.dim, v.model) else to_postgres(keep, v) end
    return #keep
  end)
  return { stored = stored, stale = #v.items - stored }
end

return _M
