-- Queries with parameters run as named prepared statements of their session
-- (runtime/pg.c, pg_stmt.c): prepared once per session and text (and again as
-- the session's executions double), a failed prepare is not kept, at most 32
-- a session (the least recently used deallocated), statements a script drops
-- or whose result type changed, and a new session after the old one died.
-- Run with `shield-runtime run`.
package.path = os.getenv("SHIELD_SOURCE_DIR") .. "/tests/lib/?.lua;" .. package.path
local shield = require "shield"
local t = require "tap"
local pg = shield.pg

local MAX = 32
local function prepared() return pg.stats().prepared end
-- One thread's queries outside a transaction take the first idle session,
-- the same one each time; a transaction pins it explicitly.
local function session_statements()
  return pg.query("SELECT count(*) AS n FROM pg_prepared_statements WHERE name LIKE $1", "shr\\_%")[1].n
end

-- Prepared once, then executed.
local before = prepared()
local right = 0
for i = 1, 20 do
  local rows = pg.query("SELECT $1::int * 3 AS v", i)
  if rows and rows[1].v == 3 * i then right = right + 1 end
end
t.eq(right, 20, "every call answers")
t.eq(prepared() - before, 1, "one PREPARE for 20 calls of one text")
local rows = pg.query("SELECT statement FROM pg_prepared_statements WHERE statement = $1", "SELECT $1::int * 3 AS v")
t.eq(#rows, 1, "the session holds the statement")

-- A statement the server refuses to prepare fails with its error, every time.
before = prepared()
for i = 1, 2 do
  local r, err, state = pg.query("SELEC $1", i)
  t.eq(r, nil, "a bad statement fails (" .. i .. ")")
  t.eq(err, 'syntax error at or near "SELEC"', "with the server's message (" .. i .. ")")
  t.eq(state, "42601", "and its SQLSTATE (" .. i .. ")")
end
t.eq(prepared(), before, "a failed prepare is not counted nor kept")

-- More texts than a session keeps: each answers; the oldest are deallocated.
local ok, n, held, again = pg.transaction(function()
  local good = 0
  for i = 1, MAX + 8 do
    local r = pg.query("SELECT $1::int + " .. i .. " AS v", 1)
    if r and r[1].v == 1 + i then good = good + 1 end
  end
  local first = pg.query("SELECT $1::int + 1 AS v", 1)
  return true, good, session_statements(), first and first[1].v
end)
t.eq(ok, true, "40 texts in one transaction")
t.eq(n, MAX + 8, "each answers")
t.eq(held, MAX, "the session keeps 32 statements")
t.eq(again, 2, "an evicted text is prepared again")

-- A statement prepared in a transaction that rolls back stays prepared
-- (statements are not transactional).
pcall(pg.transaction, function()
  pg.query("SELECT $1::text || 'rb' AS v", "a")
  error("roll back")
end)
before = prepared()
rows = pg.query("SELECT $1::text || 'rb' AS v", "b")
t.eq(rows and rows[1].v, "brb", "a statement prepared in a rolled-back transaction answers")
t.eq(prepared(), before, "without being prepared again")

-- A script that drops the statements: outside a transaction the query is
-- prepared again; inside one it fails (the transaction is aborted anyway).
pg.query("SELECT $1::int AS v", 1)
assert(pg.query("DEALLOCATE ALL"))
rows = pg.query("SELECT $1::int AS v", 7)
t.eq(rows and rows[1].v, 7, "DEALLOCATE ALL: the next query is prepared again")
local tx_err, tx_state
ok = pcall(pg.transaction, function()
  assert(pg.query("DEALLOCATE ALL"))
  local _, e, s = pg.query("SELECT $1::int AS v", 8)
  tx_err, tx_state = e, s
  error("stop")
end)
t.like(tx_err, '^prepared statement "shr_%d+" does not exist$', "inside a transaction it fails")
t.eq(tx_state, "26000", "with its SQLSTATE")
rows = pg.query("SELECT $1::int AS v", 9)
t.eq(rows and rows[1].v, 9, "and works after it")

-- A table changed under SELECT *: one failure, as PostgreSQL's own prepared
-- statements give, then prepared again.
pg.query("DROP TABLE IF EXISTS pg_prep_t")
assert(pg.query("CREATE TABLE pg_prep_t (a int)"))
assert(pg.query("INSERT INTO pg_prep_t VALUES (1)"))
rows = pg.query("SELECT * FROM pg_prep_t WHERE a = $1", 1)
t.eq(rows and rows[1].a, 1, "SELECT * before the change")
assert(pg.query("ALTER TABLE pg_prep_t ADD COLUMN b int DEFAULT 5"))
local _, err, state = pg.query("SELECT * FROM pg_prep_t WHERE a = $1", 1)
t.eq(err, "cached plan must not change result type", "the changed result fails once")
t.eq(state, "0A000", "with its SQLSTATE")
rows = pg.query("SELECT * FROM pg_prep_t WHERE a = $1", 1)
t.eq(rows and rows[1].b, 5, "then runs with the new column")
pg.query("DROP TABLE pg_prep_t")

-- Prepared again as the session's executions double, so that a plan made
-- while the tables were small does not outlive them; the old one is dropped.
before = prepared()
right = 0
for i = 1, 300 do
  local r = pg.query("SELECT $1::int + 7 AS v", i)
  if r and r[1].v == i + 7 then right = right + 1 end
end
t.eq(right, 300, "300 calls answer")
local again_n = prepared() - before
t.ok(again_n >= 2 and again_n <= 4, "prepared again as executions double (" .. again_n .. " times)")
rows = pg.query("SELECT count(*) AS n FROM pg_prepared_statements WHERE statement = $1", "SELECT $1::int + 7 AS v")
t.eq(rows and rows[1].n, 1, "the session holds one statement for the text")

-- A session that died takes its statements with it: the new one prepares.
local pid = pg.query("SELECT pg_backend_pid() AS p")[1].p
pg.query("SELECT pg_terminate_backend($1)", pid)
before = prepared()
local r2
for _ = 1, 3 do -- the first query may land on the dying session
  r2 = pg.query("SELECT $1::int * 3 AS v", 5)
  if r2 then break end
end
t.eq(r2 and r2[1].v, 15, "a new session answers")
t.ok(prepared() > before, "after preparing again")

return t.done()
