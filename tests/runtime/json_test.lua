-- shield.json: strict on input (no NaN, Infinity or hex numbers, bounded
-- depth), nil, err instead of raising; encode refuses what JSON cannot say.
-- Run with `shield-runtime run`.
package.path = os.getenv("SHIELD_SOURCE_DIR") .. "/tests/lib/?.lua;" .. package.path
local shield = require "shield"
local t = require "tap"
local json = shield.json

local v = json.decode('{"a":[1,2.5,"x",null,true]}')
t.eq(v and v.a[2], 2.5, "decode: a number")
t.eq(v and v.a[4], json.null, "decode: null is json.null")
for _, bad in ipairs({ "NaN", "[Infinity]", "[-Infinity]", "0x10", '{"a":0x1f}', "{", "" }) do
  local got, err = json.decode(bad)
  t.ok(got == nil and type(err) == "string" and err ~= "", "decode refuses " .. string.format("%q", bad) .. ": " .. tostring(err))
end
local got, err = json.decode(42)
t.eq(got, nil, "decode of a non-string: nil")
t.like(err, "expected a JSON string, got number", "... saying what it got")
got, err = json.decode(string.rep("[", 200) .. string.rep("]", 200))
t.ok(got == nil and err, "decode refuses nesting deeper than 128: " .. tostring(err))

t.eq(json.encode({ a = 1 }), '{"a":1}', "encode: a table")
got, err = json.encode({ x = 0 / 0 })
t.ok(got == nil and err, "encode refuses NaN: " .. tostring(err))
got, err = json.encode({ f = print })
t.ok(got == nil and err, "encode refuses a function: " .. tostring(err))

return t.done()
