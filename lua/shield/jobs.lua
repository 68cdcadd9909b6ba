-- Jobs as the HTTP API sees them: job ids, validation of ingest requests into
-- task entries, and the public view of a job from its Redis hash or its
-- PostgreSQL row. Pure Lua (the caller passes JSON functions and the clock), so
-- busted specs cover it; used by the API handlers in lua/shield/api/.
local type, pairs, ipairs, next, tostring, tonumber, string_byte, string_format, string_sub, math_floor,
  table_sort, table_concat =
  type, pairs, ipairs, next, tostring, tonumber, string.byte, string.format, string.sub, math.floor,
  table.sort, table.concat
local table_new = require "table.new"

local _M = {}

-- The bytes of chars as an array of 255 booleans: the JIT indexes an array
-- part at a fraction of the cost of a hash part.
local function byte_set(chars)
  local set = table_new(255, 0)
  for b = 1, 255 do
    set[b] = false
  end
  for i = 1, #chars do
    set[string_byte(chars, i)] = true
  end
  return set
end

-- The bytes a job id (a version 4 UUID) may have at each of its places: x is
-- a hex digit of either case, v the variant.
local ID_BYTES = {}
do
  local shape = "xxxxxxxx-xxxx-4xxx-vxxx-xxxxxxxxxxxx"
  local hex, variant = byte_set("0123456789abcdefABCDEF"), byte_set("89ab")
  for i = 1, #shape do
    local c = string_sub(shape, i, i)
    ID_BYTES[i] = c == "x" and hex or c == "v" and variant or byte_set(c)
  end
end

-- A random UUID (version 4) from 32 random hex digits.
function _M.new_id(hex32)
  local v = tonumber(hex32:sub(17, 17), 16) % 4 + 1
  local variant = ("89ab"):sub(v, v)
  return string_format("%s-%s-4%s-%s%s-%s", hex32:sub(1, 8), hex32:sub(9, 12), hex32:sub(14, 16), variant,
    hex32:sub(18, 20), hex32:sub(21, 32))
end

-- A loop the JIT compiles: matching a pattern cost three times as much.
function _M.valid_id(id)
  if type(id) ~= "string" or #id ~= #ID_BYTES then
    return false
  end
  for i = 1, #ID_BYTES do
    if not ID_BYTES[i][string_byte(id, i)] then
      return false
    end
  end
  return true
end

local function is_array(t)
  if type(t) ~= "table" then
    return false
  end
  local n = 0
  for k in pairs(t) do
    if type(k) ~= "number" then
      return false
    end
    n = n + 1
  end
  return n == #t
end

local function is_object(t, null)
  if type(t) ~= "table" then
    return false
  end
  if next(t) == nil then
    return true
  end
  return not is_array(t) and t ~= null
end

-- needs_escape and all_digits are loops the JIT compiles; a pattern it does
-- not, at four times the cost.

-- A control character, '"' or '\\': the string needs JSON escapes.
local function needs_escape(s)
  for i = 1, #s do
    local b = string_byte(s, i)
    if b < 32 or b == 34 or b == 92 or b == 127 then
      return true
    end
  end
  return false
end

-- v in JSON: strings with nothing to escape skip the encoder.
local function value(v, encode)
  if type(v) ~= "string" or needs_escape(v) then
    return encode(v)
  end
  return '"' .. v .. '"'
end

-- "chunks[<index>]", for the 422 details (made only when one is returned).
local function where(i)
  return string_format("chunks[%d]", i - 1)
end

-- A chunk's metadata as JSON: its own object with source_uri, source_type and
-- chunk_index set. They are appended to the encoded object (tail: the
-- source_type member) rather than put in a copy of it, because cjson writes
-- every number through snprintf: a third of the ingest route's time went to
-- encoding chunk_index. An object that has one of the three keys is copied.
local function chunk_metadata(chunk, index, source_type, tail, encode)
  local own = chunk.metadata
  if own ~= nil and (own.source_uri ~= nil or own.source_type ~= nil or own.chunk_index ~= nil) then
    local meta = {}
    for k, v in pairs(own) do
      meta[k] = v
    end
    meta.source_uri, meta.source_type, meta.chunk_index = chunk.source_uri, source_type, index
    return encode(meta)
  end
  local head = (own == nil or next(own) == nil) and "{" or string_sub(encode(own), 1, -2) .. ","
  local uri = chunk.source_uri ~= nil and '"source_uri":' .. value(chunk.source_uri, encode) .. "," or ""
  return head .. uri .. tail .. '"chunk_index":' .. index .. "}"
end

