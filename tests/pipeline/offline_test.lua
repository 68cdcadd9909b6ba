-- The default script on its offline stand-ins (no LLM, hash embeddings,
-- PostgreSQL vectors) against the harness' PostgreSQL: prose written for the
-- test yields the expected entities, relations and vectors; a redelivered or
-- resubmitted chunk leaves the graph as it was; concurrent chunks merging the
-- same entities lose no update; a PostgreSQL outage is a retryable failure.
-- Run with `shield-runtime run` under the harness.
package.path = os.getenv("SHIELD_SOURCE_DIR") .. "/tests/lib/?.lua;" .. package.path
local shield = require "shield"
local t = require "tap"
local migrate = require "shield.supervisor.migrate"
local pipeline = require "shield.lightrag.steps.pipeline"
local md5 = require "shield.lightrag.steps.md5"
local embed_hash = require "shield.lightrag.embed_hash"

local src = os.getenv("SHIELD_SOURCE_DIR")
local q = shield.pg.query

assert(migrate.apply(src .. "/config/migrations"))
local script = dofile(src .. "/scripts/lightrag.lua")
script.init({})

local PROSE = {
  [[Grace Hopper joined the Eckert-Mauchly Computer Corporation in Philadelphia in 1949. At the company she led the team that built the first compiler.]],
  [[In 1952 Grace Hopper presented her compiler at a conference at the University of Pittsburgh. Howard Aiken doubted that computers could write programs.]],
  [[Later Grace Hopper returned to the United States Navy, where she served until 1986. The Navy named the destroyer USS Hopper after her.]],
}

local function task(job, i, content)
  return { job_id = job, chunk_id = job .. ":" .. i, content = content, metadata = { source_uri = "hopper.txt" },
    attempt = 1 }
end

local function one(sql, ...)
  local rows, err = q(sql, ...)
  assert(rows, err)
  return rows[1]
end

-- A digest of the graph and vector tables without timestamps.
local function snapshot()
  return one([[SELECT
    (SELECT md5(string_agg(name || '|' || entity_type || '|' || description || '|' || source_ids::text
       || '|' || type_counts::text, E'\n' ORDER BY name)) FROM lightrag_entities) AS e,
    (SELECT md5(string_agg(source || '|' || target || '|' || keywords || '|' || description || '|'
       || weight::text || '|' || source_ids::text, E'\n' ORDER BY source, target)) FROM lightrag_relations) AS r,
    (SELECT md5(string_agg(id || '|' || content || '|' || model || '|' || embedding::text, E'\n' ORDER BY id))
       FROM lightrag_vectors) AS v,
    (SELECT count(*) FROM lightrag_entities) AS ne, (SELECT count(*) FROM lightrag_relations) AS nr,
    (SELECT count(*) FROM lightrag_vectors) AS nv]])
end

-- One job of three paragraphs
local results = {}
for i, text in ipairs(PROSE) do
  results[i] = script.process(task("job-a", i, text), { script_version = "v1" })
end
t.eq(results[1].steps[1].name .. "," .. results[1].steps[2].name .. "," .. results[1].steps[3].name .. ","
  .. results[1].steps[4].name, "extract,graph,embed,vectors", "result: the steps in the script's order")
