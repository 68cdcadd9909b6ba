-- The LightRAG script's knowledge graph (scripts/lightrag.lua): entities keyed
-- by name, relations keyed by the unordered pair (source < target in byte
-- order, hence COLLATE "C"), the chunks they came from (keyed by a hash of the
-- content, so resubmitted text is recognised), and the vectors when the
-- vector store is PostgreSQL. source_ids hold chunk keys; a chunk already
-- listed there is never merged twice.
CREATE TABLE IF NOT EXISTS lightrag_entities (
  name        text PRIMARY KEY,
  entity_type text NOT NULL,
  description text NOT NULL,
  source_ids  text[] NOT NULL,
  type_counts jsonb NOT NULL DEFAULT '{}'::jsonb,   -- votes per entity type
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS lightrag_relations (
  source      text COLLATE "C" NOT NULL,
  target      text COLLATE "C" NOT NULL,
  keywords    text NOT NULL,
  description text NOT NULL,
  weight      double precision NOT NULL,
  source_ids  text[] NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (source, target),
  CHECK (source < target)
);

CREATE INDEX IF NOT EXISTS lightrag_relations_target ON lightrag_relations (target);

CREATE TABLE IF NOT EXISTS lightrag_chunks (
  id         text PRIMARY KEY,          -- chunk-<md5 of the content>
  content    text NOT NULL,
  job_id     text NOT NULL,             -- the job and chunk that first brought it
  chunk_id   text NOT NULL,
  metadata   jsonb NOT NULL DEFAULT '{}'::jsonb,
  report     jsonb NOT NULL DEFAULT '{}'::jsonb,  -- the last run: steps, durations, counts
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS lightrag_vectors (
  id         text PRIMARY KEY,          -- chunk-/ent-/rel- and an md5, as LightRAG names them
  kind       text NOT NULL CHECK (kind IN ('chunk', 'entity', 'relation')),
  ref        text NOT NULL,             -- the chunk key, entity name or "source<US>target"
  content    text NOT NULL,             -- the text that was embedded
  model      text NOT NULL,
  dim        integer NOT NULL,
  embedding  real[] NOT NULL CHECK (cardinality(embedding) = dim),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS lightrag_vectors_kind ON lightrag_vectors (kind, model);
