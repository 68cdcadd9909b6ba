# Shell helpers for end-to-end tests: deadlines and readiness probes, HTTP via
# curl, and the runtime started with a config against the harness' servers.
# Source it from a bash test run under tests/harness/with-servers.sh (SERVERS);
# relies on curl, redis-cli, psql, python3 and the SHIELD_* variables ctest sets.
#
#   e2e_fail MSG                       print "FAIL: MSG" (and the runtime's log), exit 1
#   e2e_assert_eq EXPECTED ACTUAL WHAT
#   e2e_assert_contains HAYSTACK NEEDLE WHAT
#   e2e_wait_until SECONDS CMD...      poll CMD every 50 ms; 1 at the deadline
#   e2e_wait_for_port PORT [SECONDS]   until 127.0.0.1:PORT accepts (default 10 s)
#   e2e_wait_for_port_closed PORT [SECONDS]
#   e2e_free_port                      a free port (reserved until the servers stop)
#   e2e_http METHOD URL [BODY [CURL_ARGS...]]
#       sets E2E_STATUS, E2E_BODY, E2E_HEADERS; 0 on any HTTP answer; 1 without
#       one, E2E_HTTP_ERROR then starts "connection refused", "timeout" or
#       "closed". A BODY is sent as JSON ("@FILE" reads a file; "" sends none).
#   e2e_http_header NAME               a header of the last answer
#   e2e_json PATH [JSON]               a field ("a.b.0.c") of JSON (default: the
#                                      last body); strings raw, others as JSON
#   e2e_redis ARGS...                  redis-cli against the harness' Redis
#   e2e_sql SQL                        psql -At against the harness' database
#   e2e_config NAME [LUA...]           writes E2E_CONFIG=$E2E_DIR/NAME.cfg.lua:
#       config/pool.lua with the harness' URLs and http.listen on E2E_HTTP_PORT
#       (E2E_HTTP_URL), then each LUA statement run on `cfg` ('cfg.pool.size = 1')
#   e2e_runtime_start CONFIG [ARGS...] the supervisor in its own session (log:
#       $E2E_RUNTIME_LOG), waits for GET /health = 200; sets E2E_RUNTIME_PID
#   e2e_runtime_stop [SIGNAL [SECONDS]] signal (TERM) and wait (60 s); sets
#       E2E_RUNTIME_STATUS; 1 if it had to be killed
#
# At exit the runtime (its whole process group) is killed and E2E_DIR removed;
# a test that sets its own EXIT trap calls e2e_cleanup from it.
# shellcheck shell=bash disable=SC2034 # E2E_* results are read by the tests

E2E_HARNESS=${SHIELD_SOURCE_DIR:?}/tests/harness
E2E_DIR=$(mktemp -d "${SHIELD_TEST_DIR:-${TMPDIR:-/tmp}}/e2e.XXXXXX")
E2E_RUNTIME_LOG=$E2E_DIR/runtime.log
E2E_RUNTIME_PID=
E2E_RUNTIME_STATUS=
E2E_HTTP_PORT=${SHIELD_TEST_HTTP_PORT:-}
E2E_HTTP_URL=
E2E_CONFIG=
E2E_STATUS=''
E2E_BODY=''
E2E_HEADERS=''
E2E_HTTP_ERROR=''

e2e_fail() {
  echo "FAIL: $*" >&2
  [[ -s $E2E_RUNTIME_LOG ]] || exit 1
  local line
  # A sanitizer report beats the log's tail (mostly its shadow-byte legend).
  line=$(grep -n -m 1 -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$E2E_RUNTIME_LOG" | cut -d: -f1)
  if [[ -n $line ]]; then
    echo "--- the runtime's log from line $line:" >&2
    sed -n "$line,$((line + 30))p" "$E2E_RUNTIME_LOG" >&2
  else
    echo "--- the runtime's log, last 40 lines:" >&2
    tail -n 40 "$E2E_RUNTIME_LOG" >&2
  fi
  exit 1
}

e2e_assert_eq() {
  [[ $1 == "$2" ]] || e2e_fail "$3: expected '$1', got '$2'"
}

e2e_assert_contains() {
  [[ $1 == *"$2"* ]] || e2e_fail "$3: '$2' not found in '$1'"
}

e2e_now_ms() { date +%s%3N; }

e2e_wait_until() {
  local deadline=$(($(e2e_now_ms) + $1 * 1000))
  shift
  until "$@"; do
    if (($(e2e_now_ms) >= deadline)); then
      echo "e2e: timeout waiting for: $*" >&2
      return 1
    fi
    sleep 0.05
  done
}

e2e_port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
e2e_port_closed() { ! e2e_port_open "$1"; }

e2e_wait_for_port() { e2e_wait_until "${2:-10}" e2e_port_open "$1"; }
e2e_wait_for_port_closed() { e2e_wait_until "${2:-10}" e2e_port_closed "$1"; }

e2e_free_port() {
  if [[ -n ${SHIELD_TEST_DIR:-} ]]; then
    "$E2E_HARNESS/servers.sh" port "$SHIELD_TEST_DIR"
    return
  fi
  local port try
  for ((try = 0; try < 100; try++)); do
    port=$((20000 + (RANDOM * 32768 + RANDOM) % 12000))
    if e2e_port_closed "$port"; then
      echo "$port"
      return 0
    fi
  done
  e2e_fail "no free port"
}

e2e_http() {
  local method=$1 url=$2 body=${3:-} rc err
  shift $(($# < 3 ? $# : 3))
  local args=(-sS -X "$method" -o "$E2E_DIR/http.body" -D "$E2E_DIR/http.headers"
    -w '%{http_code}' --max-time "${E2E_HTTP_TIMEOUT:-10}")
  if [[ -n $body ]]; then
    args+=(-H 'Content-Type: application/json' --data-binary "$body")
  fi
  : >"$E2E_DIR/http.body"
  : >"$E2E_DIR/http.headers"
  E2E_STATUS=$(curl "${args[@]}" "$@" "$url" 2>"$E2E_DIR/http.err") && rc=0 || rc=$?
  E2E_BODY=$(cat "$E2E_DIR/http.body")
  E2E_HEADERS=$(tr -d '\r' <"$E2E_DIR/http.headers")
  E2E_HTTP_ERROR=
  ((rc == 0)) && return 0
  err=$(cat "$E2E_DIR/http.err")
  case $rc in
  7) E2E_HTTP_ERROR="connection refused: $err" ;;
  28) E2E_HTTP_ERROR="timeout: $err" ;;
  52 | 56) E2E_HTTP_ERROR="closed: $err" ;;
  *) E2E_HTTP_ERROR="curl $rc: $err" ;;
  esac
  return 1
}

