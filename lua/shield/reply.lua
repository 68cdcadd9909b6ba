-- Redis reply helpers shared by the supervisor's Lua code.
local _M = {}

-- A flat {field, value, field, value, ...} reply (HGETALL, XINFO) as a table.
function _M.fields(flat)
  local t = {}
  for i = 1, #flat - 1, 2 do
    t[flat[i]] = flat[i + 1]
  end
  return t
end

return _M
