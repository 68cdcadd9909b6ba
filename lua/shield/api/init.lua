-- The HTTP API's router (DESIGN.md section 6), run by the supervisor for each
-- request in a light thread. The C transport (runtime/http_server.c) has already
-- checked sizes, timeouts and the bearer token. handle(req) returns status,
-- body (a table: JSON, or a string sent as is), headers; the events stream is
-- answered by runtime/sse.c before it reaches here.
local shield = require "shield"
local problem = require "shield.api.problem"
local job_routes = require "shield.api.jobs"
local health = require "shield.api.health"
local metrics = require "shield.api.metrics"

local string_sub, string_find = string.sub, string.find

local _M = {}

-- Requests by "route status", for /metrics.
local counts = {}
_M.counts = counts

local function metrics_text()
  return 200, metrics.render(metrics.collect(counts)), { ["Content-Type"] = "text/plain; version=0.0.4" }
end

-- Routes by path (named by it), and routes of one path segment after a prefix
-- (the segment is passed to the handler): a table lookup and a plain find
-- instead of a pattern match per route, which cost GET /jobs/<id> about 3,000
-- instructions.
local routes = {
  ["/lightrag/ingest-async"] = { POST = job_routes.ingest },
  ["/jobs"] = { GET = job_routes.list },
  ["/health"] = { GET = health.basic },
  ["/health/detailed"] = { GET = health.detailed },
  ["/metrics"] = { GET = metrics_text },
}
local segment_routes = {
  { "/jobs/", "/jobs/{id}", { GET = job_routes.get, DELETE = job_routes.cancel } },
}

local function allowed(methods)
  local list = {}
  for m in pairs(methods) do
    list[#list + 1] = m
  end
  table.sort(list)
  return table.concat(list, ", ")
end

-- route: the route's name; segment: nil for a route by path.
local function answer(req, route, methods, segment)
  local handler = methods[req.method]
  if not handler then
    local status, body, headers = problem(405, "Method Not Allowed", req.method .. " is not allowed on " .. req.path)
    headers.Allow = allowed(methods)
    return route, status, body, headers
  end
  return route, handler(req, segment)
end

-- The segment of path after prefix: not empty, without a '/'.
local function segment_after(prefix, path)
  local n = #prefix
  if #path > n and string_sub(path, 1, n) == prefix and not string_find(path, "/", n + 1, true) then
    return string_sub(path, n + 1)
  end
end

local function dispatch(req)
  local path = req.path
  local methods = routes[path]
  if methods then
    return answer(req, path, methods)
  end
  for i = 1, #segment_routes do
    local r = segment_routes[i]
    local segment = segment_after(r[1], path)
    if segment then
      return answer(req, r[2], r[3], segment)
    end
  end
  return "unknown", problem(404, "Not Found", "no route " .. path)
end

local function traceback(err)
  return debug.traceback(tostring(err), 2)
end

-- "GET /jobs/x, request <id>": names a request in the log as its response's
-- X-Request-Id does to the client.
local function request_name(req)
  return req.method .. " " .. req.path .. ", request " .. tostring(req.request_id)
end

function _M.handle(req)
  local ok, route, status, body, headers = xpcall(dispatch, traceback, req)
  if not ok then
    shield.log.error("request handler failed (" .. request_name(req) .. "): " .. route)
    route = "error"
    status, body, headers = problem(500, "Internal Server Error",
      "the request handler failed; see the log of request " .. tostring(req.request_id))
  end
  local key = route .. " " .. status
  counts[key] = (counts[key] or 0) + 1
  return status, body, headers
end

local function url_decode(s)
  s = s:gsub("+", " ")
  return (s:gsub("%%(%x%x)", function(h)
    return string.char(tonumber(h, 16))
  end))
end

local function parse_query(raw)
  local q = {}
  for pair in raw:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    k = url_decode(k)
    if q[k] == nil then
      q[k] = url_decode(v)
    end
  end
  return q
end

-- Header lines ("Name: value\r\n"...) and the content type of a handler's
-- headers table (nil: none, JSON).
local function header_lines(extra)
  if extra == nil then
    return "", "application/json"
  end
  local content_type = extra["Content-Type"] or "application/json"
  extra["Content-Type"] = nil
  local lines = {}
  for k, v in pairs(extra) do
    lines[#lines + 1] = k .. ": " .. tostring(v):gsub("[\r\n]", " ") .. "\r\n"
  end
  return table.concat(lines), content_type
end

-- Called by runtime/api.c per request: method, path, raw query, the headers
-- (headers[name], any case: the first of repeated ones), the body, the request
-- id. Returns status, content type, extra header lines ("Name: value\r\n"...),
-- and the body text.
function _M.serve(method, path, query, headers, body, request_id)
  local req = { method = method, path = path, query = query == "" and {} or parse_query(query), headers = headers,
    body = body, request_id = request_id }
  local status, out, extra = _M.handle(req)
  local lines, content_type = header_lines(extra)
  if type(out) == "table" then
    local encoded, err = shield.json.encode(out)
    if not encoded then
      shield.log.error("response of " .. request_name(req) .. " is not JSON-encodable:", err)
      status, content_type = 500, "application/problem+json"
      encoded = '{"type":"about:blank","title":"Internal Server Error","status":500}'
    end
    out = encoded
  end
  return status, content_type, lines, out or ""
end

return _M
