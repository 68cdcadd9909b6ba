# Shell helpers of the benchmarks: configs, the pool started and stopped with
# deadlines, per-process CPU and memory from /proc, Redis CPU and command
# counts. Sourced by bench/run.sh and bench/scenarios/*.sh; relies on the
# servers' env.sh (tests/harness/servers.sh), curl, redis-cli and python3.
# shellcheck shell=bash

CLK_TCK=$(getconf CLK_TCK)

bench_log() { printf '%s bench: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
bench_die() {
  bench_log "ERROR: $*"
  exit 1
}

now_ms() { date +%s%3N; }

redis() { redis-cli -h 127.0.0.1 -p "$SHIELD_TEST_REDIS_PORT" "$@"; }

# wait_until SECONDS CMD...: polls CMD every 20 ms; 1 at the deadline.
wait_until() {
  local deadline=$(($(now_ms) + $1 * 1000))
  shift
  until "$@"; do
    (($(now_ms) < deadline)) || return 1
    sleep 0.02
  done
}

aof_idle() {
  local info
  info=$(redis INFO persistence | tr -d '\r')
  [[ $info == *aof_rewrite_in_progress:0* && $info == *aof_rewrite_scheduled:0* ]]
}

# A clean slate between scenarios (no pool may be running): an empty Redis
# whose append-only file was just rewritten, so no automatic rewrite (a forked
# child competing for the cores) starts in the middle of a scenario.
fresh_redis() {
  redis FLUSHALL >/dev/null
  wait_until 30 aof_idle || bench_die "an AOF rewrite is still running"
  if [[ $(redis CONFIG GET appendonly | tail -1) == yes ]]; then
    redis BGREWRITEAOF >/dev/null
    wait_until 30 aof_idle || bench_die "the AOF rewrite did not finish"
  fi
}

# without_aof CMD...: runs CMD with Redis' append-only file off, then turns
# it on again and waits for the rewrite that starts.
without_aof() {
  redis CONFIG SET appendonly no >/dev/null
  "$@"
  redis CONFIG SET appendonly yes >/dev/null
  wait_until 60 aof_idle || bench_die "the AOF rewrite after appendonly yes did not finish"
}

# write_config NAME LUA_FIELDS: $WORK/NAME.cfg.lua with the servers' URLs, the
# HTTP port, an events stream long enough to keep every event of a scenario
# (the drain reads its first and last ack from it), and LUA_FIELDS (e.g.
# 'pool = { size = 2 }, script = "..."'). Prints the path.
# BENCH_TRANSPORT=unix reaches both servers through their Unix sockets (what
# a pool on the servers' host would use) instead of TCP on 127.0.0.1.
write_config() {
  local fields=$2 path=$WORK/$1.cfg.lua redis_url=$SHIELD_TEST_REDIS_URL pg_url=$SHIELD_TEST_PG_URL
  if [[ ${BENCH_TRANSPORT:-tcp} == unix ]]; then
    redis_url="unix://$SHIELD_TEST_REDIS_SOCKET"
    pg_url="postgresql://postgres@/shield?host=$SHIELD_TEST_PG_SOCKET_DIR&port=$SHIELD_TEST_PG_PORT"
  fi
  cat >"$path" <<EOF
local c = { $fields }
c.redis = { url = "$redis_url" }
c.postgres = { url = "$pg_url" }
c.http = c.http or {}
c.http.listen = "127.0.0.1:$SHIELD_TEST_HTTP_PORT"
c.streams = c.streams or {}
c.streams.events_maxlen = c.streams.events_maxlen or 2000000
return c
EOF
  echo "$path"
}

# run_lua CONFIG FILE ARGS...: a Lua file as the main light thread of a worker
# environment (bench/lua/*.lua).
run_lua() {
  local cfg=$1
  shift
  "$SHIELD_BIN" --config "$cfg" run "$@"
}

workers_of() { cat "/proc/$1/task/$1/children" 2>/dev/null; }

# cpu_us PID...: user + system CPU of the processes, in microseconds.
cpu_us() {
  local total=0 pid t
  for pid in "$@"; do
    t=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null) || t=0
    total=$((total + t))
  done
  echo $((total * 1000000 / CLK_TCK))
}

