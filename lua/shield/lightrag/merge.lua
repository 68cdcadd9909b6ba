-- LightRAG's knowledge-graph merge rules as pure functions: an existing entity
-- or relation row plus new observations gives the row to write. The graph step
-- reads rows, calls these, and writes the result with parameterized upserts.
-- Relies on text.lua (splitting, dedup) and parser.lua's <SEP> convention.

local text = require "shield.lightrag.text"
local prompt = require "shield.lightrag.prompt"
local parser = require "shield.lightrag.parser"

local concat, sort = table.concat, table.sort
local format, gsub = string.format, string.gsub
local split, trim, join_unique = text.split, text.trim, text.join_unique

local _M = {}

_M.SEP = parser.SEP
local SEP = _M.SEP

local function argcheck(cond, fname, msg)
  if not cond then error(format("bad argument to '%s': %s", fname, msg), 3) end
end

-- A list field read back from the database may be an array or a <SEP> string.
local function as_list(v)
  if v == nil or v == "" then return {} end
  if type(v) == "table" then return v end
  return split(v, SEP)
end

local function parts_of(list, value)
  local ps = split(value or "", SEP)
  for i = 1, #ps do list[#list + 1] = trim(ps[i]) end
end

-- Observations from chunks already in the row are skipped: a redelivered
-- chunk changes nothing a second time.
local function fresh(existing, observations, fname)
  argcheck(type(observations) == "table", fname, "observations must be an array")
  local seen = {}
  local sources = existing and as_list(existing.source_ids) or {}
  for i = 1, #sources do seen[sources[i]] = true end
  local new = {}
  for i = 1, #observations do
    local o = observations[i]
    argcheck(type(o) == "table", fname, "observation " .. i .. " is not a table")
    argcheck(type(o.chunk_id) == "string" and o.chunk_id ~= "", fname,
      "observation " .. i .. " has no chunk_id")
    if not seen[o.chunk_id] then new[#new + 1] = o end
  end
  return new, sources
end

local function union_sources(sources, new)
  local list = {}
  for i = 1, #sources do list[#list + 1] = sources[i] end
  for i = 1, #new do list[#list + 1] = new[i].chunk_id end
  local _, unique = join_unique(list, SEP)
  return unique
end

-- The most frequent type; ties keep the stored type, then the first seen.
local function vote(existing, new)
  local counts, order = {}, {}
  local function bump(t, n)
    if counts[t] == nil then
      counts[t] = 0
      order[#order + 1] = t
    end
    counts[t] = counts[t] + n
  end
  if existing then
    local stored = existing.entity_type
    if type(existing.type_counts) == "table" then
      if stored then bump(stored, 0) end
      local keys = {}
      for t in pairs(existing.type_counts) do keys[#keys + 1] = t end
      sort(keys)
      for _, t in ipairs(keys) do bump(t, existing.type_counts[t]) end
    elseif stored then
      bump(stored, 1)     -- no counts kept: the stored type is one vote, as in LightRAG
    end
  end
  for i = 1, #new do bump(new[i].type, 1) end
  local best = order[1]
  for i = 2, #order do
    if counts[order[i]] > counts[best] then best = order[i] end
  end
  return best, counts
end

local function copy_counts(t)
  local c = {}
  if type(t) == "table" then for k, v in pairs(t) do c[k] = v end end
  return c
end

-- entity(existing, observations) -> row, changed
--   existing: nil or {name, entity_type, description, source_ids, type_counts?}
--     (source_ids an array or a <SEP> string; type_counts {type = n})
--   observations: {{name, type, description, chunk_id}, ...} for one name
--   row: {name, entity_type, description (<SEP>-joined, deduplicated),
--     source_ids (array), type_counts}; changed is false when every observation
--     came from a chunk already merged (then row equals existing).
function _M.entity(existing, observations)
  local new, sources = fresh(existing, observations, "entity")
  local name = existing and existing.name or (new[1] and new[1].name)
  argcheck(type(name) == "string" and name ~= "", "entity", "no entity name")
  for i = 1, #new do
    local o = new[i]
    argcheck(o.name == name, "entity",
      format("observation %d is for '%s', not '%s'", i, tostring(o.name), name))
    argcheck(type(o.type) == "string" and type(o.description) == "string", "entity",
      "observation " .. i .. " needs string type and description")
  end
  if existing and #new == 0 then
    return {
      name = name, entity_type = existing.entity_type, description = existing.description or "",
      source_ids = union_sources(sources, new), type_counts = copy_counts(existing.type_counts),
    }, false
  end
  local descs = {}
  if existing then parts_of(descs, existing.description) end
  for i = 1, #new do parts_of(descs, new[i].description) end
  local entity_type, counts = vote(existing, new)
  return {
    name = name,
    entity_type = entity_type,
    description = (join_unique(descs, SEP)),
    source_ids = union_sources(sources, new),
    type_counts = counts,
  }, true
end

-- The unordered pair key of a relation: the two names in byte order.
function _M.relation_key(a, b)
  argcheck(type(a) == "string" and type(b) == "string", "relation_key", "two names expected")
  if a > b then return b, a end
  return a, b
end

local function keyword_set(set, list, value)
  local ks = split((gsub(value or "", "\239\188\140", ",")), ",")
  for i = 1, #ks do
    local k = trim(ks[i])
    if k ~= "" and not set[k] then
      set[k] = true
      list[#list + 1] = k
    end
  end
end

-- relation(existing, observations) -> row, changed
--   existing: nil or {source, target, keywords, description, weight, source_ids}
--   observations: {{source, target, keywords, description, weight, chunk_id}, ...}
--     for one unordered pair (either direction)
--   row: {source, target (byte order), keywords (sorted union, comma-joined),
--     description (<SEP>-joined, deduplicated), weight (sum), source_ids (array)}
function _M.relation(existing, observations)
  local new, sources = fresh(existing, observations, "relation")
  local first = existing or new[1]
  argcheck(first ~= nil, "relation", "no relation to merge")
  local lo, hi = _M.relation_key(first.source, first.target)
  argcheck(lo ~= hi, "relation", "a relation needs two different entities")
  for i = 1, #new do
    local o = new[i]
    local a, b = _M.relation_key(o.source, o.target)
    argcheck(a == lo and b == hi, "relation",
      format("observation %d links '%s' and '%s', not '%s' and '%s'", i, a, b, lo, hi))
    argcheck(type(o.weight) == "number" and o.weight == o.weight, "relation",
      "observation " .. i .. " needs a numeric weight")
  end
  local set, kws, descs = {}, {}, {}
  local weight = existing and tonumber(existing.weight) or 0
  if existing then
    keyword_set(set, kws, existing.keywords)
    parts_of(descs, existing.description)
  end
  for i = 1, #new do
    keyword_set(set, kws, new[i].keywords)
    parts_of(descs, new[i].description)
    weight = weight + new[i].weight
  end
  sort(kws)
  return {
    source = lo, target = hi,
    keywords = concat(kws, ","),
    description = (join_unique(descs, SEP)),
    weight = weight,
    source_ids = union_sources(sources, new),
  }, #new > 0
end

-- observations(result, chunk_id) -> {entities=, relations=, endpoints=}: a parse
-- result tagged with its chunk id. endpoints are stand-in entities (type Other,
-- the first linking relation's description) for relation ends the chunk never
-- listed; LightRAG writes them only when no entity of that name exists yet.
function _M.observations(result, chunk_id)
  argcheck(type(result) == "table", "observations", "parse result expected")
  argcheck(type(chunk_id) == "string" and chunk_id ~= "", "observations", "chunk id expected")
  local out = { entities = {}, relations = {}, endpoints = {} }
  local known = {}
  for i, e in ipairs(result.entities) do
    known[e.name] = true
    out.entities[i] = { name = e.name, type = e.type, description = e.description, chunk_id = chunk_id }
  end
  for i, r in ipairs(result.relations) do
    out.relations[i] = {
      source = r.source, target = r.target, keywords = r.keywords,
      description = r.description, weight = r.weight, chunk_id = chunk_id,
    }
    for _, n in ipairs({ r.source, r.target }) do
      if not known[n] then
        known[n] = true
        out.endpoints[#out.endpoints + 1] = {
          name = n, type = prompt.OTHER_TYPE, description = r.description, chunk_id = chunk_id,
        }
      end
    end
  end
  return out
end

return _M
