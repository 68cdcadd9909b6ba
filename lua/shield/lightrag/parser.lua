-- Parser for LightRAG extraction answers, both formats: the current one
-- (entity<|#|>name<|#|>type<|#|>description, one record per line) and the older
-- tuple one (("entity"<|>name<|>type<|>description) records separated by ##).
-- Used by the extract step on LLM and offline answers. Relies on text.lua, prompt.lua.

local text = require "shield.lightrag.text"
local prompt = require "shield.lightrag.prompt"

local find, sub, gsub, match, format = string.find, string.sub, string.gsub, string.match, string.format
local concat = table.concat
local trim, strip_quotes, unquote, squeeze = text.trim, text.strip_quotes, text.unquote, text.squeeze
local lower_ascii, split, truncate = text.lower_ascii, text.split, text.truncate

local _M = {}

_M.SEP = "<SEP>"            -- joins the distinct descriptions of one entity or relation
_M.MAX_NAME_BYTES = 256     -- LightRAG's name cap; longer names are cut (UTF-8 safe)

local DELIM, OLD_DELIM = prompt.TUPLE_DELIMITER, "<|>"
local SEP = _M.SEP
local FIELDS = { entity = 4, relation = 5 }

-- "entity", "relation" or nil for the first field of a record: case, quotes,
-- brackets and list markers ("1.", "-") around it do not matter.
local function record_kind(field)
  local k = lower_ascii(strip_quotes(field))
  k = gsub(k, "^[%-%*0-9%.%) \t]*%(?", "")
  k = strip_quotes(k)
  if k == "entity" then return "entity" end
  if k == "relation" or k == "relationship" then return "relation" end
  return nil, k
end

-- Reasoning models wrap their thoughts in <think>; only the answer counts.
local function drop_thinking(s)
  s = gsub(s, "<think>.-</think>", "")
  local _, close = find(s, "</think>", 1, true)
  while close do
    s = sub(s, close + 1)
    _, close = find(s, "</think>", 1, true)
  end
  local open = find(s, "<think>", 1, true)
  if open then s = sub(s, 1, open - 1) end
  return s
end

local function type_map(types)
  local m = { other = prompt.OTHER_TYPE }
  for i = 1, #types do
    m[gsub(lower_ascii(types[i]), "[ _%-]", "")] = types[i]
  end
  return m
end

-- Accumulator: entities by name, relations by unordered pair, in first-seen order.
local function new_acc(opts)
  local types = opts.entity_types
  if types ~= nil and type(types) ~= "table" then
    error("bad option 'entity_types': array of strings expected, got " .. type(types), 3)
  end
  return {
    entities = {}, edesc = {}, by_name = {},
    relations = {}, rdesc = {}, by_pair = {},
    malformed = 0, ignored = 0, warnings = {},
    types = type_map(opts.entity_types or prompt.ENTITY_TYPES),
  }
end

local function warn(acc, line, msg)
  acc.warnings[#acc.warnings + 1] = format("line %d: %s", line, msg)
end

local function malformed(acc, line, msg)
  acc.malformed = acc.malformed + 1
  warn(acc, line, msg)
end

-- Adds the distinct parts of desc (itself possibly <SEP>-joined) to list;
-- returns true when something new was added.
local function add_parts(list, desc)
  local added = false
  local parts = split(desc, SEP)
  for i = 1, #parts do
    local p = trim(parts[i])
    if p ~= "" and not list[p] then
      list[p] = true
      list[#list + 1] = p
      added = true
    end
  end
  return added
end

local function pair_key(a, b)
  if a > b then a, b = b, a end
  return a .. "\0" .. b
end

local function add_entity(acc, name, etype, desc)
  local e = acc.by_name[name]
  if not e then
    e = { name = name, type = etype }
    acc.by_name[name] = e
    acc.entities[#acc.entities + 1] = e
    acc.edesc[e] = {}
  elseif e.type == prompt.OTHER_TYPE then
    e.type = etype         -- a specific type beats Other; otherwise first seen wins
  end
  add_parts(acc.edesc[e], desc)
end

local function add_keywords(r, keywords)
  local parts = split((gsub(keywords, "\239\188\140", ",")), ",")    -- full-width comma too
  for i = 1, #parts do
    local k = strip_quotes(parts[i])
    if k ~= "" and not r.kwset[k] then
      r.kwset[k] = true
      r.kwlist[#r.kwlist + 1] = k
    end
  end
end

local function add_relation(acc, src, tgt, keywords, desc, weight)
  local key = pair_key(src, tgt)
  local r = acc.by_pair[key]
  if not r then
    r = { source = src, target = tgt, weight = 0, kwset = {}, kwlist = {} }
    acc.by_pair[key] = r
    acc.relations[#acc.relations + 1] = r
    acc.rdesc[r] = {}
  end
  add_keywords(r, keywords)
  -- a repeated description is the same observation: it adds no weight
  if add_parts(acc.rdesc[r], desc) or (desc == "" and r.weight == 0) then
    r.weight = r.weight + weight
  end
end

local function clean_name(acc, line, raw, what)
  local name = strip_quotes(squeeze(raw))
  if name == "" then
    return malformed(acc, line, what .. " has an empty name")
  end
  if find(name, "<|", 1, true) or find(name, "|>", 1, true) then
    return malformed(acc, line, what .. " name contains a delimiter fragment")
  end
  if #name > _M.MAX_NAME_BYTES then
    warn(acc, line, format("name longer than %d bytes cut", _M.MAX_NAME_BYTES))
    name = strip_quotes(truncate(name, _M.MAX_NAME_BYTES))
  end
  return name
end

local function clean_type(acc, raw)
  local t = gsub(lower_ascii(strip_quotes(raw)), "[ _%-]", "")
  return acc.types[t] or prompt.OTHER_TYPE
end

-- Positive finite strength, else LightRAG's default of 1.
local function strength(raw)
  local w = tonumber(strip_quotes(raw))
  if not w or w ~= w or w <= 0 or w == math.huge then return 1 end
  return w
end

-- fields: the raw fields of one record; tuple: true for the older format, where
-- relations are (source, target, description, keywords[, strength]).
local function add_record(acc, line, fields, tuple)
  local kind, word = record_kind(fields[1])
  if not kind then
    if word == "content_keywords" then          -- a legitimate old-format record we do not use
      acc.ignored = acc.ignored + 1
      return
    end
    return malformed(acc, line, format("unknown record type '%s'", truncate(word, 40)))
  end
  local n = #fields
  if kind == "entity" then
    if n ~= 4 then
      return malformed(acc, line, format("entity record has %d fields, expected 4", n))
    end
    local name = clean_name(acc, line, fields[2], "entity")
    if not name then return end
    local desc = unquote(fields[4])
    if desc == "" then
      return malformed(acc, line, format("entity '%s' has an empty description", name))
    end
    return add_entity(acc, name, clean_type(acc, fields[3]), desc)
  end
  local ok_count = tuple and (n == 5 or n == 6) or (not tuple and n == 5)
  if not ok_count then
    return malformed(acc, line, format("relation record has %d fields, expected %s",
      n, tuple and "5 or 6" or "5"))
  end
  local src = clean_name(acc, line, fields[2], "relation source")
  if not src then return end
  local tgt = clean_name(acc, line, fields[3], "relation target")
  if not tgt then return end
  if src == tgt then
    return malformed(acc, line, format("relation links '%s' to itself", src))
  end
  if tuple then
    return add_relation(acc, src, tgt, fields[5], unquote(fields[4]),
      n == 6 and strength(fields[6]) or 1)
  end
  return add_relation(acc, src, tgt, fields[4], unquote(fields[5]), 1)
end

-- Current format. An LLM sometimes glues records onto one line; a field that
-- names a record kind starts a new record once the current one is full.
local function current_line(acc, lineno, line)
  local fields = split(line, DELIM)
  local rec = {}
  for i = 1, #fields do
    local kind = i > 1 and record_kind(fields[i])
    local want = FIELDS[record_kind(rec[1] or "") or ""]
    if kind and want and #rec >= want then
      add_record(acc, lineno, rec, false)
      rec = {}
    end
    rec[#rec + 1] = fields[i]
  end
  add_record(acc, lineno, rec, false)
end

-- Older tuple format: ("entity"<|>...) records separated by ##.
local function tuple_line(acc, lineno, line)
  local pieces = split(line, "##")
  for i = 1, #pieces do
    local piece = trim(pieces[i])
    if piece ~= "" then
      local body = match(piece, "%((.*)%)")
      if not body then
        malformed(acc, lineno, "tuple record without parentheses")
      else
        add_record(acc, lineno, split(body, OLD_DELIM), true)
      end
    end
  end
end

local function finish(acc, complete)
  local entities, relations = {}, {}
  for i, e in ipairs(acc.entities) do
    entities[i] = { name = e.name, type = e.type, description = concat(acc.edesc[e], SEP) }
  end
  for i, r in ipairs(acc.relations) do
    relations[i] = {
      source = r.source, target = r.target,
      keywords = concat(r.kwlist, ","),
      description = concat(acc.rdesc[r], SEP),
      weight = r.weight,
    }
  end
  return {
    entities = entities, relations = relations,
    malformed = acc.malformed, ignored = acc.ignored,
    complete = complete, warnings = acc.warnings,
  }
end

local function check_opts(opts, fname, argn)
  if opts ~= nil and type(opts) ~= "table" then
    error(format("bad argument #%d to '%s': table expected, got %s", argn, fname, type(opts)), 3)
  end
  return opts or {}
end

-- parse(answer[, {entity_types=}]) -> {entities={{name,type,description}},
--   relations={{source,target,keywords,description,weight}}, malformed=N,
--   ignored=N (non-record lines), complete=bool, warnings={"line N: ..."}}
-- Entities are deduplicated by exact name (case kept), relations by unordered
-- pair; distinct descriptions are joined with <SEP>. Record kinds, types and
-- the completion marker are case-insensitive; unknown types become Other.
function _M.parse(answer, opts)
  if type(answer) ~= "string" then
    error("bad argument #1 to 'parse': string expected, got " .. type(answer), 2)
  end
  local acc = new_acc(check_opts(opts, "parse", 2))
  answer = drop_thinking(answer)
  local complete = find(lower_ascii(answer), "<|complete|>", 1, true) ~= nil
  answer = gsub(answer, "<|[Cc][Oo][Mm][Pp][Ll][Ee][Tt][Ee]|>", "\n")
  -- repair mangled delimiters such as <#>, <| # |> or <|##|>
  answer = gsub(answer, "< *|? *#+ *|? *>", DELIM)
  local lineno = 0
  for line in (answer .. "\n"):gmatch("([^\n]*)\n") do
    lineno = lineno + 1
    line = trim(line)
    if line == "" or find(line, "^```") then
      -- blank lines and code fences carry nothing
    elseif find(line, DELIM, 1, true) then
      current_line(acc, lineno, line)
    elseif find(line, OLD_DELIM, 1, true) then
      tuple_line(acc, lineno, line)
    elseif record_kind(match(line, "^[^ ]*")) then
      malformed(acc, lineno, "record without field delimiters")
    else
      acc.ignored = acc.ignored + 1
    end
  end
  if not complete then
    acc.warnings[#acc.warnings + 1] = "completion marker missing: the answer may be cut off"
  end
  return finish(acc, complete)
end

-- combine(first, second[, opts]) -> one result holding both (a gleaning pass
-- after the first answer), deduplicated by the same rules. complete is true
-- only when both answers were complete; counts and warnings add up.
function _M.combine(a, b, opts)
  if type(a) ~= "table" or type(b) ~= "table" then
    error("bad arguments to 'combine': two parse results expected", 2)
  end
  local acc = new_acc(check_opts(opts, "combine", 3))
  for _, res in ipairs({ a, b }) do
    for _, e in ipairs(res.entities) do add_entity(acc, e.name, e.type, e.description) end
    for _, r in ipairs(res.relations) do
      add_relation(acc, r.source, r.target, r.keywords, r.description, r.weight)
    end
    acc.malformed = acc.malformed + res.malformed
    acc.ignored = acc.ignored + res.ignored
    for _, w in ipairs(res.warnings) do acc.warnings[#acc.warnings + 1] = w end
  end
  return finish(acc, a.complete and b.complete)
end

return _M
