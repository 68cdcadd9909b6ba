-- wrk script: POST /lightrag/ingest-async with one job of BENCH_JOB_CHUNKS
-- chunks of BENCH_CHUNK_BYTES bytes (each chunk's metadata from
-- BENCH_CHUNK_METADATA, a JSON object); counts the answers by status and
-- prints them as "statuses {json}" at the end. Used by bench/scenarios/http.sh.
local chunks = tonumber(os.getenv("BENCH_JOB_CHUNKS") or "100")
local bytes = tonumber(os.getenv("BENCH_CHUNK_BYTES") or "100")
local meta = os.getenv("BENCH_CHUNK_METADATA") or "{}"

local parts = {}
for i = 1, chunks do
  parts[i] = '{"text":"' .. ("x"):rep(bytes) .. '","metadata":' .. meta .. '}'
end
wrk.method = "POST"
wrk.path = "/lightrag/ingest-async"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"chunks":[' .. table.concat(parts, ",") .. '],"source_type":"bench"}'

local threads = {}
function setup(thread)
  threads[#threads + 1] = thread
end

statuses = {}
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for status, n in pairs(t:get("statuses")) do
      total[tostring(status)] = (total[tostring(status)] or 0) + n
    end
  end
  local items = {}
  for status, n in pairs(total) do
    items[#items + 1] = string.format('"%s":%d', status, n)
  end
  io.write("statuses {", table.concat(items, ","), "}\n")
end
