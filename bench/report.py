#!/usr/bin/env python3
"""Figures of the benchmarks: turns the raw measurements of one scenario into
its JSON (drain, ingest/status from wrk), and merges every scenario's JSON into
the one object bench/run.sh prints, with a short table of figures and targets.
Used by bench/run.sh and bench/scenarios/*.sh; standard library only.

    report.py drain WAIT_JSON ENQUEUE_JSON SCRIPTS_DIR REDIS_CPU0_US WORKER_CPU_US
              SUP_CPU_US WALL_MS "RSS_KIB..." POOL LOADAVG BUSY_SHARE
    report.py wrk WRK_OUTPUT CHUNKS_PER_REQUEST(0: none) EXTRA_JSON
    report.py annotate RAW_JSON NAME=VALUE...
    report.py summary RESULTS_DIR META_JSON WORK_DIR
"""
import glob
import json
import os
import re
import sys


def commandstats(text):
    """{command: (calls, usec)} from INFO commandstats."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"cmdstat_([^:]+):calls=(\d+),usec=(\d+)", line.strip())
        if m:
            out[m.group(1)] = (int(m.group(2)), int(m.group(3)))
    return out


def info_cpu_us(text):
    """used_cpu_user + used_cpu_sys of INFO cpu, in microseconds."""
    total = 0.0
    for line in text.splitlines():
        m = re.match(r"used_cpu_(user|sys):([\d.]+)", line.strip())
        if m:
            total += float(m.group(2))
    return int(total * 1e6)


def scripted_commands(scripts_dir):
    """Commands the atomic job scripts call inside Redis: counted by
    commandstats, but no round trip of their own."""
    names = set()
    for path in glob.glob(os.path.join(scripts_dir, "*.lua")):
        with open(path) as f:
            names.update(n.lower() for n in re.findall(r"call(?:_many)?\('([A-Za-z]+)'", f.read()))
    return names


# Commands only the bench itself sends (its probes), never the runtime.
BENCH_ONLY = {"info", "config|resetstat", "config|set", "flushall"}


def drain(args):
    wait_path, enqueue_path, scripts_dir, redis_cpu0, worker_cpu, sup_cpu, wall_ms, rss, pool, load, busy = args
    with open(wait_path) as f:
        w = json.load(f)
    with open(enqueue_path) as f:
        enq = json.load(f)
    chunks = enq["chunks"]
    span_ms = max(1, w["last_ack_ms"] - w["first_ack_ms"])
    stats = commandstats(w["commandstats"])
    own = w["own_commands"]
    if "xlen" in stats:
        c, u = stats["xlen"]
        stats["xlen"] = (c - own["xlen"], u)
    if "xpending" in stats:
        c, u = stats["xpending"]
        stats["xpending"] = (c - own["xpending"], u)
    # Subcommands count under their command: "xinfo|groups" is XINFO's.
    names = scripted_commands(scripts_dir)
    scripted = {k for k in stats if k.split("|")[0] in names}
    round_trips = {k: v[0] for k, v in stats.items()
                   if k not in scripted and k not in BENCH_ONLY and v[0] > 0}
    inside = {k: v[0] for k, v in stats.items() if k in scripted and v[0] > 0}
    redis_usec = {k: v[1] for k, v in stats.items() if k not in BENCH_ONLY}
    redis_cpu = info_cpu_us(w["cpu"]) - int(redis_cpu0)
    rss_list = [int(x) for x in rss.split()]
    accounting_ok = (w["jobs_completed"] == w["jobs"] and w["chunks_processed"] == chunks
                     and w["events"].get("ingestion.completed", 0) == w["jobs"])
    return {
        "pool": pool,
        "loadavg_at_start": float(load),
        "machine_busy": float(busy),
        "chunks": chunks,
        "jobs": w["jobs"],
        "chunk_bytes": int(os.environ.get("BENCH_CHUNK_BYTES", "0")),
        "accounting_ok": accounting_ok,
        "jobs_completed": w["jobs_completed"],
        "chunks_processed": w["chunks_processed"],
        "events": w["events"],
        "drain_ms": span_ms,
        "chunks_per_s": round(chunks * 1000.0 / span_ms),
        "start_to_drained_ms": int(wall_ms),
        "chunks_per_s_with_startup": round(chunks * 1000.0 / max(1, int(wall_ms))),
        "enqueue_script_chunks_per_s": round(chunks * 1000.0 / max(1, enq["ms"])),
        "redis_round_trips": round_trips,
        "redis_round_trips_per_chunk": round(sum(round_trips.values()) / chunks, 4),
        "redis_commands_in_scripts": inside,
        "redis_commands_per_chunk": round((sum(round_trips.values()) + sum(inside.values())) / chunks, 3),
        "redis_usec_by_command": redis_usec,
        "redis_cpu_us_per_chunk": round(redis_cpu / chunks, 2),
        "worker_cpu_us_per_chunk": round(int(worker_cpu) / chunks, 2),
        "supervisor_cpu_us_per_chunk": round(int(sup_cpu) / chunks, 2),
        "runtime_cpu_us_per_chunk": round((int(worker_cpu) + int(sup_cpu)) / chunks, 2),
        "worker_rss_after_kib": rss_list,
    }


def wrk_ms(value, unit):
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(args):
    """The figures of wrk --latency output (and the per-request counts its Lua
    script printed as JSON on the last line)."""
    path, per_request, extra = args
    with open(path) as f:
        text = f.read()
    out = json.loads(extra)
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    out["requests_per_s"] = round(float(m.group(1))) if m else 0
    if int(per_request) > 0:
        out["chunks_per_s"] = out["requests_per_s"] * int(per_request)
    for p in ("50", "90", "99"):
        m = re.search(r"^\s+%s(?:\.000)?%%\s+([\d.]+)(us|ms|s|m)\s*$" % p, text, re.M)
        out["p%s_ms" % p] = round(wrk_ms(m.group(1), m.group(2)), 3) if m else None
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+),", text)
    out["requests"] = int(m.group(1)) if m else 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    out["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    out["socket_errors"] = sum(int(x) for x in m.groups()) if m else 0
    statuses = re.search(r"^statuses (.*)$", text, re.M)
    if statuses:
        out["statuses"] = json.loads(statuses.group(1))
    return out


def annotate(args):
    """A tool's JSON with the scenario's conditions added (NAME=VALUE; a value
    that reads as a number is one)."""
    with open(args[0]) as f:
        out = json.load(f)
    for pair in args[1:]:
        name, value = pair.split("=", 1)
        try:
            out[name] = float(value)
        except ValueError:
            out[name] = value
    return out


# (scenario, key, label, target, "min" | "max" | None): the table's rows.
ROWS = [
    ("reference", "tasks_per_s", "1 reference client, tasks/s", None, None),
    ("reference", "redis_cpu_us_per_task", "1 reference Redis CPU us per task", None, None),
    ("reference_noaof", "tasks_per_s", "1 reference client, no AOF", None, None),
    ("drain", "chunks_per_s", "1 drain, chunks/s (noop)", 190000, "min"),
    ("drain", "of_reference", "1 drain / reference client", None, None),
    ("drain", "redis_round_trips_per_chunk", "7 Redis round trips per chunk", 0.1, "max"),
    ("drain", "redis_commands_per_chunk", "7 Redis commands per chunk", None, None),
    ("drain", "runtime_cpu_us_per_chunk", "7 runtime CPU us per chunk", 10, "max"),
    ("drain", "worker_cpu_us_per_chunk", "7   of which workers", None, None),
    ("drain", "redis_cpu_us_per_chunk", "7 Redis CPU us per chunk", None, None),
    ("drain_noaof", "chunks_per_s", "1 drain, Redis appendonly no", 190000, "min"),
    ("drain_noaof", "of_reference", "1 drain / reference client, no AOF", None, None),
    ("drain_noaof", "redis_cpu_us_per_chunk", "7 Redis CPU us per chunk, no AOF", None, None),
    ("drain_unix", "chunks_per_s", "1 drain, Redis over its Unix socket", None, None),
    ("drain_unix", "redis_cpu_us_per_chunk", "7 Redis CPU us per chunk, Unix socket", None, None),
    ("drain_default", "chunks_per_s", "1 drain, config/pool.lua pool", None, None),
    ("ingest", "chunks_per_s", "2 ingest HTTP, chunks/s", 200000, "min"),
    ("ingest", "requests_per_s", "2 ingest HTTP, requests/s", None, None),
    ("ingest", "p50_ms", "2 ingest p50 ms", None, None),
    ("ingest", "p99_ms", "2 ingest p99 ms", None, None),
    ("status", "requests_per_s", "3 GET /jobs/<id> requests/s", 50000, "min"),
    ("status", "p99_ms", "3 GET /jobs/<id> p99 ms", None, None),
    ("slow", "c1_chunks_per_s", "4 slow LLM c=1, chunks/s", None, None),
    ("slow", "c8_chunks_per_s", "4 slow LLM c=8, chunks/s", None, None),
    ("slow", "c64_chunks_per_s", "4 slow LLM c=64, chunks/s", None, None),
    ("slow", "c256_chunks_per_s", "4 slow LLM c=256, chunks/s", None, None),
    ("slow", "c256_of_ideal", "4 c=256 share of ideal", 0.9, "min"),
    ("slow", "c256_of_cpu_bound_ideal", "4 c=256 share of ideal bounded by CPU", 0.9, "min"),
    ("slow", "llm_only_c256_chunks_per_s", "4 LLM call only c=256, chunks/s", None, None),
    ("slow", "llm_only_c256_of_ideal", "4 LLM call only c=256 of ideal", 0.9, "min"),
    ("slow_unix", "top_chunks_per_s", "4 slow LLM top level, Unix sockets, chunks/s", None, None),
    ("slow_unix", "top_of_ideal", "4 top level over Unix sockets, of ideal", None, None),
    ("latency", "p50_ms", "5 enqueue-to-ack p50 ms", None, None),
    ("latency", "p99_ms", "5 enqueue-to-ack p99 ms", None, None),
    ("memory", "supervisor_idle_kib", "6 supervisor RSS idle KiB", None, None),
    ("memory", "worker_idle_kib", "6 worker RSS idle KiB", 10240, "max"),
    ("memory", "per_in_flight_kib", "6 RSS per in-flight chunk KiB", 20, "max"),
]


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float) and v < 100:
        return "%.3g" % v
    if isinstance(v, (int, float)):
        return "{:,}".format(round(v))
    return str(v)


# Log lines worth a look: errors, warnings, sanitizer reports.
PROBLEM = re.compile(r"^\S+ (error|warn) |ERROR: \w+Sanitizer|runtime error:")
# The HTTP scenarios stop their parked pool with graceful_shutdown_timeout 0.
EXPECTED = re.compile(r"graceful shutdown timeout \(0 s\) passed")


def log_problems(work_dir):
    """{log file: {"count", "first"}} of the pools' logs with problem lines."""
    out = {}
    for path in sorted(glob.glob(os.path.join(work_dir, "pool.*.log"))):
        with open(path, errors="replace") as f:
            lines = [l.rstrip("\n") for l in f if PROBLEM.search(l) and not EXPECTED.search(l)]
        if lines:
            out[os.path.basename(path)] = {"count": len(lines), "first": lines[:3]}
    return out


