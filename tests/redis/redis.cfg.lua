-- Configuration of the Redis Lua test: the harness' servers.
return {
  script = "scripts/noop.lua",
  redis = { url = os.getenv("SHIELD_TEST_REDIS_URL") },
  postgres = { url = os.getenv("SHIELD_TEST_PG_URL") or "postgresql://127.0.0.1:1/shield" },
}