t.ok(type(results[1].steps[1].ms) == "number", "result: each step is timed")
t.eq(results[1].steps[1].counts.entities, results[1].counts.entities, "result: the extract step's counts")
t.eq(results[1].steps[3].counts.vectors, results[1].counts.vectors, "result: the embed step's counts")
local names = {}
for name in pairs(results[1].counts) do names[#names + 1] = name end
table.sort(names)
t.eq(table.concat(names, ","), "entities,relations,vectors", "result: the counts the job tracker sums")

local function entity(name)
  return one("SELECT entity_type, description, cardinality(source_ids) AS n FROM lightrag_entities WHERE name = $1", name)
end
local expected = {
  { "Grace Hopper", "Person" }, { "Eckert-Mauchly Computer Corporation", "Organization" },
  { "Philadelphia", "Location" }, { "University of Pittsburgh", "Organization" },
  { "Howard Aiken", "Person" }, { "United States Navy", "Organization" },
}
for _, e in ipairs(expected) do
  local row = entity(e[1])
  t.eq(row and row.entity_type, e[2], "entity " .. e[1] .. " is a " .. e[2])
end
local hopper = entity("Grace Hopper")
t.eq(hopper and hopper.n, 3, "Grace Hopper comes from the three chunks")
local parts = 0
for _ in (hopper.description .. "<SEP>"):gmatch("(.-)<SEP>") do parts = parts + 1 end
t.eq(parts, 3, "her three descriptions are joined with <SEP>")

local rel = one([[SELECT weight, keywords, cardinality(source_ids) AS n FROM lightrag_relations
  WHERE source = 'Eckert-Mauchly Computer Corporation' AND target = 'Grace Hopper']])
t.eq(rel and rel.weight, 1, "relation: Grace Hopper and the corporation, weight 1")
t.eq(rel and rel.keywords, "co-occurrence", "relation: the offline keywords")
local rel2 = one([[SELECT count(*) AS n FROM lightrag_relations
  WHERE source = 'Grace Hopper' AND target = 'University of Pittsburgh']])
t.eq(rel2.n, 1, "relation: Grace Hopper and the University of Pittsburgh")
local sorted = one([[SELECT count(*) AS n FROM lightrag_relations WHERE NOT (source < target COLLATE "C")]])
t.eq(sorted.n, 0, "relations are keyed by the pair in byte order")

local want_vectors = 0
for _, r in ipairs(results) do want_vectors = want_vectors + 1 + r.counts.entities + r.counts.relations end
local vec = one([[SELECT count(*) AS n, count(DISTINCT id) AS ids, min(dim) AS lo, max(dim) AS hi,
  min(model) AS model, bool_and(cardinality(embedding) = 256) AS full FROM lightrag_vectors]])
local distinct = one([[SELECT
  (SELECT count(*) FROM lightrag_entities) + (SELECT count(*) FROM lightrag_relations) + 3 AS n]])
t.eq(vec.n, distinct.n, "vectors: one per chunk, entity and relation")
t.ok(want_vectors >= vec.n, "vectors: overwritten, never duplicated, across chunks")
t.eq(vec.lo .. "/" .. vec.hi .. "/" .. vec.model, "256/256/hash-256", "vectors: 256 dimensions of the hash model")
t.eq(vec.full, true, "vectors: every embedding has its dimension")
local chunk_vec = one("SELECT kind, ref FROM lightrag_vectors WHERE id = $1", "chunk-" .. md5.hex(PROSE[1]))
t.eq(chunk_vec and chunk_vec.kind, "chunk", "vectors: the chunk's id is chunk-<md5 of its text>")
local ent_vec = one("SELECT content FROM lightrag_vectors WHERE id = $1", "ent-" .. md5.hex("Grace Hopper"))
t.like(ent_vec and ent_vec.content, "^Grace Hopper\n", "vectors: an entity's text is its name and description")
local norm = one([[SELECT sqrt(sum(x * x)) AS n FROM lightrag_vectors, unnest(embedding) AS x WHERE id = $1]],
  "chunk-" .. md5.hex(PROSE[1]))
t.ok(math.abs(norm.n - 1) < 1e-5, "vectors: unit length")
-- Each row holds the embedding of its own text (the batch's vectors travel as
-- one array, row i's being slice i).
local mismatched = {}
for _, row in ipairs(q("SELECT id, content FROM lightrag_vectors ORDER BY id")) do
  local same = one("SELECT embedding = $2::real[] AS same FROM lightrag_vectors WHERE id = $1", row.id,
    shield.pg.real_array(embed_hash.embed(row.content)))
  if not same.same then mismatched[#mismatched + 1] = row.id end
end
t.eq(table.concat(mismatched, ","), "", "vectors: every row's embedding is its own text's")

local chunk = one("SELECT job_id, chunk_id, report::text AS report, metadata->>'source_uri' AS uri FROM lightrag_chunks WHERE id = $1",
  "chunk-" .. md5.hex(PROSE[2]))
t.eq(chunk and chunk.chunk_id, "job-a:2", "chunks: the first delivery is recorded")
t.eq(chunk and chunk.uri, "hopper.txt", "chunks: with its metadata")
local report = shield.json.decode(chunk.report)
t.eq(report and report.steps[2].name, "graph", "chunks: the report lists the steps")
t.eq(report and report.counts.entities, results[2].counts.entities, "chunks: the report has the chunk's counts")

-- Redelivery and resubmission change nothing
local before = snapshot()
script.process(task("job-a", 2, PROSE[2]), { script_version = "v1" })
for i, text in ipairs(PROSE) do script.process(task("job-b", i, text), { script_version = "v1" }) end
local after = snapshot()
t.eq(after.e, before.e, "again: entities unchanged")
t.eq(after.r, before.r, "again: relations unchanged (no weight added)")
t.eq(after.v, before.v, "again: vectors overwritten in place")
t.eq(after.ne .. "/" .. after.nr .. "/" .. after.nv, before.ne .. "/" .. before.nr .. "/" .. before.nv,
  "again: the same row counts")
t.eq(one("SELECT job_id FROM lightrag_chunks WHERE id = $1", "chunk-" .. md5.hex(PROSE[1])).job_id, "job-a",
  "again: the chunk keeps its first job")

-- Concurrent chunks merging the same entities lose no update; a step of
-- the test's own between graph and embed shuffles when they embed and store
local N = 24
local threads = {}
local p = pipeline.new({})
local jitter = function() shield.sleep(math.random(0, 30)) end
local order = { "extract", "graph", jitter, "embed", "vectors" }
for i = 1, N do
  local text = "Ada Lovelace wrote to Charles Babbage from Marlow Hall, letter " .. i .. "."
  threads[i] = shield.spawn(pipeline.process, p, order, task("job-c", i, text), { script_version = "v1" })
end
local ok_count, errs = 0, {}
for i = 1, N do
  local ok, r = shield.join(threads[i])
  if ok then ok_count = ok_count + 1 else errs[#errs + 1] = tostring(type(r) == "table" and r.message or r) end
end
t.eq(ok_count, N, "concurrent: every chunk merged " .. table.concat(errs, "; "))
local ada = entity("Ada Lovelace")
t.eq(ada and ada.n, N, "concurrent: Ada Lovelace lists all " .. N .. " chunks")
local pair = one([[SELECT weight, cardinality(source_ids) AS n FROM lightrag_relations
  WHERE source = 'Ada Lovelace' AND target = 'Charles Babbage']])
t.eq(pair and pair.weight, N, "concurrent: the relation's weight is the sum of " .. N .. " observations")
t.eq(pair and pair.n, N, "concurrent: and lists every chunk")
local stale = one([[SELECT
  (SELECT count(*) FROM lightrag_vectors v JOIN lightrag_entities e ON v.kind = 'entity' AND v.ref = e.name
    WHERE v.content <> e.name || E'\n' || e.description) AS e,
  (SELECT count(*) FROM lightrag_vectors v JOIN lightrag_relations r
    ON v.kind = 'relation' AND v.ref = r.source || E'\x1f' || r.target
    WHERE v.content <> r.keywords || E'\t' || r.source || E'\n' || r.target || E'\n' || r.description) AS r]])
t.eq(stale.e + stale.r, 0, "concurrent: every vector embeds the final merged description")

-- The locks: every entity key and every relation key (the SQL takes them
-- entities first, each side in hash order) in one statement; none for a side without keys
local graph = require "shield.lightrag.steps.graph"
local function locks(names, keys)
  return shield.pg.transaction(function()
    graph.lock(names, keys)
    local got = {}
    for _, row in ipairs(q([[SELECT classid, objid FROM pg_locks
        WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND objsubid = $1 ORDER BY classid, objid]], 2)) do
      got[#got + 1] = row.classid .. ":" .. row.objid
    end
    return table.concat(got, " ")
  end)
end
local want = one([[SELECT '71:' || (hashtext('Ada')::oid) AS a, '71:' || (hashtext('Bob')::oid) AS b,
  '72:' || (hashtext(E'Ada\x1fBob')::oid) AS r]])
local function sorted(...)
  local l = { ... }
  table.sort(l)
  return table.concat(l, " ")
end
t.eq(locks({ "Ada", "Bob", "Ada" }, { "Ada\31Bob" }), sorted(want.a, want.b, want.r), "lock: entities and relations at once")
t.eq(locks({}, { "Ada\31Bob" }), want.r, "lock: relations alone")
t.eq(locks({ "Bob" }, {}), want.b, "lock: entities alone")
t.eq(graph.array({}), "[]", "lock: an empty key list is a JSON array")

-- A step order that cannot work fails for good, naming the step
local ok, e = pcall(pipeline.process, p, { "graph" }, task("job-d", 1, "Text."), {})
t.eq(ok, false, "order: graph without extract fails")
t.eq(type(e) == "table" and e.message, "step graph: graph: nothing extracted: the step order must run extract before graph",
  "order: the message names the step")
t.eq(type(e) == "table" and e.retryable, false, "order: not retryable")
local r = pipeline.process(p, { "extract", "embed", "vectors" }, task("job-d", 2, "Alan Turing visited Manchester."), {})
t.eq(r.counts.vectors, r.counts.entities + r.counts.relations + 1,
  "order: embed without graph embeds the extracted records")
local vectors = require "shield.lightrag.steps.vectors"
ok, e = pcall(vectors.run, { pipeline = {}, vectors = { model = "m", dim = 2, items = {
  { id = "chunk-a", kind = "chunk", ref = "a", content = "a", vector = { 1, 0 } },
  { id = "chunk-b", kind = "chunk", ref = "b", content = "b", vector = { 1, 0, 0 } } } } })
t.eq(type(e) == "table" and e.message, "vectors: chunk-b has 3 numbers, the others 2",
  "vectors: a vector of another size is refused, never stored misaligned")
t.eq(one("SELECT count(*) AS n FROM lightrag_vectors WHERE id IN ('chunk-a', 'chunk-b')").n, 0, "... and nothing is stored")

-- PostgreSQL down: a retryable failure; back up: the chunk goes through
local servers = src .. "/tests/harness/servers.sh"
local dir = os.getenv("SHIELD_TEST_DIR")
assert(os.execute(servers .. " pg-stop " .. dir .. " >/dev/null") == 0)
ok, e = pcall(script.process, task("job-e", 1, "Katherine Johnson worked at NASA in Hampton."), {})
t.eq(ok, false, "outage: the chunk fails")
t.like(type(e) == "table" and e.message, "^step graph: graph: ", "outage: in the graph step")
t.eq(type(e) == "table" and e.retryable, true, "outage: retryable")
assert(os.execute(servers .. " pg-start " .. dir .. " >/dev/null") == 0)
local back
for _ = 1, 100 do
  local okk, res = pcall(script.process, task("job-e", 1, "Katherine Johnson worked at NASA in Hampton."), {})
  if okk then back = res; break end
  shield.sleep(100)
end
t.ok(back and back.counts.entities >= 2, "outage: processed once PostgreSQL is back")
t.eq(entity("Katherine Johnson") and entity("Katherine Johnson").entity_type, "Person", "outage: her entity is stored")

return t.done()
