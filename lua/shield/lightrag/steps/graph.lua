-- Step "graph": merges the chunk's entities and relations into the knowledge
-- graph in PostgreSQL with LightRAG's rules (merge.lua), in one transaction:
-- advisory locks on every touched key (entities, then relations, each in hash
-- order, so concurrent workers queue instead of losing updates or
-- deadlocking), read the rows, merge in Lua, write back with parameterized
-- upserts. A chunk already in a row's source_ids changes nothing there.
-- Three statements in the transaction (lock, read, write), each doing the
-- entities and the relations: the read is a statement of its own, after the
-- lock, so that its snapshot sees what the previous holders committed.
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

-- $1: entity names, $2: relation keys (JSON arrays); every entity lock, then
-- every relation lock, each in hash order.
local LOCK = ([[
SELECT count(pg_advisory_xact_lock(ns, h)) AS n
  FROM (SELECT DISTINCT %d AS ns, hashtext(k) AS h FROM jsonb_array_elements_text($1::jsonb) AS k
        UNION ALL
        SELECT DISTINCT %d, hashtext(k) FROM jsonb_array_elements_text($2::jsonb) AS k
        ORDER BY ns, h) AS keys]]):format(NS_ENTITY, NS_RELATION)

-- Row filters by key, shared with the vectors step: $1 is a JSON array of
-- names, $2 one of {source=, target=} pairs. `= ANY (ARRAY(...))` lets the
-- planner use the primary key; `IN (SELECT ...)` of the JSON planned as a scan
-- of the whole table, a cost that grew with the graph.
_M.WHERE_NAMES = "name = ANY (ARRAY(SELECT jsonb_array_elements_text($1::jsonb)))"
_M.WHERE_PAIRS = [[source = ANY (ARRAY(SELECT jsonb_array_elements($2::jsonb) ->> 'source'))
   AND (source, target) IN (SELECT r.source, r.target FROM jsonb_to_recordset($2::jsonb) AS r(source text, target text))]]

-- The entity rows (name set) and the relation rows (source set) in one answer.
local SELECT_ROWS = [[
SELECT name, entity_type, description, to_jsonb(source_ids)::text AS source_ids, type_counts::text AS type_counts,
       NULL AS source, NULL AS target, NULL AS keywords, NULL::float8 AS weight
  FROM lightrag_entities WHERE ]] .. _M.WHERE_NAMES .. [[

UNION ALL
SELECT NULL, NULL, description, to_jsonb(source_ids)::text, NULL, source, target, keywords, weight
  FROM lightrag_relations WHERE ]] .. _M.WHERE_PAIRS

-- $1: entity rows, $2: relation rows (JSON arrays of merged rows).
local UPSERT_ROWS = [[
WITH entities AS (
  INSERT INTO lightrag_entities AS e (name, entity_type, description, source_ids, type_counts)
  SELECT r.name, r.entity_type, r.description, ARRAY(SELECT jsonb_array_elements_text(r.source_ids)), r.type_counts
    FROM jsonb_to_recordset($1::jsonb)
      AS r(name text, entity_type text, description text, source_ids jsonb, type_counts jsonb)
  ON CONFLICT (name) DO UPDATE SET entity_type = excluded.entity_type, description = excluded.description,
    source_ids = excluded.source_ids, type_counts = excluded.type_counts, updated_at = now())
INSERT INTO lightrag_relations AS x (source, target, keywords, description, weight, source_ids)
SELECT r.source, r.target, r.keywords, r.description, r.weight, ARRAY(SELECT jsonb_array_elements_text(r.source_ids))
  FROM jsonb_to_recordset($2::jsonb)
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

-- A Lua array as a JSON array ("[]" when empty: cjson writes {} for it).
local function array(v)
  return #v > 0 and assert(json_encode(v)) or "[]"
end

_M.array = array

local function decoded(s, default)
  local v = type(s) == "string" and json_decode(s)
  return type(v) == "table" and v or default
end

-- lock(names, relation_keys): inside a transaction, takes the advisory locks
-- of these entity names and relation keys ("lo<US>hi"): all entities first,
-- then all relations, each in hash order, the one order every holder uses.
function _M.lock(names, relation_keys)
  if #names + #relation_keys > 0 then q(LOCK, array(names), array(relation_keys)) end
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

  local existing, current = {}, {}
  for _, row in ipairs(q(SELECT_ROWS, array(names), array(rel_pairs))) do
    row.source_ids = decoded(row.source_ids, {})
    if row.name then
      row.type_counts = decoded(row.type_counts, {})
      existing[row.name] = row
    else
      current[row.source .. _M.US .. row.target] = row
    end
  end
  local entities, entity_writes = {}, {}
  for _, o in ipairs(obs.entities) do
    local row, changed = merge.entity(existing[o.name], { o })
    entities[#entities + 1] = row
    if changed then entity_writes[#entity_writes + 1] = row end
  end
  -- stand-ins for relation ends the chunk did not list: only where no entity exists
  for _, o in ipairs(obs.endpoints) do
    if not existing[o.name] then
      local row = merge.entity(nil, { o })
      entities[#entities + 1] = row
      entity_writes[#entity_writes + 1] = row
    end
  end
  local relations, relation_writes = {}, {}
  for _, o in ipairs(obs.relations) do
    local lo, hi = merge.relation_key(o.source, o.target)
    local row, changed = merge.relation(current[lo .. _M.US .. hi], { o })
    relations[#relations + 1] = row
    if changed then relation_writes[#relation_writes + 1] = row end
  end
  local written = #entity_writes + #relation_writes
  if written > 0 then q(UPSERT_ROWS, array(entity_writes), array(relation_writes)) end
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
