-- Step "graph": merges the chunk's entities and relations into the knowledge
-- graph in PostgreSQL with LightRAG's rules (merge.lua), in one transaction:
-- advisory locks on every touched key (entities, then relations, each in hash
-- order, so concurrent workers queue instead of losing updates or
-- deadlocking), read the rows, merge in Lua, write back with parameterized
-- upserts. A chunk already in a row's source_ids changes nothing there.
-- Sets state.graph = {entities = rows, relations = rows} (the merged rows).
-- The vectors step takes the same locks (lock(), transaction()).

local shield = require "shield"
local merge = require "shield.lightrag.merge"
local service = require "shield.lightrag.steps.service"

local type, tostring, ipairs, error, pcall, assert, unpack = type, tostring, ipairs, error, pcall, assert, unpack
local json_encode, json_decode = shield.json.encode, shield.json.decode

local _M = {}

_M.ATTEMPTS = 3           -- a deadlock or serialization failure is retried in place
_M.US = "\31"             -- separates the two names of a relation key

local RETRY_STATES = { ["40P01"] = true, ["40001"] = true }   -- deadlock, serialization

-- Advisory lock namespaces (the two-int form; the one-bigint keys used by the
-- migrations live in a separate space).
local NS_ENTITY, NS_RELATION = 71, 72

local LOCK = [[
SELECT count(pg_advisory_xact_lock($1::int, h)) AS n
  FROM (SELECT DISTINCT hashtext(k) AS h FROM jsonb_array_elements_text($2::jsonb) AS k ORDER BY h) AS keys]]

-- Row filters by key, shared with the vectors step: $1 is a JSON array of
-- names, or of {source=, target=} pairs. `= ANY (ARRAY(...))` lets the planner
-- use the primary key; `IN (SELECT ...)` of the JSON planned as a scan of the
-- whole table, a cost that grew with the graph.
_M.WHERE_NAMES = "name = ANY (ARRAY(SELECT jsonb_array_elements_text($1::jsonb)))"
_M.WHERE_PAIRS = [[source = ANY (ARRAY(SELECT jsonb_array_elements($1::jsonb) ->> 'source'))
   AND (source, target) IN (SELECT r.source, r.target FROM jsonb_to_recordset($1::jsonb) AS r(source text, target text))]]

local SELECT_ENTITIES = [[
SELECT name, entity_type, description, to_jsonb(source_ids)::text AS source_ids, type_counts::text AS type_counts
  FROM lightrag_entities WHERE ]] .. _M.WHERE_NAMES

local UPSERT_ENTITIES = [[
INSERT INTO lightrag_entities AS e (name, entity_type, description, source_ids, type_counts)
SELECT r.name, r.entity_type, r.description, ARRAY(SELECT jsonb_array_elements_text(r.source_ids)), r.type_counts
  FROM jsonb_to_recordset($1::jsonb)
    AS r(name text, entity_type text, description text, source_ids jsonb, type_counts jsonb)
ON CONFLICT (name) DO UPDATE SET entity_type = excluded.entity_type, description = excluded.description,
  source_ids = excluded.source_ids, type_counts = excluded.type_counts, updated_at = now()]]

local SELECT_RELATIONS = [[
SELECT source, target, keywords, description, weight, to_jsonb(source_ids)::text AS source_ids
  FROM lightrag_relations WHERE ]] .. _M.WHERE_PAIRS

local UPSERT_RELATIONS = [[
INSERT INTO lightrag_relations AS x (source, target, keywords, description, weight, source_ids)
SELECT r.source, r.target, r.keywords, r.description, r.weight, ARRAY(SELECT jsonb_array_elements_text(r.source_ids))
  FROM jsonb_to_recordset($1::jsonb)
    AS r(source text, target text, keywords text, description text, weight float8, source_ids jsonb)
ON CONFLICT (source, target) DO UPDATE SET keywords = excluded.keywords, description = excluded.description,
  weight = excluded.weight, source_ids = excluded.source_ids, updated_at = now()]]

-- query(sql, ...) -> rows; raises {pg=true, message=, sqlstate=} on failure,
-- keeping the SQLSTATE for transaction()'s retry decision.
local function q(sql, ...)
  local rows, err, state = shield.pg.query(sql, ...)
  if not rows then error({ pg = true, message = tostring(err), sqlstate = state }, 0) end
  return rows
end

_M.query = q

local function encode(v)
  return (assert(json_encode(v)))
end

