# Shell helpers for process-level tests of the runtime. Source it.
# Provides: a temp dir ($T), counters (ok/fail/finish), starting the supervisor
# with a config body and reading its log.
bin=${SHIELD_BIN:?}
src=${SHIELD_SOURCE_DIR:?}
T=$(mktemp -d)
passes=0 fails=0
SUP_PID=

cleanup() {
  if [[ -n $SUP_PID ]] && kill -0 "$SUP_PID" 2>/dev/null; then
    pkill -KILL -P "$SUP_PID" 2>/dev/null
    kill -KILL "$SUP_PID" 2>/dev/null
  fi
  rm -rf "$T"
}
trap cleanup EXIT

ok() { passes=$((passes + 1)); echo "ok - $*"; }
fail() { fails=$((fails + 1)); echo "FAIL - $*"; return 1; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else fail "$what"; fi; }
finish() {
  echo "$passes passed, $fails failed"
  [[ $fails -eq 0 ]]
}

# alive PID: the process exists and is not a zombie (an orphan's zombie may
# never be reaped where PID 1 does not wait for it).
alive() { [[ -r /proc/$1/stat ]] && ! awk '{exit $3 == "Z" ? 0 : 1}' "/proc/$1/stat" 2>/dev/null; }

# wait_for SECONDS CMD...: polls CMD every 50 ms until it succeeds.
wait_for() {
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do
    ((SECONDS >= deadline)) && return 1
    sleep 0.05
  done
}

# write_config NAME BODY: a config file whose table gets BODY's fields plus the
# harness's Redis/PostgreSQL URLs when present.
write_config() {
  local name=$1 body=$2
  cat > "$T/$name.cfg.lua" <<CFG
local c = { $body }
c.redis = c.redis or {}
c.redis.url = c.redis.url or os.getenv("SHIELD_TEST_REDIS_URL")
c.postgres = c.postgres or {}
c.postgres.url = c.postgres.url or os.getenv("SHIELD_TEST_PG_URL")
c.http = c.http or {}
c.http.listen = c.http.listen or ("127.0.0.1:" .. (os.getenv("SHIELD_TEST_HTTP_PORT") or "0"))
return c
CFG
  echo "$T/$name.cfg.lua"
}

# start_supervisor CONFIG: runs it in the background, log in $T/sup.log.
start_supervisor() {
  # Emptied here, not by the background job's redirection: that one runs
  # later, and a check reading the previous supervisor's lines meanwhile
  # (workers_ready) would signal a process that has no handlers yet.
  : > "$T/sup.log"
  (cd "$src" && exec "$bin" --config "$1") >> "$T/sup.log" 2>&1 &
  SUP_PID=$!
}

# worker_pid SLOT: the pid of the newest worker started in SLOT, from the log.
worker_pid() {
  grep -o "worker $1 started (pid [0-9]*)" "$T/sup.log" | tail -1 | grep -o '[0-9]*)' | tr -d ')'
}

workers_ready() { [[ $(grep -c 'ready: script' "$T/sup.log") -ge $1 ]]; }

# lua FILE ARGS...: runs a Lua file in a worker environment of config $CFG.
lua() { (cd "$src" && "$bin" --config "$CFG" run "$@"); }

# wait_supervisor [SECONDS]: waits up to SECONDS (60) for $SUP_PID to exit and
# returns its status. One still running then is a hang: the end of its log is
# printed, it is killed, and the status is 124.
wait_supervisor() {
  local limit=${1:-60} i
  for ((i = 0; i < limit * 10; i++)); do
    running "$SUP_PID" || break
    sleep 0.1
  done
  if running "$SUP_PID"; then
    echo "# the supervisor (pid $SUP_PID) has not exited after $limit s; its log ends with:"
    tail -n 40 "$T/sup.log" | sed 's/^/#   /'
    grep -E '^(State|SigPnd|ShdPnd|SigBlk|SigIgn|SigCgt)' "/proc/$SUP_PID/status" | sed 's/^/#   /'
    pgrep -P "$SUP_PID" | xargs -r kill -KILL
    kill -KILL "$SUP_PID"
    wait "$SUP_PID" 2>/dev/null
    return 124
  fi
  wait "$SUP_PID"
}

# running PID: alive and not a zombie waiting to be reaped.
running() { [[ -e /proc/$1/stat && $(cut -d' ' -f3 "/proc/$1/stat") != Z ]]; }

# stop_supervisor: SIGTERM and wait; returns its exit status.
stop_supervisor() {
  kill -TERM "$SUP_PID" 2>/dev/null
  wait_supervisor
  local status=$?
  SUP_PID=
  return $status
}

redis() { redis-cli -p "${SHIELD_TEST_REDIS_PORT:?}" "$@"; }

# drained: nothing in the stream, the retry set or the group's pending list.
# One script reads all three: read one by one, a retry moving from the set back
# to the stream between two reads would look like an empty queue.
drained() {
  [[ $(redis EVAL "local p = redis.pcall('XPENDING', KEYS[1], ARGV[1])
    return redis.call('XLEN', KEYS[1]) + redis.call('ZCARD', KEYS[2]) + (type(p) == 'table' and p[1] or 0)" \
    2 shield:ingestion_queue shield:ingestion_queue:retry lightrag-workers) == 0 ]]
}
