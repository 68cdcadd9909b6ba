-- The offline stand-in for the extraction LLM: a rule-based extractor that
-- finds capitalized names ("Marie Curie", "University of Paris"), guesses their
-- type from cue words, relates names that share a sentence, and answers in the
-- current LightRAG record format so parser.lua reads it like an LLM answer.
-- Pure Lua; relies on text.lua and prompt.lua. Scripts without cased letters
-- (Chinese, Japanese, ...) yield no names.

local text = require "shield.lightrag.text"
local prompt = require "shield.lightrag.prompt"

local byte, sub, find, gsub, gmatch = string.byte, string.sub, string.find, string.gsub, string.gmatch
local concat = table.concat
local lower_ascii, squeeze, trim, truncate = text.lower_ascii, text.squeeze, text.trim, text.truncate

local _M = {}

_M.MAX_DESCRIPTION_BYTES = 400   -- a sentence quoted as a description is cut here
_M.MAX_NAMES_PER_SENTENCE = 12   -- pairs grow quadratically; later names get no relations

local function set(words)
  local s = {}
  for w in gmatch(words, "[^ ]+") do s[w] = true end
  return s
end

-- Capitalized words that start sentences without being names.
local STOP = set("a an the this that these those it its he she they we i you his her their our "
  .. "my your there here however although though but and or nor so yet as at by for from in into "
  .. "of on onto to with within without after before during when whenever while where whereas why "
  .. "how what which who whom whose if unless until since because despite among between through "
  .. "throughout over under above below about against across along around behind beyond near "
  .. "toward towards upon like unlike one two three four five six seven eight nine ten many most "
  .. "some several few all both each every either neither no not none other another such then thus "
  .. "therefore also meanwhile later earlier today yesterday tomorrow now once first second third "
  .. "last next finally eventually still only even perhaps according following born being having "
  .. "said says")
local CALENDAR = set("january february march april may june july august september october "
  .. "november december monday tuesday wednesday thursday friday saturday sunday")
-- Lowercase words allowed inside a name: "University of Paris", "Ludwig van Beethoven".
local CONNECT = set("of de du des van von der den da di del della la le y")
local PERSON_CONNECT = set("van von der den de da di du del della la le y")
local TITLES = set("mr mrs ms miss dr prof professor sir dame lord lady president senator judge "
  .. "mayor pope king queen prince princess")
-- Words whose period neither breaks a name nor (with ABBREV) ends a sentence.
local KEEP_DOT = set("mr mrs ms dr prof st mt ft jr sr")
-- Abbreviations whose period ends no sentence.
local ABBREV = set("mr mrs ms dr prof st jr sr inc ltd co corp vs mt ft gen col lt sgt rev hon gov "
  .. "sen rep dept univ no vol fig approx")

local ORG = set("university universities institute institution college school academy company "
  .. "corporation corp inc ltd llc plc gmbh bank society association foundation agency council "
  .. "ministry department laboratory laboratories labs lab committee commission party "
  .. "federation organization organisation group press museum hospital army navy board bureau "
  .. "office club orchestra observatory church parliament court government")
local EVENT = set("war wars battle revolution prize award awards conference summit olympics "
  .. "olympic games festival treaty expedition championship championships cup election "
  .. "exhibition crisis massacre symposium workshop ceremony accords pandemic earthquake")
local LOCATION = set("city river mountain mountains mount lake ocean sea island islands valley "
  .. "county province kingdom republic empire street avenue road square park bay gulf coast "
  .. "desert forest peninsula district region canyon harbor harbour village town country union")
local LOCATION_FIRST = set("new san santa sao los las el fort port mount mt cape north south east "
  .. "west saint st upper lower")
local ARTICLE = set("the a an")
local PLACE_PREP = set("in at near inside outside across into throughout")
local MOTION_PREP = set("from to toward towards")

