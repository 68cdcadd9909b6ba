-- Configuration for the shield.pg tests run with `shield-runtime run`: the
-- harness' servers, 8 sessions per pool.
return {
  script = "scripts/noop.lua",
  redis = { url = os.getenv("SHIELD_TEST_REDIS_URL") or "redis://127.0.0.1:1/0" },
  postgres = { url = os.getenv("SHIELD_TEST_PG_URL") or "postgresql://127.0.0.1:1/shield" },
  pool = { concurrency = 8 },
}
