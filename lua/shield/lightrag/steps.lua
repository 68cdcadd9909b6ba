-- The step-order runner: a processing script declares its steps in one list
-- (names looked up in a step table, or functions) and run() calls them in
-- order on one shared per-chunk state, timing each with an injectable clock.
-- Pure Lua; steps may yield (pcall is yieldable in LuaJIT).

local format, concat, sort = string.format, table.concat, table.sort

local _M = {}

local function known_names(steps)
  local names = {}
  for k in pairs(steps) do
    if type(k) == "string" then names[#names + 1] = k end
  end
  sort(names)
  return concat(names, ", ")
end

-- resolve(order, steps) -> array of {name=, fn=}; raises naming the first
-- unknown step, so a script can check its order once in init().
function _M.resolve(order, steps)
  if type(order) ~= "table" then
    error("bad argument #1 to 'resolve': step order (array) expected, got " .. type(order), 2)
  end
  if steps ~= nil and type(steps) ~= "table" then
    error("bad argument #2 to 'resolve': step table expected, got " .. type(steps), 2)
  end
  steps = steps or {}
  local out = {}
  for i = 1, #order do
    local s = order[i]
    if type(s) == "function" then
      out[i] = { name = "step" .. i, fn = s }
    elseif type(s) == "string" then
      local fn = steps[s]
      if type(fn) ~= "function" then
        error(format("unknown step '%s' at position %d of the step order (known: %s)",
          s, i, known_names(steps)), 2)
      end
      out[i] = { name = s, fn = fn }
    else
      error(format("bad step at position %d of the step order: name or function expected, got %s",
        i, type(s)), 2)
    end
  end
  return out
end

local function default_clock()
  return os.clock() * 1000
end

-- run(order, steps, state[, {clock=, ctx=}]) -> {steps={{name=, ms=, counts=}}, total_ms=}
--   Each step is called as fn(state, ctx); a table it returns is kept as its
--   counts. clock() returns milliseconds (default os.clock, CPU time: pass
--   shield.now for wall time). A failing step's error is raised again after
--   its timing is recorded: string errors gain a "step <name>: " prefix, table
--   errors (shield.fail) keep their identity and get a step field.
function _M.run(order, steps, state, opts)
  if type(state) ~= "table" then
    error("bad argument #3 to 'run': state table expected, got " .. type(state), 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("bad argument #4 to 'run': table expected, got " .. type(opts), 2)
  end
  opts = opts or {}
  local clock = opts.clock or default_clock
  if type(clock) ~= "function" then
    error("bad option 'clock' to 'run': function expected, got " .. type(clock), 2)
  end
  local ok, plan = pcall(_M.resolve, order, steps)
  if not ok then error(plan, 2) end
  local result = { steps = {}, total_ms = 0 }
  local t0 = clock()
  for i = 1, #plan do
    local step = plan[i]
    local started = clock()
    local done, counts = pcall(step.fn, state, opts.ctx)
    local finished = clock()
    local rec = { name = step.name, ms = finished - started }
    result.steps[i] = rec
    result.total_ms = finished - t0
    if not done then
      local err = counts
      if type(err) == "table" then
        if err.step == nil then err.step = step.name end
        error(err, 0)
      end
      error(format("step %s: %s", step.name, tostring(err)), 0)
    end
    if counts ~= nil and type(counts) ~= "table" then
      error(format("step %s returned a %s; expected a table of counts or nothing",
        step.name, type(counts)), 2)
    end
    rec.counts = counts
  end
  return result
end

return _M
