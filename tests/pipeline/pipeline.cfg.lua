-- Configuration for the pipeline tests run with `shield-runtime run`: the
-- harness' servers; the `lightrag` table is built by each test file.
return {
  script = "scripts/noop.lua",
  redis = { url = os.getenv("SHIELD_TEST_REDIS_URL") or "redis://127.0.0.1:1/0" },
  postgres = { url = os.getenv("SHIELD_TEST_PG_URL") or "postgresql://127.0.0.1:1/shield" },
  pool = { concurrency = 8, retry_attempts = 3 },
}
