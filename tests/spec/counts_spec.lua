-- shield.counts: the counts a processing script reports in its result, checked
-- and encoded into the ok outcome's text for settle.lua.
local counts = require "shield.counts"

describe("counts.encode", function()
  it("encodes name=value pairs sorted by name", function()
    assert.equal("entities=12,relations=0,vectors=31", counts.encode({ vectors = 31, entities = 12, relations = 0 }))
    assert.equal("a_1=1000000000", counts.encode({ a_1 = 1e9 }))
    assert.equal("", counts.encode({}))
  end)

  it("takes up to 8 names of up to 32 characters", function()
    local eight = {}
    for i = 1, 8 do eight["n" .. i] = i end
    assert.equal("n1=1,n2=2,n3=3,n4=4,n5=5,n6=6,n7=7,n8=8", counts.encode(eight))
    local long = string.rep("x", 32)
    assert.equal(long .. "=1", counts.encode({ [long] = 1 }))
  end)

  local nine = {}
  for i = 1, 9 do nine["n" .. i] = i end
  local bad = {
    { "not a table", 5, "counts: a table expected, got number" },
    { "an upper-case name", { Entities = 1 },
      'counts: bad name "Entities": 1 to 32 characters of a-z, 0-9 and _ expected' },
    { "a name with a colon", { ["a:b"] = 1 },
      'counts: bad name "a:b": 1 to 32 characters of a-z, 0-9 and _ expected' },
    { "an empty name", { [""] = 1 }, 'counts: bad name "": 1 to 32 characters of a-z, 0-9 and _ expected' },
    { "a long name", { [string.rep("y", 33)] = 1 },
      'counts: bad name "' .. string.rep("y", 33) .. '": 1 to 32 characters of a-z, 0-9 and _ expected' },
    { "an array", { 3, 4 }, "counts: bad name number 1: 1 to 32 characters of a-z, 0-9 and _ expected" },
    { "a negative value", { entities = -1 }, "counts.entities: an integer from 0 to 1000000000 expected, got number -1" },
    { "a fraction", { entities = 1.5 }, "counts.entities: an integer from 0 to 1000000000 expected, got number 1.5" },
    { "a string value", { entities = "3" }, 'counts.entities: an integer from 0 to 1000000000 expected, got "3"' },
    { "a huge value", { entities = 1e9 + 1 },
      "counts.entities: an integer from 0 to 1000000000 expected, got number 1000000001" },
    { "NaN", { entities = 0 / 0 }, "^counts.entities: an integer from 0 to 1000000000 expected, got number %-?nan" },
    { "infinity", { entities = math.huge }, "counts.entities: an integer from 0 to 1000000000 expected, got number inf" },
    { "nine names", nine, "counts: 9 names, at most 8 allowed" },
  }
  for _, case in ipairs(bad) do
    it("refuses " .. case[1] .. ", saying what is wrong", function()
      local text, problem = counts.encode(case[2])
      assert.is_nil(text)
      if case[3]:sub(1, 1) == "^" then
        assert.truthy(problem:find(case[3]), problem)
      else
        assert.equal(case[3], problem)
      end
    end)
  end
end)