e2e_http_header() {
  local name=${1,,}
  awk -v want="$name" 'index($0, ":") {
      key = tolower(substr($0, 1, index($0, ":") - 1))
      if (key == want) { value = substr($0, index($0, ":") + 1); sub(/^[ \t]+/, "", value) }
    } END { if (value != "") print value }' <<<"$E2E_HEADERS"
}

e2e_json() {
  local json
  if (($# >= 2)); then json=$2; else json=$E2E_BODY; fi
  python3 -c '
import json, sys
v = json.loads(sys.stdin.read())
for k in sys.argv[1].split(".") if sys.argv[1] else []:
    v = v[int(k)] if isinstance(v, list) else v[k]
print(v if isinstance(v, str) else json.dumps(v))
' "$1" <<<"$json"
}

e2e_redis() { redis-cli -h 127.0.0.1 -p "${SHIELD_TEST_REDIS_PORT:?}" "$@"; }

e2e_sql() { psql -X -A -t -q -v ON_ERROR_STOP=1 "${SHIELD_TEST_PG_URL:?}" -c "$1"; }

e2e_config() {
  local statement
  E2E_CONFIG=$E2E_DIR/$1.cfg.lua
  shift
  [[ -n $E2E_HTTP_PORT ]] || E2E_HTTP_PORT=$(e2e_free_port)
  E2E_HTTP_URL=http://127.0.0.1:$E2E_HTTP_PORT
  {
    echo "local cfg = dofile(\"$SHIELD_SOURCE_DIR/config/pool.lua\")"
    echo "cfg.redis.url = \"${SHIELD_TEST_REDIS_URL:?}\""
    echo "cfg.postgres.url = \"${SHIELD_TEST_PG_URL:?}\""
    echo "cfg.http.listen = \"127.0.0.1:$E2E_HTTP_PORT\""
    for statement in "$@"; do echo "$statement"; done
    echo "return cfg"
  } >"$E2E_CONFIG"
}

e2e_alive() {
  local state
  kill -0 "$1" 2>/dev/null || return 1
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ $state != Z ]]
}

e2e_health_up() {
  e2e_alive "$E2E_RUNTIME_PID" || return 0 # stop polling: it died
  E2E_HTTP_TIMEOUT=2 e2e_http GET "$E2E_HTTP_URL/health" && [[ $E2E_STATUS == 200 ]]
}

e2e_runtime_start() {
  local config=$1
  shift
  [[ -z $E2E_RUNTIME_PID ]] || e2e_fail "e2e_runtime_start: the runtime is already running"
  [[ -n $E2E_HTTP_URL ]] || e2e_fail "e2e_runtime_start: write the config with e2e_config first"
  # Its own session: a test's Ctrl-C must not reach it, and cleanup can kill
  # the supervisor and its workers together by process group.
  (cd "$SHIELD_SOURCE_DIR" && exec setsid "${SHIELD_BIN:?}" --config "$config" "$@") \
    </dev/null >>"$E2E_RUNTIME_LOG" 2>&1 &
  E2E_RUNTIME_PID=$!
  e2e_wait_until "${E2E_START_SECONDS:-30}" e2e_health_up ||
    e2e_fail "the runtime did not answer GET /health; log: $(tail -n 20 "$E2E_RUNTIME_LOG")"
  e2e_alive "$E2E_RUNTIME_PID" ||
    e2e_fail "the runtime exited at start; log: $(tail -n 20 "$E2E_RUNTIME_LOG")"
}

e2e_runtime_gone() { ! e2e_alive "$E2E_RUNTIME_PID"; }

e2e_runtime_stop() {
  local signal=${1:-TERM} seconds=${2:-60} rc=0
  [[ -n $E2E_RUNTIME_PID ]] || return 0
  kill -"$signal" "$E2E_RUNTIME_PID" 2>/dev/null || true
  if ! e2e_wait_until "$seconds" e2e_runtime_gone; then
    kill -KILL -- "-$E2E_RUNTIME_PID" 2>/dev/null || true
    rc=1
  fi
  wait "$E2E_RUNTIME_PID" && E2E_RUNTIME_STATUS=0 || E2E_RUNTIME_STATUS=$?
  E2E_RUNTIME_PID=
  return "$rc"
}

e2e_cleanup() {
  if [[ -n $E2E_RUNTIME_PID ]]; then
    kill -KILL -- "-$E2E_RUNTIME_PID" 2>/dev/null || true
    wait "$E2E_RUNTIME_PID" 2>/dev/null || true
    E2E_RUNTIME_PID=
  fi
  rm -rf "$E2E_DIR"
}
trap e2e_cleanup EXIT