def summary(args):
    results_dir, meta_path, work_dir = args
    with open(meta_path) as f:
        out = json.load(f)
    out["log_problems"] = log_problems(work_dir)
    out["scenarios"] = {}
    for path in sorted(glob.glob(os.path.join(results_dir, "*.json"))):
        with open(path) as f:
            out["scenarios"][os.path.basename(path)[:-5]] = json.load(f)
    s = out["scenarios"]
    # A drain against the reference client on the same Redis settings.
    for drain_name, ref_name in (("drain", "reference"), ("drain_noaof", "reference_noaof")):
        if drain_name in s and ref_name in s and s[ref_name].get("tasks_per_s"):
            s[drain_name]["of_reference"] = round(s[drain_name]["chunks_per_s"] / s[ref_name]["tasks_per_s"], 3)
    lines = ["%-36s %14s %12s  %s" % ("figure", "value", "target", "")]
    for scenario, key, label, target, kind in ROWS:
        if scenario not in s:
            continue
        v = s[scenario].get(key)
        mark = ""
        if target is not None and v is not None:
            met = v >= target if kind == "min" else v <= target
            mark = "met" if met else "NOT met"
        tgt = "-" if target is None else ((">= " if kind == "min" else "<= ") + fmt(target))
        lines.append("%-36s %14s %12s  %s" % (label, fmt(v), tgt, mark))
    for log, p in out["log_problems"].items():
        lines.append("log %s: %d error/warning lines, first: %s" % (log, p["count"], p["first"][0][:100]))
    sys.stderr.write("\n".join(lines) + "\n\n")
    print(json.dumps(out, indent=1, sort_keys=True))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "summary":
        summary(args)
        return
    result = {"drain": drain, "wrk": wrk, "annotate": annotate}[cmd](args)
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
