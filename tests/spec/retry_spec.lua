local retry = require "shield.retry"

local function fixed(r)
  return function() return r end
end

describe("retry.decide", function()
  it("retries with full jitter under an exponential ceiling (base 1 s)", function()
    assert.same({ retry = true, delay_ms = 0 }, retry.decide("boom", 1, 5, fixed(0)))
    assert.same({ retry = true, delay_ms = 1000 }, retry.decide("boom", 1, 5, fixed(1)))
    assert.same({ retry = true, delay_ms = 500 }, retry.decide("boom", 1, 5, fixed(0.5)))
    assert.same({ retry = true, delay_ms = 2000 }, retry.decide("boom", 2, 5, fixed(1)))
    assert.same({ retry = true, delay_ms = 4000 }, retry.decide("boom", 3, 5, fixed(1)))
    assert.same({ retry = true, delay_ms = 3999 }, retry.decide("boom", 3, 5, fixed(0.99999)))
  end)

  it("caps the ceiling at 60 s, however many attempts", function()
    assert.same({ retry = true, delay_ms = 32000 }, retry.decide("boom", 6, 100, fixed(1)))
    assert.same({ retry = true, delay_ms = 60000 }, retry.decide("boom", 7, 100, fixed(1)))
    assert.same({ retry = true, delay_ms = 60000 }, retry.decide("boom", 5000, 10000, fixed(1)))
    assert.same({ retry = true, delay_ms = 30000 }, retry.decide("boom", 5000, 10000, fixed(0.5)))
  end)

  it("keeps default-random delays within [0, ceiling]", function()
    math.randomseed(7)
    local lo, hi = math.huge, -1
    for _ = 1, 2000 do
      local d = retry.decide("boom", 3, 5).delay_ms
      assert.is_true(d >= 0 and d <= 4000 and d == math.floor(d), "delay " .. d)
      lo, hi = math.min(lo, d), math.max(hi, d)
    end
    -- full jitter spreads over the whole range, not just near the ceiling
    assert.is_true(lo < 400 and hi > 3600, lo .. ".." .. hi)
  end)

  it("stops once the last allowed delivery failed", function()
    assert.same({ retry = true, delay_ms = 1000 }, retry.decide("boom", 2, 3, fixed(0.5)))
    assert.same({ retry = false, reason = "attempts exhausted" }, retry.decide("boom", 3, 3, fixed(0.5)))
    assert.same({ retry = false, reason = "attempts exhausted" }, retry.decide("boom", 4, 3, fixed(0.5)))
    assert.same({ retry = false, reason = "attempts exhausted" }, retry.decide("boom", 1, 1, fixed(0.5)))
  end)

  it("sends non-retryable errors straight to dead letters", function()
    local err = { message = "malformed chunk", retryable = false }
    assert.same({ retry = false, reason = "non-retryable" }, retry.decide(err, 1, 3, fixed(0.5)))
    -- only an explicit false counts
    assert.same({ retry = true, delay_ms = 500 },
      retry.decide({ message = "timeout", retryable = true }, 1, 3, fixed(0.5)))
    assert.same({ retry = true, delay_ms = 500 }, retry.decide({ message = "x" }, 1, 3, fixed(0.5)))
  end)

  it("takes another base and cap", function()
    assert.same({ retry = true, delay_ms = 400 },
      retry.decide("boom", 3, 9, fixed(1), { base_ms = 100, cap_ms = 10000 }))
    assert.same({ retry = true, delay_ms = 250 },
      retry.decide("boom", 8, 9, fixed(1), { base_ms = 100, cap_ms = 250 }))
  end)

  it("raises on misuse", function()
    assert.has_error(function() retry.decide("x", 0, 3) end,
      "bad argument #2 to 'decide': positive integer attempt expected")
    assert.has_error(function() retry.decide("x", 1, 2.5) end,
      "bad argument #3 to 'decide': positive integer max_attempts expected")
    assert.has_error(function() retry.decide("x", 1, 3, 0.5) end,
      "bad argument #4 to 'decide': function expected, got number")
    assert.has_error(function() retry.decide("x", 1, 3, fixed(1.5)) end,
      "rand() must return a number in [0, 1], got 1.5")
  end)
end)
