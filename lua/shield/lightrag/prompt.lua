-- The LightRAG-style extraction prompts: the entity/relation extraction request
-- (delimited records, one per line, a completion marker) and the gleaning
-- follow-up. Used by the extract step; parser.lua reads the answers. Pure Lua.

local concat, rep, max = table.concat, string.rep, math.max
local gmatch = string.gmatch

local _M = {}

_M.TUPLE_DELIMITER = "<|#|>"
_M.COMPLETION_DELIMITER = "<|COMPLETE|>"
_M.OTHER_TYPE = "Other"
_M.LANGUAGE = "English"

-- LightRAG's current default entity types.
_M.ENTITY_TYPES = {
  "Person", "Creature", "Organization", "Location", "Event", "Concept",
  "Method", "Content", "Data", "Artifact", "NaturalObject",
}

local D, DONE = _M.TUPLE_DELIMITER, _M.COMPLETION_DELIMITER

local function options(opts)
  if opts ~= nil and type(opts) ~= "table" then
    error("bad argument 'opts': table expected, got " .. type(opts), 3)
  end
  opts = opts or {}
  local types = opts.entity_types or _M.ENTITY_TYPES
  if type(types) ~= "table" or #types == 0 then
    error("bad option 'entity_types': non-empty array of strings expected", 3)
  end
  for i = 1, #types do
    if type(types[i]) ~= "string" or types[i] == "" then
      error("bad option 'entity_types': entry " .. i .. " is not a non-empty string", 3)
    end
  end
  local language = opts.language or _M.LANGUAGE
  if type(language) ~= "string" or language == "" then
    error("bad option 'language': non-empty string expected", 3)
  end
  return concat(types, ", "), language
end

local EXAMPLE = concat({
  "Entity types: [Person, Organization, Location, Artifact]",
  "Text:",
  "```",
  "Grace Hopper joined the Eckert-Mauchly Computer Corporation in Philadelphia in 1949,",
  "where she led the team that wrote the A-0 compiler.",
  "```",
  "Output:",
  "entity" .. D .. "Grace Hopper" .. D .. "Person" .. D
    .. "Grace Hopper joined the Eckert-Mauchly Computer Corporation in 1949 and led the team that wrote the A-0 compiler.",
  "entity" .. D .. "Eckert-Mauchly Computer Corporation" .. D .. "Organization" .. D
    .. "A company in Philadelphia that Grace Hopper joined in 1949.",
  "entity" .. D .. "Philadelphia" .. D .. "Location" .. D
    .. "The city where the Eckert-Mauchly Computer Corporation was based.",
  "entity" .. D .. "A-0 Compiler" .. D .. "Artifact" .. D
    .. "A compiler written by a team that Grace Hopper led.",
  "relation" .. D .. "Grace Hopper" .. D .. "Eckert-Mauchly Computer Corporation" .. D
    .. "employment" .. D .. "Grace Hopper joined the Eckert-Mauchly Computer Corporation in 1949.",
  "relation" .. D .. "Grace Hopper" .. D .. "A-0 Compiler" .. D
    .. "authorship, software" .. D .. "Grace Hopper led the team that wrote the A-0 compiler.",
  "relation" .. D .. "Eckert-Mauchly Computer Corporation" .. D .. "Philadelphia" .. D
    .. "location" .. D .. "The Eckert-Mauchly Computer Corporation was based in Philadelphia.",
  DONE,
}, "\n")

-- The system message: role, record format, rules and one worked example.
function _M.system(opts)
  local types, language = options(opts)
  return concat({
    "---Role---",
    "You build a knowledge graph. Read the text you are given and list its named",
    "entities and the relationships between them as delimited records.",
    "",
    "---Record format---",
    "Write one record per line and nothing else.",
    "An entity record has 4 fields:",
    "entity" .. D .. "entity_name" .. D .. "entity_type" .. D .. "entity_description",
    "A relation record has 5 fields:",
    "relation" .. D .. "source_entity" .. D .. "target_entity" .. D
      .. "relationship_keywords" .. D .. "relationship_description",
    "",
    "---Rules---",
    "1. entity_name: the name as the text writes it (title case for English names). Use the",
    "   same name every time the same entity appears.",
    "2. entity_type: exactly one of [" .. types .. "]. If none fits, write " .. _M.OTHER_TYPE .. ".",
    "3. entity_description: what the text states about the entity, in one or two sentences.",
    "   Add nothing the text does not say.",
    "4. Relations connect entities you listed; source_entity and target_entity must repeat",
    "   their entity_name exactly. Relations are undirected: list each pair once.",
    "5. relationship_keywords: a few comma-separated words naming the kind of relation.",
    "6. " .. D .. " only separates fields. Never put it inside a field and never add fields.",
    "7. List every entity first, then every relation.",
    "8. Write in " .. language .. "; keep proper nouns in their original language.",
    "9. After the last record, write " .. DONE .. " on a line of its own.",
    "",
    "---Example---",
    EXAMPLE,
  }, "\n")
end

-- A fence longer than any run of backticks inside text, so text cannot close it.
local function fence(text)
  local longest = 0
  for run in gmatch(text, "`+") do longest = max(longest, #run) end
  return rep("`", max(3, longest + 1))
end

-- The user message carrying the chunk to extract from.
function _M.user(text, opts)
  if type(text) ~= "string" then
    error("bad argument #1 to 'user': string expected, got " .. type(text), 2)
  end
  local types = options(opts)
  local f = fence(text)
  return concat({
    "---Task---",
    "Extract the entities and relations of the text below as records in the format above.",
    "Output the records only, no introduction and no commentary, then " .. DONE .. ".",
    "",
    "Entity types: [" .. types .. "]",
    "Text:",
    f,
    text,
    f,
  }, "\n")
end

-- The gleaning follow-up: ask for what the previous answer missed or broke.
function _M.gleaning(opts)
  options(opts)
  return concat({
    "---Task---",
    "Your last answer missed some entities or relations of the same text, or wrote some",
    "records in a broken format. Output only the records that were missing, and corrected",
    "versions of the broken ones, in the same format: entity records with 4 fields, relation",
    "records with 5 fields, fields separated by " .. D .. ", one record per line.",
    "Do not repeat records that were already complete and correct.",
    "Finish with " .. DONE .. " on a line of its own.",
  }, "\n")
end

-- Chat messages (OpenAI / Ollama shape) for the first extraction request.
function _M.messages(text, opts)
  return {
    { role = "system", content = _M.system(opts) },
    { role = "user", content = _M.user(text, opts) },
  }
end

-- The messages of a gleaning pass: the conversation so far, the model's last
-- answer, and the follow-up. Returns a new array; history is left unchanged.
function _M.gleaning_messages(history, answer, opts)
  if type(history) ~= "table" then
    error("bad argument #1 to 'gleaning_messages': table expected, got " .. type(history), 2)
  end
  if type(answer) ~= "string" then
    error("bad argument #2 to 'gleaning_messages': string expected, got " .. type(answer), 2)
  end
  local out = {}
  for i = 1, #history do out[i] = history[i] end
  out[#out + 1] = { role = "assistant", content = answer }
  out[#out + 1] = { role = "user", content = _M.gleaning(opts) }
  return out
end

return _M
