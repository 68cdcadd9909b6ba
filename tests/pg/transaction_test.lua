-- shield.pg.transaction: one session for the whole function, commit, rollback
-- with the error re-raised, a failed statement, nesting, deadlines, and
-- concurrent transactions. Run with `shield-runtime run`.
package.path = os.getenv("SHIELD_SOURCE_DIR") .. "/tests/lib/?.lua;" .. package.path
local shield = require "shield"
local t = require "tap"
local pg = shield.pg

pg.query("DROP TABLE IF EXISTS pg_tx_t")
assert(pg.query("CREATE TABLE pg_tx_t (k text PRIMARY KEY, v int)"))
local function count()
  return pg.query("SELECT count(*) AS n FROM pg_tx_t")[1].n
end
local function has(k)
  return #pg.query("SELECT 1 FROM pg_tx_t WHERE k = $1", k) == 1
end

-- Commit: fn's results; its queries share one session; other threads see
-- nothing before the commit.
local same, seen_outside, extra = pg.transaction(function()
  local pid = pg.query("SELECT pg_backend_pid() AS p")[1].p
  assert(pg.query("INSERT INTO pg_tx_t VALUES ('a', 1)"))
  local _, outside = shield.join(shield.spawn(count))
  return pid == pg.query("SELECT pg_backend_pid() AS p")[1].p, outside, nil
end)
t.eq(same, true, "every query of the transaction runs on one session")
t.eq(seen_outside, 0, "other threads do not see uncommitted rows")
t.eq(select("#", pg.transaction(function() return 1, nil, 3 end)), 3, "fn's results are returned, nils included")
t.eq(extra, nil, "a nil result stays nil")
t.ok(has("a"), "committed")
t.eq(pg.transaction(function() end), true, "a function without results gives true")

-- An error: rolled back, and the same error raised again.
local ok, err = pcall(pg.transaction, function()
  assert(pg.query("INSERT INTO pg_tx_t VALUES ('b', 2)"))
  error("boom")
end)
t.eq(ok, false, "an error in fn raises")
t.like(err, "transaction_test.lua:%d+: boom$", "the same error, with its position")
t.eq(has("b"), false, "and the transaction was rolled back")
ok, err = pcall(pg.transaction, function() shield.fail("no retry", { retryable = false }) end)
t.ok(shield.is_failure(err) and err.retryable == false, "error objects pass through unchanged")

-- A statement that failed: COMMIT answers ROLLBACK, which is an error.
local qerr
local res, cerr = pg.transaction(function()
  local _
  _, qerr = pg.query("INSERT INTO pg_tx_t VALUES ('a', 9)")
  pg.query("INSERT INTO pg_tx_t VALUES ('c', 3)")
  return "ignored"
end)
t.eq(qerr, 'duplicate key value violates unique constraint "pg_tx_t_pkey"', "the failed statement's error")
t.eq(res, nil, "a transaction with a failed statement gives nil")
t.eq(cerr, "rolled back: a statement of the transaction failed", "and says it was rolled back")
t.eq(has("c"), false, "nothing of it was committed")

-- Nesting is refused (the outer transaction rolls back and re-raises).
ok, err = pcall(pg.transaction, function()
  pg.query("INSERT INTO pg_tx_t VALUES ('n', 1)")
  return pg.transaction(function() end)
end)
t.eq(ok, false, "a nested transaction raises")
t.like(err, "shield.pg: nested transactions are not supported", "saying so")
t.eq(has("n"), false, "the outer one was rolled back")
ok, err = pcall(pg.transaction, "not a function")
t.like(err, "bad argument #1 to 'transaction' %(function expected, got string%)", "fn must be a function")

-- The deadline passes inside fn: the query answers timeout, the transaction
-- is rolled back and answers timeout too.
local th = shield.spawn(function()
  shield.set_deadline(200)
  return pg.transaction(function()
    assert(pg.query("INSERT INTO pg_tx_t VALUES ('d', 4)"))
    local r, e = pg.query("SELECT pg_sleep(5)")
    assert(r == nil and e == "timeout", e)
    local r2, e2 = pg.query("SELECT 1")
    assert(r2 == nil and e2 == "timeout", e2)
    return "done"
  end)
end)
local jok, tres, terr = shield.join(th)
t.eq(jok, true, "the thread ended normally")
t.eq(tres, nil, "a transaction past its deadline gives nil")
t.eq(terr, "timeout", "and timeout")
t.eq(has("d"), false, "its work is not visible")
-- Were its insert still pending, this one would wait on the key's lock.
local again = shield.spawn(function()
  shield.set_deadline(3000)
  return pg.transaction(function() return pg.query("INSERT INTO pg_tx_t VALUES ('d', 5)") end)
end)
local _, inserted, affected = shield.join(again)
t.eq(affected, 1, "the same key inserts at once: the timed-out transaction was rolled back")
t.ok(type(inserted) == "table" and has("d"), "and commits")

-- Many concurrent transactions, each a read-modify-write under a row lock.
assert(pg.query("INSERT INTO pg_tx_t VALUES ('counter', 0)"))
local threads = {}
for i = 1, 50 do
  threads[i] = shield.spawn(function()
    return pg.transaction(function()
      local v = pg.query("SELECT v FROM pg_tx_t WHERE k = 'counter' FOR UPDATE")[1].v
      assert(pg.query("UPDATE pg_tx_t SET v = $1 WHERE k = 'counter'", v + 1))
      return v
    end)
  end)
end
local done = 0
for i = 1, 50 do
  local jok2, v = shield.join(threads[i])
  if jok2 and type(v) == "number" then done = done + 1 end
end
t.eq(done, 50, "50 concurrent transactions committed")
t.eq(pg.query("SELECT v FROM pg_tx_t WHERE k = 'counter'")[1].v, 50, "none lost an update")

local st = pg.stats()
t.eq(st.pinned, 0, "no session stays pinned")
t.eq(st.queued, 0, "nothing queued")
pg.query("DROP TABLE pg_tx_t")
return t.done()
