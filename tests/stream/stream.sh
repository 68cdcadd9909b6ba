#!/usr/bin/env bash
# The stream consumer end to end with real processes and a real Redis: volume,
# retries with their delays, dead letters, kill -9 of a worker and of the whole
# runtime, a poison task, worker recycling, reload under load.
set -u
. "$(dirname "$0")/../lib/runtime.sh"
here=$SHIELD_SOURCE_DIR/tests/stream
cp "$here/counting.lua" "$T/counting.lua"

fresh() { redis FLUSHALL >/dev/null; }
# queue_report: what is left in the queue, for a failed drain.
queue_report() {
  echo "# XLEN $(redis XLEN shield:ingestion_queue), retries $(redis ZCARD shield:ingestion_queue:retry)," \
    "pending $(redis XPENDING shield:ingestion_queue lightrag-workers | tr '\n' ' ')"
  redis XINFO CONSUMERS shield:ingestion_queue lightrag-workers | paste -sd' ' | sed 's/^/# /'
  tail -40 "$T/sup.log" | sed 's/^/# /'
}
verify() { lua "$here/verify.lua" "$1" "$2" | tee -a "$T/verify.log" | tail -1 | grep -q ' 0 failed'; }

# --- 10,000 tasks through 4 workers ---------------------------------------------
fresh
CFG=$(write_config pool 'script = "'"$T"'/counting.lua", pool = { size = 4, concurrency = 50, batch_size = 50 }')
start_supervisor "$CFG"
lua "$here/enqueue.lua" 100 100 > "$T/jobs.txt"
check "10,000 tasks drained" wait_for 60 drained
check "each processed once, acked, nothing pending, lag 0" verify once "$T/jobs.txt"
stop_supervisor; check "stops with 0" test $? -eq 0

# --- a long chunk keeps the acknowledged entries after it until it settles -------
# (common.lua trim_acked trims the stream in order, up to the oldest pending entry)
fresh
start_supervisor "$CFG"
wait_for 10 workers_ready 4
lua "$here/enqueue.lua" 1 1 '{"slow_ms":5000}' > "$T/jobs.txt"
lua "$here/enqueue.lua" 20 100 >> "$T/jobs.txt"
only_slow_left() {
  [[ $(redis HLEN test:seen) -eq 2001 && $(redis XPENDING shield:ingestion_queue lightrag-workers | head -1) == 1 ]]
}
check "2,000 chunks settled while the long one runs" wait_for 30 only_slow_left
held=$(redis XLEN shield:ingestion_queue)
check "... and still in the stream behind it (XLEN $held)" test "$held" -eq 2001
depth=$(curl -s "http://127.0.0.1:$SHIELD_TEST_HTTP_PORT/health/detailed" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["worker_pool"]["queue_depth"])')
check "queue_depth counts what is left to do, not what is held (got $depth)" test "$depth" -eq 1
check "once it settles the stream is trimmed empty" wait_for 30 drained
check "... every chunk once, nothing pending" verify once "$T/jobs.txt"
stop_supervisor

# --- fails twice, then succeeds on the third attempt -----------------------------
fresh
start_supervisor "$CFG"
lua "$here/enqueue.lua" 1 1 '{"fail_until":3}' > "$T/jobs.txt"
check "retried chunk drained" wait_for 30 drained
chunk="$(cat "$T/jobs.txt"):0"
check "three attempts" test "$(redis LLEN "test:attempts:$chunk")" -eq 3
mapfile -t at < <(redis LRANGE "test:attempts:$chunk" 0 -1)
check "retry delays respected (${at[1]}-${at[0]}, ${at[2]}-${at[1]} >= 300 ms)" \
  test $((at[1] - at[0])) -ge 300 -a $((at[2] - at[1])) -ge 300
check "the job completed" test "$(redis HGET "job:$(cat "$T/jobs.txt")" status)" = completed

