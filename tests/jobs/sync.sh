#!/usr/bin/env bash
# The job tracker's audit trail: the supervisor applies the migrations, writes
# every job to PostgreSQL's job_status, converges after a PostgreSQL outage in
# the middle of 1,000 chunks, and lets a finished job's Redis state expire only
# after PostgreSQL has it.
set -u
. "$(dirname "$0")/../lib/runtime.sh"
here=$SHIELD_SOURCE_DIR/tests/stream
servers=$SHIELD_SOURCE_DIR/tests/harness/servers.sh
cp "$here/counting.lua" "$T/counting.lua"
psql_q() { psql -X -A -t -q "$SHIELD_TEST_PG_URL" -c "$1" 2>/dev/null; }

# Every job id of FILE has a row equal to its Redis hash (status and counts).
converged() {
  local id want got bad=0
  while read -r id; do
    want=$(redis HMGET "job:$id" status chunks_total chunks_processed chunks_failed | paste -sd'|')
    got=$(psql_q "SELECT status, chunks_total, chunks_processed, chunks_failed FROM job_status WHERE id = '$id'")
    [[ "$want" == "$got" ]] || bad=$((bad + 1))
  done < "$1"
  [[ $bad -eq 0 ]]
}
no_dirty() { [[ $(redis SCARD shield:jobs:dirty) == 0 ]]; }

CFG=$(write_config pool 'script = "'"$T"'/counting.lua", pool = { size = 2, concurrency = 16 }, jobs = { status_ttl = 3 }')
start_supervisor "$CFG"
migrated() { [[ $(psql_q "SELECT count(*) FROM schema_migrations WHERE version = '0001_job_status.sql'") == 1 ]]; }
check "migrations applied at start" wait_for 15 migrated

# --- jobs reach PostgreSQL with their final state -----------------------------------
lua "$here/enqueue.lua" 5 20 > "$T/jobs.txt"
check "drained" wait_for 30 drained
check "job_status rows equal the Redis hashes" wait_for 10 converged "$T/jobs.txt"
id=$(head -1 "$T/jobs.txt")
check "a finished row carries its times" test "$(psql_q "SELECT started_at IS NOT NULL AND completed_at >= started_at FROM job_status WHERE id = '$id'")" = t

# --- the hash expires jobs.status_ttl after PostgreSQL has the final state -------------
gone() { [[ $(redis EXISTS "job:$id") == 0 && $(redis EXISTS "job:$id:done") == 0 ]]; }
check "the finished job's Redis state expires" wait_for 10 gone
check "... and PostgreSQL still has it" test "$(psql_q "SELECT status FROM job_status WHERE id = '$id'")" = completed

# --- more dirty jobs than one sync batch ---------------------------------------------
lua "$here/enqueue.lua" 600 1 > "$T/many.txt"
ids=$(sed "s/.*/'&'/" "$T/many.txt" | paste -sd,)
all_written() { [[ $(psql_q "SELECT count(*) FROM job_status WHERE status = 'completed' AND id IN ($ids)") == 600 ]]; }
check "600 jobs finished at once all reach PostgreSQL (several batches)" wait_for 60 all_written

# --- PostgreSQL stopped during 1,000 chunks, then restarted ------------------------
lua "$here/enqueue.lua" 10 100 '{"slow_ms":20}' > "$T/outage.txt"
"$servers" pg-stop "$SHIELD_TEST_DIR"
check "chunks keep flowing while PostgreSQL is down" wait_for 60 drained
check "the jobs stay dirty, not lost" test "$(redis SCARD shield:jobs:dirty)" -ge 10
ttl=$(redis TTL "job:$(head -1 "$T/outage.txt")")
check "no TTL while PostgreSQL lacks the final state (ttl $ttl)" test "$ttl" -eq -1
"$servers" pg-start "$SHIELD_TEST_DIR"
check "every job row converges after the outage" wait_for 30 converged "$T/outage.txt"
check "no job left dirty" wait_for 10 no_dirty
check "the supervisor logged the delay" grep -q "job sync to PostgreSQL delayed" "$T/sup.log"
check "... and the recovery" grep -q "job sync to PostgreSQL resumed" "$T/sup.log"

stop_supervisor; check "stops with 0" test $? -eq 0
[[ $fails -gt 0 ]] && tail -30 "$T/sup.log"
finish
