local parser = require "shield.lightrag.parser"

local function lines(...)
  return table.concat({ ... }, "\n")
end

local function names(res)
  local out = {}
  for i, e in ipairs(res.entities) do out[i] = e.name end
  return out
end

describe("parser.parse, current format", function()
  it("reads entities and relations, one record per line", function()
    local res = parser.parse(lines(
      "entity<|#|>Marie Curie<|#|>Person<|#|>A physicist who studied radioactivity.",
      "entity<|#|>University of Paris<|#|>Organization<|#|>The university where Curie taught.",
      "relation<|#|>Marie Curie<|#|>University of Paris<|#|>employment, teaching<|#|>Curie taught at the University of Paris.",
      "<|COMPLETE|>"))
    assert.same({
      entities = {
        { name = "Marie Curie", type = "Person", description = "A physicist who studied radioactivity." },
        { name = "University of Paris", type = "Organization", description = "The university where Curie taught." },
      },
      relations = {
        { source = "Marie Curie", target = "University of Paris", keywords = "employment,teaching",
          description = "Curie taught at the University of Paris.", weight = 1 },
      },
      malformed = 0, ignored = 0, complete = true, warnings = {},
    }, res)
  end)

  it("splits records an LLM glued onto one line", function()
    local res = parser.parse("entity<|#|>A<|#|>Person<|#|>first<|#|>entity<|#|>B<|#|>Person<|#|>second"
      .. "<|#|>relation<|#|>A<|#|>B<|#|>k<|#|>linked<|COMPLETE|>")
    assert.same({ "A", "B" }, names(res))
    assert.equal(1, #res.relations)
    assert.equal(0, res.malformed)
    assert.is_true(res.complete)
  end)

  it("repairs mangled delimiters", function()
    local res = parser.parse("entity<#>Ada Lovelace<| # |>Person<|##|>A mathematician.\n<|COMPLETE|>")
    assert.same({ { name = "Ada Lovelace", type = "Person", description = "A mathematician." } }, res.entities)
    assert.equal(0, res.malformed)
  end)

  it("ignores reasoning blocks, code fences and chatter", function()
    local res = parser.parse(lines(
      "<think>entity<|#|>Wrong<|#|>Person<|#|>thinking aloud</think>Here are the records:",
      "```",
      "entity<|#|>Right<|#|>Person<|#|>the answer",
      "```",
      "<|COMPLETE|>"))
    assert.same({ "Right" }, names(res))
    assert.equal(0, res.malformed)
    assert.equal(1, res.ignored)
  end)
end)

describe("parser.parse, older tuple format", function()
  it("reads ##-separated tuples with a trailing relationship strength", function()
    local res = parser.parse(
      '("entity"<|>"Alex"<|>"person"<|>"Alex is a character who observes the others.")##\n'
      .. '("entity"<|>"Taylor"<|>"person"<|>"Taylor shows authoritarian certainty.")##\n'
      .. '("relationship"<|>"Alex"<|>"Taylor"<|>"Alex is affected by Taylor\'s certainty."'
      .. '<|>"power dynamics, perspective shift"<|>7)##\n'
      .. '("content_keywords"<|>"power dynamics, discovery")<|COMPLETE|>')
    assert.same({
      { name = "Alex", type = "Person", description = "Alex is a character who observes the others." },
      { name = "Taylor", type = "Person", description = "Taylor shows authoritarian certainty." },
    }, res.entities)
    assert.same({
      { source = "Alex", target = "Taylor", keywords = "power dynamics,perspective shift",
        description = "Alex is affected by Taylor's certainty.", weight = 7 },
    }, res.relations)
    assert.equal(0, res.malformed)
    assert.equal(1, res.ignored)          -- content_keywords is valid but unused
    assert.is_true(res.complete)
  end)

  it("defaults a missing or non-numeric strength to 1", function()
    local res = parser.parse('("relationship"<|>"A"<|>"B"<|>"d1"<|>"k")##'
      .. '("relationship"<|>"C"<|>"D"<|>"d2"<|>"k"<|>"high")<|COMPLETE|>')
    assert.equal(1, res.relations[1].weight)
    assert.equal(1, res.relations[2].weight)
    assert.equal(0, res.malformed)
  end)

  it("reads records on one line without newlines", function()
    local res = parser.parse('("entity"<|>"X"<|>"event"<|>"dx")##("entity"<|>"Y"<|>"geo"<|>"dy")##<|COMPLETE|>')
    assert.same({ { name = "X", type = "Event", description = "dx" },
                  { name = "Y", type = "Other", description = "dy" } }, res.entities)
  end)
end)

describe("parser.parse, malformed records", function()
  it("counts and skips them with a warning, keeping the good records", function()
    local res = parser.parse(lines(
      "entity<|#|>Marie Curie<|#|>Person<|#|>A physicist.",
      "entity<|#|>Pierre Curie<|#|>Person",
      "relation<|#|>Marie Curie<|#|>Pierre Curie<|#|>marriage",
      "concept<|#|>Radium<|#|>Data<|#|>An element.",
      "relation<|#|>Marie Curie<|#|>Marie Curie<|#|>self<|#|>loops back",
      "entity<|#|>  \"\" <|#|>Person<|#|>no name",
      "entity<|#|>Radium<|#|>Data<|#|>   ",
      "entity Polonium Data An element named after Poland.",
      '("entity"<|>"Old"<|>"person"',
      "<|COMPLETE|>"))
    assert.same({ "Marie Curie" }, names(res))
    assert.same({}, res.relations)
    assert.equal(8, res.malformed)
    assert.same({
      "line 2: entity record has 3 fields, expected 4",
      "line 3: relation record has 4 fields, expected 5",
      "line 4: unknown record type 'concept'",
      "line 5: relation links 'Marie Curie' to itself",
      "line 6: entity has an empty name",
      "line 7: entity 'Radium' has an empty description",
      "line 8: record without field delimiters",
      "line 9: tuple record without parentheses",
    }, res.warnings)
    assert.is_true(res.complete)
  end)

  it("reports a missing completion marker without failing", function()
    local res = parser.parse("entity<|#|>Warsaw<|#|>Location<|#|>A city.\nentity<|#|>Kra")
    assert.is_false(res.complete)
    assert.same({ "Warsaw" }, names(res))
    assert.equal(1, res.malformed)
    assert.same({
      "line 2: entity record has 2 fields, expected 4",
      "completion marker missing: the answer may be cut off",
    }, res.warnings)
  end)

  it("returns an empty result for an empty answer", function()
    local res = parser.parse("")
    assert.same({}, res.entities)
    assert.same({}, res.relations)
    assert.is_false(res.complete)
  end)

  it("raises on misuse", function()
    assert.has_error(function() parser.parse(nil) end,
      "bad argument #1 to 'parse': string expected, got nil")
    assert.has_error(function() parser.parse("", "x") end,
      "bad argument #2 to 'parse': table expected, got string")
    assert.has_error(function() parser.parse("", { entity_types = "Person" }) end,
      "bad option 'entity_types': array of strings expected, got string")
  end)
end)

describe("parser.parse, names", function()
  it("strips quotes of every kind around names", function()
    local res = parser.parse(lines(
      'entity<|#|>"Marie Curie"<|#|>Person<|#|>one',
      "entity<|#|>“Marie Curie”<|#|>Person<|#|>two",
      "entity<|#|>'Marie Curie'<|#|>Person<|#|>three",
      "entity<|#|>«Paris»<|#|>Location<|#|>\"A city.\"",
      "<|COMPLETE|>"))
    assert.same({
      { name = "Marie Curie", type = "Person", description = "one<SEP>two<SEP>three" },
      { name = "Paris", type = "Location", description = "A city." },
    }, res.entities)
  end)

  it("trims Unicode spaces without breaking UTF-8 names", function()
    local res = parser.parse(lines(
      "entity<|#|>\194\160Zoë Kravitz\227\128\128<|#|>Person<|#|>An actress.",
      "entity<|#|>東京大学<|#|>Organization<|#|>A university in Tokyo.",
      "entity<|#|>Jean Voilà <|#|>Person<|#|>Ends in a two-byte letter.",
      "entity<|#|>Łódź<|#|>Location<|#|>A Polish city.",
      "entity<|#|>Лев\194\160 Толстой<|#|>Person<|#|>A writer.",
      "relation<|#|>Zoë Kravitz<|#|>東京大学<|#|>visit<|#|>She visited.",
      "<|COMPLETE|>"))
    assert.same({ "Zoë Kravitz", "東京大学", "Jean Voilà", "Łódź", "Лев Толстой" }, names(res))
    assert.equal("東京大学", res.relations[1].target)
    assert.equal(0, res.malformed)
  end)

  it("cuts names longer than 256 bytes at a character boundary", function()
    local long = string.rep("é", 200)               -- 400 bytes
    local res = parser.parse("entity<|#|>" .. long .. "<|#|>Other<|#|>long\n<|COMPLETE|>")
    assert.equal(string.rep("é", 128), res.entities[1].name)
    assert.same({ "line 1: name longer than 256 bytes cut" }, res.warnings)
  end)
end)

describe("parser.parse, case", function()
  it("accepts record kinds and the completion marker in any case", function()
    local res = parser.parse(lines(
      "ENTITY<|#|>Ada<|#|>person<|#|>d",
      "Entity<|#|>Babbage<|#|>PERSON<|#|>d",
      "RELATIONSHIP<|#|>Ada<|#|>Babbage<|#|>k<|#|>worked together",
      "<|complete|>"))
    assert.same({ "Ada", "Babbage" }, names(res))
    assert.equal("Person", res.entities[2].type)
    assert.equal(1, #res.relations)
    assert.is_true(res.complete)
  end)

  it("maps types case- and space-insensitively to the configured spelling; others become Other", function()
    local res = parser.parse(lines(
      "entity<|#|>A<|#|>natural object<|#|>d",
      "entity<|#|>B<|#|>NATURAL_OBJECT<|#|>d",
      "entity<|#|>C<|#|>Scientist<|#|>d",
      "entity<|#|>D<|#|><|#|>d",
      "entity<|#|>E<|#|>other<|#|>d",
      "<|COMPLETE|>"))
    local types = {}
    for i, e in ipairs(res.entities) do types[i] = e.type end
    assert.same({ "NaturalObject", "NaturalObject", "Other", "Other", "Other" }, types)
  end)

  it("uses the configured entity types", function()
    local res = parser.parse("entity<|#|>X<|#|>scientist<|#|>d\nentity<|#|>Y<|#|>person<|#|>d\n<|COMPLETE|>",
      { entity_types = { "Scientist" } })
    assert.equal("Scientist", res.entities[1].type)
    assert.equal("Other", res.entities[2].type)
  end)

  it("keeps the case of names: they are keys", function()
    local res = parser.parse("entity<|#|>Marie Curie<|#|>Person<|#|>a\nentity<|#|>marie curie<|#|>Person<|#|>b\n<|COMPLETE|>")
    assert.same({ "Marie Curie", "marie curie" }, names(res))
  end)
end)

describe("parser.parse, deduplication within a chunk", function()
  it("joins distinct descriptions with <SEP> and drops repeats", function()
    local res = parser.parse(lines(
      "entity<|#|>Warsaw<|#|>Location<|#|>Capital of Poland.",
      "entity<|#|>Warsaw<|#|>Location<|#|>Capital of Poland.",
      "entity<|#|>Warsaw<|#|>Location<|#|>Birthplace of Marie Curie.",
      "<|COMPLETE|>"))
    assert.same({ { name = "Warsaw", type = "Location",
      description = "Capital of Poland.<SEP>Birthplace of Marie Curie." } }, res.entities)
  end)

  it("lets a specific type replace Other, but not another specific type", function()
    local res = parser.parse(lines(
      "entity<|#|>Curie<|#|>Other<|#|>a",
      "entity<|#|>Curie<|#|>Person<|#|>b",
      "entity<|#|>Curie<|#|>Location<|#|>c",
      "<|COMPLETE|>"))
    assert.equal("Person", res.entities[1].type)
  end)

  it("merges a relation given in both directions by its unordered pair", function()
    local res = parser.parse(lines(
      "relation<|#|>Marie Curie<|#|>Pierre Curie<|#|>marriage<|#|>They married in 1895.",
      "relation<|#|>Pierre Curie<|#|>Marie Curie<|#|>research, marriage<|#|>They discovered polonium.",
      "relation<|#|>Marie Curie<|#|>Pierre Curie<|#|>marriage<|#|>They married in 1895.",
      "<|COMPLETE|>"))
    assert.same({ {
      source = "Marie Curie", target = "Pierre Curie", keywords = "marriage,research",
      description = "They married in 1895.<SEP>They discovered polonium.", weight = 2,
    } }, res.relations)
  end)
end)

describe("parser.combine", function()
  it("adds a gleaning answer to the first, deduplicated", function()
    local first = parser.parse(lines(
      "entity<|#|>Marie Curie<|#|>Person<|#|>A physicist.",
      "entity<|#|>Paris<|#|>Location<|#|>A city.",
      "relation<|#|>Marie Curie<|#|>Paris<|#|>residence<|#|>She lived in Paris.",
      "entity<|#|>Broken"))
    local glean = parser.parse(lines(
      "entity<|#|>Marie Curie<|#|>Person<|#|>A physicist.",
      "entity<|#|>Sorbonne<|#|>Organization<|#|>A university.",
      "relation<|#|>Paris<|#|>Marie Curie<|#|>work<|#|>She worked in Paris.",
      "<|COMPLETE|>"))
    local res = parser.combine(first, glean)
    assert.same({ "Marie Curie", "Paris", "Sorbonne" }, names(res))
    assert.equal("A physicist.", res.entities[1].description)
    assert.same({ {
      source = "Marie Curie", target = "Paris", keywords = "residence,work",
      description = "She lived in Paris.<SEP>She worked in Paris.", weight = 2,
    } }, res.relations)
    assert.equal(1, res.malformed)
    assert.is_false(res.complete)       -- the first answer was cut off
    assert.same({ "line 4: entity record has 2 fields, expected 4",
      "completion marker missing: the answer may be cut off" }, res.warnings)
  end)
end)
