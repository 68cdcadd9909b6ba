#!/usr/bin/env bash
# bench.smoke: bench/run.sh with every scenario at small sizes, against
# SHIELD_BIN (no build of its own). Passes when every scenario ran and its
# books balance (every chunk counted, every job completed, every HTTP answer a
# 2xx, no error or warning in the pools' logs); no figure is compared with a
# target. Needs wrk and python3, as bench/run.sh does.
set -euo pipefail
src=${SHIELD_SOURCE_DIR:?}
work=$(mktemp -d "${TMPDIR:-/tmp}/bench-smoke.XXXXXX")
trap 'rm -rf "$work"' EXIT

BENCH_BIN=${SHIELD_BIN:?} BENCH_BUILD_DIR=$work/build BENCH_OUT=$work/results.json \
  BENCH_DRAIN_JOBS=20 BENCH_JOB_CHUNKS=50 BENCH_STATUS_JOBS=20 BENCH_MEM_IN_FLIGHT=32 \
  BENCH_LAT_SECONDS=1 BENCH_WRK_SECONDS=1 BENCH_WRK_CONNECTIONS=4 \
  BENCH_SLOW_LEVELS="1 8" BENCH_SLOW_SECONDS=1 BENCH_SLOW_MAX_CHUNKS=200 \
  "$src/bench/run.sh" >"$work/stdout" 2>"$work/stderr" || {
  echo "bench/run.sh failed:"
  tail -n 30 "$work/stderr"
  exit 1
}

python3 - "$work/results.json" "$src/bench/run.sh" <<'PY'
import json, re, sys
out = json.load(open(sys.argv[1]))
every = re.search(r'^ALL="([^"]+)"', open(sys.argv[2]).read(), re.M).group(1).split()
s = out["scenarios"]
problems = ["scenario %s did not report" % name for name in every if name not in s]
def check(ok, what):
    if not ok:
        problems.append(what)
for name in ("drain", "drain_noaof", "drain_unix", "drain_default"):
    d = s.get(name, {})
    check(d.get("accounting_ok") is True, "%s: the books do not balance: %s" % (name, d))
    check(d.get("chunks_per_s", 0) > 0, "%s: no rate" % name)
for name in ("reference", "reference_noaof"):
    d = s.get(name, {})
    check(d.get("tasks") == 1000 and d.get("tasks_per_s", 0) > 0, "%s: %s" % (name, d))
    check("of_reference" in s.get(name.replace("reference", "drain"), {}), "%s: no share of the reference" % name)
for name in ("ingest", "status"):
    d = s.get(name, {})
    check(d.get("requests", 0) > 0 and d.get("non_2xx") == 0 and d.get("socket_errors") == 0,
          "%s: %s" % (name, {k: d.get(k) for k in ("requests", "non_2xx", "socket_errors", "statuses")}))
slow = s.get("slow", {})
levels = [("slow %s c=%s" % (kind, c), lvl) for kind in ("lightrag", "llm_only")
          for c, lvl in sorted(slow.get(kind, {}).items())] + [("slow_unix", s.get("slow_unix", {}))]
check(len(levels) == 5, "slow: levels missing: %s" % [name for name, _ in levels])
for name, lvl in levels:
    check(lvl.get("chunks", 0) > 0 and lvl.get("chunks_failed") == 0 and lvl.get("jobs_completed") == lvl.get("jobs"),
          "%s: %s" % (name, lvl))
lat = s.get("latency", {})
check(lat.get("chunks_sent", 0) > 0 and lat.get("chunks_acked") == lat.get("chunks_sent"), "latency: %s" % lat)
mem = s.get("memory", {})
check(mem.get("worker_idle_kib", 0) > 0 and mem.get("per_in_flight_kib") is not None, "memory: %s" % mem)
check(out["log_problems"] == {}, "problems in the pools' logs: %s" % out["log_problems"])
if problems:
    print("\n".join(problems))
    sys.exit(1)
print("bench.smoke: %d scenarios ran, books balanced" % len(s))
PY
