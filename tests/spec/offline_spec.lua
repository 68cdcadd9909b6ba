local offline = require "shield.lightrag.offline"
local parser = require "shield.lightrag.parser"

local LOVELACE = [[
Ada Lovelace was born in London in 1815. She worked with Charles Babbage on the Analytical
Engine, and her notes were published by Richard Taylor in 1843. Babbage later presented the
design at the University of Turin.

The Royal Society elected Babbage a fellow in 1816. However, the British Government stopped
funding the Difference Engine in 1842. In Paris, Luigi Menabrea's article about the engine was
read at the Academy of Sciences.

Today the Science Museum in London displays a working model. Dr. Doron Swade led the team that
built it for the 1991 bicentenary exhibition. Visitors from New York and from Kraków still come
to see it.
]]

local CURIE = [[
Marie Skłodowska-Curie was born in Warsaw in 1867. In 1891 she moved to Paris and enrolled at the
University of Paris, where she met Pierre Curie. Together with Henri Becquerel they received the
Nobel Prize in 1903. Curie later led the Radium Institute.

Scientists gathered in Geneva. During the First World War, Curie organized mobile units for the
French Army. Ludwig van Beethoven and Charles de Gaulle never met her, nor did the Bank of England.
]]

local function entity_list(res)
  local out = {}
  for i, e in ipairs(res.entities) do out[i] = { e.name, e.type } end
  return out
end

local function has_name(res, name)
  for _, e in ipairs(res.entities) do
    if e.name == name then return true end
  end
  return false
end

describe("offline.extract", function()
  it("answers in the current record format, which the parser reads cleanly", function()
    local answer = offline.extract(LOVELACE)
    assert.equal("entity<|#|>Ada Lovelace<|#|>Person<|#|>Ada Lovelace was born in London in 1815.",
      answer:match("^[^\n]+"))
    assert.equal("\n<|COMPLETE|>", answer:sub(-13))
    local res = parser.parse(answer)
    assert.equal(0, res.malformed)
    assert.equal(0, res.ignored)
    assert.is_true(res.complete)
    assert.same({}, res.warnings)
  end)

  it("finds people, places and organizations with their types", function()
    local res = parser.parse(offline.extract(LOVELACE))
    assert.same({
      { "Ada Lovelace", "Person" },
      { "London", "Location" },
      { "Charles Babbage", "Person" },
      { "Analytical Engine", "Other" },
      { "Richard Taylor", "Person" },
      { "Babbage", "Person" },
      { "University of Turin", "Organization" },
      { "Royal Society", "Organization" },
      { "British Government", "Organization" },
      { "Difference Engine", "Other" },
      { "Paris", "Location" },
      { "Luigi Menabrea", "Person" },
      { "Academy of Sciences", "Organization" },
      { "Science Museum", "Organization" },
      { "Doron Swade", "Person" },
      { "New York", "Location" },
      { "Kraków", "Location" },
    }, entity_list(res))
  end)

  it("does not take sentence-initial common words for names", function()
    local res = parser.parse(offline.extract(LOVELACE .. "\n\n" .. CURIE))
    for _, word in ipairs({ "She", "The", "However", "In", "Today", "Dr", "Visitors", "Scientists",
                            "During", "Together", "The Royal Society", "In Paris" }) do
      assert.is_false(has_name(res, word), word)
    end
  end)

  it("handles connectors, titles, possessives, hyphens and accented capitals", function()
    local res = parser.parse(offline.extract(CURIE))
    assert.same({
      { "Marie Skłodowska-Curie", "Person" },
      { "Warsaw", "Location" },
      { "Paris", "Location" },
      { "University of Paris", "Organization" },
      { "Pierre Curie", "Person" },
      { "Henri Becquerel", "Person" },
      { "Nobel Prize", "Event" },
      { "Curie", "Person" },
      { "Radium Institute", "Organization" },
      { "Geneva", "Location" },
      { "First World War", "Event" },
      { "French Army", "Organization" },
      { "Ludwig van Beethoven", "Person" },
      { "Charles de Gaulle", "Person" },
      { "Bank of England", "Organization" },
    }, entity_list(res))
  end)

  it("relates names that share a sentence, with the sentence as description", function()
    local res = parser.parse(offline.extract(LOVELACE))
    local sentence = "In Paris, Luigi Menabrea's article about the engine was read at the Academy of Sciences."
    local found = {}
    for _, r in ipairs(res.relations) do
      if r.description == sentence then
        found[#found + 1] = { r.source, r.target, r.keywords, r.weight }
      end
    end
    assert.same({
      { "Paris", "Luigi Menabrea", "co-occurrence", 1 },
      { "Paris", "Academy of Sciences", "co-occurrence", 1 },
      { "Luigi Menabrea", "Academy of Sciences", "co-occurrence", 1 },
    }, found)
    assert.equal(12, #res.relations)
    assert.equal("Ada Lovelace was born in London in 1815.",
      res.entities[1].description)
  end)

  it("weighs a pair by the sentences it shares", function()
    local res = parser.parse(offline.extract(
      "Marie Curie worked in Paris. Marie Curie died far from Paris, in Passy."))
    assert.same({ "Marie Curie", "Paris", 2 },
      { res.relations[1].source, res.relations[1].target, res.relations[1].weight })
  end)

  it("caps the names paired per sentence", function()
    local names = {}
    for i = 1, 14 do names[i] = "Person" .. string.char(64 + i) .. " Smith" end
    local res = parser.parse(offline.extract("We thanked " .. table.concat(names, " and ") .. "."))
    assert.equal(14, #res.entities)
    assert.equal(12 * 11 / 2, #res.relations)
  end)

  it("keeps field delimiters out of its records", function()
    local res = parser.parse(offline.extract("Grace Hopper typed <|#|> and <|> at Harvard University."))
    assert.equal(0, res.malformed)
    assert.same({ { "Grace Hopper", "Person" }, { "Harvard University", "Organization" } }, entity_list(res))
    assert.equal("Grace Hopper typed and at Harvard University.", res.entities[1].description)
  end)

  it("is deterministic and answers an empty chunk with the marker alone", function()
    assert.equal(offline.extract(CURIE), offline.extract(CURIE))
    assert.equal("<|COMPLETE|>", offline.extract(""))
    assert.equal("<|COMPLETE|>", offline.extract("no names here at all."))
  end)

  it("raises on misuse", function()
    assert.has_error(function() offline.extract(nil) end,
      "bad argument #1 to 'extract': string expected, got nil")
  end)
end)
