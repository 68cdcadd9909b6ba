-- Per-chunk counts a processing script reports in its result, as
-- `counts = {entities = 12, relations = 7}`: checked and encoded into the text
-- slot of the chunk's ok outcome, from which settle.lua adds the counts of newly
-- counted chunks to the job hash (fields count:<name>, DESIGN section 4).
-- Pure Lua; used by shield.runtime's run_task.
local type, pairs, ipairs, tostring, format, find, sub, concat, sort, floor =
  type, pairs, ipairs, tostring, string.format, string.find, string.sub, table.concat, table.sort, math.floor

local _M = {}

_M.MAX_NAMES = 8
_M.MAX_NAME_BYTES = 32
-- Per chunk. Keeps a batch's sums exact in a double and far from HINCRBY's
-- 64-bit overflow, an error settle.lua could not take back.
_M.MAX_VALUE = 1e9

local function quoted(v)
  if type(v) == "string" then
    return format("%q", sub(v, 1, 40))
  end
  return type(v) .. " " .. tostring(v)
end

-- encode(counts) -> text, or nil and what is wrong with counts. The text is
-- "name=value" pairs sorted by name and joined by ","; "" for an empty table.
function _M.encode(counts)
  if type(counts) ~= "table" then
    return nil, "counts: a table expected, got " .. type(counts)
  end
  local names = {}
  for name, value in pairs(counts) do
    if type(name) ~= "string" or #name > _M.MAX_NAME_BYTES or not find(name, "^[a-z0-9_]+$") then
      return nil, format("counts: bad name %s: 1 to %d characters of a-z, 0-9 and _ expected", quoted(name),
        _M.MAX_NAME_BYTES)
    end
    if type(value) ~= "number" or not (value >= 0 and value <= _M.MAX_VALUE) or value ~= floor(value) then
      return nil, format("counts.%s: an integer from 0 to %d expected, got %s", name, _M.MAX_VALUE, quoted(value))
    end
    names[#names + 1] = name
  end
  if #names > _M.MAX_NAMES then
    return nil, format("counts: %d names, at most %d allowed", #names, _M.MAX_NAMES)
  end
  sort(names)
  for i, name in ipairs(names) do
    names[i] = name .. "=" .. format("%d", counts[name])
  end
  return concat(names, ",")
end

return _M
