-- Every chunk waits on a PostgreSQL query far longer than pool.timeout_seconds:
-- the chunk's deadline must cancel it. With metadata {"ignore":true} it sleeps
-- past the deadline instead, ignores the timeout and returns.
local shield = require "shield"
local M = {}

function M.process(task)
  if task.metadata.ignore then
    shield.sleep(1500)
    return {}
  end
  local rows, err = shield.pg.query("SELECT pg_sleep(60) AS slept, $1::text AS chunk", task.chunk_id)
  if not rows then shield.fail("postgres: " .. err, { retryable = false }) end
  return rows
end

return M
