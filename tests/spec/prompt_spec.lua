local prompt = require "shield.lightrag.prompt"
local parser = require "shield.lightrag.parser"

local function has(haystack, needle)
  return haystack:find(needle, 1, true) ~= nil
end

describe("prompt.system", function()
  it("describes the current record format, the types and the completion marker", function()
    local s = prompt.system()
    assert.is_true(has(s, "entity<|#|>entity_name<|#|>entity_type<|#|>entity_description"))
    assert.is_true(has(s, "relation<|#|>source_entity<|#|>target_entity<|#|>relationship_keywords"
      .. "<|#|>relationship_description"))
    assert.is_true(has(s, "[Person, Creature, Organization, Location, Event, Concept, Method, Content, "
      .. "Data, Artifact, NaturalObject]"))
    assert.is_true(has(s, "write Other"))
    assert.is_true(has(s, "write <|COMPLETE|> on a line of its own"))
    assert.is_true(has(s, "Write in English"))
  end)

  it("takes the entity types and language from the options", function()
    local s = prompt.system({ entity_types = { "Drug", "Disease" }, language = "French" })
    assert.is_true(has(s, "exactly one of [Drug, Disease]"))
    assert.is_true(has(s, "Write in French"))
  end)

  it("carries an example that the parser reads without a single error", function()
    local example = prompt.system():match("Output:\n(.*)$")
    local res = parser.parse(example)
    assert.equal(4, #res.entities)
    assert.equal(3, #res.relations)
    assert.equal(0, res.malformed)
    assert.is_true(res.complete)
    assert.equal("Artifact", res.entities[4].type)
  end)

  it("raises on bad options", function()
    assert.has_error(function() prompt.system({ entity_types = {} }) end,
      "bad option 'entity_types': non-empty array of strings expected")
    assert.has_error(function() prompt.system({ entity_types = { "A", 3 } }) end,
      "bad option 'entity_types': entry 2 is not a non-empty string")
    assert.has_error(function() prompt.system("x") end,
      "bad argument 'opts': table expected, got string")
  end)
end)

describe("prompt.user", function()
  it("fences the chunk with a fence the chunk cannot close", function()
    local u = prompt.user("Text with ``` inside and ```` too.")
    assert.is_true(has(u, "\n`````\nText with ``` inside and ```` too.\n`````"))
    assert.is_true(has(prompt.user("plain"), "\n```\nplain\n```"))
  end)

  it("keeps % and braces in the chunk verbatim", function()
    local chunk = "50% of {input_text} %1"
    assert.is_true(has(prompt.user(chunk), chunk))
  end)
end)

describe("prompt.messages and gleaning_messages", function()
  it("build chat messages for the first pass and the gleaning pass", function()
    local m = prompt.messages("Marie Curie was born in Warsaw.")
    assert.equal(2, #m)
    assert.equal("system", m[1].role)
    assert.equal("user", m[2].role)
    assert.is_true(has(m[2].content, "Marie Curie was born in Warsaw."))

    local g = prompt.gleaning_messages(m, "entity<|#|>Marie Curie<|#|>Person<|#|>d\n<|COMPLETE|>")
    assert.equal(2, #m)                       -- the history is not modified
    assert.equal(4, #g)
    assert.equal(m[1], g[1])
    assert.same({ role = "assistant", content = "entity<|#|>Marie Curie<|#|>Person<|#|>d\n<|COMPLETE|>" }, g[3])
    assert.equal("user", g[4].role)
    assert.equal(prompt.gleaning(), g[4].content)
    assert.is_true(has(g[4].content, "missed"))
    assert.is_true(has(g[4].content, "<|COMPLETE|>"))
  end)
end)
