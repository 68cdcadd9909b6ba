-- The pipeline's HTTP backends against a scripted stand-in for
-- shield.http.request: request shapes (Ollama, OpenAI, Qdrant), failure
-- classes (429/5xx/timeouts retryable with Retry-After, other 4xx and garbage
-- final), in-place retries, gleaning, the Redis-held LLM concurrency cap and
-- its lease expiry, and settings errors. Run with `shield-runtime run` under
-- the harness (Redis); SHIELD_TEST_FAKE_KEY must be "sk-test".
package.path = os.getenv("SHIELD_SOURCE_DIR") .. "/tests/lib/?.lua;" .. package.path
local shield = require "shield"
local t = require "tap"
local service = require "shield.lightrag.steps.service"
local pipeline = require "shield.lightrag.steps.pipeline"
local semaphore = require "shield.lightrag.steps.semaphore"
local extract = require "shield.lightrag.steps.extract"
local embedding = require "shield.lightrag.steps.embedding"
local qdrant = require "shield.lightrag.steps.qdrant"
local json = shield.json

-- A stand-in for shield.http.request answering from a queue of responses:
-- {status=, body=, headers=} tables, {err="..."} for a transport error, or a
-- function(req) for anything else. Records every request.
local function fake(responses, opts)
  local f = { requests = {}, inflight = 0, peak = 0 }
  opts = opts or {}
  function f.request(req)
    f.requests[#f.requests + 1] = req
    f.inflight = f.inflight + 1
    if f.inflight > f.peak then f.peak = f.inflight end
    if opts.delay_ms then shield.sleep(opts.delay_ms) end
    f.inflight = f.inflight - 1
    local r = table.remove(responses, 1) or opts.default
    if type(r) == "function" then r = r(req) end
    if r == nil then return nil, "no scripted response" end
    if r.err then return nil, r.err end
    return { status = r.status or 200, headers = r.headers or {}, body = r.body or "" }
  end
  return f
end

local function ollama_answer(content)
  return { body = json.encode({ model = "m", created_at = "2024-01-01T00:00:00Z",
    message = { role = "assistant", content = content }, done = true }) }
end

local function openai_answer(content)
  return { body = json.encode({ id = "c1", object = "chat.completion",
    choices = { { index = 0, message = { role = "assistant", content = content }, finish_reason = "stop" } } }) }
end

-- pcall(fn) and the failure it raised
local function failure(fn, ...)
  local ok, e = pcall(fn, ...)
  if ok then return nil end
  return e
end

local D = "<|#|>"
local RECORDS = table.concat({
  "entity" .. D .. "Ada Lovelace" .. D .. "Person" .. D .. "A mathematician.",
  "entity" .. D .. "London" .. D .. "Location" .. D .. "A city.",
  "relation" .. D .. "Ada Lovelace" .. D .. "London" .. D .. "residence" .. D .. "Ada Lovelace lived in London.",
  "<|COMPLETE|>",
}, "\n")

-- Retry-After
t.eq(service.retry_after_ms("3", 0), 3000, "Retry-After in seconds")
t.eq(service.retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", 784111777000 - 5000), 5000,
  "Retry-After as an HTTP date")
t.eq(service.retry_after_ms("soon", 0), nil, "an unreadable Retry-After is ignored")

-- Ollama chat: the request's shape
do
  local f = fake({ ollama_answer(RECORDS) })
  local p = pipeline.new({ llm = { url = "http://llm.test:11434/", model = "qwen", max_concurrency = 2 },
    max_gleaning = 0 }, { request = f.request })
  local state = { content = "Ada Lovelace lived in London.", pipeline = p }
  local counts = extract.run(state)
  local req = f.requests[1]
  local body = json.decode(req.body)
  t.eq(req.method, "POST", "ollama: POST")
  t.eq(req.url, "http://llm.test:11434/api/chat", "ollama: /api/chat")
  t.eq(req.headers["content-type"], "application/json", "ollama: JSON body")
  t.eq(body.model, "qwen", "ollama: the model")
  t.eq(body.stream, false, "ollama: no streaming")
  t.eq(body.options.temperature, 0, "ollama: temperature in options")
  t.eq(body.messages[1].role, "system", "ollama: the system prompt first")
  t.like(body.messages[2].content, "Ada Lovelace lived in London%.", "ollama: the chunk in the user message")
  t.eq(req.headers.authorization, nil, "ollama: no key, no Authorization header")
  t.eq(counts.entities, 2, "extract: 2 entities")
  t.eq(counts.relations, 1, "extract: 1 relation")
  t.eq(counts.gleanings, 0, "extract: max_gleaning 0 asks once")
  t.eq(#f.requests, 1, "extract: one request without gleaning")
end

-- OpenAI chat with gleaning: the second answer adds a record
do
  local first = "entity" .. D .. "Ada Lovelace" .. D .. "Person" .. D .. "A mathematician.\n<|COMPLETE|>"
  local more = "entity" .. D .. "Charles Babbage" .. D .. "Person" .. D .. "An engineer.\n<|COMPLETE|>"
  local f = fake({ openai_answer(first), openai_answer(more) })
  local p = pipeline.new({ llm = { provider = "openai", url = "http://llm.test/v1", model = "gpt",
    api_key_env = "SHIELD_TEST_FAKE_KEY", temperature = 0.2 } }, { request = f.request })
  local state = { content = "Ada Lovelace and Charles Babbage.", pipeline = p }
  local counts = extract.run(state)
  local req = f.requests[1]
  local body = json.decode(req.body)
  t.eq(req.url, "http://llm.test/v1/chat/completions", "openai: /v1/chat/completions, no doubled /v1")
  t.eq(req.headers.authorization, "Bearer sk-test", "openai: the key from the environment")
  t.eq(body.temperature, 0.2, "openai: temperature")
  t.eq(#f.requests, 2, "gleaning: a second request (max_gleaning defaults to 1)")
  local glean = json.decode(f.requests[2].body).messages
  t.eq(#glean, 4, "gleaning: history, the answer and the follow-up")
  t.eq(glean[3].role, "assistant", "gleaning: the first answer is in the history")
  t.eq(counts.entities, 2, "gleaning: the missed entity is added")
  t.eq(counts.gleanings, 1, "gleaning: one pass")
end

-- Unreadable answers fail for good
do
  local f = fake({}, { default = ollama_answer("Sorry, I cannot help with that.") })
  local p = pipeline.new({ llm = { url = "http://llm.test", model = "m" } }, { request = f.request })
  local e = failure(extract.run, { content = "Some text.", pipeline = p })
  t.ok(shield.is_failure(e), "unparseable: a shield failure")
  t.eq(e and e.retryable, false, "unparseable: not retryable")
  t.eq(e and e.message, "llm: unparseable answer after 1 gleaning pass(es): 0 malformed record(s), "
    .. "no completion marker (completion marker missing: the answer may be cut off)", "unparseable: the message")
  t.eq(#f.requests, 2, "unparseable: asked, then gleaned once")
end
do
  local f = fake({ ollama_answer("<|COMPLETE|>") })
  local p = pipeline.new({ llm = { url = "http://llm.test", model = "m" }, max_gleaning = 0 }, { request = f.request })
  local counts = extract.run({ content = "nothing here", pipeline = p })
  t.eq(counts.entities, 0, "a complete answer without records is a valid empty extraction")
end

-- Failure classes of one call
local function chat_with(responses, retries)
  local f = fake(responses)
  local p = pipeline.new({ llm = { url = "http://llm.test", model = "m", retries = retries } }, { request = f.request })
  local e = failure(p.llm.chat, p.llm, { { role = "user", content = "hi" } })
  return e, f
end

do
  local e, f = chat_with({ { status = 429, body = "slow down", headers = { ["retry-after"] = "2" } } }, 0)
  t.eq(e and e.message, "llm: POST http://llm.test/api/chat: http 429: slow down", "429: the message")
  t.eq(e and e.retryable, true, "429: retryable")
  t.eq(e and e.retry_after_ms, 2000, "429: carries Retry-After")
  t.eq(#f.requests, 1, "429 with retries 0: one request")
end
do
  local e, f = chat_with({ { status = 429, headers = { ["retry-after"] = "60" } } }, 2)
  t.eq(e and e.retry_after_ms, 60000, "429 with a long Retry-After: left to the chunk's retry")
  t.eq(#f.requests, 1, "429 with a long Retry-After: no in-place wait")
end
do
  local f = fake({ { status = 503, body = "busy" }, { status = 429, headers = { ["retry-after"] = "0" } },
    ollama_answer("ok") })
  local p = pipeline.new({ llm = { url = "http://llm.test", model = "m" } }, { request = f.request })
  t.eq(p.llm:chat({ { role = "user", content = "hi" } }), "ok", "503 then 429: retried in place to success")
  t.eq(#f.requests, 3, "503 then 429: three requests")
end
do
  local e, f = chat_with({ { status = 404, body = '{"error":"model \\"m\\" not found"}' } }, 2)
  t.eq(e and e.retryable, false, "404: not retryable")
  t.eq(e and e.message, 'llm: POST http://llm.test/api/chat: http 404: {"error":"model \\"m\\" not found"}',
    "404: the message quotes the server")
  t.eq(#f.requests, 1, "404: no retry")
end
do
  local e = chat_with({ { status = 200, body = "<html>oops" } }, 2)
  t.eq(e and e.retryable, false, "garbage: not retryable")
  t.like(e and e.message, "^llm: POST http://llm.test/api/chat: bad answer %(.*%): <html>oops$", "garbage: the message")
end
do
  local e = chat_with({ { status = 200, body = '{"done":true}' } }, 0)
  t.eq(e and e.message, 'llm: bad answer from http://llm.test/api/chat: no message content: {"done":true}',
    "no content: the message")
end
do
  local e, f = chat_with({ { err = "timeout" }, { err = "timeout" }, { err = "timeout" } }, 2)
  t.eq(e and e.message, "llm: POST http://llm.test/api/chat: timeout", "timeouts: the message")
  t.eq(e and e.retryable, true, "timeouts: retryable")
  t.eq(#f.requests, 3, "timeouts: 1 + 2 retries")
end
do
  local e = chat_with({ { status = 500, body = "" } }, 0)
  t.eq(e and e.message, "llm: POST http://llm.test/api/chat: http 500: (empty body)", "500: never an empty text")
end

-- retry(): Retry-After raises the delay; the budget still ends it
do
  local d = service.retry({ retryable = true, retry_after_ms = 5000 }, 1)
  t.eq(d.retry, true, "retry(): retries a 429")
  t.ok(d.delay_ms >= 5000 and d.delay_ms <= 6000, "retry(): waits at least Retry-After (" .. tostring(d.delay_ms) .. ")")
  t.eq(service.retry({ retryable = true, retry_after_ms = 5000 }, 3).retry, false, "retry(): 3 of 3 attempts is the end")
  t.eq(service.retry({ retryable = false }, 1).retry, false, "retry(): final errors are not retried")
end

-- The global LLM concurrency cap
do
  local key = "test:llm_leases:" .. shield.random_hex(4)
  local f = fake({}, { delay_ms = 40, default = ollama_answer("ok") })
  local p = pipeline.new({ llm = { url = "http://llm.test", model = "m", max_concurrency = 2, lease_key = key } },
    { request = f.request })
  local threads = {}
  for i = 1, 10 do
    threads[i] = shield.spawn(function() return p.llm:chat({ { role = "user", content = "hi" } }) end)
  end
  local answered = 0
  for i = 1, 10 do
    local ok, v = shield.join(threads[i])
    if ok and v == "ok" then answered = answered + 1 end
  end
  t.eq(answered, 10, "cap: all 10 calls answered")
  t.eq(f.peak, 2, "cap: never more than 2 in flight")
  t.eq(shield.redis.call("ZCARD", key), 0, "cap: every lease released")

  -- a holder that never releases only blocks until its lease expires
  local sem = semaphore.new({ key = key, limit = 1, lease_ms = 150 })
  sem:acquire()
  local t0 = shield.now()
  local lease = sem:acquire()
  local waited = shield.now() - t0
  t.ok(waited >= 100 and waited < 1500, "cap: a lost lease expires (" .. waited .. " ms)")
  sem:release(lease)

  -- a full semaphore ends in a retryable failure at the thread's deadline
  local full = semaphore.new({ key = key, limit = 1, lease_ms = 5000, name = "llm" })
  full:acquire()
  local th = shield.spawn(function()
    shield.set_deadline(100)
    return full:acquire()
  end)
  local ok, e = shield.join(th)
  t.eq(ok, false, "cap: waiting past the deadline fails")
  t.eq(type(e) == "table" and e.message, "llm: timeout waiting for a concurrency lease", "cap: the timeout message")
  shield.redis.call("DEL", key)
end

-- Embeddings
do
  local function ollama_embed(req)
    local input = json.decode(req.body).input
    local vecs = {}
    for i = 1, #input do vecs[i] = { #input[i], 1, 0 } end
    return { body = json.encode({ model = "e", embeddings = vecs }) }
  end
  local f = fake({}, { default = ollama_embed })
  local e = embedding.new({ provider = "ollama", url = "http://emb.test", model = "e", batch_size = 2 }, f.request)
  local v = e:embed({ "a", "bb", "ccc", "dddd", "eeeee" })
  t.eq(#f.requests, 3, "ollama embed: 5 texts in batches of 2")
  t.eq(f.requests[1].url, "http://emb.test/api/embed", "ollama embed: /api/embed")
  t.eq(json.decode(f.requests[1].body).input[2], "bb", "ollama embed: input array")
  t.eq(#v, 5, "ollama embed: 5 vectors")
  t.eq(v[4][1], 4, "ollama embed: vectors in input order")
  t.eq(e.model, "e", "ollama embed: the model name is stored with vectors")

  local g = fake({ { body = json.encode({ object = "list", model = "e", data = {
    { object = "embedding", index = 1, embedding = { 2, 2 } }, { object = "embedding", index = 0, embedding = { 1, 1 } } } }) } })
  local o = embedding.new({ provider = "openai", url = "http://emb.test", model = "e",
    api_key_env = "SHIELD_TEST_FAKE_KEY" }, g.request)
  local w = o:embed({ "x", "y" })
  t.eq(g.requests[1].url, "http://emb.test/v1/embeddings", "openai embed: /v1/embeddings")
  t.eq(g.requests[1].headers.authorization, "Bearer sk-test", "openai embed: the key")
  t.eq(w[1][1] .. "," .. w[2][1], "1,2", "openai embed: ordered by index")

  local h = fake({ { body = json.encode({ embeddings = { { 1, 2 } } }) } })
  local bad = embedding.new({ provider = "ollama", url = "http://emb.test", model = "e", dim = 3 }, h.request)
  local err = failure(bad.embed, bad, { "x" })
  t.eq(err and err.message, "embedding: e gave a vector of size 2, expected 3", "embed: a size mismatch is final")
  t.eq(err and err.retryable, false, "embed: a size mismatch is not retryable")
  local k = fake({ { body = json.encode({ embeddings = { { 1 } } }) } })
  local short = embedding.new({ provider = "ollama", url = "http://emb.test", model = "e" }, k.request)
  err = failure(short.embed, short, { "x", "y" })
  t.eq(err and err.message, "embedding: bad answer from http://emb.test/api/embed: 1 vectors for 2 inputs",
    "embed: a missing vector is a bad answer")
  -- every element a finite number: the vectors step writes them as real[] text
  local m = fake({ { body = '{"embeddings": [[1, "2}"]]}' }, { body = '{"embeddings": [[1, 1e999]]}' } })
  local mixed = embedding.new({ provider = "ollama", url = "http://emb.test", model = "e", retries = 0 }, m.request)
  err = failure(mixed.embed, mixed, { "x" })
  t.eq(err and err.message, "embedding: bad answer from http://emb.test/api/embed: vector 1 is not numbers",
    "embed: a string in a vector is a bad answer")
  err = failure(mixed.embed, mixed, { "x" })
  t.eq(err and err.message, "embedding: bad answer from http://emb.test/api/embed: vector 1 is not numbers",
    "embed: an infinite number is a bad answer")
  local hash = embedding.new(nil)
  t.eq(hash.model, "hash-256", "embed: offline by default, 256 dimensions")
  t.eq(#hash:embed({ "words here" })[1], 256, "embed: a hash vector")
end

-- Qdrant
do
  local f = fake({ { status = 404, body = '{"status":{"error":"Not found"}}' },
    { body = '{"result":true,"status":"ok","time":0.1}' },
    { body = '{"result":{"operation_id":1,"status":"completed"},"status":"ok","time":0.1}' },
    { body = '{"result":{"operation_id":2,"status":"completed"},"status":"ok","time":0.1}' } })
  local q = qdrant.new({ store = "qdrant", url = "http://qd.test:6333", collection = "kg" }, f.request)
  local items = { { id = "chunk-1", kind = "chunk", ref = "chunk-1", content = "text", vector = { 0.6, 0.8 } } }
  t.eq(q:upsert(items, 2, "hash-2"), 1, "qdrant: one point stored")
  t.eq(f.requests[1].method .. " " .. f.requests[1].url, "GET http://qd.test:6333/collections/kg", "qdrant: looks for the collection")
  t.eq(f.requests[2].method .. " " .. f.requests[2].url, "PUT http://qd.test:6333/collections/kg", "qdrant: creates it")
  local create = json.decode(f.requests[2].body)
  t.eq(create.vectors.size, 2, "qdrant: created with the vectors' size")
  t.eq(create.vectors.distance, "Cosine", "qdrant: cosine distance")
  t.eq(f.requests[3].url, "http://qd.test:6333/collections/kg/points?wait=true", "qdrant: upsert with wait")
  local point = json.decode(f.requests[3].body).points[1]
  t.eq(point.id, "8d4008c1-baf2-88eb-61e1-67f7f1944ddc", "qdrant: the id is the md5 of the key as a UUID")
  t.eq(point.payload.kind, "chunk", "qdrant: the payload names the kind")
  q:upsert(items, 2, "hash-2")
  t.eq(#f.requests, 4, "qdrant: the collection is checked once")

  local g = fake({ { body = json.encode({ result = { config = { params = { vectors = { size = 768, distance = "Cosine" } } } } }) } })
  local q2 = qdrant.new({ store = "qdrant", url = "http://qd.test:6333" }, g.request)
  local e = failure(q2.upsert, q2, items, 2, "hash-2")
  t.eq(e and e.message, "qdrant: collection shield_lightrag holds vectors of size 768, these have 2",
    "qdrant: a size mismatch is reported")
end

-- Settings errors name the key
local function settings_error(cfg)
  local ok, err = pcall(pipeline.new, cfg, { request = function() end })
  return not ok and err or nil
end
t.eq(settings_error({ llm = { url = "http://x" } }), "lightrag.llm.model: required", "settings: a missing model")
t.eq(settings_error({ llm = { url = "http://x", model = "m", modle = 1 } }),
  "lightrag.llm.modle: unknown key (known: api_key_env, lease_key, max_concurrency, model, provider, retries, "
  .. "temperature, timeout_seconds, url)", "settings: a typo")
t.eq(settings_error({ llm = { provider = "claude", url = "http://x", model = "m" } }),
  "lightrag.llm.provider: one of ollama, openai expected, got claude", "settings: a bad provider")
t.eq(settings_error({ vectors = { store = "faiss" } }), "lightrag.vectors.store: one of postgres, qdrant expected, got faiss",
  "settings: a bad store")
t.eq(settings_error({ vectors = { store = "qdrant" } }), "lightrag.vectors.url: required for store qdrant",
  "settings: qdrant needs a url")
t.eq(settings_error({ max_gleaning = -1 }), "lightrag.max_gleaning: integer >= 0 expected", "settings: a bad gleaning count")
t.eq(settings_error({ embeddings = {} }), "lightrag.embeddings: unknown key (known: embedding, entity_types, language, "
  .. "llm, max_gleaning, vectors)", "settings: an unknown section")

return t.done()
