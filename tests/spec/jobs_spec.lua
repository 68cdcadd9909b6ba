local jobs = require "shield.jobs"
local cjson = require "cjson"

describe("shield.jobs", function()
  local limits = { max_chunks = 3, max_chunk_bytes = 10 }

  it("makes well-formed version 4 UUIDs", function()
    local id = jobs.new_id("0123456789abcdef0123456789abcdef")
    assert.are.equal("01234567-89ab-4def-8123-456789abcdef", id)
    assert.is_true(jobs.valid_id(id))
    assert.is_false(jobs.valid_id("01234567-89ab-1def-8123-456789abcdef"))
    assert.is_false(jobs.valid_id("../etc/passwd"))
    assert.is_false(jobs.valid_id(nil))
  end)

  it("accepts the job ids the UUID pattern accepts, and only those", function()
    local pattern = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"
    local ids = { "01234567-89AB-4DEF-a123-456789ABCDEF", "01234567-89ab-4def-B123-456789abcdef",
      "01234567-89ab-4def-c123-456789abcdef", "01234567-89ab-4def-8123-456789abcdef0",
      "01234567-89ab-4def-8123-456789abcde", "01234567_89ab-4def-8123-456789abcdef", "", 42 }
    local valid = "01234567-89ab-4def-8123-456789abcdef"
    -- Every byte at every place of a valid id.
    for i = 1, #valid do
      for b = 0, 255 do
        ids[#ids + 1] = valid:sub(1, i - 1) .. string.char(b) .. valid:sub(i + 1)
      end
    end
    for _, id in ipairs(ids) do
      local want = type(id) == "string" and id:match(pattern) ~= nil
      assert.are.equal(want, jobs.valid_id(id), id)
    end
  end)

  it("turns a valid request into chunks with their metadata", function()
    local chunks, meta = jobs.validate_ingest({
      source_type = "pdf",
      metadata = { tenant = "acme" },
      chunks = {
        { text = "Hello", source_uri = "s3://a/b", metadata = { page = 2 } },
        { text = "World" },
      },
    }, limits, cjson.encode)
    assert.are.equal(2, #chunks)
    assert.are.equal("Hello", chunks[1].text)
    assert.are.same({ page = 2, source_uri = "s3://a/b", source_type = "pdf", chunk_index = 0 },
      cjson.decode(chunks[1].metadata))
    assert.are.same({ source_type = "pdf", chunk_index = 1 }, cjson.decode(chunks[2].metadata))
    assert.are.same({ tenant = "acme", source_type = "pdf" }, cjson.decode(meta))
  end)

  it("sets source_uri, source_type and chunk_index over a chunk's own metadata", function()
    local chunks = jobs.validate_ingest({
      source_type = "pdf",
      chunks = {
        { text = "a", metadata = { chunk_index = 9, source_uri = "mine", n = 1.5, tags = { "x" } } },
        { text = "b", metadata = {}, source_uri = 'with "quotes"' },
        { text = "c", metadata = { source_type = "own" } },
      },
    }, limits, cjson.encode)
    assert.are.same({ chunk_index = 0, n = 1.5, tags = { "x" }, source_type = "pdf" }, cjson.decode(chunks[1].metadata))
    assert.are.same({ chunk_index = 1, source_uri = 'with "quotes"', source_type = "pdf" },
      cjson.decode(chunks[2].metadata))
    assert.are.same({ chunk_index = 2, source_type = "pdf" }, cjson.decode(chunks[3].metadata))
    -- Without a source_type.
    local bare = jobs.validate_ingest({ chunks = {
      { text = "d", metadata = { page = 7, title = "T" }, source_uri = "u" }, { text = "e" } } }, limits, cjson.encode)
    assert.are.same({ chunk_index = 0, page = 7, title = "T", source_uri = "u" }, cjson.decode(bare[1].metadata))
    assert.are.equal('{"chunk_index":1}', bare[2].metadata)
  end)

  local cases = {
    { "not an object", { 1, 2 }, "the body must be a JSON object" },
    { "no chunks", {}, "chunks: required" },
    { "chunks not an array", { chunks = { a = 1 } }, "chunks: must be an array" },
    { "empty chunks", { chunks = {} }, "chunks: must not be empty" },
    { "too many chunks", { chunks = { { text = "a" }, { text = "b" }, { text = "c" }, { text = "d" } } },
      "chunks: 4 chunks, at most 3 allowed" },
    { "chunk not an object", { chunks = { "text" } }, "chunks[0]: must be an object" },
    { "text missing", { chunks = { { text = "a" }, {} } }, "chunks[1].text: must be a string" },
    { "text empty", { chunks = { { text = "  \n" } } }, "chunks[0].text: must not be empty" },
    { "text too long", { chunks = { { text = "01234567890" } } }, "chunks[0].text: 11 bytes, at most 10 allowed" },
    { "text a number", { chunks = { { text = 5 } } }, "chunks[0].text: must be a string" },
    { "bad source_uri", { chunks = { { text = "a", source_uri = 1 } } }, "chunks[0].source_uri: must be a string" },
    { "bad chunk metadata", { chunks = { { text = "a", metadata = "x" } } }, "chunks[0].metadata: must be an object" },
    { "bad job metadata", { chunks = { { text = "a" } }, metadata = 3 }, "metadata: must be an object" },
    { "bad source_type", { chunks = { { text = "a" } }, source_type = {} }, "source_type: must be a string" },
  }
  for _, case in ipairs(cases) do
    it("rejects " .. case[1] .. " with 422", function()
      local chunks, status, detail = jobs.validate_ingest(case[2], limits, cjson.encode)
      assert.is_nil(chunks)
      assert.are.equal(422, status)
      assert.are.equal(case[3], detail)
    end)
  end

  it("writes epoch milliseconds as os.date does, leap days and year ends included", function()
    local function expected(ms)
      local s = math.floor(ms / 1000)
      return os.date("!%Y-%m-%dT%H:%M:%S", s) .. string.format(".%03dZ", ms - s * 1000)
    end
    local cases = {
      0, 999, 68169599999, 68169600000, 951782400000, 951868799999, 951868800000,
      4107542400000, 4107542399999, 4102444800000, 1700000000123, 253402300799999,
    }
    for _ = 1, 20000 do
      cases[#cases + 1] = math.random(0, 7258118400000) -- to 2200
    end
    for _, ms in ipairs(cases) do
      assert.are.equal(expected(ms), jobs.iso8601(ms))
    end
    assert.are.equal("2000-02-29T00:00:00.000Z", jobs.iso8601("951782400000"))
    assert.is_nil(jobs.iso8601("soon"))
  end)

  it("shows a job with its percent and ISO timestamps", function()
    local v = jobs.view("id1", {
      status = "processing", job_type = "lightrag_ingest", chunks_total = "4", chunks_processed = "2",
      chunks_failed = "1", created_at = "1700000000123", started_at = "", error_message = "",
    })
    assert.are.equal(75, v.percent_complete)
    assert.are.equal("2023-11-14T22:13:20.123Z", v.created_at)
    assert.is_nil(v.started_at)
    assert.is_nil(v.error)
    assert.are.equal(4, v.chunks_total)
  end)

  it("gives the same view as JSON text, escaping what needs it", function()
    local cases = {
      { status = "processing", job_type = "lightrag_ingest", chunks_total = "3", chunks_processed = "1",
        chunks_failed = "0", chunks_skipped = "0", created_at = "1700000000123", started_at = "1700000001000",
        error_message = "" },
      { status = "failed", chunks_total = "7", chunks_processed = "2", chunks_failed = "5",
        created_at = "2023-11-14T22:13:20.123Z", completed_at = "1700000009999",
        error_message = 'bad "input" \\ at\nline 2\t\127 caf\195\169' },
      { status = "queued" },
    }
    for _, f in ipairs(cases) do
      local text = jobs.view_json("01234567-89ab-4def-8123-456789abcdef", f, cjson.encode)
      assert.are.same(jobs.view("01234567-89ab-4def-8123-456789abcdef", f), cjson.decode(text))
    end
    local text = jobs.view_json("id1", cases[2], cjson.encode)
    assert.is_truthy(text:find('"counts":{}}$'))
    assert.is_nil(text:find("started_at", 1, true))
    assert.is_truthy(text:find('"percent_complete":100', 1, true))
    assert.is_truthy(text:find('"chunks_total":7,', 1, true))
  end)

  it("reads a job hash with the counts of its count:<name> fields, always shown", function()
    local hash = jobs.hash_fields({ "status", "completed", "chunks_total", "2", "chunks_processed", "2",
      "count:entities", "12", "count:relations", "0", "count:vectors", "31", "rev", "4" })
    assert.same({ entities = 12, relations = 0, vectors = 31 }, hash.counts)
    assert.same({ status = "completed", chunks_total = "2", chunks_processed = "2", rev = "4",
      counts = hash.counts }, hash)
    assert.same({ status = "queued" }, jobs.hash_fields({ "status", "queued" }))
    assert.same({}, jobs.hash_fields({ "status", "queued", "count:bad", "x" }).counts, "a count that is no number")
    assert.same(hash, jobs.take_counts({ status = "completed", chunks_total = "2", chunks_processed = "2",
      ["count:entities"] = "12", ["count:relations"] = "0", ["count:vectors"] = "31", rev = "4" }),
      "the same from the fields keyed by name")
    assert.same({ status = "queued" }, jobs.take_counts({ status = "queued" }))
    local text = jobs.view_json("id1", hash, cjson.encode)
    assert.is_truthy(text:find(',"counts":{"entities":12,"relations":0,"vectors":31}}', 1, true))
    assert.same(jobs.view("id1", hash), cjson.decode(text))
    assert.same({ entities = 12, relations = 0, vectors = 31 }, jobs.view("id1", hash).counts)
    assert.same({}, jobs.view("id1", { status = "queued" }).counts)
    assert.is_truthy(jobs.view_json("id1", { status = "queued" }, cjson.encode):find(',"counts":{}}$'))
    assert.equal("{}", jobs.counts_json({}, cjson.encode))
    assert.equal("{}", jobs.counts_json(nil, cjson.encode))
    assert.equal('{"a\\"b":1}', jobs.counts_json({ ['a"b'] = 1 }, cjson.encode))
  end)
end)
