"""Events, health and metrics end to end (issue 6): the event order of a job over
Server-Sent Events, replay with Last-Event-ID, 200 subscribers, /health/detailed
with Redis stopped, /metrics checked by a strict exposition-format parser."""
import re
import socket
import threading
import time

from shieldtest import SSE, Runtime, check, eq, finish, parse_metrics, redis, servers, wait_for

import os
rt = Runtime(script=os.path.join(os.path.dirname(os.path.abspath(__file__)), "steps_script.lua"),
             pool={"size": 2, "concurrency": 16, "batch_size": 20})


def id_key(i):
    ms, seq = i.split("-")
    return int(ms), int(seq)


# --- the seed's test 4: queued, started, progress..., completed ----------------------
status, body, _ = rt.ingest(["Ada Lovelace wrote notes.", "Charles Babbage built engines.", "London, 1843."])
job = body["job_id"]
sub = SSE(rt, "/events/stream?job_id=" + job)
eq(sub.status, 200, "the events stream answers 200")
check("content-type: text/event-stream" in sub.headers, "as text/event-stream")
events = sub.events_until(("ingestion.completed", "ingestion.failed"))
sub.close()
kinds = [e[1] for e in events]
check(kinds[0] == "ingestion.queued" and kinds[1] == "ingestion.started", "queued, then started", kinds)
check(set(kinds[2:-1]) == {"ingestion.progress"} and len(kinds) >= 4, "then progress", kinds)
eq(kinds[-1], "ingestion.completed", "then completed")
check(all(job in e[2] for e in events), "every event is the job's")
check('"percent_complete":100' in events[-2][2], "the last progress reports 100 percent", events[-2][2])
check('"duration_ms"' in events[-1][2], "completed carries the duration")
eq(getattr(sub, "retry", None), "2000", "retry: sent once")

# --- replay after a disconnect: nothing missed, nothing repeated -----------------------
status, body, _ = rt.ingest(["chunk %d" % i for i in range(300)])
job = body["job_id"]
sub = SSE(rt, "/events/stream?job_id=" + job)
first = [sub.event() for _ in range(3)]
sub.close()
sub = SSE(rt, "/events/stream?job_id=" + job, last_event_id=first[-1][0])
rest = sub.events_until(("ingestion.completed",))
sub.close()
seen = [e[0] for e in first + rest]
stream = redis("XRANGE", "shield:events", "-", "+").split("\n")
expected = [stream[i - 0] for i in range(len(stream)) if i + 4 < len(stream) and stream[i + 4] == job
            and re.match(r"^\d+-\d+$", stream[i])]
eq(seen, expected, "Last-Event-ID replays what was missed, nothing twice (%d events)" % len(seen))
check(seen == sorted(seen, key=id_key), "in stream order")

# --- 200 subscribers of a 1,000-chunk job ------------------------------------------------
subs = [SSE(rt, "/events/stream") for _ in range(200)]
got = [None] * len(subs)
status, body, _ = rt.ingest(["piece %d" % i for i in range(1000)])
job = body["job_id"]


def follow(i):
    try:
        evs = subs[i].events_until(("ingestion.completed",))
        got[i] = [e[0] for e in evs if job in (e[2] or "")]
    except (EOFError, OSError) as e:
        got[i] = "error: %s" % e


threads = [threading.Thread(target=follow, args=(i,)) for i in range(len(subs))]
for t in threads:
    t.start()
for t in threads:
    t.join(120)
for s in subs:
    s.close()
stream = redis("XRANGE", "shield:events", "-", "+").split("\n")
expected = [stream[i] for i in range(len(stream)) if i + 4 < len(stream) and stream[i + 4] == job
            and re.match(r"^\d+-\d+$", stream[i])]
complete = sum(1 for g in got if g == expected)
eq(complete, 200, "200 subscribers each received all %d events of the job" % len(expected))

# --- a client too slow for its catch-up is dropped mid-batch, the server unharmed -------------
redis("EVAL", "for i = 1, 300 do redis.call('XADD', KEYS[1], '*', 'type', 'test.big', 'job_id', 'big', "
      "'data', string.rep('x', 20000)) end", "1", "shield:events")
