-- The durable audit trail of jobs (DESIGN.md section 5). Redis holds the live
-- state; the supervisor upserts dirty jobs here in batches. rev is the Redis
-- hash's change counter: an upsert never replaces a newer row with an older one.
CREATE TABLE IF NOT EXISTS job_status (
  id               text PRIMARY KEY,
  job_type         text NOT NULL,
  status           text NOT NULL CHECK (status IN ('queued', 'processing', 'completed', 'failed', 'cancelled')),
  chunks_total     integer NOT NULL DEFAULT 0,
  chunks_processed integer NOT NULL DEFAULT 0,
  chunks_failed    integer NOT NULL DEFAULT 0,
  chunks_skipped   integer NOT NULL DEFAULT 0,
  metadata         jsonb NOT NULL DEFAULT '{}'::jsonb,
  error_message    text,
  created_at       timestamptz NOT NULL,
  started_at       timestamptz,
  completed_at     timestamptz,
  updated_at       timestamptz NOT NULL DEFAULT now(),
  rev              bigint NOT NULL DEFAULT 0
);

CREATE INDEX IF NOT EXISTS job_status_created_at ON job_status (created_at DESC);
CREATE INDEX IF NOT EXISTS job_status_status_created_at ON job_status (status, created_at DESC);
