-- GET /metrics' text (lua/shield/api/metrics.lua render): the chunk and the
-- per-step duration histograms in the Prometheus text format, each series with
-- cumulative buckets ending in +Inf, _sum and _count.

-- render() is pure; collect() would read the scoreboard through this module.
package.loaded["shield.api.stats"] = {}
local metrics = require "shield.api.metrics"

local BOUNDS = { 0.001, 0.005, 0.01 }

local function figures(steps)
  return {
    workers = {},
    durations = { bounds = BOUNDS, counts = { 1, 3, 3, 4 }, sum = 12.5 },
    steps = steps,
    script = { reloads_ok = 0, reloads_failed = 0 },
  }
end

-- The samples of a family as {name, labels, value} in the order rendered.
local function samples(text, family)
  local out, kind = {}, nil
  for line in text:gmatch("[^\n]+") do
    local t = line:match("^# TYPE " .. family .. " (%a+)$")
    if t then kind = t end
    local name, labels, value = line:match("^(" .. family .. "[%w_]*)({?[^ ]*}?) (%S+)$")
    if name then out[#out + 1] = { name, labels, value } end
  end
  return out, kind
end

describe("metrics.render", function()
  it("exports the chunk durations as a histogram", function()
    local s, kind = samples(metrics.render(figures({})), "shield_chunk_duration_seconds")
    assert.equal("histogram", kind)
    assert.same({
      { "shield_chunk_duration_seconds_bucket", '{le="0.001"}', "1" },
      { "shield_chunk_duration_seconds_bucket", '{le="0.005"}', "3" },
      { "shield_chunk_duration_seconds_bucket", '{le="0.01"}', "3" },
      { "shield_chunk_duration_seconds_bucket", '{le="+Inf"}', "4" },
      { "shield_chunk_duration_seconds_sum", "", "12.5" },
      { "shield_chunk_duration_seconds_count", "", "4" },
    }, s)
  end)

  it("exports every step's durations as a histogram series of its own", function()
    local text = metrics.render(figures({
      extract = { bounds = BOUNDS, counts = { 0, 2, 5, 6 }, sum = 0.25 },
      embed = { bounds = BOUNDS, counts = { 6, 6, 6, 6 }, sum = 0.003 },
    }))
    local s, kind = samples(text, "shield_step_duration_seconds")
    assert.equal("histogram", kind)
    local F = "shield_step_duration_seconds"
    assert.same({
      { F .. "_bucket", '{le="0.001",step="embed"}', "6" },
      { F .. "_bucket", '{le="0.005",step="embed"}', "6" },
      { F .. "_bucket", '{le="0.01",step="embed"}', "6" },
      { F .. "_bucket", '{le="+Inf",step="embed"}', "6" },
      { F .. "_sum", '{step="embed"}', "0.003" },
      { F .. "_count", '{step="embed"}', "6" },
      { F .. "_bucket", '{le="0.001",step="extract"}', "0" },
      { F .. "_bucket", '{le="0.005",step="extract"}', "2" },
      { F .. "_bucket", '{le="0.01",step="extract"}', "5" },
      { F .. "_bucket", '{le="+Inf",step="extract"}', "6" },
      { F .. "_sum", '{step="extract"}', "0.25" },
      { F .. "_count", '{step="extract"}', "6" },
    }, s)
    assert.is_nil(text:find("summary", 1, true))
  end)

  it("writes bounds and sums in their shortest exact form", function()
    local text = metrics.render(figures({ x = { bounds = { 0.005, 2.5, 1 / 3 }, counts = { 0, 0, 1, 1 }, sum = 0.1 } }))
    assert.truthy(text:find('{le="0.005",step="x"} 0\n', 1, true))
    assert.truthy(text:find('{le="2.5",step="x"} 0\n', 1, true))
    assert.truthy(text:find('{le="0.3333333333333333",step="x"} 1\n', 1, true))
    assert.truthy(text:find('shield_step_duration_seconds_sum{step="x"} 0.1\n', 1, true))
  end)

  it("declares the step family even before any step ran", function()
    local s, kind = samples(metrics.render(figures(nil)), "shield_step_duration_seconds")
    assert.equal("histogram", kind)
    assert.same({}, s)
  end)
end)
