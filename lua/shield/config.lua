-- The configuration schema: every key of config/pool.lua with its default, type
-- and range. validate(user_table) fills defaults and returns the full config, or
-- nil and a list of problems, each naming the key path. Used by the runtime at
-- start (and by --check) through runtime/config.c; pure Lua.
local type, pairs, ipairs, tostring, string_format, math_floor, table_sort, table_concat =
  type, pairs, ipairs, tostring, string.format, math.floor, table.sort, table.concat

local _M = {}

local MiB = 1024 * 1024

local function describe(v)
  if type(v) == "string" then
    return string_format("%q", v)
  end
  if type(v) == "table" then
    return "a table"
  end
  return tostring(v)
end

local function integer(min, max)
  return function(v)
    if type(v) ~= "number" or v ~= math_floor(v) or (min and v < min) or (max and v > max) then
      if max then
        return string_format("expected an integer from %d to %d", min, max)
      end
      return string_format("expected an integer >= %d", min)
    end
  end
end

local function text(v)
  if type(v) ~= "string" or v == "" then
    return "expected a non-empty string"
  end
end

local function one_of(...)
  local allowed = { ... }
  return function(v)
    for _, a in ipairs(allowed) do
      if v == a then
        return
      end
    end
    return "expected one of " .. table_concat(allowed, ", ")
  end
end

local function listen_address(v)
  if type(v) ~= "string" then
    return "expected \"host:port\""
  end
  local port = v:match("^%[[%x:.]+%]:(%d+)$") or v:match("^[%w.%-]+:(%d+)$")
  if not port or tonumber(port) > 65535 then
    return "expected \"host:port\""
  end
end

local function url(schemes)
  return function(v)
    if type(v) ~= "string" or v == "" then
      return "expected a URL string"
    end
    local scheme = v:match("^(%a[%w+.-]*)://")
    if schemes and not schemes[scheme or ""] then
      local names = {}
      for k in pairs(schemes) do
        names[#names + 1] = k .. "://"
      end
      table_sort(names)
      return "expected a URL starting with " .. table_concat(names, " or ")
    end
  end
end

local function free_table(v)
  if type(v) ~= "table" then
    return "expected a table"
  end
end

local function optional_token(v)
  if v ~= nil and (type(v) ~= "string" or #v < 8) then
    return "expected a string of at least 8 characters"
  end
end

-- section -> key -> { default, check }. A nil default means optional.
local schema = {
  redis = {
    url = { "redis://127.0.0.1:6379/0", url({ redis = true, unix = true }) },
  },
  postgres = {
    url = { "postgresql://127.0.0.1:5432/shield", text },
    migrations = { nil, text }, -- folder of *.sql; default: config/migrations of the install
  },
  http = {
    listen = { "127.0.0.1:8000", listen_address },
    auth_token = { nil, optional_token },
    max_body_bytes = { 16 * MiB, integer(1024) },
    max_connections = { 1024, integer(1, 100000) },
    header_timeout_ms = { 10000, integer(100) },
    idle_timeout_ms = { 60000, integer(100) },
  },
  pool = {
    size = { 4, integer(1, 256) },
    concurrency = { 8, integer(1, 4096) },
    batch_size = { 10, integer(1, 10000) },
    retry_attempts = { 3, integer(1, 100) },
    timeout_seconds = { 300, integer(1) },
    health_check_interval = { 30, integer(1, 3600) },
    max_tasks_per_child = { 1000, integer(0) },
    graceful_shutdown_timeout = { 60, integer(0) },
    stall_seconds = { 60, integer(1) },
    lua_memory_mb = { 1024, integer(0) },
  },
  streams = {
    ingestion = { "shield:ingestion_queue", text },
    group = { "lightrag-workers", text },
    events = { "shield:events", text },
    dead_letter = { "shield:ingestion_queue:dead", text },
    retry = { "shield:ingestion_queue:retry", text },
    events_maxlen = { 100000, integer(100) },
  },
  jobs = {
    status_ttl = { 3600, integer(1) },
    max_chunks = { 10000, integer(1) },
    max_chunk_bytes = { 1 * MiB, integer(1) },
    idempotency_ttl = { 86400, integer(1) },
  },
  log = {
    level = { "info", one_of("debug", "info", "warn", "error") },
    format = { "text", one_of("text", "json") },
  },
}

-- Top-level keys that are not sections.
local scalars = {
  script = { "scripts/lightrag.lua", text },
  lightrag = { {}, free_table },
}

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do
    keys[#keys + 1] = k
  end
  table_sort(keys, function(a, b)
    return tostring(a) < tostring(b)
  end)
  return keys
end

local function check_value(path, spec, value, problems)
  local default, check = spec[1], spec[2]
  if value == nil then
    return default
  end
  local why = check(value)
  if why then
    problems[#problems + 1] = string_format("%s: %s, got %s", path, why, describe(value))
    return default
  end
  return value
end

-- Returns the full configuration, or nil and the list of problems.
function _M.validate(user)
  local problems = {}
  if type(user) ~= "table" then
    return nil, { "the file must return a table, got " .. describe(user) }
  end
  local out = {}
  for _, key in ipairs(sorted_keys(user)) do
    if not schema[key] and not scalars[key] then
      problems[#problems + 1] = string_format("%s: unknown key", tostring(key))
    end
  end
  for _, name in ipairs(sorted_keys(schema)) do
    local section, given = schema[name], user[name]
    out[name] = {}
    if given ~= nil and type(given) ~= "table" then
      problems[#problems + 1] = string_format("%s: expected a table, got %s", name, describe(given))
      given = nil
    end
    given = given or {}
    for _, key in ipairs(sorted_keys(given)) do
      if not section[key] then
        problems[#problems + 1] = string_format("%s.%s: unknown key", name, tostring(key))
      end
    end
    for _, key in ipairs(sorted_keys(section)) do
      out[name][key] = check_value(name .. "." .. key, section[key], given[key], problems)
    end
  end
  for _, key in ipairs(sorted_keys(scalars)) do
    out[key] = check_value(key, scalars[key], user[key], problems)
  end
  if #problems > 0 then
    return nil, problems
  end
  return out
end

return _M
