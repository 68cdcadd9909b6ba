-- shield.http.request against the fake server's /_echo: methods, request and
-- response headers, bodies (binary, large, capped), redirects, and misuse
-- raising. Run with `shield-runtime run` under tests/httpc/with-fake.sh.
package.path = os.getenv("SHIELD_SOURCE_DIR") .. "/tests/lib/?.lua;" .. package.path
local shield = require "shield"
local t = require "tap"
local http, json = shield.http, shield.json

local base = assert(os.getenv("SHIELD_FAKE_URL"), "SHIELD_FAKE_URL")

local function echo(req)
  local res, err = http.request(req)
  if not res then return nil, err end
  return res, json.decode(res.body)
end

-- GET with request headers; response headers come back lowercased, repeated
-- ones joined.
local res, e = echo({ url = base .. "/_echo?a=1&b=two", headers = { ["X-Test"] = "yes", ["X-Num"] = 42,
  ["X-Empty"] = "" } })
t.eq(res and res.status, 200, "GET: status 200")
t.eq(e and e.method, "GET", "GET: method")
t.eq(e and e.query, "a=1&b=two", "GET: query string")
t.eq(e and e.headers["x-test"], "yes", "GET: a request header")
t.eq(e and e.headers["x-num"], "42", "GET: a number header value is sent as text")
t.eq(e and e.headers["x-empty"], "", "GET: an empty header value is sent")
t.eq(e and e.headers["user-agent"], "shield-runtime/0.1.0", "GET: user agent")
t.eq(e and e.headers["content-length"], nil, "GET: no body framing")
t.eq(res and res.headers["x-echo"], "1", "response header, lowercased name")
t.eq(res and res.headers["x-multi"], "a, b", "repeated response headers joined")
t.eq(res and res.headers["content-type"], "application/json", "content-type")
t.eq(res and res.headers["X-Echo"], nil, "no mixed-case names")

-- POST with a binary body (NUL bytes included) and no content type.
local bin = "a\0b\1c"
res, e = echo({ method = "POST", url = base .. "/_echo", body = bin })
t.eq(e and e.method, "POST", "POST: method")
t.eq(e and e.body, bin, "POST: binary body round trip")
t.eq(e and e.headers["content-length"], "5", "POST: content-length")
t.eq(e and e.headers["content-type"], nil, "POST: no invented content-type")
t.eq(e and e.headers["expect"], nil, "POST: no Expect: 100-continue")

-- A JSON POST the way service.lua sends it, 200 KB.
local big = string.rep("x", 200 * 1024)
res, e = echo({ method = "POST", url = base .. "/_echo", body = json.encode({ text = big }),
  headers = { ["content-type"] = "application/json" } })
t.eq(e and e.headers["content-type"], "application/json", "JSON POST: content-type")
t.eq(e and e.headers["expect"], nil, "JSON POST: no Expect for a large body")
t.eq(e and json.decode(e.body).text, big, "JSON POST: 200 KB body intact")

-- Other methods.
res, e = echo({ method = "PUT", url = base .. "/_echo" })
t.eq(e and e.method, "PUT", "PUT without a body: method")
t.eq(e and e.headers["content-length"], "0", "PUT without a body: content-length 0")
res, e = echo({ method = "PUT", url = base .. "/_echo", body = "{}" })
t.eq(e and e.body, "{}", "PUT with a body")
res, e = echo({ method = "DELETE", url = base .. "/_echo" })
t.eq(e and e.method, "DELETE", "DELETE: method")
t.eq(e and e.headers["content-length"], nil, "DELETE: no body framing")
res, e = echo({ method = "PATCH", url = base .. "/_echo", body = "p" })
t.eq(e and e.method .. e.body, "PATCHp", "PATCH with a body")
res = http.request({ method = "HEAD", url = base .. "/_echo" })
t.eq(res and res.status, 200, "HEAD: status")
t.eq(res and res.body, "", "HEAD: empty body")
t.eq(res and res.headers["x-echo"], "1", "HEAD: headers")

-- Non-2xx statuses are answers, not errors.
res = http.request({ url = base .. "/_echo?status=404" })
t.eq(res and res.status, 404, "a 404 is an answer")
res = http.request({ url = base .. "/_echo?status=503" })
t.eq(res and res.status, 503, "a 503 is an answer")
res = http.request({ url = base .. "/nowhere" })
t.eq(res and res.status, 404, "unknown route: 404")

-- Redirects are followed; the answer is the final response's.
res, e = echo({ url = base .. "/_redirect?to=/_echo%3Ffrom%3Dredirect" })
t.eq(res and res.status, 200, "redirect followed")
t.eq(e and e.query, "from=redirect", "redirect target reached")
t.eq(res and res.headers.location, nil, "only the final response's headers")

-- Bodies: large ones arrive whole; max_body_bytes caps them.
res = http.request({ url = base .. "/_echo?bytes=3000000" })
t.eq(res and #res.body, 3000000, "a 3 MB body")
res = http.request({ url = base .. "/_echo?bytes=1000", max_body_bytes = 1000 })
t.eq(res and #res.body, 1000, "a body exactly at the cap")
local r2, err = http.request({ url = base .. "/_echo?bytes=1001", max_body_bytes = 1000 })
t.eq(r2, nil, "a body over the cap: nil")
t.like(err, "^response too large: ", "a body over the cap: response too large")
r2, err = http.request({ url = base .. "/_echo?bytes=5000000", max_body_bytes = 4096 })
t.like(err, "^response too large: ", "a body far over the cap")

-- Misuse raises; the message names the problem.
local function raises(req, pattern, name)
  local ok, msg = pcall(http.request, req)
  t.ok(not ok, name .. " raises")
  t.like(msg, pattern, name .. ": message")
end
raises(nil, "table expected", "no options")
raises({}, "url must be a string", "no url")
raises({ url = 5 }, "url must be a string, got number", "a number url")
raises({ url = base, method = "GE T" }, "bad method \"GE T\"", "a method with a space")
raises({ url = base, headers = { ["X-A"] = "1\r\nX-Injected: 1" } }, "bad header value for X%-A", "CRLF in a header value")
raises({ url = base, headers = { ["X A"] = "1" } }, "bad header name \"X A\"", "a space in a header name")
raises({ url = base, headers = { "x" } }, "headers must map names to strings", "an array of headers")
raises({ url = base, headers = "x" }, "headers must be a table", "headers not a table")
raises({ url = base, body = {} }, "body must be a string, got table", "a table body")
raises({ url = base, timeout_ms = 0 }, "timeout_ms must be a number from 1 to", "timeout_ms 0")
raises({ url = base .. "\0x" }, "url contains a NUL byte", "a NUL in the url")

local co = coroutine.create(function() return http.request({ url = base .. "/_echo" }) end)
local ok, msg = coroutine.resume(co)
t.ok(not ok, "a plain coroutine cannot wait")
t.like(msg, "shield light thread", "a plain coroutine: message")

local s = http.stats()
t.eq(s.active, 0, "nothing left in flight")
t.eq(s.requests, 16, "stats: 16 transfers started (misuse starts none)")
t.eq(s.failed, 2, "stats: 2 failed")
return t.done()
