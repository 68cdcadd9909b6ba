# Scenarios 2 and 3: the HTTP API under wrk (--latency). The workers are
# parked (one worker holding one chunk with bench/scripts/hold.lua), so the
# figures are the supervisor's API alone, not an API racing a drain.
# Sourced by bench/run.sh (lib.sh loaded).
# shellcheck shell=bash

PARKED_METADATA='{"hold_ms":600000}'

# http_pool_start NAME: the parked pool; sets HTTP_CFG to its config.
http_pool_start() {
  fresh_redis
  HTTP_CFG=$(write_config "$1" "script = \"$SRC/bench/scripts/hold.lua\",
    pool = { size = 1, concurrency = 1, batch_size = 1, graceful_shutdown_timeout = 0 }")
  pool_start "$HTTP_CFG" 1
}

# run_wrk NAME SCRIPT: wrk against the pool's API; output in $WORK/NAME.wrk.
run_wrk() {
  wrk -t"$BENCH_WRK_THREADS" -c"$BENCH_WRK_CONNECTIONS" -d"${BENCH_WRK_SECONDS}s" --latency \
    -s "$2" "http://127.0.0.1:$SHIELD_TEST_HTTP_PORT" >"$WORK/$1.wrk" 2>&1 || {
    cat "$WORK/$1.wrk" >&2
    bench_die "$1: wrk failed"
  }
}

scenario_ingest() {
  local load
  http_pool_start ingest
  load=$(loadavg)
  bench_log "ingest: wrk $BENCH_WRK_CONNECTIONS connections, $BENCH_WRK_SECONDS s, jobs of $BENCH_JOB_CHUNKS chunks"
  BENCH_CHUNK_METADATA=$PARKED_METADATA BENCH_JOB_CHUNKS=$BENCH_JOB_CHUNKS run_wrk ingest "$SRC/bench/wrk/ingest.lua"
  local xlen
  xlen=$(redis XLEN shield:ingestion_queue)
  pool_stop 30 || true
  python3 "$SRC/bench/report.py" wrk "$WORK/ingest.wrk" "$BENCH_JOB_CHUNKS" \
    "{\"loadavg_at_start\": $load, \"connections\": $BENCH_WRK_CONNECTIONS, \"wrk_threads\": $BENCH_WRK_THREADS,
      \"chunks_per_request\": $BENCH_JOB_CHUNKS, \"chunk_bytes\": $BENCH_CHUNK_BYTES, \"stream_entries_after\": $xlen}" |
    python3 -c "
import json, sys
d = json.load(sys.stdin)
accepted, per = d.get('statuses', {}).get('202', 0), d['chunks_per_request']
# Requests still in flight when wrk stops are enqueued but not counted by wrk.
d['enqueued_verified'] = accepted * per <= d['stream_entries_after'] <= (accepted + d['connections']) * per
print(json.dumps(d, sort_keys=True))" >"$RESULTS/ingest.json"
}

scenario_status() {
  local load
  http_pool_start status
  run_lua "$HTTP_CFG" "$SRC/bench/lua/enqueue.lua" "$BENCH_STATUS_JOBS" 1 "$BENCH_CHUNK_BYTES" "$WORK/status.ids" \
    "$PARKED_METADATA" >/dev/null || bench_die "status: enqueue failed"
  load=$(loadavg)
  bench_log "status: wrk $BENCH_WRK_CONNECTIONS connections, $BENCH_WRK_SECONDS s over $BENCH_STATUS_JOBS jobs"
  BENCH_IDS_FILE=$WORK/status.ids run_wrk status "$SRC/bench/wrk/status.lua"
  pool_stop 30 || true
  python3 "$SRC/bench/report.py" wrk "$WORK/status.wrk" 0 \
    "{\"loadavg_at_start\": $load, \"connections\": $BENCH_WRK_CONNECTIONS, \"wrk_threads\": $BENCH_WRK_THREADS,
      \"jobs\": $BENCH_STATUS_JOBS}" >"$RESULTS/status.json"
}
