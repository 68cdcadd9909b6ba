# Scenarios 1 and 7: drain throughput and its cost. The chunks are enqueued
# before the pool starts; the pool drains them with scripts/noop.lua; the rate
# runs from the first ack to the last (ingestion.progress events, written by the
# settle call that acknowledges). Redis commands and CPU are counted over the
# drain: INFO commandstats and INFO cpu, and the workers' /proc CPU.
# Sourced by bench/run.sh (lib.sh loaded).
# shellcheck shell=bash

# drain_run NAME POOL_FIELDS: one drain with the pool's Lua fields; writes
# $RESULTS/NAME.json.
drain_run() {
  local name=$1 pool=$2 cfg jobs=$BENCH_DRAIN_JOBS per=$BENCH_JOB_CHUNKS
  fresh_redis
  cfg=$(write_config "$name" "script = \"$SRC/scripts/noop.lua\", pool = $pool")
  local load
  load=$(loadavg)
  bench_log "$name: enqueueing $jobs jobs of $per chunks ($BENCH_CHUNK_BYTES bytes each)"
  run_lua "$cfg" "$SRC/bench/lua/enqueue.lua" "$jobs" "$per" "$BENCH_CHUNK_BYTES" "$WORK/$name.ids" \
    >"$WORK/$name.enqueue.json" || bench_die "$name: enqueue failed"
  redis CONFIG RESETSTAT >/dev/null
  local redis_cpu0
  redis_cpu0=$(redis_cpu_us)
  bench_log "$name: draining with pool $pool"
  local m0 m1
  m0=$(machine_ticks)
  pool_start_nowait "$cfg"
  local t0
  t0=$(now_ms)
  run_lua "$cfg" "$SRC/bench/lua/drain_wait.lua" "$WORK/$name.ids" "$per" "$BENCH_DRAIN_TIMEOUT" \
    >"$WORK/$name.wait.json" || {
    pool_stop 10
    bench_die "$name: the pool did not drain"
  }
  local t1 workers worker_cpu sup_cpu rss=()
  t1=$(now_ms)
  m1=$(machine_ticks)
  workers=$(workers_of "$SUP_PID" | xargs)
  # Live workers and those the supervisor reaped (recycled); SC2086: one pid a word.
  # shellcheck disable=SC2086
  worker_cpu=$(($(cpu_us $workers) + $(reaped_cpu_us "$SUP_PID")))
  sup_cpu=$(cpu_us "$SUP_PID")
  for pid in $workers; do rss+=("$(rss_kib "$pid")"); done
  pool_stop 60 || bench_log "$name: the pool exited with status $?"
  python3 "$SRC/bench/report.py" drain "$WORK/$name.wait.json" "$WORK/$name.enqueue.json" \
    "$SRC/lua/shield/redis" "$redis_cpu0" "$worker_cpu" "$sup_cpu" "$((t1 - t0))" "${rss[*]}" "$pool" \
    "$load" "$(busy_share "$m0" "$m1")" \
    >"$RESULTS/$name.json"
}

scenario_drain() {
  drain_run drain "{ size = $BENCH_POOL_SIZE, concurrency = $BENCH_CONCURRENCY, batch_size = $BENCH_BATCH, max_tasks_per_child = 0 }"
}

# The same drain with Redis reached through its Unix socket.
scenario_drain_unix() {
  BENCH_TRANSPORT=unix drain_run drain_unix "{ size = $BENCH_POOL_SIZE, concurrency = $BENCH_CONCURRENCY, batch_size = $BENCH_BATCH, max_tasks_per_child = 0 }"
}

# The same drain with the pool section of config/pool.lua as shipped.
scenario_drain_default() {
  drain_run drain_default "dofile(\"$SRC/config/pool.lua\").pool"
}

# The same drain with Redis' append-only file off: what the AOF costs.
scenario_drain_noaof() {
  without_aof drain_run drain_noaof "{ size = $BENCH_POOL_SIZE, concurrency = $BENCH_CONCURRENCY, batch_size = $BENCH_BATCH, max_tasks_per_child = 0 }"
}
