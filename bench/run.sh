#!/usr/bin/env bash
# The benchmarks (issue 9) in one command: builds the release binary and the
# bench tools, starts a private Redis and PostgreSQL (tests/harness/servers.sh),
# runs the scenarios against them, prints a table of figures and targets on
# stderr and one JSON object of every figure on stdout (also saved to
# $BENCH_OUT). Benchmarks report: the exit status says whether the scenarios
# ran, never whether a target was met.
#
#   bench/run.sh [SCENARIO...]
#     reference      1: the issue's reference client (per-batch XACK, HINCRBY per job,
#                       an event per task) on the same tasks: what Redis itself allows
#     reference_noaof 1: the same with Redis' append-only file off
#     drain          1+7: 200,000 queued chunks drained by noop.lua; Redis and CPU cost
#     drain_noaof    1: the same with Redis' append-only file off
#     drain_unix     1: the same with Redis reached through its Unix socket
#     drain_default  1: the same with the pool section of config/pool.lua
#     latency        5: enqueue-to-ack at a steady share of the drain rate
#     memory         6: RSS idle and with chunks in flight
#     ingest         2: POST /lightrag/ingest-async with wrk
#     status         3: GET /jobs/<id> with wrk
#     slow           4: lightrag.lua against a 200 ms LLM, concurrency 1..256
#     slow_unix      4: lightrag.lua at the top level, both servers through Unix sockets
#   (default: all, in that order)
#
# Sizes and pools come from the environment (defaults in brackets):
#   BENCH_BUILD_DIR [build-bench]  BENCH_OUT [$BENCH_BUILD_DIR/bench-results.json]
#   BENCH_BIN [] a shield-runtime binary to run instead of building one (the tools
#     are still built, into $BENCH_BUILD_DIR/bench)
#   BENCH_CMAKE_ARGS [] (e.g. -DSHIELD_SANITIZE=ON for a smoke run under ASan)  BENCH_KEEP (keep the work folder)
#   BENCH_DRAIN_JOBS [2000]  BENCH_JOB_CHUNKS [100]  BENCH_CHUNK_BYTES [100]
#   BENCH_POOL_SIZE [2]  BENCH_CONCURRENCY [400]  BENCH_BATCH [200]  BENCH_DRAIN_TIMEOUT [120]
#   BENCH_LAT_SHARE [0.2] of the drain rate (or BENCH_LAT_RATE chunks/s)  BENCH_LAT_SECONDS [10]
#   BENCH_MEM_IN_FLIGHT [256]  BENCH_WRK_SECONDS [10]  BENCH_WRK_CONNECTIONS [32]
#   BENCH_WRK_THREADS [1]  BENCH_STATUS_JOBS [1000]
#   BENCH_SLOW_LEVELS ["1 8 64 256"]  BENCH_SLOW_SECONDS [5]  BENCH_SLOW_MAX_CHUNKS [12000]
#   BENCH_SLOW_DELAY_MS [200]
# The machine's cores are shared by Redis, the pool and the load generators.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd -P)
BUILD=${BENCH_BUILD_DIR:-$SRC/build-bench}
BENCH_OUT=${BENCH_OUT:-$BUILD/bench-results.json}
: "${BENCH_DRAIN_JOBS:=2000}" "${BENCH_JOB_CHUNKS:=100}" "${BENCH_CHUNK_BYTES:=100}"
: "${BENCH_POOL_SIZE:=2}" "${BENCH_CONCURRENCY:=400}" "${BENCH_BATCH:=200}" "${BENCH_DRAIN_TIMEOUT:=120}"
: "${BENCH_LAT_SHARE:=0.2}" "${BENCH_LAT_RATE:=}" "${BENCH_LAT_SECONDS:=10}"
: "${BENCH_MEM_IN_FLIGHT:=256}" "${BENCH_WRK_SECONDS:=10}" "${BENCH_WRK_CONNECTIONS:=32}"
: "${BENCH_WRK_THREADS:=1}" "${BENCH_STATUS_JOBS:=1000}"
: "${BENCH_SLOW_LEVELS:=1 8 64 256}" "${BENCH_SLOW_SECONDS:=5}" "${BENCH_SLOW_MAX_CHUNKS:=12000}"
: "${BENCH_SLOW_DELAY_MS:=200}"
export BENCH_CHUNK_BYTES

