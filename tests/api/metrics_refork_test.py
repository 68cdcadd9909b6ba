"""/metrics across a worker re-fork (issue 6; runtime/scoreboard.h: a slot's
counters are never reset when its worker is re-forked). After a 200-chunk job a
worker that processed chunks is killed with SIGKILL; once the supervisor has
re-forked it, no counter and no histogram series went backwards, the chunk
counters still equal the chunks processed, and a further 50-chunk job adds
exactly 50 to each of them."""
import os
import signal

from shieldtest import Runtime, check, eq, finish, sample, wait_for

STEPS = {"extract": 0.0015, "embed": 0.0005}  # what steps_script.lua reports, in seconds

rt = Runtime(script=os.path.join(os.path.dirname(os.path.abspath(__file__)), "steps_script.lua"),
             pool={"size": 2, "concurrency": 16, "batch_size": 20})


def workers():
    return rt.detailed()[1]["worker_pool"]["workers"]


def outcomes(m):
    return dict((o, sample(m, "shield_chunks_total", outcome=o)) for o in ("ok", "retried", "dead", "skipped"))


def runs(m):
    """The runs counted by the chunk duration histogram (its _count and +Inf
    bucket) and by each step's _count (a histogram or a summary: both have one)."""
    chunk = "shield_chunk_duration_seconds"
    out = {"chunks _count": sample(m, chunk, chunk + "_count"),
           "chunks +Inf bucket": sample(m, chunk, chunk + "_bucket", le="+Inf")}
    for step in STEPS:
        out[step + " _count"] = sample(m, "shield_step_duration_seconds", "shield_step_duration_seconds_count",
                                       step=step)
    return out


def step_sum(m, step):
    return sample(m, "shield_step_duration_seconds", "shield_step_duration_seconds_sum", step=step)


def grew(old, new):
    return dict((k, None if new[k] is None or old[k] is None else new[k] - old[k]) for k in old)


def monotonic_series(m):
    """(sample name, labels) -> value of every counter sample and every histogram
    or summary _bucket, _sum and _count."""
    out = {}
    for family, samples in m.items():
        kind = m.types.get(family)
        for name, labels, value in samples:
            if kind == "counter" or (kind in ("histogram", "summary") and name.rsplit("_", 1)[-1] in
                                     ("bucket", "sum", "count")):
                out[(name, labels)] = value
    return out


def went_back(old, new):
    was, now = monotonic_series(old), monotonic_series(new)
    return ["%s%s: %r -> %r" % (k[0], k[1], v, now.get(k)) for k, v in sorted(was.items())
            if now.get(k) is None or now[k] < v]


def run_job(n, name):
    status, body, _ = rt.ingest(["%s %d" % (name, i) for i in range(n)])
    eq(status, 202, "the %d-chunk job is accepted" % n)
    final = rt.wait_job(body["job_id"])
    check(final and (final["status"], final["chunks_processed"]) == ("completed", n),
          "the %d-chunk job completes" % n, final)


def settled(n):
    """/metrics once its ok counter reached n (a worker may bump the scoreboard
    just after the job's status changed), or the last one read."""
    def read():
        m = rt.metrics()
        return m if outcomes(m)["ok"] >= n else None
    return wait_for(read, 10) or rt.metrics()


check(wait_for(lambda: all(w["pid"] > 0 and w["state"] in ("idle", "busy") for w in workers()), 20),
      "both workers run", workers())

# --- 200 chunks, then the metrics before the kill ------------------------------------
run_job(200, "first")
before = settled(200)
eq(outcomes(before), {"ok": 200, "retried": 0, "dead": 0, "skipped": 0},
   "before the kill: the chunk counters equal the 200 chunks processed")
eq(runs(before), dict((k, 200) for k in runs(before)), "before the kill: the chunk and step durations counted 200 runs")

# --- kill -9 the worker that did the most, wait for its re-fork ----------------------
victim = max(workers(), key=lambda w: w["tasks_done"])
check(victim["tasks_done"] > 0, "the worker to kill processed chunks (slot %d: %d)" % (victim["slot"],
                                                                                       victim["tasks_done"]))
os.kill(victim["pid"], signal.SIGKILL)


def reforked():
    w = [w for w in workers() if w["slot"] == victim["slot"]][0]
    return w if w["pid"] > 0 and w["pid"] != victim["pid"] and w["state"] in ("idle", "busy") else None


new = wait_for(reforked, 20)
check(new, "the supervisor re-forks the killed worker", workers())
eq(new and new["restarts"], victim["restarts"] + 1, "... and its slot counts one more restart")
after = rt.metrics()
eq(sample(after, "shield_worker_restarts_total"), sample(before, "shield_worker_restarts_total") + 1,
   "shield_worker_restarts_total went up by one")
regressions = went_back(before, after)
eq(regressions, [], "no counter or histogram series went backwards across the re-fork (%d compared)"
   % len(monotonic_series(before)))
eq(outcomes(after), outcomes(before), "the chunk counters still equal the 200 chunks processed")
eq(runs(after), runs(before), "the chunk and step durations still count 200 runs")

# --- 50 more chunks: every count grows by exactly 50 ----------------------------------
run_job(50, "second")
later = settled(250)
eq(went_back(after, later), [], "no series went backwards over the second job")
eq(outcomes(later), {"ok": 250, "retried": 0, "dead": 0, "skipped": 0},
   "the chunk counters grew by exactly the 50 chunks of the second job")
eq(grew(runs(after), runs(later)), dict((k, 50) for k in runs(after)),
   "the chunk and step duration counts grew by exactly 50")
for step, seconds in STEPS.items():
    added = (step_sum(later, step) or 0) - (step_sum(after, step) or 0)
    check(abs(added - 50 * seconds) < 1e-6, "the %s step's _sum grew by 50 x %g s" % (step, seconds), added)

eq(rt.stop(), 0, "the supervisor shuts down cleanly (exit 0)")
finish(rt)