# reaped_cpu_us PID: CPU of the children PID has waited for (recycled workers).
reaped_cpu_us() { echo $(($(awk '{print $16 + $17}' "/proc/$1/stat") * 1000000 / CLK_TCK)); }

# rss_kib PID: resident set size in KiB.
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# Redis' own CPU (main thread and all), in microseconds.
redis_cpu_us() {
  redis INFO cpu | tr -d '\r' | awk -F: '/^used_cpu_(user|sys):/ {s += $2} END {printf "%d\n", s * 1000000}'
}

health_up() { [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$SHIELD_TEST_HTTP_PORT/health") == 200 ]]; }

workers_ready() {
  local want=$1 n
  n=$(grep -c 'ready: script' "$SUP_LOG" 2>/dev/null) || n=0
  ((n >= want))
}

# pool_start CONFIG WORKERS: the supervisor in its own session (log in
# $SUP_LOG), waits for /health and for WORKERS workers ready. Sets SUP_PID.
pool_start() {
  local cfg=$1 workers=$2
  SUP_LOG=$WORK/pool.$(basename "$cfg" .cfg.lua).log
  : >"$SUP_LOG"
  setsid "$SHIELD_BIN" --config "$cfg" >>"$SUP_LOG" 2>&1 </dev/null &
  SUP_PID=$!
  echo "$SUP_PID" >>"$WORK/pools"
  if ! wait_until 30 health_up || ! wait_until 30 workers_ready "$workers"; then
    tail -20 "$SUP_LOG" >&2
    bench_die "the pool did not start ($cfg)"
  fi
}

# pool_start_nowait CONFIG: the supervisor without waiting (the drain measures
# from its first ack, so start-up is not in the figure). Sets SUP_PID, SUP_LOG.
pool_start_nowait() {
  SUP_LOG=$WORK/pool.$(basename "$1" .cfg.lua).log
  : >"$SUP_LOG"
  setsid "$SHIELD_BIN" --config "$1" >>"$SUP_LOG" 2>&1 </dev/null &
  SUP_PID=$!
  echo "$SUP_PID" >>"$WORK/pools"
}

# Every pool this run started (listed in $WORK/pools) is killed with its
# session: the exit path, whatever state a scenario left.
kill_pools() {
  local pid
  [[ -f $WORK/pools ]] || return 0
  while read -r pid; do
    # The supervisor leads its own process group (setsid): its workers are in it.
    if pgrep -g "$pid" >/dev/null; then kill -KILL -- "-$pid" 2>/dev/null; fi
  done <"$WORK/pools"
  return 0
}

alive() { [[ -r /proc/$1/stat ]] && ! awk '{exit $3 == "Z" ? 0 : 1}' "/proc/$1/stat" 2>/dev/null; }
pool_gone() { ! alive "$SUP_PID"; }

# pool_stop [SECONDS]: SIGTERM and wait (default 60 s); then the whole session
# is killed. Returns the supervisor's exit status (137 when killed).
pool_stop() {
  [[ -n ${SUP_PID:-} ]] || return 0
  local rc=0
  kill -TERM "$SUP_PID" 2>/dev/null
  if ! wait_until "${1:-60}" pool_gone; then
    bench_log "the pool did not stop in ${1:-60} s: killing it"
    kill -KILL -- "-$SUP_PID" 2>/dev/null
  fi
  wait "$SUP_PID" 2>/dev/null || rc=$?
  kill -KILL -- "-$SUP_PID" 2>/dev/null
  SUP_PID=
  return "$rc"
}

# machine_ticks: "BUSY TOTAL" jiffies of all cores (/proc/stat); two samples
# give the share of the machine that was busy in between.
machine_ticks() { awk '/^cpu / {t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t; exit}' /proc/stat; }

# busy_share "BUSY0 TOTAL0" "BUSY1 TOTAL1": 0.000 .. 1.000.
busy_share() {
  local b0 t0 b1 t1
  read -r b0 t0 <<<"$1"
  read -r b1 t1 <<<"$2"
  awk -v b=$((b1 - b0)) -v t=$((t1 - t0)) 'BEGIN {printf "%.3f\n", (t > 0 ? b / t : 0)}'
}

# The load average when a scenario starts: other work on the machine skews
# every figure, so each scenario records it.
loadavg() { cut -d' ' -f1 /proc/loadavg; }
