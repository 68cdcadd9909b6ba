-- The runtime's own Lua side of a worker: starting the processing script and
-- running one task through it. Called from C (runtime/script.c,
-- runtime/consumer.c) inside light threads; relies on the shield module and the
-- default retry policy.
local shield = require "shield"
local retry_policy = require "shield.retry"
local counts = require "shield.counts"

local type, tostring, tonumber, select, pcall, xpcall, math_floor, math_random, traceback =
  type, tostring, tonumber, select, pcall, xpcall, math.floor, math.random, debug.traceback

local json_decode = shield.json.decode

local _M = {}

-- Runs module.init(config.lightrag) when the script has one.
function _M.init_script(module)
  if module.init then
    module.init(shield.config().lightrag)
  end
  return true
end

-- The context handed to process(): built once per worker and script version.
function _M.new_context(version)
  return {
    lightrag = shield.config().lightrag,
    slot = shield.slot,
    script_version = version,
  }
end

local function error_text(err)
  if shield.is_failure(err) then
    err = err.message
  elseif type(err) == "table" and err.message ~= nil then
    err = err.message
  end
  err = tostring(err)
  if err == "" or err == "nil" then
    return "the script raised an error without a message"
  end
  return err
end

local function retryable(err)
  return not (type(err) == "table" and err.retryable == false)
end

-- Parses the entry's field/value pairs into a task, or returns nil and what is
-- wrong with it.
local function parse_task(message_id, ...)
  local task = { message_id = message_id }
  local n = select("#", ...)
  for i = 1, n - 1, 2 do
    local k, v = select(i, ...)
    task[k] = v
  end
  -- Entries written by enqueue.lua name their job only in the chunk id.
  if task.job_id == nil and type(task.chunk_id) == "string" then
    task.job_id = task.chunk_id:match("^(.*):")
  end
  if type(task.job_id) ~= "string" or task.job_id == "" then
    return nil, "malformed task: no job_id field", task
  end
  if type(task.chunk_id) ~= "string" or task.chunk_id == "" then
    return nil, "malformed task: no chunk_id field", task
  end
  local metadata = task.metadata
  -- "{}" is what most entries carry: taken as it is, without the decoder.
  if metadata == nil or metadata == "" or metadata == "{}" then
    task.metadata = {}
  else
    local decoded, err = json_decode(metadata)
    if type(decoded) ~= "table" then
      return nil, "malformed task: metadata is not a JSON object (" .. (err or type(decoded)) .. ")", task
    end
    task.metadata = decoded
  end
  local attempt = tonumber(task.attempt or "1")
  if not attempt or attempt < 1 or attempt ~= math_floor(attempt) then
    return nil, "malformed task: attempt is not a positive integer", task
  end
  task.attempt = attempt
  task.content = task.content or ""
  return task
end

-- What to do after a failure: the script's retry() or the default policy.
local function decide(module, task, err, max_attempts)
  local decision
  if module.retry then
    local ok, d = pcall(module.retry, task, err, task.attempt)
    if ok and type(d) == "table" then
      decision = d
    else
      shield.log.warn("retry() of the script failed, using the default policy:", ok and "not a table" or d)
    end
  end
  if not decision then
    decision = retry_policy.decide(err, task.attempt, max_attempts, math_random)
  end
  -- Never past the delivery budget, whatever the script says.
  if decision.retry and task.attempt < max_attempts then
    return "retry", shield.now() + (tonumber(decision.delay_ms) or 0)
  end
  return "dead", 0
end

-- Emits a runtime event (worker.started, worker.stopped, ...) with its default
-- payload (the script's event() shapes it for subscribers: shield.events).
function _M.emit(kind, fields)
  local id, err = shield.emit(kind, fields)
  if not id then
    shield.log.warn("cannot emit " .. kind .. ":", err)
  end
  return true
end

-- The traceback of the last error caught by run_task; read right after xpcall
-- returns, before anything can yield, so concurrent tasks cannot mix them up.
local last_traceback
local function keep_traceback(err)
  last_traceback = traceback(error_text(err), 2)
  return err
end

-- The result's counts encoded for settle.lua, "" when it has none. Bad counts
-- are logged and dropped: they never fail a chunk whose work is done.
local function counts_text(task, result)
  if type(result) ~= "table" or result.counts == nil then
    return ""
  end
  local text, problem = counts.encode(result.counts)
  if not text then
    shield.log.warn("chunk " .. task.chunk_id .. " of job " .. task.job_id .. ": " .. problem
      .. "; its counts are ignored")
    return ""
  end
  return text
end

-- Runs one task. Returns op ("ok", "retry" or "dead"), job_id, chunk_id, a
-- number (the retry's due time in ms), a text (the error; for "ok" the
-- encoded counts), and the result table.
function _M.run_task(module, ctx, max_attempts, message_id, ...)
  local task, malformed, partial = parse_task(message_id, ...)
  if not task then
    shield.log.warn(malformed, "(entry " .. message_id .. ")")
    return "dead", partial.job_id or "", partial.chunk_id or "", 0, malformed
  end
  local ok, result = xpcall(module.process, keep_traceback, task, ctx)
  if ok and shield.deadline_left() == 0 then
    -- The script went on past the timeouts its calls got: too late to count.
    ok, result = false, "deadline exceeded: process() returned after pool.timeout_seconds"
    last_traceback = result
  end
  if ok then
    return "ok", task.job_id, task.chunk_id, 0, counts_text(task, result), result
  end
  local where = last_traceback
  local text = error_text(result)
  local op, due = "dead", 0
  if retryable(result) then
    op, due = decide(module, task, result, max_attempts)
  end
  shield.log.warn("chunk " .. task.chunk_id .. " of job " .. task.job_id .. " failed (attempt " .. task.attempt
    .. ", " .. (op == "retry" and "will retry" or "dead-lettered") .. "): " .. where)
  return op, task.job_id, task.chunk_id, due, text
end

return _M
