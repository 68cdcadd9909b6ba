-- The extract step (lua/shield/lightrag/steps/extract.lua) on scripted LLM
-- answers: malformed records are skipped with one bounded shield.log.warn per
-- chunk naming how many and why, and never fail a chunk that has readable
-- records. shield is the runtime's C-backed module: a stand-in records the
-- warnings and raises failures as shield.fail does.

local warnings = {}
package.loaded["shield"] = {
  log = { warn = function(...) warnings[#warnings + 1] = table.concat({ ... }, " ") end },
  fail = function(message, opts)
    error({ message = message, retryable = not (opts and opts.retryable == false) }, 2)
  end,
}
local extract = require "shield.lightrag.steps.extract"

local D = "<|#|>"

-- A pipeline whose LLM gives the answers in turn (gleaning asks again).
local function state_with(answers, max_gleaning)
  local llm = {}
  function llm:chat()
    return table.remove(answers, 1) or "<|COMPLETE|>"
  end
  return {
    content = "the chunk's text",
    task = { job_id = "job-1", chunk_id = "job-1:4" },
    pipeline = { llm = llm, extract_opts = {}, max_gleaning = max_gleaning or 0 },
  }
end

local function lines(...)
  return table.concat({ ... }, "\n")
end

describe("extract step", function()
  before_each(function()
    for i = #warnings, 1, -1 do warnings[i] = nil end
  end)

  it("warns once about malformed records, naming the count and the reasons, and goes on", function()
    local state = state_with({ lines(
      "entity" .. D .. "Ada Lovelace" .. D .. "Person" .. D .. "A mathematician.",
      "entity" .. D .. "London",
      "relation" .. D .. "Ada Lovelace" .. D .. "Ada Lovelace" .. D .. "self" .. D .. "loops",
      "<|COMPLETE|>") })
    local counts = extract.run(state)
    assert.same({ entities = 1, relations = 0, malformed = 2, gleanings = 0 }, counts)
    assert.same({ "extract: 2 malformed record(s) skipped in chunk job-1:4 of job job-1: "
      .. "line 2: entity record has 2 fields, expected 4; "
      .. "line 3: relation links 'Ada Lovelace' to itself" }, warnings)
  end)

  it("says nothing when every record reads", function()
    extract.run(state_with({ "entity" .. D .. "Ada" .. D .. "Person" .. D .. "A mathematician.\n<|COMPLETE|>" }))
    assert.same({}, warnings)
  end)

  it("warns once for the whole chunk across gleaning passes", function()
    local state = state_with({
      "entity" .. D .. "Ada" .. D .. "Person" .. D .. "first.\nentity" .. D .. "\n<|COMPLETE|>",
      "entity" .. D .. "Charles" .. D .. "Person" .. D .. "second.\nrelation" .. D .. "x\n<|COMPLETE|>",
    }, 1)
    local counts = extract.run(state)
    assert.equal(2, counts.entities)
    assert.equal(1, #warnings)
    assert.truthy(warnings[1]:find("^extract: 2 malformed record%(s%) skipped in chunk job%-1:4 of job job%-1: "))
  end)

  it("quotes only the first reasons, each cut short, however bad the answer", function()
    local bad = {}
    for i = 1, 500 do -- each reason quotes a 240-byte name
      bad[i] = "entity" .. D .. string.rep("é", 119) .. i .. D .. "Person" .. D
    end
    bad[#bad + 1] = "entity" .. D .. "Ada" .. D .. "Person" .. D .. "A mathematician."
    bad[#bad + 1] = "<|COMPLETE|>"
    local counts = extract.run(state_with({ table.concat(bad, "\n") }))
    assert.equal(1, counts.entities)
    assert.equal(500, counts.malformed)
    assert.equal(1, #warnings)
    local w = warnings[1]
    assert.truthy(w:find("^extract: 500 malformed record%(s%) skipped in chunk job%-1:4 of job job%-1: line 1: entity '"))
    assert.truthy(w:find("; and 497 more warning%(s%)$"))
    local reasons = {}
    for reason in (w:match("job%-1: (line .*); and") .. "; "):gmatch("(.-); ") do
      reasons[#reasons + 1] = reason
      assert.truthy(#reason <= extract.WARN_REASON_BYTES and #reason >= extract.WARN_REASON_BYTES - 1, #reason)
      assert.is_nil(reason:find("\195$"), "no character is split")
      assert.truthy(reason:find("^line %d: entity '\195\169"))
    end
    assert.equal(extract.WARN_REASONS, #reasons)
  end)

  it("warns, then fails for good, when nothing in the answer reads", function()
    local state = state_with({ "entity" .. D .. "\n<|COMPLETE|>" })
    local ok, e = pcall(extract.run, state)
    assert.is_false(ok)
    assert.is_false(e.retryable)
    assert.truthy(e.message:find("^llm: unparseable answer"))
    assert.equal(1, #warnings)
  end)

  it("never warns on the offline extractor", function()
    local state = state_with({})
    state.pipeline.llm = nil
    state.content = "Grace Hopper worked in Philadelphia."
    extract.run(state)
    assert.same({}, warnings)
  end)
end)
