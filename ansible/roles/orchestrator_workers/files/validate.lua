-- The role's validation probe (tasks/04-validation.yml), run as
-- `shield-runtime --config CFG run validate.lua`: prints one JSON line with the
-- consumers of the workers' group (XINFO CONSUMERS) and whether the migrations
-- created the job_status table; prints {"error": ...} and exits 1 when Redis
-- or PostgreSQL cannot be asked.
local shield = require "shield"

local CONNECT_MS = 5000

local function report(fields, status)
  print(assert(shield.json.encode(fields)))
  return status
end

local function redis_connected()
  local deadline = shield.now() + CONNECT_MS
  while not shield.redis.connected() do
    if shield.now() > deadline then
      return false
    end
    shield.sleep(50)
  end
  return true
end

local cfg = shield.config()
if not redis_connected() then
  return report({ error = "redis: not connected" }, 1)
end
local reply, err = shield.redis.call("XINFO", "CONSUMERS", cfg.streams.ingestion, cfg.streams.group)
if not reply then
  return report({ error = "redis: " .. tostring(err) }, 1)
end
-- Each consumer is a flat list of field, value pairs.
local consumers = {}
for _, fields in ipairs(reply) do
  for i = 1, #fields - 1, 2 do
    if fields[i] == "name" then
      consumers[#consumers + 1] = fields[i + 1]
    end
  end
end

local rows, perr = shield.pg.query("SELECT to_regclass('job_status') IS NOT NULL AS present")
if not rows then
  return report({ error = "postgres: " .. tostring(perr) }, 1)
end
local present = rows[1].present
return report({ consumers = consumers, job_status = present == true or present == "t" }, 0)
