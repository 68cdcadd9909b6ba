# Scenario 6: resident memory of the supervisor and the workers, idle (one
# second after every worker is ready) and with BENCH_MEM_IN_FLIGHT chunks in
# flight per worker (bench/scripts/hold.lua keeps them there; sampled once the
# consumer group shows every chunk pending). Sourced by bench/run.sh.
# shellcheck shell=bash

# All chunks delivered: each of the pool's consumers holds its share.
all_in_flight() {
  local want=$1
  [[ $(redis XPENDING shield:ingestion_queue lightrag-workers | head -1) == "$want" ]]
}

scenario_memory() {
  local size=$BENCH_POOL_SIZE per=$BENCH_MEM_IN_FLIGHT hold_ms=4000
  local pool="{ size = $size, concurrency = $per, batch_size = $per, max_tasks_per_child = 0 }"
  local cfg load
  fresh_redis
  cfg=$(write_config memory "script = \"$SRC/bench/scripts/hold.lua\", pool = $pool")
  pool_start "$cfg" "$size"
  load=$(loadavg)
  sleep 1 # idle figure: after start-up settles, not a synchronisation
  local workers sup_idle worker_idle=() worker_busy=() worker_peak=() sup_busy
  workers=$(workers_of "$SUP_PID" | xargs)
  sup_idle=$(rss_kib "$SUP_PID")
  for pid in $workers; do worker_idle+=("$(rss_kib "$pid")"); done
  bench_log "memory: $per chunks in flight in each of $size workers (held $hold_ms ms)"
  run_lua "$cfg" "$SRC/bench/lua/enqueue.lua" "$size" "$per" "$BENCH_CHUNK_BYTES" "$WORK/memory.ids" \
    "{\"hold_ms\":$hold_ms}" >/dev/null || bench_die "memory: enqueue failed"
  wait_until 10 all_in_flight $((size * per)) || bench_die "memory: the chunks did not all get in flight"
  sup_busy=$(rss_kib "$SUP_PID")
  for pid in $workers; do
    worker_busy+=("$(rss_kib "$pid")")
    worker_peak+=("$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")")
  done
  pool_stop 60 || bench_log "memory: the pool exited with status $?"
  python3 - "$sup_idle" "$sup_busy" "${worker_idle[*]}" "${worker_busy[*]}" "${worker_peak[*]}" "$per" "$pool" "$load" \
    >"$RESULTS/memory.json" <<'PY'
import json, sys
sup_idle, sup_busy = int(sys.argv[1]), int(sys.argv[2])
idle = [int(x) for x in sys.argv[3].split()]
busy = [int(x) for x in sys.argv[4].split()]
peak = [int(x) for x in sys.argv[5].split()]
per = int(sys.argv[6])
growth = [(b - i) / per for i, b in zip(idle, busy)]
print(json.dumps({
    "pool": sys.argv[7], "loadavg_at_start": float(sys.argv[8]), "in_flight_per_worker": per,
    "supervisor_idle_kib": sup_idle, "supervisor_busy_kib": sup_busy,
    "worker_idle_kib": max(idle), "worker_idle_each_kib": idle,
    "worker_busy_each_kib": busy, "worker_peak_each_kib": peak,
    "per_in_flight_kib": round(max(growth), 2),
}, sort_keys=True))
PY
}
