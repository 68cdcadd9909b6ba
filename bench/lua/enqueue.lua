-- enqueue.lua JOBS CHUNKS BYTES IDS_FILE [CHUNK_METADATA_JSON]: enqueues JOBS jobs
-- of CHUNKS chunks of BYTES bytes each (distinct texts: the LightRAG script keys
-- its chunk rows by content) through the atomic enqueue script (what
-- POST /lightrag/ingest-async runs), eight calls in flight; writes the job ids to
-- IDS_FILE, one a line, and prints {"jobs","chunks","ms"}. Run by bench/run.sh
-- with `shield-runtime --config CFG run`.
local shield = require "shield"
local scripts = require "shield.redis_scripts"
local jobs = require "shield.jobs"

local njobs, per, bytes, ids_file = tonumber(arg[1]), tonumber(arg[2]), tonumber(arg[3]), arg[4]
local meta = arg[5] or "{}"
assert(njobs and per and bytes and ids_file, "usage: enqueue.lua JOBS CHUNKS BYTES IDS_FILE [METADATA_JSON]")

local IN_FLIGHT = 8
local padding = ("x"):rep(bytes)
local ids = {}
local next_job = 0
local t0 = shield.now()

local function enqueue_some()
  while next_job < njobs do
    next_job = next_job + 1
    local id = jobs.new_id(shield.random_hex(16))
    ids[next_job] = id
    local args = { id, "bench", "{}", "", 0 }
    for i = 0, per - 1 do
      local chunk_id = id .. ":" .. i
      args[#args + 1] = chunk_id
      args[#args + 1] = (chunk_id .. " " .. padding):sub(1, bytes)
      args[#args + 1] = meta
    end
    local r, err = scripts.call("enqueue", args)
    if not r then
      error("enqueue failed: " .. tostring(err))
    end
  end
  return true
end

local threads = {}
for i = 1, IN_FLIGHT do
  threads[i] = shield.spawn(enqueue_some)
end
for i = 1, IN_FLIGHT do
  local ok, err = shield.join(threads[i])
  if not ok then
    error(err)
  end
end
local ms = shield.now() - t0

local f = assert(io.open(ids_file, "w"))
f:write(table.concat(ids, "\n"), "\n")
f:close()
print(shield.json.encode({ jobs = njobs, chunks = njobs * per, ms = ms }))