# --- always fails: dead-lettered after retry_attempts with the error ------------
fresh
lua "$here/enqueue.lua" 1 3 '{}' > "$T/ok.txt"
job=$(lua "$here/enqueue.lua" 1 1 '{"always_fail":true}')
gone() { [[ $(redis HGET "job:$job" status) == failed ]]; }
check "the failing job ends failed" wait_for 30 gone
check "three attempts before the dead letter" test "$(redis LLEN "test:attempts:$job:0")" -eq 3
dead=$(redis XRANGE shield:ingestion_queue:dead - + | tr '\n' ' ')
check "dead letter carries the error" grep -q "the model server refused chunk $job:0" <<<"$dead"
check "dead letter says 3 attempts" grep -q "attempts 3" <<<"$dead"
check "job counts the failure once" test "$(redis HGET "job:$job" chunks_failed)" = 1
check "job keeps the error message" grep -q "refused chunk" <<<"$(redis HGET "job:$job" error_message)"
check "other jobs unaffected" verify once "$T/ok.txt"
stop_supervisor

# --- no retry() in the script: the default policy; shield.fail{retryable=false} ---
fresh
cp "$here/default_retry.lua" "$T/default_retry.lua"
start_supervisor "$(write_config default_retry 'script = "'"$T"'/default_retry.lua", pool = { size = 1, retry_attempts = 2 }')"
flaky=$(lua "$here/enqueue.lua" 1 1 '{}')
final=$(lua "$here/enqueue.lua" 1 1 '{"final":true}')
ended() { [[ $(redis HGET "job:$flaky" status) == failed && $(redis HGET "job:$final" status) == failed ]]; }
check "both failing jobs end failed" wait_for 30 ended
check "a plain error is retried up to retry_attempts (2 attempts)" \
  test "$(redis LRANGE "test:attempts:$flaky:0" 0 -1 | paste -sd,)" = "1,2"
check "shield.fail{retryable=false} is dead-lettered at once (1 attempt)" \
  test "$(redis LRANGE "test:attempts:$final:0" 0 -1 | paste -sd,)" = "1"
dead=$(redis XRANGE shield:ingestion_queue:dead - + | tr '\n' ' ')
check "... with its message" grep -q "error bad input in $final:0 attempts 1" <<<"$dead"
check "the retried chunk's dead letter says 2 attempts" grep -q "flaky service for $flaky:0 attempts 2" <<<"$dead"
seen=$(redis HGETALL "test:seen:$final:0" | paste -sd' ')
check "task.message_id is the stream entry's id; ctx has the slot, script version and lightrag config" \
  grep -qE '^message_id [0-9]+-[0-9]+ slot 0 script_version [0-9a-f]{16} lightrag table$' <<<"$seen"
stop_supervisor

# --- the chunk's deadline (pool.timeout_seconds) cancels its query -----------------
fresh
cp "$here/slow_query.lua" "$T/slow_query.lua"
start_supervisor "$(write_config deadline 'script = "'"$T"'/slow_query.lua", pool = { size = 1, timeout_seconds = 1, retry_attempts = 1 }')"
slow=$(lua "$here/enqueue.lua" 1 1 '{}')
late=$(lua "$here/enqueue.lua" 1 1 '{"ignore":true}')
slow_failed() { [[ $(redis HGET "job:$slow" status) == failed ]]; }
check "a chunk past its deadline fails" wait_for 15 slow_failed
check "... with the timeout as its error" grep -q "postgres: timeout" <<<"$(redis HGET "job:$slow" error_message)"
sleeping() { psql -X -A -t -q "$SHIELD_TEST_PG_URL" -c "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'SELECT pg_sleep(60)%'"; }
none_sleeping() { [[ $(sleeping) == 0 ]]; }
check "... and its query was cancelled on the server" wait_for 5 none_sleeping
late_failed() { [[ $(redis HGET "job:$late" status) == failed ]]; }
check "a chunk that ignores its timeouts and returns late fails too" wait_for 15 late_failed
check "... as deadline exceeded" grep -q "deadline exceeded" <<<"$(redis HGET "job:$late" error_message)"
stop_supervisor

# --- entries left pending by a consumer that is gone: the supervisor reclaims ----
fresh
lua "$here/enqueue.lua" 1 3 > "$T/ghost.txt"
redis XGROUP CREATE shield:ingestion_queue lightrag-workers 0 MKSTREAM > /dev/null
redis XREADGROUP GROUP lightrag-workers gone-host-w9 COUNT 3 STREAMS shield:ingestion_queue '>' > /dev/null
start_supervisor "$(write_config reclaim 'script = "'"$T"'/counting.lua", pool = { size = 1, timeout_seconds = 1 }')"
# Reclaimed once idle past the deadline plus 30 s, by a scan every 5 s.
check "entries of a gone consumer are reclaimed and processed" wait_for 60 drained
check "... each once" verify once "$T/ghost.txt"
check "... reported" grep -q 'reclaimed entries of gone consumers: 3 requeued' "$T/sup.log"
stop_supervisor

