# Scenario 5: enqueue-to-ack latency at a steady rate, by default 20% of the
# drain rate measured by scenario 1 in this run (BENCH_LAT_RATE fixes it).
# bench/tools/latency.c enqueues and follows the events stream; the pool is
# the drain's. Sourced by bench/run.sh (lib.sh loaded).
# shellcheck shell=bash

scenario_latency() {
  local rate=$BENCH_LAT_RATE
  if [[ -z $rate ]]; then
    rate=$(python3 -c "
import json, os, sys
p = os.path.join(sys.argv[1], 'drain.json')
print(round(json.load(open(p))['chunks_per_s'] * float(sys.argv[2])) if os.path.exists(p) else 20000)
" "$RESULTS" "$BENCH_LAT_SHARE")
  fi
  fresh_redis
  local pool="{ size = $BENCH_POOL_SIZE, concurrency = $BENCH_CONCURRENCY, batch_size = $BENCH_BATCH, max_tasks_per_child = 0 }"
  local cfg load
  cfg=$(write_config latency "script = \"$SRC/scripts/noop.lua\", pool = $pool")
  pool_start "$cfg" "$BENCH_POOL_SIZE"
  load=$(loadavg)
  bench_log "latency: $rate chunks/s for $BENCH_LAT_SECONDS s in jobs of $BENCH_JOB_CHUNKS chunks"
  "$TOOLS/latency" "$SHIELD_TEST_REDIS_PORT" "$rate" "$BENCH_LAT_SECONDS" "$BENCH_JOB_CHUNKS" "$BENCH_CHUNK_BYTES" \
    "$SRC/lua/shield/redis/common.lua" "$SRC/lua/shield/redis/enqueue.lua" >"$WORK/latency.raw.json" ||
    bench_die "latency: the load generator failed"
  pool_stop 60 || bench_log "latency: the pool exited with status $?"
  python3 "$SRC/bench/report.py" annotate "$WORK/latency.raw.json" pool="$pool" loadavg_at_start="$load" \
    share_of_drain="$BENCH_LAT_SHARE" >"$RESULTS/latency.json"
}