local function decoded(s, default)
  local v = type(s) == "string" and json_decode(s)
  return type(v) == "table" and v or default
end

-- lock(names, relation_keys): inside a transaction, takes the advisory locks
-- of these entity names and relation keys ("lo<US>hi"): all entities first,
-- then all relations, each in hash order, the one order every holder uses.
function _M.lock(names, relation_keys)
  if #names > 0 then q(LOCK, NS_ENTITY, encode(names)) end
  if #relation_keys > 0 then q(LOCK, NS_RELATION, encode(relation_keys)) end
end

-- transaction(what, fn) -> fn's results: fn runs in a transaction, again
-- after a deadlock or serialization failure; a PostgreSQL error becomes a
-- failure "what: ...", retryable as service.pg_retryable says.
function _M.transaction(what, fn)
  for i = 1, _M.ATTEMPTS do
    local res = { pcall(shield.pg.transaction, fn) }
    local err = res[2]
    if res[1] and res[2] ~= nil then return unpack(res, 2, table.maxn(res)) end
    if res[1] then err = { pg = true, message = tostring(res[3]) } end     -- BEGIN or COMMIT failed
    if type(err) ~= "table" or not err.pg then error(err, 0) end
    if not (RETRY_STATES[err.sqlstate] and i < _M.ATTEMPTS) then
      service.fail(what .. ": " .. err.message, service.pg_retryable(err.sqlstate))
    end
  end
end

-- The merge (in a transaction); returns the merged entity and relation rows
-- and how many rows were written.
local function merge_tx(obs)
  local names, seen = {}, {}
  local function add_name(n)
    if not seen[n] then seen[n] = true; names[#names + 1] = n end
  end
  for _, e in ipairs(obs.entities) do add_name(e.name) end
  for _, e in ipairs(obs.endpoints) do add_name(e.name) end
  local rel_keys, rel_pairs = {}, {}
  for _, r in ipairs(obs.relations) do
    local lo, hi = merge.relation_key(r.source, r.target)
    rel_keys[#rel_keys + 1] = lo .. _M.US .. hi
    rel_pairs[#rel_pairs + 1] = { source = lo, target = hi }
  end
  _M.lock(names, rel_keys)

  local existing = {}
  if #names > 0 then
    for _, row in ipairs(q(SELECT_ENTITIES, encode(names))) do
      row.source_ids = decoded(row.source_ids, {})
      row.type_counts = decoded(row.type_counts, {})
      existing[row.name] = row
    end
  end
  local entities, writes = {}, {}
  for _, o in ipairs(obs.entities) do
    local row, changed = merge.entity(existing[o.name], { o })
    entities[#entities + 1] = row
    if changed then writes[#writes + 1] = row end
  end
  -- stand-ins for relation ends the chunk did not list: only where no entity exists
  for _, o in ipairs(obs.endpoints) do
    if not existing[o.name] then
      local row = merge.entity(nil, { o })
      entities[#entities + 1] = row
      writes[#writes + 1] = row
    end
  end
  if #writes > 0 then q(UPSERT_ENTITIES, encode(writes)) end
  local written = #writes

  local relations = {}
  if #rel_pairs > 0 then
    local current = {}
    for _, row in ipairs(q(SELECT_RELATIONS, encode(rel_pairs))) do
      row.source_ids = decoded(row.source_ids, {})
      current[row.source .. _M.US .. row.target] = row
    end
    writes = {}
    for _, o in ipairs(obs.relations) do
      local lo, hi = merge.relation_key(o.source, o.target)
      local row, changed = merge.relation(current[lo .. _M.US .. hi], { o })
      relations[#relations + 1] = row
      if changed then writes[#writes + 1] = row end
    end
    if #writes > 0 then q(UPSERT_RELATIONS, encode(writes)) end
    written = written + #writes
  end
  return entities, relations, written
end

-- run(state) -> counts. Uses state.extraction and state.chunk_key.
function _M.run(state)
  if not state.extraction then
    service.fail("graph: nothing extracted: the step order must run extract before graph", false)
  end
  local obs = merge.observations(state.extraction, state.chunk_key)
  if #obs.entities + #obs.relations == 0 then
    state.graph = { entities = {}, relations = {} }
    return { entities = 0, relations = 0, written = 0 }
  end
  local entities, relations, written = _M.transaction("graph", function()
    return merge_tx(obs)
  end)
  state.graph = { entities = entities, relations = relations }
  return { entities = #entities, relations = #relations, written = written }
end

return _M
