-- A tiny assertion helper for Lua test files run with `shield-runtime run`:
-- prints one line per check and a final "N passed, N failed" line; done()
-- returns the exit status.
local _M = {}
local passed, failed = 0, 0

local function report(ok, name, detail)
  if ok then
    passed = passed + 1
    print("ok - " .. name)
  else
    failed = failed + 1
    print("FAIL - " .. name .. (detail and (": " .. detail) or ""))
  end
  return ok
end

function _M.ok(v, name) return report(v and true or false, name, "got " .. tostring(v)) end

function _M.eq(got, want, name)
  return report(got == want, name, string.format("want %s, got %s", tostring(want), tostring(got)))
end

function _M.like(got, pattern, name)
  return report(type(got) == "string" and got:find(pattern) ~= nil, name,
    string.format("want match of %q, got %s", pattern, tostring(got)))
end

function _M.done()
  print(string.format("%d passed, %d failed", passed, failed))
  return failed == 0 and 0 or 1
end

return _M
