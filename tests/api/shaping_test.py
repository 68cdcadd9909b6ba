"""The script's event(kind, fields) hook (lua/shield/events.lua): every event a
Server-Sent Events subscriber receives -- job events appended by the atomic
Redis scripts, worker events, runtime events -- passes through it, while the
events stream keeps the default payloads; nil keeps the default, a raising hook
sends the default and logs once per kind; a reload swaps the hook."""
import json
import os
import shutil

from shieldtest import SSE, Runtime, check, eq, finish, redis, wait_for

here = os.path.dirname(os.path.abspath(__file__))
folder = os.path.join(os.environ["SHIELD_TEST_DIR"], "shaping")
os.makedirs(folder, exist_ok=True)
script = os.path.join(folder, "script.lua")
shutil.copy(os.path.join(here, "shaping_script.lua"), script)
rt = Runtime(script=script, pool={"size": 2, "concurrency": 4})
wait_for(lambda: "ready: all 2 workers" in open(rt.log).read(), 20)


def job_events(texts, until=("ingestion.completed", "ingestion.failed")):
    status, body, _ = rt.ingest(texts)
    eq(status, 202, "the job is accepted")
    sub = SSE(rt, "/events/stream?job_id=" + body["job_id"])
    events = sub.events_until(until)
    sub.close()
    return body["job_id"], [(k, json.loads(d)) for _, k, d in events]


def stream_payloads(job):
    """The data field of every entry of the events stream for job, by type."""
    out = {}
    raw = redis("XRANGE", "shield:events", "-", "+").split("\n")
    for i, line in enumerate(raw):
        if line == "job_id" and i + 3 < len(raw) and raw[i + 1] == job and raw[i + 2] == "data":
            kind = raw[i - 1]
            out.setdefault(kind, []).append(json.loads(raw[i + 3]))
    return out


# --- job events are shaped for subscribers; the stream keeps the defaults -------------
job, events = job_events(["Ada wrote notes.", "Babbage built engines."])
kinds = [k for k, _ in events]
check(kinds[0] == "ingestion.queued" and kinds[-1] == "ingestion.completed", "a whole job's events", kinds)
for kind, data in events:
    if kind == "ingestion.progress":
        check("pipeline" not in data and data.get("chunks_total") == 2,
              "progress: event() returned nil, the default payload is sent", data)
    else:
        check(data.get("pipeline") == "v1" and data.get("shaped_kind") == kind and data.get("job_id") == job,
              kind + ": shaped by event(), default fields kept", data)
completed = [d for k, d in events if k == "ingestion.completed"][0]
check(completed.get("chunks_processed") == 2, "the hook sees the default fields", completed)
stored = stream_payloads(job)
check(stored.get("ingestion.completed") and all("pipeline" not in d for v in stored.values() for d in v),
      "the events stream holds the default payloads", stored)

# --- worker and runtime events too ------------------------------------------------------
sub = SSE(rt, "/events/stream", last_event_id="0-0")
started = sub.events_until(("worker.started",))
sub.close()
data = json.loads(started[-1][2])
check(data.get("pipeline") == "v1" and "slot" in data, "worker.started is shaped", data)

# --- a hook that raises: the default payload, one warning per kind ----------------------
job, events = job_events(["die", "die", "fine"])
dead = [d for k, d in events if k == "chunk.dead"]
eq(len(dead), 2, "both dead chunks are announced")
check(all("pipeline" not in d and d.get("error") for d in dead), "chunk.dead: default payloads", dead)
log = open(rt.log).read()
eq(log.count("event() of the script failed for chunk.dead"), 1, "the failing hook is logged once")
check("no payload for dead chunks" in log, "with its error")
failed = [d for k, d in events if k == "ingestion.failed"]
check(failed and failed[0].get("pipeline") == "v1", "other kinds still shaped", failed)

# --- a reload swaps the hook ------------------------------------------------------------
with open(script) as f:
    src = f.read()
with open(script + ".tmp", "w") as f:
    f.write(src.replace('local TAG = "v1"', 'local TAG = "v2"'))
os.rename(script + ".tmp", script)
check(wait_for(lambda: "swapping workers" in open(rt.log).read(), 20), "the edit is reloaded")
job, events = job_events(["Lovelace again."])
check(all(d.get("pipeline") == "v2" for k, d in events if k != "ingestion.progress"),
      "events after the reload use the new hook", events)

finish(rt)
