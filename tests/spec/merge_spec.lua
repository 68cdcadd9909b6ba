local merge = require "shield.lightrag.merge"
local parser = require "shield.lightrag.parser"

local function deepcopy(v)
  if type(v) ~= "table" then return v end
  local c = {}
  for k, x in pairs(v) do c[k] = deepcopy(x) end
  return c
end

local function obs(name, etype, desc, chunk)
  return { name = name, type = etype, description = desc, chunk_id = chunk }
end

local function rel(src, tgt, kw, desc, weight, chunk)
  return { source = src, target = tgt, keywords = kw, description = desc, weight = weight, chunk_id = chunk }
end

describe("merge.entity", function()
  it("builds a new row from the first observations", function()
    local row, changed = merge.entity(nil, {
      obs("Marie Curie", "Person", "A physicist.", "c1"),
      obs("Marie Curie", "Person", "A chemist.<SEP>A physicist.", "c2"),
    })
    assert.is_true(changed)
    assert.same({
      name = "Marie Curie", entity_type = "Person",
      description = "A physicist.<SEP>A chemist.",
      source_ids = { "c1", "c2" }, type_counts = { Person = 2 },
    }, row)
  end)

  it("merges into an existing row: descriptions deduplicated, sources unioned", function()
    local existing = {
      name = "Paris", entity_type = "Location", description = "A city.<SEP>Capital of France.",
      source_ids = { "c1", "c2" }, type_counts = { Location = 2 },
    }
    local row, changed = merge.entity(existing, {
      obs("Paris", "Location", "Capital of France.", "c3"),
      obs("Paris", "Location", "Seat of the Sorbonne.", "c4"),
    })
    assert.is_true(changed)
    assert.same({
      name = "Paris", entity_type = "Location",
      description = "A city.<SEP>Capital of France.<SEP>Seat of the Sorbonne.",
      source_ids = { "c1", "c2", "c3", "c4" }, type_counts = { Location = 4 },
    }, row)
  end)

  it("is idempotent: a redelivered chunk changes nothing", function()
    local first = merge.entity(nil, { obs("Warsaw", "Location", "A city.", "c1") })
    local again, changed = merge.entity(first, { obs("Warsaw", "Location", "A city.", "c1") })
    assert.is_false(changed)
    assert.same(first, again)
    -- and a different answer for the same chunk is ignored too
    local other, changed2 = merge.entity(first, { obs("Warsaw", "Organization", "Something else.", "c1") })
    assert.is_false(changed2)
    assert.same(first, other)
  end)

  it("picks the most frequent type, counting every chunk", function()
    local row = merge.entity(nil, { obs("Curie", "Other", "a", "c1") })
    row = merge.entity(row, { obs("Curie", "Person", "b", "c2") })
    assert.equal("Other", row.entity_type)       -- 1:1, the stored type keeps a tie
    row = merge.entity(row, { obs("Curie", "Person", "c", "c3") })
    assert.equal("Person", row.entity_type)
    assert.same({ Other = 1, Person = 2 }, row.type_counts)
  end)

  it("counts a stored type without counts once, as LightRAG does", function()
    local existing = { name = "Mercury", entity_type = "NaturalObject", description = "A planet.",
                       source_ids = "c1<SEP>c2<SEP>c3" }
    local row = merge.entity(existing, {
      obs("Mercury", "Artifact", "A program.", "c4"),
      obs("Mercury", "Artifact", "A space capsule.", "c5"),
    })
    assert.equal("Artifact", row.entity_type)
    assert.same({ "c1", "c2", "c3", "c4", "c5" }, row.source_ids)
    assert.same({ NaturalObject = 1, Artifact = 2 }, row.type_counts)
  end)

  it("raises on misuse", function()
    assert.has_error(function() merge.entity(nil, { obs("A", "Person", "d", nil) }) end,
      "bad argument to 'entity': observation 1 has no chunk_id")
    assert.has_error(function()
      merge.entity({ name = "A", entity_type = "Person", description = "", source_ids = {} },
        { obs("B", "Person", "d", "c1") })
    end, "bad argument to 'entity': observation 1 is for 'B', not 'A'")
    assert.has_error(function() merge.entity(nil, {}) end, "bad argument to 'entity': no entity name")
  end)
end)

