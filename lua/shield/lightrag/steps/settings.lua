-- Validation of the script's settings (the free-form `lightrag` table of the
-- configuration): each backend reads its section against a small spec, so a
-- typo or a wrong type fails init (and so a reload) naming the full key path.
-- Used by llm.lua, embedding.lua, qdrant.lua and the pipeline. Pure Lua.

local type, pairs, error, tostring = type, pairs, error, tostring
local format, concat, sort, floor = string.format, table.concat, table.sort, math.floor

local _M = {}

local function fail(path, msg)
  error(format("%s: %s", path, msg), 0)
end

local function known(spec)
  local names = {}
  for k in pairs(spec) do names[#names + 1] = k end
  sort(names)
  return concat(names, ", ")
end

-- kinds: "table", "string" (non-empty), "number" (> 0), "count" (integer >= 0),
-- "positive" (integer >= 1), "fraction" (number >= 0), "strings" (non-empty
-- array of non-empty strings), or an array of allowed strings.
local function check(path, kind, v)
  if type(kind) == "table" then
    for i = 1, #kind do
      if v == kind[i] then return end
    end
    fail(path, format("one of %s expected, got %s", concat(kind, ", "), tostring(v)))
  elseif kind == "table" then
    if type(v) ~= "table" then fail(path, "table expected, got " .. type(v)) end
  elseif kind == "string" then
    if type(v) ~= "string" or v == "" then fail(path, "non-empty string expected, got " .. type(v)) end
  elseif kind == "strings" then
    if type(v) ~= "table" or #v == 0 then fail(path, "non-empty array of strings expected") end
    for i = 1, #v do
      if type(v[i]) ~= "string" or v[i] == "" then fail(path, format("entry %d is not a non-empty string", i)) end
    end
  else
    if type(v) ~= "number" or v ~= v then fail(path, "number expected, got " .. type(v)) end
    if kind == "number" and v <= 0 then fail(path, "positive number expected") end
    if kind == "fraction" and v < 0 then fail(path, "number >= 0 expected") end
    if kind == "count" and (v < 0 or v ~= floor(v)) then fail(path, "integer >= 0 expected") end
    if kind == "positive" and (v < 1 or v ~= floor(v)) then fail(path, "integer >= 1 expected") end
  end
end

-- read(t, path, spec) -> a new table with every key of spec: t's value or the
-- default. spec: {key = {kind, default}}; a default of false means optional.
-- Raises "path.key: ..." for unknown keys and wrong values.
function _M.read(t, path, spec)
  if t == nil then t = {} end
  if type(t) ~= "table" then fail(path, "table expected, got " .. type(t)) end
  for k in pairs(t) do
    if spec[k] == nil then
      fail(path .. "." .. tostring(k), "unknown key (known: " .. known(spec) .. ")")
    end
  end
  local out = {}
  for k, s in pairs(spec) do
    local v = t[k]
    if v == nil and s[2] ~= false then v = s[2] end
    if v ~= nil then check(path .. "." .. k, s[1], v) end
    out[k] = v
  end
  return out
end

-- Joins a base URL and a path without doubling the slash.
function _M.join_url(base, path)
  return (base:gsub("/+$", "")) .. path
end

return _M
