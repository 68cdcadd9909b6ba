"""GET /health/detailed with PostgreSQL stopped (issue 6), as events_test.py
does with Redis: it tells the truth before (up), during (still 200, postgres
down with the error, overall degraded) and after PostgreSQL is back (up).
health.lua answers 200 whatever the state of Redis and PostgreSQL; stats.lua
runs a query on each call, so nothing is cached."""
import time

from shieldtest import Runtime, check, eq, finish, servers, wait_for

rt = Runtime()


def detailed():
    return rt.detailed()[1]


def timed_detailed():
    start = time.monotonic()
    status, body = rt.detailed()
    return status, body, time.monotonic() - start


# --- before ------------------------------------------------------------------------
check(wait_for(lambda: detailed()["status"] == "up", 20), "before: overall up once the workers run", detailed())
status, h = rt.detailed()
eq(status, 200, "before: /health/detailed answers 200")
eq(h["postgres"], {"status": "up"}, "before: PostgreSQL up, without an error")
eq(h["redis"]["status"], "up", "before: Redis up")

# --- during ------------------------------------------------------------------------
servers("pg-stop")
for when in ("right after the stop", "a second later"):
    status, h, took = timed_detailed()
    eq(status, 200, "PostgreSQL stopped, %s: /health/detailed still answers 200" % when)
    check(took < 5, "... promptly (%.2f s)" % took)
    eq(h["postgres"].get("status"), "down", "... and says PostgreSQL is down")
    err = h["postgres"].get("error")
    check(isinstance(err, str) and err.strip(), "... with a non-empty error", h["postgres"])
    eq(h["status"], "degraded", "... overall degraded")
    eq(h["redis"]["status"], "up", "... while Redis stays up")
    time.sleep(1)
eq(rt.request("GET", "/health")[0], 200, "/health still answers 200")

# --- after -------------------------------------------------------------------------
servers("pg-start")
check(wait_for(lambda: detailed()["postgres"] == {"status": "up"}, 20),
      "after the restart: PostgreSQL reported up again, without an error", detailed()["postgres"])
check(wait_for(lambda: detailed()["status"] == "up", 10), "... and overall up", detailed())

eq(rt.stop(), 0, "the supervisor shuts down cleanly (exit 0)")
finish(rt)
