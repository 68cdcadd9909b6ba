-- UTF-8 safe text helpers for the LightRAG modules (parser, offline, merge,
-- embed_hash): trimming, quote stripping, plain splitting, capped truncation.
-- Pure Lua on bytes. No locale-dependent classes (%s, %a, %u, string.lower):
-- in a Latin-1 locale they match 0xA0 and friends and cut UTF-8 sequences.

local byte, char, sub, find, gsub = string.byte, string.char, string.sub, string.find, string.gsub
local concat = table.concat

local _M = {}

local ASCII_SPACE = { [9] = true, [10] = true, [11] = true, [12] = true, [13] = true, [32] = true }

-- Three-byte Unicode spaces that LLMs and word processors emit: U+2000..U+200B,
-- U+202F, U+205F, U+3000, U+FEFF.
local function space3(b1, b2, b3)
  if b1 == 0xE2 then
    return (b2 == 0x80 and ((b3 >= 0x80 and b3 <= 0x8B) or b3 == 0xAF))
        or (b2 == 0x81 and b3 == 0x9F)
  end
  return (b1 == 0xE3 and b2 == 0x80 and b3 == 0x80)
      or (b1 == 0xEF and b2 == 0xBB and b3 == 0xBF)
end

-- Quote marks stripped around names: " ' ` and the typographic ones.
local QUOTE2 = { ["\194\171"] = true, ["\194\187"] = true }              -- « »
local QUOTE3 = {
  ["\226\128\152"] = true, ["\226\128\153"] = true,                    -- ‘ ’
  ["\226\128\156"] = true, ["\226\128\157"] = true,                    -- “ ”
  ["\227\128\138"] = true, ["\227\128\139"] = true,                    -- 《 》
  ["\227\128\140"] = true, ["\227\128\141"] = true,                    -- 「 」
}
local QUOTE1 = { [34] = true, [39] = true, [96] = true }

-- Length of the space (or quote, when quotes) character starting at i, or 0.
local function lead_len(s, i, quotes)
  local b1 = byte(s, i)
  if ASCII_SPACE[b1] or (quotes and QUOTE1[b1]) then return 1 end
  if b1 == 0xC2 then
    local b2 = byte(s, i + 1)
    if b2 == 0xA0 or (quotes and QUOTE2[sub(s, i, i + 1)]) then return 2 end
  elseif b1 == 0xE2 or b1 == 0xE3 or b1 == 0xEF then
    local b2, b3 = byte(s, i + 1, i + 2)
    if b3 and (space3(b1, b2, b3) or (quotes and QUOTE3[sub(s, i, i + 2)])) then return 3 end
  end
  return 0
end

-- Length of the space (or quote) character ending at j, or 0. UTF-8 is
-- self-synchronizing, so matching a whole sequence at the end is safe.
local function tail_len(s, j, quotes)
  local b = byte(s, j)
  if ASCII_SPACE[b] or (quotes and QUOTE1[b]) then return 1 end
  if b < 0x80 or j < 2 then return 0 end
  if byte(s, j - 1) == 0xC2 and (b == 0xA0 or (quotes and QUOTE2[sub(s, j - 1, j)])) then
    return 2
  end
  if j >= 3 then
    local b1, b2 = byte(s, j - 2, j - 1)
    if space3(b1, b2, b) or (quotes and QUOTE3[sub(s, j - 2, j)]) then return 3 end
  end
  return 0
end

local function strip(s, quotes)
  local i, j = 1, #s
  while i <= j do
    local n = lead_len(s, i, quotes)
    if n == 0 then break end
    i = i + n
  end
  while j >= i do
    local n = tail_len(s, j, quotes)
    if n == 0 then break end
    j = j - n
  end
  return sub(s, i, j)
end

-- Trims ASCII and Unicode whitespace from both ends.
function _M.trim(s)
  return strip(s, false)
end

-- Trims whitespace and any quote marks from both ends (LightRAG strips quotes
-- around names the same way, balanced or not).
function _M.strip_quotes(s)
  return strip(s, true)
end

-- Trims whitespace, then one balanced pair of ASCII double quotes.
function _M.unquote(s)
  s = strip(s, false)
  if #s >= 2 and byte(s, 1) == 34 and byte(s, -1) == 34 then
    s = strip(sub(s, 2, -2), false)
  end
  return s
end

-- Collapses runs of whitespace (ASCII, no-break and wide spaces) to one space.
function _M.squeeze(s)
  s = gsub(s, "\194\160", " ")
  s = gsub(s, "\226\128[\128-\138\175]", " ")
  s = gsub(s, "\227\128\128", " ")
  s = gsub(s, "\226\128\139", "")          -- zero-width space
  s = gsub(s, "\239\187\191", "")          -- byte order mark
  return (gsub(s, "[ \t\r\n\v\f]+", " "))
end

local LOWER = {}
for c = 65, 90 do LOWER[char(c)] = char(c + 32) end

-- Lowercases A-Z only; other bytes are left alone whatever the locale.
function _M.lower_ascii(s)
  return (gsub(s, "[A-Z]", LOWER))
end

-- Splits on a plain (non-pattern) separator; keeps empty fields.
function _M.split(s, sep)
  local out, n, i = {}, 0, 1
  local len = #sep
  while true do
    local a = find(s, sep, i, true)
    n = n + 1
    if not a then
      out[n] = sub(s, i)
      return out
    end
    out[n] = sub(s, i, a - 1)
    i = a + len
  end
end

-- Cuts s to at most max bytes without splitting a UTF-8 sequence.
function _M.truncate(s, max)
  if #s <= max then return s end
  local j = max
  -- move the cut back until the byte after it starts a character
  while j > 0 and byte(s, j + 1) and byte(s, j + 1) >= 0x80 and byte(s, j + 1) < 0xC0 do
    j = j - 1
  end
  return sub(s, 1, j)
end

-- Joins the distinct non-empty values of list with sep, keeping first-seen order.
function _M.join_unique(list, sep)
  local seen, out = {}, {}
  for i = 1, #list do
    local v = list[i]
    if v ~= "" and not seen[v] then
      seen[v] = true
      out[#out + 1] = v
    end
  end
  return concat(out, sep), out
end

return _M
