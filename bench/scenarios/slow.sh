# Scenario 4: slow-service concurrency. bench/tools/fake_llm.c answers every
# chat call after BENCH_SLOW_DELAY_MS. Two scripts run against it at each
# pool.concurrency of BENCH_SLOW_LEVELS:
#   lightrag  scripts/lightrag.lua (extract with the LLM, no gleaning; graph,
#             hash embeddings and vectors in PostgreSQL): the issue's figure;
#   llm_only  bench/scripts/llm_only.lua (the call and nothing else): what the
#             runtime's own concurrency reaches without the steps' cost.
# Each level enqueues enough chunks for about BENCH_SLOW_SECONDS at the ideal
# rate (concurrency x workers / delay), at most BENCH_SLOW_MAX_CHUNKS but two
# full rounds of the pool at least, into the running pool; the rate runs
# from the first begin to the last ack. A level's first delay can only wait
# for the LLM and its last round runs down: the default cap (12,000) keeps
# these edges to a few percent of lightrag.lua's top level (~11 s). The fake's max_in_flight shows how many
# calls really overlapped; CPU per chunk is given for the workers, PostgreSQL's
# backends and Redis. Sourced by bench/run.sh (lib.sh loaded).
# shellcheck shell=bash

fake_get() { curl -s "http://127.0.0.1:$FAKE_PORT$1"; }
fake_up() { [[ -n $(fake_get /stats) ]]; }
graph_ready() {
  [[ $(psql -X -At "$SHIELD_TEST_PG_URL" -c "SELECT to_regclass('lightrag_vectors') IS NOT NULL" 2>/dev/null) == t ]]
}

# children_ticks PID: "pid ticks" of each child of PID (PostgreSQL's backends).
children_ticks() {
  local c
  for c in $(workers_of "$1"); do
    awk -v p="$c" '{print p, $14 + $15}' "/proc/$c/stat" 2>/dev/null
  done
  return 0
}

# slow_level NAME SCRIPT CONCURRENCY: one level; writes $WORK/NAME.level.json.
slow_level() {
  local name=$1 script=$2 c=$3 size=$BENCH_POOL_SIZE per=$BENCH_JOB_CHUNKS
  local batch=$((c < BENCH_BATCH ? c : BENCH_BATCH))
  local pool="{ size = $size, concurrency = $c, batch_size = $batch, max_tasks_per_child = 0 }"
  local lightrag="{ max_gleaning = 0, llm = { provider = \"openai\", url = \"http://127.0.0.1:$FAKE_PORT\",
    model = \"fake\", max_concurrency = 100000, retries = 0, timeout_seconds = 60 } }"
  [[ $script == */llm_only.lua ]] && lightrag="{ llm = { url = \"http://127.0.0.1:$FAKE_PORT\" } }"
  local cfg load
  fresh_redis
  cfg=$(write_config "$name" "script = \"$script\", pool = $pool, lightrag = $lightrag")
  pool_start "$cfg" "$size"
  wait_until 30 graph_ready || bench_die "slow: the knowledge-graph tables were not created"
  # Enough chunks for BENCH_SLOW_SECONDS at the ideal rate (capped), in whole
  # jobs, and at least two full rounds of the pool.
  local ideal chunks jobs
  ideal=$((c * size * 1000 / BENCH_SLOW_DELAY_MS))
  chunks=$((ideal * BENCH_SLOW_SECONDS))
  ((chunks <= BENCH_SLOW_MAX_CHUNKS)) || chunks=$BENCH_SLOW_MAX_CHUNKS
  ((chunks >= 2 * c * size)) || chunks=$((2 * c * size))
  jobs=$(((chunks + per - 1) / per))
  load=$(loadavg)
  curl -s -XPOST "http://127.0.0.1:$FAKE_PORT/reset" >/dev/null
  bench_log "slow: $(basename "$script") at concurrency $c x $size workers, $((jobs * per)) chunks (ideal $ideal chunks/s)"
  local postmaster workers m0 m1 cpu0 cpu1 redis0 redis1
  postmaster=$(head -1 "$SERVERS/pg/data/postmaster.pid")
  workers=$(workers_of "$SUP_PID" | xargs)
  # shellcheck disable=SC2086 # one pid a word
  cpu0=$(cpu_us $workers)
  redis0=$(redis_cpu_us)
  children_ticks "$postmaster" >"$WORK/$name.pg0"
  m0=$(machine_ticks)
  run_lua "$cfg" "$SRC/bench/lua/enqueue.lua" "$jobs" "$per" "$BENCH_CHUNK_BYTES" "$WORK/$name.ids" \
    >/dev/null || bench_die "slow: enqueue failed"
  run_lua "$cfg" "$SRC/bench/lua/drain_wait.lua" "$WORK/$name.ids" "$per" "$BENCH_DRAIN_TIMEOUT" \
    >"$WORK/$name.wait.json" || {
    tail -20 "$SUP_LOG" >&2
    bench_die "slow: $name did not drain"
  }
  m1=$(machine_ticks)
  children_ticks "$postmaster" >"$WORK/$name.pg1"
  redis1=$(redis_cpu_us)
  # shellcheck disable=SC2086
  cpu1=$(cpu_us $workers)
  fake_get /stats >"$WORK/$name.fake.json"
  pool_stop 60 || bench_log "slow: the pool exited with status $?"
  python3 - "$WORK/$name" "$c" "$ideal" "$load" "$((cpu1 - cpu0))" "$((redis1 - redis0))" \
    "$(busy_share "$m0" "$m1")" "$((1000000 / CLK_TCK))" >"$WORK/$name.level.json" <<'PY'
import json, sys
base, c, ideal, load = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
worker_cpu, redis_cpu, busy, tick_us = int(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7]), int(sys.argv[8])
w = json.load(open(base + ".wait.json"))
fake = json.load(open(base + ".fake.json"))
def ticks(path):
    return {l.split()[0]: int(l.split()[1]) for l in open(path) if l.strip()}
