-- Step "embed": vectors for the chunk text and for each entity and relation
-- the chunk touched, embedded as LightRAG does ("name\ndescription"; keywords,
-- both ends and the description). Descriptions are the merged ones from the
-- graph step, or the extracted ones when graph has not run before this step.
-- Ids are LightRAG's: chunk-/ent-/rel- and an md5 of the content key, so a
-- redelivered chunk overwrites its vectors. Sets state.vectors.

local md5 = require "shield.lightrag.steps.md5"
local merge = require "shield.lightrag.merge"

local ipairs = ipairs

local _M = {}

_M.US = "\31"

-- The embedded text of an entity and of a relation (lo, hi in byte order).
function _M.entity_text(name, description)
  return name .. "\n" .. description
end

function _M.relation_text(keywords, lo, hi, description)
  return keywords .. "\t" .. lo .. "\n" .. hi .. "\n" .. description
end

-- The texts to embed: {id=, kind=, ref=, content=}.
local function items_of(state)
  local items = {
    { id = state.chunk_key, kind = "chunk", ref = state.chunk_key, content = state.content },
  }
  local source = state.graph or state.extraction or { entities = {}, relations = {} }
  for _, e in ipairs(source.entities) do
    items[#items + 1] = { id = "ent-" .. md5.hex(e.name), kind = "entity", ref = e.name,
      content = _M.entity_text(e.name, e.description) }
  end
  for _, r in ipairs(source.relations) do
    local lo, hi = merge.relation_key(r.source, r.target)
    local key = lo .. _M.US .. hi
    items[#items + 1] = { id = "rel-" .. md5.hex(key), kind = "relation", ref = key,
      content = _M.relation_text(r.keywords, lo, hi, r.description) }
  end
  return items
end

-- run(state) -> counts. Uses state.pipeline.embedder.
function _M.run(state)
  local embedder = state.pipeline.embedder
  local items = items_of(state)
  local texts = {}
  for i, it in ipairs(items) do texts[i] = it.content end
  local vectors = embedder:embed(texts)
  local kept, dim = {}, nil
  for i, it in ipairs(items) do
    -- the offline embedder has no vector for a text without words
    if vectors[i] then
      it.vector = vectors[i]
      dim = #it.vector
      kept[#kept + 1] = it
    end
  end
  state.vectors = { model = embedder.model, dim = dim, items = kept }
  return { vectors = #kept }
end

return _M
