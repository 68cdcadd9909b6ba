-- enqueue.lua JOBS CHUNKS [METADATA_JSON]: enqueues JOBS jobs of CHUNKS chunks
-- each (chunk metadata from the JSON), prints the job ids, one per line.
local shield = require "shield"
local scripts = require "shield.redis_scripts"
local jobs = require "shield.jobs"

local njobs, per, meta = tonumber(arg[1]), tonumber(arg[2]), arg[3] or "{}"
for _ = 1, njobs do
  local id = jobs.new_id(shield.random_hex(16))
  local args = { id, "test", "{}", "", 0 }
  for i = 0, per - 1 do
    args[#args + 1] = id .. ":" .. i
    args[#args + 1] = "chunk " .. i .. " of " .. id
    args[#args + 1] = meta
  end
  assert(scripts.call("enqueue", args))
  print(id)
end