-- Validates a decoded POST /lightrag/ingest-async body. Returns the list of
-- chunks ({text, metadata_json}) and the job metadata, or nil, status, detail
-- (422 names the offending field and chunk index).
function _M.validate_ingest(body, limits, encode)
  if type(body) ~= "table" or is_array(body) and next(body) ~= nil then
    return nil, 422, "the body must be a JSON object"
  end
  local chunks = body.chunks
  if chunks == nil then
    return nil, 422, "chunks: required"
  end
  if not is_array(chunks) then
    return nil, 422, "chunks: must be an array"
  end
  if #chunks == 0 then
    return nil, 422, "chunks: must not be empty"
  end
  if #chunks > limits.max_chunks then
    return nil, 422, string_format("chunks: %d chunks, at most %d allowed", #chunks, limits.max_chunks)
  end
  if body.source_type ~= nil and type(body.source_type) ~= "string" then
    return nil, 422, "source_type: must be a string"
  end
  if body.metadata ~= nil and not is_object(body.metadata) then
    return nil, 422, "metadata: must be an object"
  end
  -- Every chunk's metadata ends with these members (and its chunk_index).
  local tail = body.source_type ~= nil and '"source_type":' .. value(body.source_type, encode) .. "," or ""
  local out = {}
  for i, chunk in ipairs(chunks) do
    if type(chunk) ~= "table" or is_array(chunk) and next(chunk) ~= nil then
      return nil, 422, where(i) .. ": must be an object"
    end
    local text = chunk.text
    if type(text) ~= "string" then
      return nil, 422, where(i) .. ".text: must be a string"
    end
    if not text:find("%S") then
      return nil, 422, where(i) .. ".text: must not be empty"
    end
    if #text > limits.max_chunk_bytes then
      return nil, 422, string_format("%s.text: %d bytes, at most %d allowed", where(i), #text, limits.max_chunk_bytes)
    end
    if chunk.source_uri ~= nil and type(chunk.source_uri) ~= "string" then
      return nil, 422, where(i) .. ".source_uri: must be a string"
    end
    if chunk.metadata ~= nil and not is_object(chunk.metadata) then
      return nil, 422, where(i) .. ".metadata: must be an object"
    end
    out[i] = { text = text, metadata = chunk_metadata(chunk, i - 1, body.source_type, tail, encode) }
  end
  local job_meta = {}
  for k, v in pairs(body.metadata or {}) do
    job_meta[k] = v
  end
  job_meta.source_type = body.source_type
  return out, encode(job_meta)
end

-- "00" to "99" and "000" to "999": the fields of a timestamp without
-- string.format, which the JIT does not compile.
local PAD2, PAD3 = {}, {}
for i = 0, 999 do
  PAD3[i] = string_format("%03d", i)
  if i < 100 then
    PAD2[i] = string_format("%02d", i)
  end
end

-- The proleptic Gregorian date of a count of days since 1970-01-01 (Howard
-- Hinnant's civil_from_days): plain arithmetic, where os.date costs a
-- gmtime and a strftime, three times per status request.
local function civil_from_days(days)
  local z = days + 719468
  local era = math_floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math_floor((doe - math_floor(doe / 1460) + math_floor(doe / 36524) - math_floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math_floor(yoe / 4) - math_floor(yoe / 100))
  local mp = math_floor((5 * doy + 2) / 153)
  local month = mp < 10 and mp + 3 or mp - 9
  local year = yoe + era * 400 + (month <= 2 and 1 or 0)
  return year, month, doy - math_floor((153 * mp + 2) / 5) + 1
end

-- ISO-8601 UTC with milliseconds from epoch milliseconds (as os.date's
-- "!%Y-%m-%dT%H:%M:%S" would write the seconds).
function _M.iso8601(ms)
  ms = tonumber(ms)
  if not ms then
    return nil
  end
  ms = math_floor(ms)
  local seconds = math_floor(ms / 1000)
  local days = math_floor(seconds / 86400)
  local in_day = seconds - days * 86400
  local year, month, day = civil_from_days(days)
  local hour = math_floor(in_day / 3600)
  local minute = math_floor((in_day - hour * 3600) / 60)
  return year .. "-" .. PAD2[month] .. "-" .. PAD2[day] .. "T" .. PAD2[hour] .. ":" .. PAD2[minute] .. ":"
    .. PAD2[in_day - hour * 3600 - minute * 60] .. "." .. PAD3[ms - seconds * 1000] .. "Z"
end

-- Only decimal digits (epoch milliseconds).
local function all_digits(s)
  if s == "" then
    return false
  end
  for i = 1, #s do
    local b = string_byte(s, i)
    if b < 48 or b > 57 then
      return false
    end
  end
  return true
end

local function timestamp(v)
  if v == nil or v == "" then
    return nil
  end
  if all_digits(tostring(v)) then
    return _M.iso8601(v)
  end
  return v
end

-- The counters of a job's fields and its percent complete.
local function progress(f)
  local total = tonumber(f.chunks_total) or 0
  local processed = tonumber(f.chunks_processed) or 0
  local failed = tonumber(f.chunks_failed) or 0
  local skipped = tonumber(f.chunks_skipped) or 0
  local percent = 0
  if total > 0 then
    percent = math_floor((processed + failed + skipped) * 10000 / total) / 100
  end
  return total, processed, failed, skipped, percent
end

local function error_of(f)
  local err = f.error_message
  if err == "" then
    return nil
  end
  return err
end

-- A job hash's fields (field = value, as shield.redis.hgetall gives them) with
-- its count:<name> fields moved to counts: {name = n} (settle.lua adds the
-- counts the job's chunks report there), nil when it has none.
local COUNT_PREFIX = "count:"

function _M.take_counts(f)
  local counts
  for field, v in pairs(f) do
    -- The ':' first: no other field has one there, and no substring is made.
    if string_byte(field, #COUNT_PREFIX) == 58 and string_sub(field, 1, #COUNT_PREFIX) == COUNT_PREFIX then
      counts = counts or {}
      counts[string_sub(field, #COUNT_PREFIX + 1)] = tonumber(v)
      f[field] = nil
    end
  end
  f.counts = counts
  return f
end

-- The same for a job hash as HGETALL gives it in a pipeline ({field, value, ...}).
function _M.hash_fields(flat)
  local f = table_new(0, #flat / 2)
  for i = 1, #flat - 1, 2 do
    f[flat[i]] = flat[i + 1]
  end
  return _M.take_counts(f)
end

-- The public view of a job from its fields (Redis hash or PostgreSQL row);
-- f.counts, when given, is a {name = n} table. The view always has counts:
-- {} when the job's chunks reported none.
function _M.view(id, f)
  local total, processed, failed, skipped, percent = progress(f)
  return {
    job_id = id,
    job_type = f.job_type,
    status = f.status,
    chunks_total = total,
    chunks_processed = processed,
    chunks_failed = failed,
    chunks_skipped = skipped,
    percent_complete = percent,
    created_at = timestamp(f.created_at),
    started_at = timestamp(f.started_at),
    completed_at = timestamp(f.completed_at),
    error = error_of(f),
    counts = f.counts or {},
  }
end

-- counts as a JSON object, names in order: {"entities":3,"relations":1}.
function _M.counts_json(counts, encode)
  if counts == nil or next(counts) == nil then
    return "{}"
  end
  local names = {}
  for name in pairs(counts) do
    names[#names + 1] = name
  end
  table_sort(names)
  for i, name in ipairs(names) do
    names[i] = value(name, encode) .. ":" .. string_format("%d", counts[name])
  end
  return "{" .. table_concat(names, ",") .. "}"
end

-- ',"name":<v in JSON>', or "" for nil (the encoder leaves nil fields out).
local function member(name, v, encode)
  if v == nil then
    return ""
  end
  return ',"' .. name .. '":' .. value(v, encode)
end

-- The same for a timestamp field: epoch milliseconds become ISO 8601 text,
-- which has nothing to escape.
local function time_member(name, v, encode)
  local t = timestamp(v)
  if t ~= nil and t ~= v then
    return ',"' .. name .. '":"' .. t .. '"'
  end
  return member(name, t, encode)
end

-- The same view as JSON text, for the status route: concatenated, since the
-- encoder (numbers through snprintf) cost twice this and the view's table.
-- id: a valid job id (nothing to escape); encode: the JSON encoder for values
-- that need escaping.
function _M.view_json(id, f, encode)
  local total, processed, failed, skipped, percent = progress(f)
  return '{"job_id":"' .. id .. '"' .. member("job_type", f.job_type, encode)
    .. member("status", f.status, encode) .. ',"chunks_total":' .. total .. ',"chunks_processed":' .. processed
    .. ',"chunks_failed":' .. failed .. ',"chunks_skipped":' .. skipped .. ',"percent_complete":' .. percent
    .. time_member("created_at", f.created_at, encode) .. time_member("started_at", f.started_at, encode)
    .. time_member("completed_at", f.completed_at, encode) .. member("error", error_of(f), encode)
    .. ',"counts":' .. _M.counts_json(f.counts, encode) .. "}"
end

return _M
