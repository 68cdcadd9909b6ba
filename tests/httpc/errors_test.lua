-- shield.http.request failures: exact leading words for a refused connect,
-- refused protocols (file, gopher, others, also behind a redirect), a bad
-- URL, a server that closes without answering, too many redirects, and
-- timeout_ms. Run with `shield-runtime run` under tests/httpc/with-fake.sh.
package.path = os.getenv("SHIELD_SOURCE_DIR") .. "/tests/lib/?.lua;" .. package.path
local shield = require "shield"
local t = require "tap"
local http = shield.http

local base = assert(os.getenv("SHIELD_FAKE_URL"), "SHIELD_FAKE_URL")
local closed_port = assert(os.getenv("SHIELD_CLOSED_PORT"), "SHIELD_CLOSED_PORT")

local function fails(req, pattern, name)
  local res, err = http.request(req)
  t.eq(res, nil, name .. ": nil")
  t.like(err, pattern, name .. ": " .. tostring(err))
  return err
end

fails({ url = "http://127.0.0.1:" .. closed_port .. "/" },
  "^connection refused: Failed to connect to 127%.0%.0%.1 port " .. closed_port, "connection refused")
fails({ method = "POST", url = "http://127.0.0.1:" .. closed_port .. "/x", body = "b" },
  "^connection refused: ", "connection refused (POST)")

fails({ url = "file:///etc/passwd" }, "^unsupported protocol: .*\"file\"", "file:// refused")
fails({ url = "gopher://127.0.0.1:" .. closed_port .. "/" }, "^unsupported protocol: .*\"gopher\"", "gopher:// refused")
for _, scheme in ipairs({ "ftp", "dict", "ldap", "telnet", "tftp", "smtp", "scp" }) do
  fails({ url = scheme .. "://127.0.0.1:" .. closed_port .. "/" }, "^unsupported protocol: ", scheme .. ":// refused")
end
fails({ url = base .. "/_redirect?to=file:///etc/passwd" }, "^unsupported protocol: .*\"file\"",
  "a redirect to file:// refused")
fails({ url = base .. "/_redirect?to=gopher://127.0.0.1/" }, "^unsupported protocol: .*\"gopher\"",
  "a redirect to gopher:// refused")
-- A redirect loop stops after 5 hops.
fails({ url = base .. "/_redirect" }, "^too many redirects: Maximum %(5%) redirects followed", "a redirect loop")

fails({ url = "http://[::1" }, "^bad url: ", "a malformed url")
fails({ url = "not a url" }, "^bad url: ", "not a url")

fails({ url = base .. "/_echo?close=1" }, "^closed: ", "the server closes without an answer")

local t0 = shield.now()
local res, err = http.request({ url = base .. "/_hang", timeout_ms = 300 })
local took = shield.now() - t0
t.eq(res, nil, "timeout_ms passes: nil")
t.eq(err, "timeout", "timeout_ms passes: exactly \"timeout\"")
t.ok(took >= 290 and took < 1500, "timeout_ms passes on time (" .. took .. " ms)")

-- The client works on after all of that.
res = http.request({ url = base .. "/_echo" })
t.eq(res and res.status, 200, "the next request succeeds")
local s = http.stats()
t.eq(s.active, 0, "nothing left in flight")
return t.done()