-- Is the character at i uppercase? ASCII, Latin-1, Latin Extended-A, Greek
-- and Cyrillic capitals are recognized.
local function is_upper(s, i)
  local b = byte(s, i)
  if b >= 65 and b <= 90 then return true end
  local b2 = byte(s, i + 1)
  if not b2 then return false end
  if b == 0xC3 then return b2 >= 0x80 and b2 <= 0x9E and b2 ~= 0x97 end
  if b == 0xC4 or b == 0xC5 then
    local cp = (b - 0xC0) * 64 + (b2 - 0x80)
    if cp <= 0x137 then return cp % 2 == 0 end
    if cp >= 0x139 and cp <= 0x148 then return cp % 2 == 1 end
    if cp >= 0x14A and cp <= 0x177 then return cp % 2 == 0 end
    return cp == 0x178 or cp == 0x179 or cp == 0x17B or cp == 0x17D
  end
  if b == 0xCE then return b2 >= 0x91 and b2 <= 0xA9 and b2 ~= 0xA2 end
  if b == 0xD0 then return b2 >= 0x80 and b2 <= 0xAF end
  return false
end

local function char_len(b)
  if b < 0xC0 then return 1 end
  if b < 0xE0 then return 2 end
  if b < 0xF0 then return 3 end
  return 4
end

-- Letters and digits, including any non-punctuation multibyte character.
local function is_word_char(s, i)
  local b = byte(s, i)
  if b < 0x80 then
    return (b >= 48 and b <= 57) or (b >= 65 and b <= 90) or (b >= 97 and b <= 122)
  end
  if b < 0xC0 or b == 0xC2 or b == 0xE2 then return false end   -- Latin-1 and general punctuation
  if b == 0xE3 then return byte(s, i + 1) ~= 0x80 end            -- CJK punctuation
  return not (b == 0xEF and byte(s, i + 1) == 0xBB)               -- byte order mark
end