pg0, pg1 = ticks(base + ".pg0"), ticks(base + ".pg1")
pg_cpu = sum(t - pg0.get(p, 0) for p, t in pg1.items()) * tick_us
n = max(1, w["chunks_processed"])
span = max(1, w["last_ack_ms"] - w["first_begin_ms"])
rate = w["chunks_processed"] * 1000.0 / span
print(json.dumps({
    "concurrency": c, "chunks": w["chunks_processed"], "chunks_failed": w["chunks_failed"],
    "jobs_completed": w["jobs_completed"], "jobs": w["jobs"], "ms": span,
    "chunks_per_s": round(rate, 1), "ideal_chunks_per_s": ideal, "of_ideal": round(rate / ideal, 3),
    # The issue's ideal "bounded by CPU": what the machine could do at full
    # load with the chunks' measured cost (rate / busy) caps the ideal.
    "of_cpu_bound_ideal": round(rate / min(ideal, rate / busy if busy > 0 else ideal), 3),
    "llm_requests": fake["requests"], "llm_max_in_flight": fake["max_in_flight"],
    "loadavg_at_start": load, "machine_busy": busy,
    "worker_cpu_us_per_chunk": round(worker_cpu / n), "postgres_cpu_us_per_chunk": round(pg_cpu / n),
    "redis_cpu_us_per_chunk": round(redis_cpu / n),
}, sort_keys=True))
PY
}

fake_start() {
  FAKE_PORT=$("$SRC/tests/harness/servers.sh" port "$SERVERS")
  "$TOOLS/fake_llm" "$FAKE_PORT" "$BENCH_SLOW_DELAY_MS" >"$WORK/fake_llm.log" 2>&1 &
  FAKE_PID=$!
  wait_until 10 fake_up || bench_die "slow: the fake LLM did not start"
}

fake_stop() {
  kill "$FAKE_PID" 2>/dev/null
  wait "$FAKE_PID" 2>/dev/null || true # killed: 143
  FAKE_PID=
}

scenario_slow() {
  fake_start
  local c script
  for script in "$SRC/scripts/lightrag.lua" "$SRC/bench/scripts/llm_only.lua"; do
    for c in $BENCH_SLOW_LEVELS; do
      slow_level "slow.$(basename "$script" .lua).c$c" "$script" "$c"
    done
  done
  fake_stop
  # shellcheck disable=SC2086 # the levels: one argument each
  python3 - "$WORK" "$BENCH_POOL_SIZE" "$BENCH_SLOW_DELAY_MS" $BENCH_SLOW_LEVELS >"$RESULTS/slow.json" <<'PY'
import json, sys
work, size, delay, levels = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
out = {"workers": size, "delay_ms": delay}
for script, prefix in (("lightrag", ""), ("llm_only", "llm_only_")):
    out[script] = {}
    for c in levels:
        level = json.load(open("%s/slow.%s.c%s.level.json" % (work, script, c)))
        out[script][c] = level
        out["%sc%s_chunks_per_s" % (prefix, c)] = level["chunks_per_s"]
        out["%sc%s_of_ideal" % (prefix, c)] = level["of_ideal"]
        out["%sc%s_of_cpu_bound_ideal" % (prefix, c)] = level["of_cpu_bound_ideal"]
print(json.dumps(out, sort_keys=True))
PY
}

# lightrag.lua at the highest level with both servers reached through their
# Unix sockets: what the loopback TCP stack costs PostgreSQL and the workers.
scenario_slow_unix() {
  local c=${BENCH_SLOW_LEVELS##* }
  fake_start
  BENCH_TRANSPORT=unix slow_level "slow_unix.lightrag.c$c" "$SRC/scripts/lightrag.lua" "$c"
  fake_stop
  python3 - "$WORK/slow_unix.lightrag.c$c.level.json" >"$RESULTS/slow_unix.json" <<'PY'
import json, sys
level = json.load(open(sys.argv[1]))
level["top_chunks_per_s"], level["top_of_ideal"] = level["chunks_per_s"], level["of_ideal"]
print(json.dumps(level, sort_keys=True))
PY
}
