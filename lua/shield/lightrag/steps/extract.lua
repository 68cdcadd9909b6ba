-- Step "extract": entities and relationships of the chunk, from the LLM (with
-- up to max_gleaning follow-up passes for missed records) or, with no LLM
-- configured, from the offline rule-based extractor. Sets state.extraction to
-- a parser.lua result. Malformed records are skipped with one warning per
-- chunk; an answer with no readable record after gleaning fails the chunk for
-- good: asking again would only repeat it.

local shield = require "shield"
local prompt = require "shield.lightrag.prompt"
local parser = require "shield.lightrag.parser"
local offline = require "shield.lightrag.offline"
local service = require "shield.lightrag.steps.service"
local truncate = require("shield.lightrag.text").truncate

local format, concat, min, tostring = string.format, table.concat, math.min, tostring

local _M = {}

_M.WARN_REASONS = 3         -- parser warnings quoted in the malformed-records warning
_M.WARN_REASON_BYTES = 160  -- each cut to this many bytes (UTF-8 safe)

local function has_records(r)
  return #r.entities + #r.relations > 0
end

-- An answer counts as unreadable when it holds no record and is either cut
-- off (no completion marker) or holds broken records; "<|COMPLETE|>" alone
-- is a valid answer for a chunk that names nothing.
local function unreadable(r)
  return not has_records(r) and (r.malformed > 0 or not r.complete)
end

-- Logs how many records the answers held that could not be read, and the
-- first few reasons, so a model drifting from the format shows in the log
-- while the chunk goes on with what was readable. Bounded: a model answering
-- garbage must not flood the log.
local function warn_malformed(state, result)
  if result.malformed == 0 then return end
  local warnings, reasons = result.warnings, {}
  for i = 1, min(#warnings, _M.WARN_REASONS) do
    reasons[i] = truncate(warnings[i], _M.WARN_REASON_BYTES)
  end
  local more = #warnings - #reasons
  local task = state.task or {}
  shield.log.warn(format("extract: %d malformed record(s) skipped in chunk %s of job %s: %s%s",
    result.malformed, tostring(task.chunk_id), tostring(task.job_id), concat(reasons, "; "),
    more > 0 and format("; and %d more warning(s)", more) or ""))
end

-- run(state) -> counts. Uses state.content and state.pipeline (llm, opts,
-- max_gleaning).
function _M.run(state)
  local p = state.pipeline
  local opts = p.extract_opts
  local result, gleanings = nil, 0
  if not p.llm then
    result = parser.parse(offline.extract(state.content), opts)
  else
    local messages = prompt.messages(state.content, opts)
    local answer = p.llm:chat(messages)
    result = parser.parse(answer, opts)
    for _ = 1, p.max_gleaning do
      messages = prompt.gleaning_messages(messages, answer, opts)
      answer = p.llm:chat(messages)
      gleanings = gleanings + 1
      local more = parser.parse(answer, opts)
      result = parser.combine(result, more, opts)
      if not has_records(more) then break end
    end
    warn_malformed(state, result)
    if unreadable(result) then
      service.fail(format("llm: unparseable answer after %d gleaning pass(es): %d malformed record(s)%s%s",
        gleanings, result.malformed, result.complete and "" or ", no completion marker",
        result.warnings[1] and (" (" .. result.warnings[1] .. ")") or ""), false)
    end
  end
  state.extraction = result
  return { entities = #result.entities, relations = #result.relations,
    malformed = result.malformed, gleanings = gleanings }
end

return _M