# --- entries without the default fields; metadata that is not JSON --------------
fresh
plain=$(lua "$here/enqueue.lua" 1 2 '{}')
bad=$(lua "$here/enqueue.lua" 1 1 'not json')
echo "$plain" > "$T/plain.txt"
entry=$(redis XRANGE shield:ingestion_queue - + COUNT 1 | tail -n +2 | paste -sd' ')
check "job_id, metadata {} and attempt 1 are left out of the entry" \
  test "$entry" = "chunk_id $plain:0 content chunk 0 of $plain"
start_supervisor "$CFG"
check "both jobs drained" wait_for 30 drained
check "the job without the default fields completed" test "$(redis HGET "job:$plain" status)" = completed
check "each of its chunks ran once" verify once "$T/plain.txt"
dead=$(redis XRANGE shield:ingestion_queue:dead - + | tr '\n' ' ')
check "the chunk with bad metadata is dead-lettered" grep -q "chunk_id $bad:0 .*malformed task: metadata is not a JSON object" <<<"$dead"
check "... and the dead letter names its job" grep -q "job_id $bad chunk_id $bad:0 " <<<"$dead"
check "its job ends failed" test "$(redis HGET "job:$bad" status)" = failed
stop_supervisor

# --- kill -9 of a worker in the middle of 5,000 tasks ----------------------------
fresh
start_supervisor "$CFG"
wait_for 10 workers_ready 4
lua "$here/enqueue.lua" 50 100 '{"slow_ms":5}' > "$T/jobs.txt"
some_done() { [[ $(redis HLEN test:seen) -gt 1000 ]]; }
wait_for 30 some_done
kill -9 "$(worker_pid 2)"
check "drained after a worker was killed" wait_for 90 drained
check "no task lost after kill -9 of a worker" verify atleast "$T/jobs.txt"
stop_supervisor

# --- kill -9 of the whole runtime, then a restart ---------------------------------
fresh
start_supervisor "$CFG"
wait_for 10 workers_ready 4
lua "$here/enqueue.lua" 50 100 '{"slow_ms":100}' > "$T/jobs.txt"
wait_for 30 some_done
pkill -KILL -P "$SUP_PID"; kill -KILL "$SUP_PID"; wait "$SUP_PID" 2>/dev/null; SUP_PID=
check "tasks left when the runtime died" test "$(redis HLEN test:seen)" -lt 5000
# A worker forked just before the supervisor died gets SIGTERM (PDEATHSIG).
no_leftovers() { ! pgrep -f -- "--config $CFG" >/dev/null; }
check "no worker outlives the runtime" wait_for 10 no_leftovers
# The restart needs the HTTP port: report whoever holds it, and wait out a
# closing connection rather than fail on the kernel's timing.
port_sockets() { ss -Htanp "sport = :$SHIELD_TEST_HTTP_PORT"; }
port_free() { [[ -z $(port_sockets) ]]; }
if ! port_free; then
  port_sockets | sed 's/^/# the HTTP port is held: /'
  wait_for 70 port_free
fi
start_supervisor "$CFG"
check "drained after a restart" wait_for 120 drained || queue_report
check "no task lost after kill -9 of the runtime" verify atleast "$T/jobs.txt"
stop_supervisor

# --- a task that kills its worker every time ---------------------------------------
fresh
CFG=$(write_config poison 'script = "'"$T"'/counting.lua", pool = { size = 2, concurrency = 4, retry_attempts = 3 }')
start_supervisor "$CFG"
poison=$(lua "$here/enqueue.lua" 1 1 '{"crash":true}')
lua "$here/enqueue.lua" 5 20 > "$T/jobs.txt"
buried() { [[ $(redis HGET "job:$poison" status) == failed ]]; }
check "the poison task ends in the dead-letter stream" wait_for 60 buried
check "... with the reason" grep -q "without an outcome" <<<"$(redis XRANGE shield:ingestion_queue:dead - +)"
check "the pool kept working" wait_for 60 drained
check "every other task processed" verify atleast "$T/jobs.txt"
stop_supervisor

