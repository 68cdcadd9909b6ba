-- The offline stand-in embedder: deterministic feature hashing. Words (ASCII
-- and Latin-1 lowercased) and their character trigrams are hashed with 32-bit
-- FNV-1a into a fixed number of signed buckets; the vector is unit-normalized.
-- Used by the embed step when no embedding service is configured. Needs
-- LuaJIT's bit library. Text with no words is an error (nil, "empty text"):
-- a zero vector has no direction and breaks cosine distance in vector stores.

local bit = require "bit"
local text = require "shield.lightrag.text"

local bxor, band, rshift, lshift, tobit = bit.bxor, bit.band, bit.rshift, bit.lshift, bit.tobit
local byte, char, sub, gsub, gmatch = string.byte, string.char, string.sub, string.gsub, string.gmatch
local sqrt, floor = math.sqrt, math.floor

local _M = {}

_M.DEFAULT_DIM = 256
_M.WORD_WEIGHT = 1.0     -- each word occurrence
_M.GRAM_WEIGHT = 1.0     -- norm of the trigram block of one occurrence, whatever the word length

local FNV_OFFSET = tobit(0x811C9DC5)

-- 32-bit FNV-1a as a signed int32. The prime 16777619 is 2^24 + 403; the
-- product is split so every intermediate stays exact in a double.
local function fnv1a(s)
  local h = FNV_OFFSET
  for i = 1, #s do
    h = bxor(h, byte(s, i))
    h = tobit(lshift(h, 24) + h * 403)
  end
  return h
end

-- fnv1a(s) -> the 32-bit FNV-1a hash of s as a number in [0, 2^32).
function _M.fnv1a(s)
  if type(s) ~= "string" then
    error("bad argument #1 to 'fnv1a': string expected, got " .. type(s), 2)
  end
  return fnv1a(s) % 4294967296
end

local function lower(s)
  s = text.lower_ascii(s)
  -- Latin-1 capitals U+00C0..U+00DE (except U+00D7) sit 0x20 below their lowercase
  return (gsub(s, "\195([\128-\158])", function(c)
    if c == "\151" then return nil end
    return "\195" .. char(byte(c) + 32)
  end))
end

-- Punctuation outside ASCII (no-break space, quotes, dashes, CJK marks) splits words.
local function depunct(s)
  s = gsub(s, "\194[\128-\191]", " ")
  s = gsub(s, "\226[\128-\191][\128-\191]", " ")
  s = gsub(s, "\227\128[\128-\191]", " ")
  return (gsub(s, "\239\187\191", " "))
end

local function add(vec, dim, feature, weight)
  local h = fnv1a(feature)
  -- fold the high half in: FNV's low bits alone mix poorly; the sign comes
  -- from bit 31, which the bucket index never uses
  local idx = band(bxor(h, rshift(h, 16)), 0x7FFFFFFF) % dim + 1
  if h < 0 then weight = -weight end
  vec[idx] = vec[idx] + weight
end

local function check_dim(opts, fname)
  if opts ~= nil and type(opts) ~= "table" then
    error("bad argument #2 to '" .. fname .. "': table expected, got " .. type(opts), 3)
  end
  local dim = opts and opts.dim or _M.DEFAULT_DIM
  if type(dim) ~= "number" or dim < 1 or dim ~= floor(dim) then
    error("bad option 'dim' to '" .. fname .. "': positive integer expected", 3)
  end
  return dim
end

-- embed(text[, {dim=256}]) -> array of dim numbers with norm 1, or nil, "empty text"
function _M.embed(s, opts)
  if type(s) ~= "string" then
    error("bad argument #1 to 'embed': string expected, got " .. type(s), 2)
  end
  local dim = check_dim(opts, "embed")
  local vec = {}
  for i = 1, dim do vec[i] = 0 end
  local words = 0
  for w in gmatch(depunct(lower(s)), "[0-9a-z\128-\255]+") do
    words = words + 1
    add(vec, dim, "w:" .. w, _M.WORD_WEIGHT)
    local padded = "<" .. w .. ">"
    local grams = #padded - 2
    local gram_weight = _M.GRAM_WEIGHT / sqrt(grams)
    for i = 1, grams do
      add(vec, dim, "g:" .. sub(padded, i, i + 2), gram_weight)
    end
  end
  if words == 0 then return nil, "empty text" end
  local norm = 0
  for i = 1, dim do norm = norm + vec[i] * vec[i] end
  if norm == 0 then return nil, "zero vector: every feature cancelled" end
  norm = sqrt(norm)
  for i = 1, dim do vec[i] = vec[i] / norm end
  return vec
end

-- cosine(a, b) -> the cosine similarity of two vectors of the same length.
function _M.cosine(a, b)
  if type(a) ~= "table" or type(b) ~= "table" or #a ~= #b or #a == 0 then
    error("bad arguments to 'cosine': two non-empty vectors of the same length expected", 2)
  end
  local dot, na, nb = 0, 0, 0
  for i = 1, #a do
    dot = dot + a[i] * b[i]
    na = na + a[i] * a[i]
    nb = nb + b[i] * b[i]
  end
  if na == 0 or nb == 0 then return 0 end
  return dot / (sqrt(na) * sqrt(nb))
end

return _M
