-- shield.pg: PostgreSQL for light threads (DESIGN.md section 8), on the
-- worker's connection pool (the C module shield.c.pg).
--   query(sql, ...)   -> rows, affected | nil, err[, sqlstate]
--   transaction(fn)   -> fn's results (true if none), committed; re-raises
--                        fn's error after a rollback; nil, err if BEGIN or
--                        COMMIT fails (COMMIT after a failed statement gives
--                        "rolled back: ...")
--   null              -> SQL NULL as a parameter, where a nil would be lost
--                        (the same value as shield.json.null)
--   real_array(list[, list...]) -> a real[] parameter of the lists' numbers,
--                        sent in binary (no text per number either side)
--   stats(), healthy()
local c = require "shield.c.pg"

local error, pcall, select, type = error, pcall, select, type

local _M = {
  query = c.query,
  null = c.null,
  real_array = c.real_array,
  stats = c.stats,
  healthy = c.healthy,
}

local function finish(tx, ok, ...)
  if not ok then
    c.rollback(tx)
    error((...), 0)
  end
  local committed, err = c.commit(tx)
  if not committed then
    return nil, err
  end
  if select("#", ...) == 0 then
    return true
  end
  return ...
end

-- fn runs in the calling light thread; its shield.pg.query calls use the
-- transaction's connection. Threads it spawns do not.
function _M.transaction(fn)
  if type(fn) ~= "function" then
    error("bad argument #1 to 'transaction' (function expected, got " .. type(fn) .. ")", 2)
  end
  local tx, err = c.begin()
  if not tx then
    return nil, err
  end
  return finish(tx, pcall(fn))
end

return _M
