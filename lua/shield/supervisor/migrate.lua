-- Applies the PostgreSQL migrations (config/migrations/*.sql, in name order)
-- once each, in one transaction under an advisory lock, tracked in
-- schema_migrations. Run by the supervisor at start; retried while PostgreSQL
-- is unreachable, so an outage delays the audit trail instead of the pool.
local shield = require "shield"

local _M = {}

-- An arbitrary constant: the advisory lock that serialises concurrent runners.
local LOCK_ID = 7041926

function _M.folder()
  local configured = shield.config().postgres.migrations
  return configured or (shield.lua_dir .. "/../config/migrations")
end

local function read(path)
  local f, err = io.open(path, "rb")
  if not f then
    return nil, err
  end
  local sql = f:read("*a")
  f:close()
  return sql
end

-- Returns the list of versions applied now, or nil, err.
function _M.apply(folder)
  folder = folder or _M.folder()
  local names, err = shield.listdir(folder)
  if not names then
    return nil, "migrations: " .. err
  end
  local files = {}
  for _, name in ipairs(names) do
    if name:match("%.sql$") then
      files[#files + 1] = name
    end
  end
  local applied = {}
  local q = shield.pg.query
  -- transaction() re-raises what fn raised, after the rollback.
  local ok, committed, terr = pcall(shield.pg.transaction, function()
    assert(q("SELECT pg_advisory_xact_lock($1)", LOCK_ID))
    assert(q([[CREATE TABLE IF NOT EXISTS schema_migrations (
      version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())]]))
    local rows = assert(q("SELECT version FROM schema_migrations"))
    local done = {}
    for _, row in ipairs(rows) do
      done[row.version] = true
    end
    for _, name in ipairs(files) do
      if not done[name] then
        local sql = assert(read(folder .. "/" .. name))
        local done_ok, serr = q(sql)
        if not done_ok then
          error(name .. ": " .. tostring(serr), 0)
        end
        assert(q("INSERT INTO schema_migrations (version) VALUES ($1)", name))
        applied[#applied + 1] = name
      end
    end
    return true
  end)
  if not ok or not committed then
    return nil, "migrations: " .. tostring(ok and terr or committed)
  end
  return applied
end

return _M
