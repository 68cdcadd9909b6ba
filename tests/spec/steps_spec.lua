local steps = require "shield.lightrag.steps"

-- A clock that advances by the given number of ms on every reading.
local function ticking(by)
  local t = 0
  return function()
    t = t + by
    return t
  end
end

describe("steps.run", function()
  it("runs the declared order over one shared state and records counts", function()
    local calls = {}
    local table_ = {
      extract = function(state)
        calls[#calls + 1] = "extract"
        state.entities = { "A", "B" }
        return { entities = 2, relations = 1 }
      end,
      graph = function(state, ctx)
        calls[#calls + 1] = "graph:" .. ctx.chunk_id .. ":" .. #state.entities
      end,
      embed = function()
        calls[#calls + 1] = "embed"
        return { vectors = 3 }
      end,
    }
    local state = {}
    local res = steps.run({ "extract", "graph", "embed" }, table_, state,
      { clock = ticking(5), ctx = { chunk_id = "c1" } })
    assert.same({ "extract", "graph:c1:2", "embed" }, calls)
    assert.same({ "A", "B" }, state.entities)
    assert.same({
      steps = {
        { name = "extract", ms = 5, counts = { entities = 2, relations = 1 } },
        { name = "graph", ms = 5 },
        { name = "embed", ms = 5, counts = { vectors = 3 } },
      },
      total_ms = 30,
    }, res)
  end)

  it("measures each step with the injected clock", function()
    local now = 0
    local res = steps.run({ "slow", "fast" }, {
      slow = function() now = now + 250 end,
      fast = function() now = now + 1.5 end,
    }, {}, { clock = function() return now end })
    assert.equal(250, res.steps[1].ms)
    assert.equal(1.5, res.steps[2].ms)
    assert.equal(251.5, res.total_ms)
  end)

  it("accepts functions in the order, named by position", function()
    local res = steps.run({ "a", function(state) state.n = state.n + 1 end }, {
      a = function(state) state.n = 1 end,
    }, { n = 0 }, { clock = ticking(1) })
    assert.equal("a", res.steps[1].name)
    assert.equal("step2", res.steps[2].name)
  end)

  it("names an unknown step before running any", function()
    local ran = false
    local ok, err = pcall(steps.run, { "extract", "embedd" },
      { extract = function() ran = true end, embed = function() end }, {})
    assert.is_false(ok)
    assert.equal("unknown step 'embedd' at position 2 of the step order (known: embed, extract)", err)
    assert.is_false(ran)
  end)

  it("checks the order on its own with resolve", function()
    local plan = steps.resolve({ "b", "a" }, { a = print, b = type })
    assert.same({ { name = "b", fn = type }, { name = "a", fn = print } }, plan)
    assert.has_error(function() steps.resolve({ 42 }, {}) end,
      "bad step at position 1 of the step order: name or function expected, got number")
  end)

  it("stops at a failing step and raises its error with the step's name", function()
    local after = false
    local ok, err = pcall(steps.run, { "extract", "embed" }, {
      extract = function() error("llm: timeout", 0) end,
      embed = function() after = true end,
    }, {})
    assert.is_false(ok)
    assert.equal("step extract: llm: timeout", err)
    assert.is_false(after)
  end)

  it("keeps a table error intact, so retryable=false survives", function()
    local fail = { message = "bad chunk", retryable = false }
    local ok, err = pcall(steps.run, { "extract" }, { extract = function() error(fail) end }, {})
    assert.is_false(ok)
    assert.equal(fail, err)
    assert.same({ message = "bad chunk", retryable = false, step = "extract" }, err)
  end)

  it("rejects a step that returns something other than counts", function()
    local ok, err = pcall(steps.run, { "x" }, { x = function() return "done" end }, {})
    assert.is_false(ok)
    assert.matches("step x returned a string; expected a table of counts or nothing", err, 1, true)
  end)

  it("lets steps yield, as I/O calls do inside the runtime", function()
    local co = coroutine.create(function()
      return steps.run({ "io", "after" }, {
        io = function(state) state.reply = coroutine.yield("waiting") end,
        after = function(state) return { got = #state.reply } end,
      }, {}, { clock = ticking(1) })
    end)
    local ok, first = coroutine.resume(co)
    assert.is_true(ok)
    assert.equal("waiting", first)
    local ok2, res = coroutine.resume(co, "reply")
    assert.is_true(ok2)
    assert.same({ got = 5 }, res.steps[2].counts)
  end)

  it("raises on misuse", function()
    assert.has_error(function() steps.run({}, {}, nil) end,
      "bad argument #3 to 'run': state table expected, got nil")
    assert.has_error(function() steps.run({}, {}, {}, { clock = 5 }) end,
      "bad option 'clock' to 'run': function expected, got number")
  end)
end)