-- An apostrophe (' or ’) or hyphen at i joins word characters; returns its length.
local function joiner_len(s, i)
  local b = byte(s, i)
  if b == 39 or b == 45 then return 1 end
  if b == 0xE2 and byte(s, i + 1) == 0x80 and byte(s, i + 2) == 0x99 then return 3 end
  return 0
end

local function is_space(b)
  return b == 32 or (b >= 9 and b <= 13)
end

-- Words of a sentence. brk: punctuation separates the word from the previous
-- one (names never span it); poss: a possessive 's was cut off.
local function words(sentence)
  local toks, n = {}, #sentence
  local i, brk = 1, true
  while i <= n do
    if is_word_char(sentence, i) then
      local j = i
      while j <= n do
        if is_word_char(sentence, j) then
          j = j + char_len(byte(sentence, j))
        else
          local jl = joiner_len(sentence, j)
          if jl > 0 and j + jl <= n and is_word_char(sentence, j + jl) then
            j = j + jl
          else
            break
          end
        end
      end
      local w, poss = sub(sentence, i, j - 1), false
      local base = w:match("^(.+)'s$") or w:match("^(.+)\226\128\153s$")
      if base then w, poss = base, true end
      toks[#toks + 1] = { w = w, brk = brk, poss = poss }
      brk, i = false, j
    else
      local b = byte(sentence, i)
      local prev = toks[#toks]
      -- "Dr. Jane", "J. Robert", "St. Louis": that period keeps the name together
      local keeps = b == 46 and prev and not prev.poss
        and (TITLES[lower_ascii(prev.w)] or KEEP_DOT[lower_ascii(prev.w)] or find(prev.w, "^[A-Z]$"))
      if not is_space(b) and not keeps then brk = true end
      i = i + char_len(b)
    end
  end
  return toks
end

local function cap(tok)
  return tok and is_upper(tok.w, 1)
end

-- Sentences of a chunk: paragraph breaks end them, single newlines do not.
local function sentences(s)
  local out = {}
  s = gsub(s, "\r", "")
  for para in gmatch(gsub(s, "\n[ \t]*\n", "\0") .. "\0", "([^%z]*)%z") do
    para = trim(squeeze(para))
    local start, pos = 1, 1
    while true do
      local t = find(para, "[%.!%?]", pos)
      if not t then break end
      local e = t
      while find(sub(para, e + 1, e + 1), "[%.!%?]") do e = e + 1 end
      -- closing quotes and brackets belong to the sentence they end
      while true do
        local c = sub(para, e + 1, e + 1)
        if c == '"' or c == "'" or c == ")" then
          e = e + 1
        elseif sub(para, e + 1, e + 3) == "\226\128\157" or sub(para, e + 1, e + 3) == "\226\128\153" then
          e = e + 3
        else
          break
        end
      end
      local after = byte(para, e + 1)
      local split_here = after == nil or after == 32
      if split_here and e == t and byte(para, t) == 46 then
        -- only the word before the period matters: look back a few bytes, not
        -- over the whole paragraph (quadratic on long single-paragraph chunks)
        local w = sub(para, t - 16 > start and t - 16 or start, t - 1):match("([A-Za-z]+)$")
        local nxt = para:match("^ ?(.)", e + 1)
        if (w and (ABBREV[lower_ascii(w)] or #w == 1)) or (nxt and find(nxt, "^[a-z]")) then
          split_here = false
        end
      end
      if split_here then
        out[#out + 1] = trim(sub(para, start, e))
        start = e + 1
      end
      pos = e + 1
    end
    local rest = trim(sub(para, start))
    if rest ~= "" then out[#out + 1] = rest end
  end
  return out
end

-- Maximal runs of capitalized words, joined by connectors ("of the", "van der").
local function chains(toks)
  local out, i, m = {}, 1, #toks
  while i <= m do
    if cap(toks[i]) then
      local j = i
      while not toks[j].poss do
        local k = j + 1
        local c, nconn = k, 0
        while nconn < 2 and toks[c] and not toks[c].brk and not cap(toks[c])
          and (CONNECT[toks[c].w] or (toks[c].w == "the" and nconn == 1 and toks[c - 1].w == "of")) do
          c, nconn = c + 1, nconn + 1
        end
        if toks[c] and not toks[c].brk and cap(toks[c]) then
          j = c
        else
          break
        end
      end
      out[#out + 1] = { first = i, last = j }
      i = j + 1
    else
      i = i + 1
    end
  end
  return out
end

local function guess_type(ws, title, prev)
  if title then return "Person" end
  local lw = {}
  for i = 1, #ws do lw[i] = lower_ascii(ws[i]) end
  for _, cues in ipairs({ { ORG, "Organization" }, { EVENT, "Event" }, { LOCATION, "Location" } }) do
    for i = 1, #lw do
      if cues[1][lw[i]] then return cues[2] end
    end
  end
  if #ws >= 2 and LOCATION_FIRST[lw[1]] then return "Location" end
  if #ws == 1 and find(ws[1], "^[A-Z][A-Z]+$") and #ws[1] <= 6 then return "Organization" end
  if prev and (PLACE_PREP[prev] or (#ws == 1 and MOTION_PREP[prev])) then return "Location" end
  -- people rarely take an article: "the Analytical Engine" is no one's name
  if #ws >= 2 and #ws <= 4 and not ARTICLE[prev] then
    for i = 1, #ws do
      if not is_upper(ws[i], 1) and not PERSON_CONNECT[lw[i]] then return prompt.OTHER_TYPE end
    end
    return "Person"
  end
  return prompt.OTHER_TYPE
end

-- A chain as a name: drops clause-initial common words, calendar words and
-- titles in front. Returns nil when nothing name-like is left.
local function name_of(toks, ch)
  local i, prev, title = ch.first, nil, false
  if i > 1 and not toks[i].brk then prev = lower_ascii(toks[i - 1].w) end
  local clause_start = i == 1 or toks[i].brk
  while i <= ch.last do
    local lw = lower_ascii(toks[i].w)
    if clause_start and STOP[lw] then
      prev = lw
    elseif CALENDAR[lw] and i < ch.last then
      prev = nil
    elseif TITLES[lw] and i < ch.last then
      title = true
    elseif CONNECT[toks[i].w] then
      prev = nil        -- a lowercase connector left in front after the drops
    else
      break
    end
    i = i + 1
  end
  if i > ch.last then return nil end
  local ws = {}
  for k = i, ch.last do ws[#ws + 1] = toks[k].w end
  if #ws == 1 then
    local lw = lower_ascii(ws[1])
    if #ws[1] < 2 or STOP[lw] or CALENDAR[lw] then return nil end
  end
  return {
    name = concat(ws, " "),
    type = guess_type(ws, title, prev),
    -- a lone capitalized first word of a sentence may just be a common word
    doubtful = #ws == 1 and i == 1,
  }
end

-- A record field: one line, nothing the parser could read as a delimiter
-- (its repair turns <#> and <| # |> into one), at most MAX_DESCRIPTION_BYTES.
local function field(s)
  s = gsub(s, "<[ |#]*>", " ")
  s = gsub(s, "<|", "<")
  s = gsub(s, "|>", ">")
  return trim(truncate(trim(squeeze(s)), _M.MAX_DESCRIPTION_BYTES))
end

-- extract(text) -> the answer text: entity records, relation records (one per
-- sentence shared by two names, keywords "co-occurrence", the sentence as
-- description), then the completion marker.
function _M.extract(chunk)
  if type(chunk) ~= "string" then
    error("bad argument #1 to 'extract': string expected, got " .. type(chunk), 2)
  end
  local found, confirmed, surnames = {}, {}, {}
  for _, s in ipairs(sentences(chunk)) do
    local toks = words(s)
    local names = {}
    for _, ch in ipairs(chains(toks)) do
      local n = name_of(toks, ch)
      if n then
        names[#names + 1] = n
        if not n.doubtful then confirmed[n.name] = true end
        if n.type == "Person" then surnames[n.name:match("([^ ]+)$")] = true end
      end
    end
    found[#found + 1] = { sentence = s, names = names }
  end
  -- entities in first-seen order; a specific type beats Other. A doubtful name
  -- counts once the chunk uses it elsewhere, alone or as a person's last name.
  local order, entities = {}, {}
  for _, f in ipairs(found) do
    local kept = {}
    for _, n in ipairs(f.names) do
      if not n.doubtful or confirmed[n.name] or surnames[n.name] then
        local e = entities[n.name]
        if not e then
          e = { name = n.name, type = n.type, description = field(f.sentence) }
          entities[n.name] = e
          order[#order + 1] = e
        elseif e.type == prompt.OTHER_TYPE then
          e.type = n.type
        end
        kept[#kept + 1] = n.name
      end
    end
    f.kept = kept
  end
  local lines, D = {}, prompt.TUPLE_DELIMITER
  for _, e in ipairs(order) do
    -- a lone word that ends a person's name ("Curie") is that family's name
    if e.type == prompt.OTHER_TYPE and surnames[e.name] then e.type = "Person" end
    lines[#lines + 1] = concat({ "entity", e.name, e.type, e.description }, D)
  end
  for _, f in ipairs(found) do
    local seen, names = {}, {}
    for _, name in ipairs(f.kept) do
      if not seen[name] and #names < _M.MAX_NAMES_PER_SENTENCE then
        seen[name] = true
        names[#names + 1] = name
      end
    end
    for a = 1, #names - 1 do
      for b = a + 1, #names do
        lines[#lines + 1] = concat({ "relation", names[a], names[b], "co-occurrence", field(f.sentence) }, D)
      end
    end
  end
  lines[#lines + 1] = prompt.COMPLETION_DELIMITER
  return concat(lines, "\n")
end

return _M