describe("merge.relation", function()
  it("keys by the unordered pair, stored in byte order", function()
    assert.same({ "Marie Curie", "Pierre Curie" }, { merge.relation_key("Pierre Curie", "Marie Curie") })
    local row, changed = merge.relation(nil, {
      rel("Pierre Curie", "Marie Curie", "marriage", "They married in 1895.", 2, "c1"),
    })
    assert.is_true(changed)
    assert.same({
      source = "Marie Curie", target = "Pierre Curie", keywords = "marriage",
      description = "They married in 1895.", weight = 2, source_ids = { "c1" },
    }, row)
  end)

  it("sums weights, unions keywords (sorted) and deduplicates descriptions", function()
    local existing = { source = "Marie Curie", target = "Pierre Curie", keywords = "marriage,research",
                       description = "They married in 1895.", weight = "2", source_ids = { "c1" } }
    local row, changed = merge.relation(existing, {
      rel("Marie Curie", "Pierre Curie", "research， discovery", "They married in 1895.", 1, "c2"),
      rel("Pierre Curie", "Marie Curie", " polonium ,marriage", "They discovered polonium.", 3.5, "c3"),
    })
    assert.is_true(changed)
    assert.same({
      source = "Marie Curie", target = "Pierre Curie",
      keywords = "discovery,marriage,polonium,research",
      description = "They married in 1895.<SEP>They discovered polonium.",
      weight = 6.5, source_ids = { "c1", "c2", "c3" },
    }, row)
  end)

  it("is idempotent: redelivered chunks add no weight", function()
    local row = merge.relation(nil, { rel("A", "B", "k", "d", 1, "c1") })
    local again, changed = merge.relation(row, { rel("B", "A", "k", "d", 1, "c1") })
    assert.is_false(changed)
    assert.same(row, again)
    assert.equal(1, again.weight)
  end)

  it("raises on observations of another pair or a self-link", function()
    assert.has_error(function()
      merge.relation(nil, { rel("A", "B", "k", "d", 1, "c1"), rel("A", "C", "k", "d", 1, "c1") })
    end, "bad argument to 'relation': observation 2 links 'A' and 'C', not 'A' and 'B'")
    assert.has_error(function() merge.relation(nil, { rel("A", "A", "k", "d", 1, "c1") }) end,
      "bad argument to 'relation': a relation needs two different entities")
  end)
end)

describe("merge.observations", function()
  it("tags a parse result with its chunk id and lists unlisted relation ends", function()
    local res = parser.parse(table.concat({
      "entity<|#|>Marie Curie<|#|>Person<|#|>A physicist.",
      "relation<|#|>Marie Curie<|#|>Sorbonne<|#|>work<|#|>She taught at the Sorbonne.",
      "relation<|#|>Sorbonne<|#|>Paris<|#|>location<|#|>The Sorbonne is in Paris.",
      "<|COMPLETE|>",
    }, "\n"))
    local o = merge.observations(res, "chunk-7")
    assert.same({ obs("Marie Curie", "Person", "A physicist.", "chunk-7") }, o.entities)
    assert.same({
      rel("Marie Curie", "Sorbonne", "work", "She taught at the Sorbonne.", 1, "chunk-7"),
      rel("Sorbonne", "Paris", "location", "The Sorbonne is in Paris.", 1, "chunk-7"),
    }, o.relations)
    assert.same({
      obs("Sorbonne", "Other", "She taught at the Sorbonne.", "chunk-7"),
      obs("Paris", "Other", "The Sorbonne is in Paris.", "chunk-7"),
    }, o.endpoints)
  end)

  it("gives the same graph when a whole chunk is merged twice", function()
    local answer = table.concat({
      "entity<|#|>Ada Lovelace<|#|>Person<|#|>A mathematician.",
      "entity<|#|>Charles Babbage<|#|>Person<|#|>An inventor.",
      "relation<|#|>Ada Lovelace<|#|>Charles Babbage<|#|>collaboration<|#|>She wrote notes on his engine.",
      "<|COMPLETE|>",
    }, "\n")
    local graph = { entities = {}, relations = {} }
    local function deliver(chunk_id)
      local o = merge.observations(parser.parse(answer), chunk_id)
      local writes = 0
      for _, e in ipairs(o.entities) do
        local row, changed = merge.entity(graph.entities[e.name], { e })
        graph.entities[e.name] = row
        if changed then writes = writes + 1 end
      end
      for _, r in ipairs(o.relations) do
        local key = table.concat({ merge.relation_key(r.source, r.target) }, "\0")
        local row, changed = merge.relation(graph.relations[key], { r })
        graph.relations[key] = row
        if changed then writes = writes + 1 end
      end
      return writes
    end
    assert.equal(3, deliver("c1"))
    local snapshot = deepcopy(graph)
    assert.equal(0, deliver("c1"))
    assert.same(snapshot, graph)
    assert.equal(3, deliver("c2"))
    assert.equal(2, graph.relations["Ada Lovelace\0Charles Babbage"].weight)
  end)
end)
