-- shield-runtime configuration (DESIGN.md section 3). A Lua file returning a
-- table; unknown keys and wrong types are errors. Environment overrides work
-- through os.getenv.
return {
  redis = {
    url = os.getenv("SHIELD_REDIS_URL") or "redis://127.0.0.1:6379/0",
  },
  postgres = {
    url = os.getenv("SHIELD_POSTGRES_URL") or "postgresql://127.0.0.1:5432/shield",
  },
  http = {
    listen = os.getenv("SHIELD_HTTP_LISTEN") or "127.0.0.1:8000",
    auth_token = os.getenv("SHIELD_API_TOKEN"), -- nil: no authentication
    max_body_bytes = 16 * 1024 * 1024,
  },
  pool = {
    size = 4,
    concurrency = 8,
    batch_size = 10,
    retry_attempts = 3,
    timeout_seconds = 300,
    health_check_interval = 30,
    max_tasks_per_child = 1000,
    graceful_shutdown_timeout = 60,
  },
  streams = {
    ingestion = "shield:ingestion_queue",
    group = "lightrag-workers",
    events = "shield:events",
    dead_letter = "shield:ingestion_queue:dead",
  },
  jobs = {
    status_ttl = 3600,
  },
  script = "scripts/lightrag.lua",
  -- Settings handed to the processing script (see scripts/lightrag.lua).
  lightrag = {},
}
