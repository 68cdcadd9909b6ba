# Scenario 1's yardstick: the client issue 9 measured (bench/tools/reference.c:
# per batch one XACK, one HINCRBY per job, one XADD event per task, pipelined),
# on the same Redis and the same tasks as the drain, with the AOF as the
# harness runs it and with appendonly no. The drain's summary row divides by
# it. Sourced by bench/run.sh (lib.sh loaded).
# shellcheck shell=bash

reference_run() {
  local name=$1 load
  fresh_redis
  load=$(loadavg)
  bench_log "$name: the reference client on $((BENCH_DRAIN_JOBS * BENCH_JOB_CHUNKS)) tasks, batches of $BENCH_BATCH"
  "$TOOLS/reference" "$SHIELD_TEST_REDIS_PORT" "$((BENCH_DRAIN_JOBS * BENCH_JOB_CHUNKS))" "$BENCH_JOB_CHUNKS" \
    "$BENCH_CHUNK_BYTES" "$BENCH_BATCH" >"$WORK/$name.raw.json" || bench_die "$name: the reference client failed"
  python3 "$SRC/bench/report.py" annotate "$WORK/$name.raw.json" \
    redis_appendonly="$(redis CONFIG GET appendonly | tail -1)" loadavg_at_start="$load" >"$RESULTS/$name.json"
}

scenario_reference() {
  reference_run reference
}

scenario_reference_noaof() {
  without_aof reference_run reference_noaof
}