slow = socket.socket()
slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
slow.connect(("127.0.0.1", rt.port))
slow.sendall(b"GET /events/stream HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 0-1\r\n\r\n")
check(wait_for(lambda: "client too slow" in open(rt.log).read(), 20), "the slow client is dropped", rt.log_tail())
eq(rt.request("GET", "/health")[0], 200, "... and the server still answers")
fresh = SSE(rt, "/events/stream", last_event_id="0-1")
eq(fresh.event()[0], redis("XRANGE", "shield:events", "-", "+", "COUNT", "1").split("\n")[0],
   "... and a reading client replays from the start")
fresh.close()
slow.close()

# --- /health/detailed tells the truth, Redis up and down ------------------------------------
s, h, _ = rt.request("GET", "/health/detailed")
eq(s, 200, "/health/detailed answers")
pool = h["worker_pool"]
eq((h["redis"]["status"], h["postgres"]["status"]), ("up", "up"), "Redis and PostgreSQL up")
eq((pool["status"], pool["active_workers"], pool["queue_depth"]), ("running", 2, 0), "2 active workers, queue empty")
check(all(w["pid"] > 0 and w["state"] in ("idle", "busy") for w in pool["workers"]), "each worker with pid and state")
def all_idle():
    workers = rt.request("GET", "/health/detailed")[1]["worker_pool"]["workers"]
    return all(w["state"] == "idle" and w["in_flight"] == 0 for w in workers)


check(wait_for(all_idle, 10), "workers waiting on an empty stream show idle with 0 in flight")
check(pool["processing_rate"] >= 0 and "script" in h and h["script"]["version"], "rate and script version")
servers("redis-stop")
s, h, _ = rt.request("GET", "/health/detailed")
eq(s, 200, "/health/detailed answers with Redis stopped")
eq(h["redis"]["status"], "down", "... and says Redis is down")
check(h["redis"].get("error"), "... with the error", h["redis"])
eq(h["status"], "degraded", "... overall degraded")
eq(rt.request("GET", "/health")[0], 200, "/health still answers")
servers("redis-start")
check(wait_for(lambda: rt.request("GET", "/health/detailed")[1]["redis"]["status"] == "up", 20),
      "Redis reported up again once back")

# --- /metrics: strict exposition format, counters match --------------------------------------
s, text, h = rt.request("GET", "/metrics")
eq(s, 200, "/metrics answers")
check(h.get("content-type", "").startswith("text/plain; version=0.0.4"), "Prometheus content type")
try:
    fam = parse_metrics(text)
    check(True, "the exposition parses strictly")
except AssertionError as e:
    fam = {}
    check(False, "the exposition parses strictly", str(e))
ok_chunks = sum(v for s, l, v in fam.get("shield_chunks_total", []) if 'outcome="ok"' in l)
total = 3 + 300 + 1000
eq(int(ok_chunks), total, "shield_chunks_total{outcome=ok} matches the chunks processed")
count = [v for s, l, v in fam.get("shield_chunk_duration_seconds", []) if s.endswith("_count")]
eq([int(c) for c in count], [total], "the duration histogram counted every chunk")
steps = dict((l, v) for s, l, v in fam.get("shield_step_duration_seconds", []) if s.endswith("_count"))
eq(int(steps.get('{step="extract"}', -1)), total, "per-step durations: every chunk's extract step counted")
check(any('route="/lightrag/ingest-async"' in l and 'status="202"' in l for s, l, v in
          fam.get("shield_http_requests_total", [])), "HTTP requests by route and status")


# --- reconnect counters: Redis was restarted above; now PostgreSQL ---------------------------
def reconnects(server):
    fam = parse_metrics(rt.request("GET", "/metrics")[1])
    return sum(v for s, l, v in fam.get("shield_reconnects_total", []) if 'server="%s"' % server in l)


check(wait_for(lambda: reconnects("redis") >= 1, 10),
      "shield_reconnects_total counts the workers' Redis reconnects (heartbeat: every second)")
eq(reconnects("postgres"), 0, "... and no PostgreSQL reconnect yet")
servers("pg-stop")
servers("pg-start")
status, body, _ = rt.ingest(["after the restart %d" % i for i in range(20)])
eq(rt.wait_job(body["job_id"])["status"], "completed", "chunks after a PostgreSQL restart complete")
check(wait_for(lambda: reconnects("postgres") >= 1, 10), "... and the PostgreSQL reconnects are counted")

finish(rt)