. "$SRC/bench/lib.sh"
for f in "$SRC"/bench/scenarios/*.sh; do
  # shellcheck source=/dev/null
  . "$f"
done

ALL="reference reference_noaof drain drain_noaof drain_unix drain_default latency memory ingest status slow slow_unix"
SCENARIOS=${*:-$ALL}
for s in $SCENARIOS; do
  [[ " $ALL " == *" $s "* ]] || bench_die "unknown scenario '$s' (known: $ALL)"
done

# --- build ----------------------------------------------------------------------
# shellcheck disable=SC2034 # SHIELD_BIN, SUP_PID: used by lib.sh and the scenarios
if [[ -n ${BENCH_BIN:-} ]]; then
  SHIELD_BIN=$BENCH_BIN
else
  bench_log "building the release binary in $BUILD"
  # shellcheck disable=SC2086 # BENCH_CMAKE_ARGS: words (e.g. -DSHIELD_SANITIZE=ON)
  cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release ${BENCH_CMAKE_ARGS:-} >/dev/null
  cmake --build "$BUILD" --target shield-runtime -j"$(nproc)" >/dev/null
  SHIELD_BIN=$BUILD/shield-runtime
fi
TOOLS=$BUILD/bench
mkdir -p "$TOOLS"
for tool in latency fake_llm reference; do
  cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -Wno-unused-parameter \
    -o "$TOOLS/$tool" "$SRC/bench/tools/$tool.c" -lhiredis -luv -lpthread -lm
done

# --- servers and work folder ---------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/shield-bench.XXXXXX")
chmod 755 "$WORK" # postgres must reach its data folder inside
RESULTS=$WORK/results
SERVERS=$WORK/servers
mkdir -p "$RESULTS"
# shellcheck disable=SC2034
SUP_PID=
FAKE_PID=
cleanup() {
  set +e # every step runs, whatever the one before did
  pool_stop 10 >/dev/null 2>&1
  kill_pools
  [[ -n $FAKE_PID ]] && kill "$FAKE_PID" 2>/dev/null
  "$SRC/tests/harness/servers.sh" stop "$SERVERS" >/dev/null 2>&1
  if [[ -n ${BENCH_KEEP:-} ]]; then bench_log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
bench_log "starting private Redis and PostgreSQL"
"$SRC/tests/harness/servers.sh" start "$SERVERS" >/dev/null
# shellcheck source=/dev/null
. "$SERVERS/env.sh"

# --- scenarios -------------------------------------------------------------------------
started=$(now_ms)
for s in $SCENARIOS; do
  "scenario_$s"
done

# --- report ----------------------------------------------------------------------------
commit=$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$SRC" status --porcelain 2>/dev/null | grep -c . || true)
python3 - "$WORK/meta.json" <<EOF
import json, platform, sys, time
cpu = [l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")]
json.dump({
    "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "commit": "$commit",
    "uncommitted_files": $dirty,
    "machine": {"cpu": cpu[0] if cpu else "?", "cores": len(cpu), "kernel": platform.release()},
    "redis": "$(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')",
    "redis_aof": "appendonly yes, appendfsync everysec (tests/harness/servers.sh)",
    "bench_seconds": round(($(now_ms) - $started) / 1000),
}, open(sys.argv[1], "w"))
EOF
python3 "$SRC/bench/report.py" summary "$RESULTS" "$WORK/meta.json" "$WORK" | tee "$BENCH_OUT"
bench_log "figures saved to $BENCH_OUT"
