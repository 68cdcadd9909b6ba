-- shield.pg.query: values typed by column, parameters that round-trip
-- unchanged, exact errors, misuse that raises. Run with `shield-runtime run`.
package.path = os.getenv("SHIELD_SOURCE_DIR") .. "/tests/lib/?.lua;" .. package.path
local shield = require "shield"
local t = require "tap"
local pg = shield.pg

-- Column types: numbers, booleans, NULL absent, everything else text.
local rows, n = pg.query([[SELECT $1::int2 AS i2, $2::int4 AS i4, $3::int8 AS i8, $4::float4 AS f4,
  $5::float8 AS f8, $6::numeric AS num, $7::bool AS yes, $8::bool AS no, $9::text AS txt,
  $10::json AS js, $11::int4 AS nothing, '2024-01-02'::date AS day, '\x00ff'::bytea AS bin]],
  7, -2147483648, 9007199254740992, 1.5, 0.1, "12345.678", true, false, "hello", '{"a": [1, 2]}', nil)
local r = rows[1]
t.eq(n, 1, "a SELECT reports its row count")
t.eq(#rows, 1, "one row")
t.eq(r.i2, 7, "int2 is a number")
t.eq(r.i4, -2147483648, "int4 is a number")
t.eq(r.i8, 9007199254740992, "int8 up to 2^53 is a number")
t.eq(r.f4, 1.5, "float4 is a number")
t.eq(r.f8, 0.1, "float8 round-trips exactly")
t.eq(r.num, 12345.678, "numeric is a number")
t.eq(r.yes, true, "bool true")
t.eq(r.no, false, "bool false")
t.eq(r.txt, "hello", "text")
t.eq(r.js, '{"a": [1, 2]}', "json stays its text")
t.eq(r.nothing, nil, "NULL is absent")
t.eq(r.day, "2024-01-02", "date is text")
t.eq(r.bin, "\\x00ff", "bytea is its hex text")
local keys = 0
for _ in pairs(r) do keys = keys + 1 end
t.eq(keys, 12, "a NULL column has no key")

local big = pg.query("SELECT 9007199254740993::int8 AS up, '-9223372036854775808'::int8 AS down, 2::int8 ^ 53 AS f")[1]
t.eq(big.up, "9007199254740993", "int8 beyond 2^53 stays a string")
t.eq(big.down, "-9223372036854775808", "the smallest int8 stays a string")

-- Numbers as parameters keep their value.
local third = 1 / 3
local nums = pg.query("SELECT $1::float8 AS third, $2::int8 AS i, $3::float8 AS inf, $4::float8 AS ninf, $5::float8 AS nan, $6::float8 AS tiny",
  third, 9007199254740994, math.huge, -math.huge, 0 / 0, 5e-324)[1]
t.eq(nums.third, third, "1/3 round-trips exactly")
t.eq(nums.i, "9007199254740994", "an integral number is sent as an integer")
t.eq(nums.inf, math.huge, "Infinity")
t.eq(nums.ninf, -math.huge, "-Infinity")
t.ok(nums.nan ~= nums.nan, "NaN")
t.eq(nums.tiny, 5e-324, "the smallest subnormal")
t.eq(pg.query("SELECT $1::text AS s", 0.1)[1].s, "0.1", "numbers are sent in their shortest form")
t.eq(pg.query("SELECT $1::text AS s", 42)[1].s, "42", "integral numbers without a decimal point")
t.eq(pg.query("SELECT $1::text AS s", true)[1].s, "true", "booleans are sent as true/false")

-- Strings round-trip unchanged; parameters are never SQL.
local strings = {
  "it's", 'say "hi"', "back\\slash", "\\x00\\n\\", "'); DROP TABLE pg_types_t; --", "$1 $2 %s %d ?",
  "ünïcödé 漢字 🚀", "\1\2\3\t\r\n\27\127", "", " leading and trailing ", string.rep("0123456789", 10000),
}
for i, s in ipairs(strings) do
  local got = pg.query("SELECT $1::text AS v, octet_length($1::text) AS len", s)
  t.eq(got and got[1].v, s, "string " .. i .. " round-trips")
  t.eq(got and got[1].len, #s, "string " .. i .. " keeps its length")
end

-- Through a table too, with RETURNING and affected counts.
pg.query("DROP TABLE IF EXISTS pg_types_t")
t.ok(pg.query("CREATE TABLE pg_types_t (id serial PRIMARY KEY, v text, n int)"), "create a table")
for i, s in ipairs(strings) do
  local ins = pg.query("INSERT INTO pg_types_t (v, n) VALUES ($1, $2) RETURNING id", s, i)
  assert(ins and ins[1].id == i, "insert " .. i)
end
local back = pg.query("SELECT v FROM pg_types_t ORDER BY id")
local same = #back == #strings
for i, s in ipairs(strings) do same = same and back[i].v == s end
t.ok(same, "every string reads back unchanged from a table")
local _, updated = pg.query("UPDATE pg_types_t SET n = n + 1 WHERE n <= $1", 3)
t.eq(updated, 3, "UPDATE reports the rows it changed")
local del, deleted = pg.query("DELETE FROM pg_types_t")
t.eq(deleted, #strings, "DELETE reports the rows it removed")
t.eq(#del, 0, "a command without RETURNING gives no rows")
local none, zero = pg.query("SELECT v FROM pg_types_t")
t.eq(#none, 0, "an empty result is an empty array")
t.eq(zero, 0, "and affects nothing")
pg.query("DROP TABLE pg_types_t")

-- NULL parameters: nil (also trailing), pg.null, shield.json.null.
local nulls = pg.query("SELECT $1::int IS NULL AS a, $2::text AS b, $3::text IS NULL AS c, $4::text IS NULL AS d",
  nil, "x", pg.null, nil)[1]
t.eq(nulls.a, true, "nil is NULL")
t.eq(nulls.b, "x", "a value after a nil")
t.eq(nulls.c, true, "pg.null is NULL")
t.eq(nulls.d, true, "a trailing nil is NULL")
t.eq(pg.null, shield.json.null, "pg.null is shield.json.null")

-- Failures: nil, the server's message, the SQLSTATE.
local res, err, state = pg.query("SELECT * FROM no_such_table")
t.eq(res, nil, "a server error gives nil")
t.eq(err, 'relation "no_such_table" does not exist', "with the server's message")
t.eq(state, "42P01", "and the SQLSTATE")
_, err, state = pg.query("SELEC 1")
t.eq(err, 'syntax error at or near "SELEC"', "a syntax error")
t.eq(state, "42601", "syntax error SQLSTATE")
_, err = pg.query("SELECT $1::int, $2::int", 1)
-- (queries with parameters run as the session's named prepared statements)
t.like(err, '^bind message supplies 1 parameters, but prepared statement "shr_%d+" requires 2$', "too few parameters")
_, err = pg.query("SELECT $1::int; SELECT 2", 1)
t.eq(err, "cannot insert multiple commands into a prepared statement", "one statement per query with parameters")

-- Without parameters, a script of statements (migrations): the last one's
-- result; an error anywhere undoes all of it (one implicit transaction).
local multi = pg.query("SELECT 1 AS a; SELECT 2 AS b")
t.eq(multi and multi[1].b, 2, "a script gives its last statement's rows")
pg.query("DROP TABLE IF EXISTS pg_multi_t")
res, err, state = pg.query("CREATE TABLE pg_multi_t (x int); INSERT INTO pg_multi_t VALUES (1); SELECT 1 / 0")
t.eq(err, "division by zero", "a failing script gives the error")
t.eq(state, "22012", "with its SQLSTATE")
t.eq(#pg.query("SELECT 1 FROM pg_class WHERE relname = 'pg_multi_t'"), 0, "and none of it happened")
_, err, state = pg.query("SELECT $1::text", "\255")
t.eq(err, 'invalid byte sequence for encoding "UTF8": 0xff', "invalid UTF-8 is refused by the server")
t.eq(state, "22021", "invalid UTF-8 SQLSTATE")
res, err = pg.query("SELECT $1::text", "a\0b")
t.eq(res, nil, "a NUL byte is refused")
t.eq(err, "invalid parameter $1: string contains a NUL byte", "rather than truncated")
t.eq(pg.query("SELECT 1 AS one")[1].one, 1, "the session survives errors")

-- real_array: a real[] sent in binary, equal to the same numbers sent as text.
local function same_as_text(param, text)
  local row = pg.query("SELECT $1::real[] = $2::real[] AS same, $1::real[]::text AS t", param, text)
  return row and row[1].same, row and row[1].t
end
local vals = { 0.1, -2.5, 1e-30, 3.4e38, -3.4e38, 0, 1 / 3, 123456.789, 1.17549435e-38 }
local same = same_as_text(pg.real_array(vals), "{" .. table.concat(vals, ",") .. "}")
t.eq(same, true, "real_array equals the same numbers as text (rounded to real alike)")
local _, text = same_as_text(pg.real_array({ 1, 2 }, {}, { 3 }), "{1,2,3}")
t.eq(text, "{1,2,3}", "several lists make one array, in order")
_, text = same_as_text(pg.real_array(), "{}")
t.eq(text, "{}", "no list: the empty array")
_, text = same_as_text(pg.real_array({}, {}), "{}")
t.eq(text, "{}", "empty lists: the empty array")
_, text = same_as_text(pg.real_array({ 0 / 0, math.huge, -math.huge }), "{NaN,Infinity,-Infinity}")
t.eq(text, "{NaN,Infinity,-Infinity}", "NaN and the infinities")
local long, parts = {}, {}
for i = 1, 3072 * 10 do
  long[i] = math.sin(i) * 10 ^ (i % 7 - 3)
  parts[i] = string.format("%.17g", long[i])
end
t.eq(same_as_text(pg.real_array(long), "{" .. table.concat(parts, ",") .. "}"), true,
  "30,720 numbers (ten 3072-wide embeddings) arrive as the text would")
local mixed = pg.query("SELECT $1::text AS a, cardinality($2::real[]) AS n, $3::int IS NULL AS c, $4::int AS d",
  "x", pg.real_array({ 1, 2, 3 }), nil, 4)[1]
t.ok(mixed.a == "x" and mixed.n == 3 and mixed.c == true and mixed.d == 4,
  "a binary parameter among text ones and a NULL")
pg.query("DROP TABLE IF EXISTS pg_real_t")
pg.query("CREATE TABLE pg_real_t (id int PRIMARY KEY, v real[])")
t.ok(pg.transaction(function()
  assert(pg.query("INSERT INTO pg_real_t VALUES ($1, $2)", 1, pg.real_array({ 0.5, -0.25 })))
end), "in a transaction, into a real[] column")
t.eq(pg.query("SELECT v::text AS v FROM pg_real_t WHERE id = 1")[1].v, "{0.5,-0.25}", "and read back")
pg.query("DROP TABLE pg_real_t")
res, err, state = pg.query("SELECT $1::int[] AS v", pg.real_array({ 1 }))
t.eq(res, nil, "a real[] where int[] is wanted fails on the server")
t.eq(state, "42804", "as a datatype mismatch (" .. tostring(err) .. ")")
t.eq(pg.query("SELECT 1 AS one")[1].one, 1, "and the session goes on")

-- Misuse raises.
-- The message without the caller's position, which must be there.
local function strip(m)
  local rest, n = tostring(m):gsub("^.*types_test%.lua:%d+: ", "")
  return n == 1 and rest or "no position: " .. tostring(m)
end
local ok, msg = pcall(function() local x = pg.query("SELECT $1", {}) return x end)
msg = strip(msg)
t.eq(ok, false, "a table parameter raises")
t.eq(msg, "bad argument #2 to 'query' (string, number, boolean, nil, pg.null or a pg.real_array expected, got table)",
  "naming the argument")
ok, msg = pcall(pg.query, "SELECT $1", io.stdout)
t.like(msg, "got userdata%)$", "another userdata raises the same")
ok, msg = pcall(pg.real_array, { 1, "2" })
t.eq(msg, "shield.pg.real_array: argument 1, element 2: number expected, got string", "real_array wants numbers")
ok, msg = pcall(pg.real_array, { 1 }, { 2, false })
t.eq(msg, "shield.pg.real_array: argument 2, element 2: number expected, got boolean", "naming the list and element")
ok, msg = pcall(pg.real_array, { 1e39 })
t.like(msg, "^shield.pg.real_array: argument 1, element 1: 1e%+39 is out of range for type real$", "beyond a real's range")
ok, msg = pcall(pg.real_array, "1,2")
t.like(msg, "bad argument #1 to '%?' %(table expected, got string%)", "lists only")
ok, msg = pcall(function() local x = pg.query(42) return x end)
msg = strip(msg)
t.eq(msg, "bad argument #1 to 'query' (string expected, got number)", "the SQL must be a string")
local co = coroutine.create(function() return pg.query("SELECT 1") end)
local cok, cerr = coroutine.resume(co)
t.eq(cok, false, "a query from a plain coroutine raises")
t.like(cerr, "must be called from a shield light thread", "with the scheduler's message")

local st = pg.stats()
t.eq(st.size, 8, "the pool has pool.concurrency sessions")
t.eq(st.pinned, 0, "nothing pinned")
t.eq(st.queued, 0, "nothing queued")
t.eq(pg.healthy(), true, "healthy")

return t.done()
