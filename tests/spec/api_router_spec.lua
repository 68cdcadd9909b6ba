-- The HTTP API's router (lua/shield/api/init.lua) when a handler fails: the
-- client gets a 500 problem naming its request id, and the log line names the
-- request (method, path, id) beside the error and its traceback. shield is the
-- runtime's C-backed module and the routes' modules need servers: stand-ins
-- record the log and raise or answer as each case needs.

local logged = {}
package.loaded["shield"] = {
  log = { error = function(...) logged[#logged + 1] = table.concat({ ... }, " ") end },
  json = {
    encode = function(v)
      if v.unencodable then return nil, "cannot encode a function" end
      return "{}"
    end,
  },
}
package.loaded["shield.api.jobs"] = {
  get = function(_, id) error("lost the job " .. id) end,
  list = function() return 200, { unencodable = true } end,
}
package.loaded["shield.api.health"] = {}
package.loaded["shield.api.metrics"] = {}
local api = require "shield.api"

before_each(function()
  for i = #logged, 1, -1 do logged[i] = nil end
end)

describe("a handler that raises", function()
  it("answers 500 naming the request id, and logs the request, the error and where", function()
    local status, content_type, _, body = api.serve("GET", "/jobs/abc", "", {}, "", "req-42")
    assert.equal(500, status)
    assert.equal("application/problem+json", content_type)
    assert.equal("{}", body) -- the stand-in encoder; the problem itself is checked below
    assert.equal(1, #logged)
    assert.truthy(logged[1]:find("request handler failed (GET /jobs/abc, request req-42): ", 1, true))
    assert.truthy(logged[1]:find("lost the job abc", 1, true))
    assert.truthy(logged[1]:find("stack traceback", 1, true))
  end)

  it("gives the problem's detail the request id", function()
    local status, problem = api.handle({ method = "GET", path = "/jobs/abc", request_id = "req-7" })
    assert.equal(500, status)
    assert.same({ type = "about:blank", title = "Internal Server Error", status = 500,
                  detail = "the request handler failed; see the log of request req-7" }, problem)
  end)
end)

describe("a response that cannot be JSON-encoded", function()
  it("answers 500 and logs the request", function()
    local status = api.serve("GET", "/jobs", "", {}, "", "req-9")
    assert.equal(500, status)
    assert.equal(1, #logged)
    assert.truthy(logged[1]:find("response of GET /jobs, request req-9 is not JSON-encodable: cannot encode", 1, true))
  end)
end)
