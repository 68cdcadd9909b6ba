-- wrk script: GET /jobs/<id> over the job ids of BENCH_IDS_FILE (one a line),
-- in turn; counts the answers by status and prints them as "statuses {json}"
-- at the end. Used by bench/scenarios/http.sh.
local ids = {}
for line in io.lines(os.getenv("BENCH_IDS_FILE")) do
  if line ~= "" then
    ids[#ids + 1] = line
  end
end

local threads = {}
function setup(thread)
  thread:set("offset", #threads * 7919)
  threads[#threads + 1] = thread
end

local n = 0
function request()
  n = n + 1
  return wrk.format("GET", "/jobs/" .. ids[(n + (offset or 0)) % #ids + 1])
end

statuses = {}
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for status, c in pairs(t:get("statuses")) do
      total[tostring(status)] = (total[tostring(status)] or 0) + c
    end
  end
  local items = {}
  for status, c in pairs(total) do
    items[#items + 1] = string.format('"%s":%d', status, c)
  end
  io.write("statuses {", table.concat(items, ","), "}\n")
end
