-- The counts a job's chunks reported (result.counts of the processing script,
-- summed over the chunks counted once: {"entities": 12, "relations": 7}),
-- mirrored from the job hash's count:<name> fields.
ALTER TABLE job_status ADD COLUMN IF NOT EXISTS counts jsonb NOT NULL DEFAULT '{}'::jsonb;
