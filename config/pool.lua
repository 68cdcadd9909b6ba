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
  -- Settings handed to the processing script (every key: scripts/lightrag.lua).
  -- Empty: the offline pipeline (rule-based extractor, hashing embedder,
  -- vectors in PostgreSQL), which needs no model server. With Ollama running
  -- locally (`ollama pull qwen2.5:7b; ollama pull nomic-embed-text`):
  --
  --   lightrag = {
  --     llm = { provider = "ollama", url = "http://127.0.0.1:11434", model = "qwen2.5:7b",
  --             timeout_seconds = 120, max_concurrency = 4 },
  --     embedding = { provider = "ollama", url = "http://127.0.0.1:11434",
  --                   model = "nomic-embed-text", dim = 768 },
  --   },
  --
  -- An OpenAI-compatible server instead: provider = "openai", its url
  -- (e.g. "https://api.openai.com"), its model names and
  -- api_key_env = "OPENAI_API_KEY" (the variable holding the key). Qdrant for
  -- the vectors: vectors = { store = "qdrant", url = "http://127.0.0.1:6333" }.
  lightrag = {},
}
