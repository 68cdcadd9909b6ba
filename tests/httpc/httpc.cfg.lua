-- Configuration for the shield.http tests run with `shield-runtime run`: the
-- harness's servers when present; pool.concurrency 64 allows 64 connections
-- per host.
return {
  script = "scripts/noop.lua",
  redis = { url = os.getenv("SHIELD_TEST_REDIS_URL") or "redis://127.0.0.1:1/0" },
  postgres = { url = os.getenv("SHIELD_TEST_PG_URL") or "postgresql://127.0.0.1:1/shield" },
  pool = { concurrency = 64 },
}
