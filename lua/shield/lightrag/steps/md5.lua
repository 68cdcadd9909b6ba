-- MD5 (RFC 1321) in pure LuaJIT: the content hashes behind the pipeline's
-- chunk keys and vector ids, as LightRAG derives its ids (md5 of the content).
-- Not for security. Used by the graph and vector steps; needs the bit library.

local bit = require "bit"

local band, bor, bxor, bnot, rol, tobit, bswap, tohex =
  bit.band, bit.bor, bit.bxor, bit.bnot, bit.rol, bit.tobit, bit.bswap, bit.tohex
local byte, char, rep, format, sub = string.byte, string.char, string.rep, string.format, string.sub
local floor, abs, sin = math.floor, math.abs, math.sin

local _M = {}

local S = {
  7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
  5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
  4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
  6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
}
local K = {}
for i = 1, 64 do K[i] = tobit(floor(abs(sin(i)) * 4294967296)) end

-- The message padded to a multiple of 64 bytes: 0x80, zeros, bit length (LE).
local function pad(s)
  local bits = #s * 8
  local tail = {}
  for i = 1, 8 do
    tail[i] = char(bits % 256)
    bits = floor(bits / 256)
  end
  return s .. "\128" .. rep("\0", (55 - #s) % 64) .. table.concat(tail)
end

local function block(h, s, at)
  local x = {}
  for i = 0, 15 do
    local b1, b2, b3, b4 = byte(s, at + i * 4, at + i * 4 + 3)
    x[i] = tobit(b1 + b2 * 256 + b3 * 65536 + b4 * 16777216)
  end
  local a, b, c, d = h[1], h[2], h[3], h[4]
  for i = 0, 63 do
    local f, g
    if i < 16 then
      f, g = bor(band(b, c), band(bnot(b), d)), i
    elseif i < 32 then
      f, g = bor(band(d, b), band(bnot(d), c)), (5 * i + 1) % 16
    elseif i < 48 then
      f, g = bxor(b, c, d), (3 * i + 5) % 16
    else
      f, g = bxor(c, bor(b, bnot(d))), (7 * i) % 16
    end
    a, b, c, d = d, tobit(b + rol(tobit(a + f + K[i + 1] + x[g]), S[i + 1])), b, c
  end
  h[1], h[2], h[3], h[4] = tobit(h[1] + a), tobit(h[2] + b), tobit(h[3] + c), tobit(h[4] + d)
end

-- hex(s) -> the 32 lowercase hex digits of md5(s).
function _M.hex(s)
  if type(s) ~= "string" then
    error("bad argument #1 to 'hex': string expected, got " .. type(s), 2)
  end
  local m = pad(s)
  local h = { tobit(0x67452301), tobit(0xefcdab89), tobit(0x98badcfe), tobit(0x10325476) }
  for at = 1, #m, 64 do block(h, m, at) end
  return tohex(bswap(h[1])) .. tohex(bswap(h[2])) .. tohex(bswap(h[3])) .. tohex(bswap(h[4]))
end

-- uuid(s) -> md5(s) written as a UUID (8-4-4-4-12), the id form Qdrant accepts.
function _M.uuid(s)
  local h = _M.hex(s)
  return format("%s-%s-%s-%s-%s", sub(h, 1, 8), sub(h, 9, 12), sub(h, 13, 16), sub(h, 17, 20), sub(h, 21, 32))
end

return _M