# --- max_tasks_per_child 50 over 1,000 tasks -------------------------------------
fresh
CFG=$(write_config recycle 'script = "'"$T"'/counting.lua", pool = { size = 2, concurrency = 8, max_tasks_per_child = 50 }')
start_supervisor "$CFG"
lua "$here/enqueue.lua" 10 100 > "$T/jobs.txt"
check "1,000 tasks drained with recycling" wait_for 60 drained
gens=$(grep -c 'recycled' "$T/sup.log")
check "20 worker generations ($gens recycles)" test "$gens" -ge 16
crashes=$(grep -c -e 'killed by signal' -e 'crashes in a row' "$T/sup.log")
check "every recycled worker exited cleanly ($crashes crashes)" test "$crashes" -eq 0
stopped=$(redis XRANGE shield:events - + | grep -A5 -x worker.stopped | grep '"reason":"recycled"')
check "each recycle emits worker.stopped with the worker's counts" \
  grep -q '"tasks_done":50[,}]' <<<"$stopped"
check "every task processed exactly once" verify once "$T/jobs.txt"
stop_supervisor

# --- reload under load ---------------------------------------------------------------
fresh
CFG=$(write_config reload 'script = "'"$T"'/counting.lua", pool = { size = 2, concurrency = 8, max_tasks_per_child = 0 }')
start_supervisor "$CFG"
wait_for 10 workers_ready 2
lua "$here/enqueue.lua" 40 100 '{"slow_ms":3}' > "$T/jobs.txt"
wait_for 30 some_done
sed -i 's/M.VERSION = "v1"/M.VERSION = "v2"/' "$T/counting.lua"
swapped() { [[ $(grep -c 'reloaded: script version' "$T/sup.log") -ge 2 ]]; }
check "both workers swapped to the edited script" wait_for 20 swapped
check "tasks kept flowing through the reload" wait_for 120 drained
check "no task failed or was lost" verify once "$T/jobs.txt"
v2=$(redis HGET test:versions v2)
check "the new version ran tasks afterwards ($v2)" test "${v2:-0}" -gt 0
events() { redis XRANGE shield:events - + | grep -A5 -x "$1"; }
reloaded_event() { events runtime.reloaded | grep 'counting.lua"' | grep -q '"version":"[0-9a-f]\{16\}"'; }
check "a runtime.reloaded event names the script and the new version" wait_for 5 reloaded_event
printf 'local M = {\n' > "$T/counting.lua"
broken() { grep -q 'reload failed, keeping script version' "$T/sup.log"; }
check "a broken edit is refused" wait_for 20 broken
check "... naming file and line" grep -q "$T/counting.lua:2:" "$T/sup.log"
failed_event() { events runtime.reload_failed | grep -q 'counting.lua:2:'; }
check "... in a runtime.reload_failed event with the error" wait_for 5 failed_event
printf 'local M = {}\nfunction M.init() error("init refuses") end\nfunction M.process() end\nreturn M\n' > "$T/counting.lua"
init_refused() { grep -q 'reload failed, keeping script version .*init failed: .*init refuses' "$T/sup.log"; }
check "an edit whose init raises is refused too" wait_for 20 init_refused
lua "$here/enqueue.lua" 2 10 > "$T/jobs2.txt"
check "the old version keeps working" wait_for 30 drained
check "... and processes new tasks" verify once "$T/jobs2.txt"
# A worker re-forked while the file is still broken starts from the last good
# source the supervisor kept, not from the file.
ready_before=$(grep -c 'ready: script' "$T/sup.log")
kill -KILL "$(pgrep -P "$SUP_PID" | head -1)"
check "a worker killed meanwhile comes back on the kept version" wait_for 20 workers_ready $((ready_before + 1))
lua "$here/enqueue.lua" 2 10 > "$T/jobs3.txt"
check "... and the pool drains" wait_for 30 drained
check "... every task once" verify once "$T/jobs3.txt"
check "... with no worker failing to start" test "$(grep -c 'crashes in a row' "$T/sup.log")" -eq 0
stop_supervisor; check "stops with 0" test $? -eq 0

[[ $fails -gt 0 ]] && tail -50 "$T/sup.log"
finish
