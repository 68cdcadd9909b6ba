-- Processing script for the role test (role_test.sh): records, per job, the
-- VERSION that processed its chunk, so the test sees a reload take effect.
local shield = require "shield"

local M = {}

local VERSION = "v1"

function M.process(task)
  local ok, err = shield.redis.call("SET", "ansible-test:version:" .. task.job_id, VERSION)
  if not ok then
    error("redis: " .. tostring(err))
  end
  return { version = VERSION }
end

return M
