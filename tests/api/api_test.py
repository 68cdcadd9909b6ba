"""The HTTP job API end to end (issue 5): the 202 pattern, job status until
completion and in PostgreSQL, redelivery counted once, a failing chunk, bad
input, idempotency, cancellation, Redis down, expiry with the PostgreSQL
fallback; the counts chunks report (issue 7) in all of them."""
import json
import os
import re
import shutil
import time

from shieldtest import Runtime, check, eq, finish, psql, redis, servers, wait_for

script_dir = os.path.join(os.environ["SHIELD_SOURCE_DIR"], "tests/stream")
rt = Runtime(script=os.path.join(script_dir, "counting.lua"), pool={"size": 2, "concurrency": 8},
             jobs={"status_ttl": 3, "max_chunks": 50, "max_chunk_bytes": 4096},
             http={"max_body_bytes": 65536, "header_timeout_ms": 1000, "auth_token": "s3cret-token"})
AUTH = {"Authorization": "Bearer s3cret-token"}


def req(method, path, body=None, headers=None):
    return rt.request(method, path, body, dict(AUTH, **(headers or {})))


def ingest(texts, metadata=None, headers=None):
    return rt.ingest(texts, metadata, dict(AUTH, **(headers or {})))


def wait_job(job_id, statuses=("completed", "failed", "cancelled")):
    def done():
        s, b, _ = req("GET", "/jobs/" + job_id)
        return b if s == 200 and b["status"] in statuses else None
    return wait_for(done, 60, 0.1)


# --- the seed's tests 1 and 2: two chunks, polled to completion -----------------
# counting.lua returns the counts of a chunk's metadata in its result.
status, body, headers = ingest(["Marie Curie worked in Paris.", "Pierre Curie taught at the Sorbonne."],
                               [{"counts": {"entities": 2, "relations": 1}}, {"counts": {"entities": 3}}])
eq(status, 202, "POST answers 202 Accepted")
job = body["job_id"]
eq(headers.get("location"), "/jobs/" + job, "Location points at the job")
eq((body["status"], body["chunks_total"]), ("queued", 2), "the answer says queued, 2 chunks")
eq(body["status_url"], "/jobs/" + job, "status_url")
eq(body["events_url"], "/events/stream?job_id=" + job, "events_url")
final = wait_job(job)
check(final is not None, "the job finished")
eq((final["status"], final["percent_complete"], final["chunks_processed"]), ("completed", 100, 2),
   "completed at 100 percent")
check(final["created_at"] <= final["started_at"] <= final["completed_at"], "times in order")
eq(final["counts"], {"entities": 5, "relations": 1}, "the chunks' counts add up in the job")
row = wait_for(lambda: psql("SELECT status, chunks_total, chunks_processed, counts FROM job_status WHERE id = '%s'"
                            % job) == 'completed|2|2|{"entities": 5, "relations": 1}', 10)
check(row, "the job_status row in PostgreSQL says the same, with the counts")

# --- delivered twice, counted once ------------------------------------------------
status, body, _ = ingest(["one", "two", "three"], [{"slow_ms": 400, "counts": {"vectors": 2}}] * 3)
dup = body["job_id"]
for i in range(3):  # the same chunks again while they run, as a redelivery brings them
    redis("XADD", "shield:ingestion_queue", "*", "job_id", dup, "chunk_id", "%s:%d" % (dup, i),
          "content", "again", "metadata", '{"slow_ms":400,"counts":{"vectors":2}}', "attempt", "1")
final = wait_job(dup)
check(wait_for(lambda: redis("HGET", "test:seen", dup + ":0") == "2", 20), "a chunk ran twice")
time.sleep(1)
s, b, _ = req("GET", "/jobs/" + dup)
eq((b["chunks_processed"], b["chunks_total"], b["status"], b["percent_complete"]), (3, 3, "completed", 100),
   "redelivered chunks are counted once")
eq(b["counts"], {"vectors": 6}, "... and so are their counts")

# --- one chunk that always fails --------------------------------------------------
status, body, _ = ingest(["fine", "broken", "fine too"], [{}, {"always_fail": True}, {}])
bad = body["job_id"]
final = wait_job(bad)
eq((final["status"], final["chunks_failed"], final["chunks_processed"]), ("failed", 1, 2),
   "a job with one dead chunk ends failed, the others processed")
check("refused chunk" in (final.get("error") or ""), "its error is kept", final.get("error"))
eq(final["counts"], {}, "no chunk reported counts: an empty object")

# --- bad counts: warned about and ignored, the chunk still succeeds ------------------
status, body, _ = ingest(["upper", "fraction", "fine"],
                         [{"counts": {"Entities": 1}}, {"counts": {"entities": 1.5}}, {"counts": {"entities": 4}}])
odd = body["job_id"]
final = wait_job(odd)
eq((final["status"], final["chunks_processed"], final["counts"]), ("completed", 3, {"entities": 4}),
   "bad counts never fail a chunk; only the good ones count")
for chunk, why in [(0, 'counts: bad name "Entities": 1 to 32 characters of a-z, 0-9 and _ expected'),
                   (1, "counts.entities: an integer from 0 to 1000000000 expected, got number 1.5")]:
    warning = "warn +worker.* chunk %s:%d of job %s: %s; its counts are ignored$" % (odd, chunk, odd, re.escape(why))
    check(wait_for(lambda: any(re.search(warning, l) for l in open(rt.log).read().splitlines()), 5),
          "a warning names what is wrong with chunk %d's counts" % chunk)

# --- idempotency ---------------------------------------------------------------------
s1, b1, _ = ingest(["same"], headers={"Idempotency-Key": "order-42"})
s2, b2, _ = ingest(["same"], headers={"Idempotency-Key": "order-42"})
eq((s1, s2, b1["job_id"]), (202, 202, b2["job_id"]), "a repeated Idempotency-Key returns the first job")
time.sleep(0.5)
eq(redis("HGET", "test:seen", b1["job_id"] + ":0"), "1", "... and enqueues nothing")
body = b'{"chunks":[{"text":"same"}]}'
out = rt.raw(b"POST /lightrag/ingest-async HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret-token\r\n"
             b"IDEMPOTENCY-KEY: order-42\r\nIdempotency-Key: order-43\r\nContent-Length: %d\r\n"
             b"Connection: close\r\n\r\n%s" % (len(body), body))
check(out.startswith(b"HTTP/1.1 202") and b1["job_id"].encode() in out,
      "a header's name in any case; of repeated ones the first counts", out)
s, b, _ = ingest(["same"], headers={"Idempotency-Key": "k" * 201})
eq((s, b["detail"]), (400, "Idempotency-Key: at most 200 characters"), "an Idempotency-Key too long: 400")

# --- bad input ------------------------------------------------------------------------
cases = [
    ("bad JSON", "POST", "/lightrag/ingest-async", b"{not json", 400),
    ("wrong types", "POST", "/lightrag/ingest-async", {"chunks": "text"}, 422),
    ("no chunks", "POST", "/lightrag/ingest-async", {"chunks": []}, 422),
    ("empty text", "POST", "/lightrag/ingest-async", {"chunks": [{"text": "ok"}, {"text": " "}]}, 422),
    ("too many chunks", "POST", "/lightrag/ingest-async", {"chunks": [{"text": "x"}] * 51}, 422),
    ("chunk too big", "POST", "/lightrag/ingest-async", {"chunks": [{"text": "x" * 5000}]}, 422),
    ("huge body", "POST", "/lightrag/ingest-async", b"x" * 70000, 413),
    ("unknown route", "GET", "/nope", None, 404),
    ("wrong method", "PUT", "/jobs/1", None, 405),
    ("not a job id", "GET", "/jobs/not-a-job", None, 400),
    ("unknown job", "GET", "/jobs/01234567-89ab-4def-8123-456789abcdef", None, 404),
    ("bad status filter", "GET", "/jobs?status=nope", None, 400),
    ("bad limit", "GET", "/jobs?limit=0", None, 400),
]
for name, method, path, body, want in cases:
    s, b, h = req(method, path, body)
    eq(s, want, "%s: %d" % (name, want))
    if s >= 400 and isinstance(b, dict):
        check(h.get("content-type") == "application/problem+json" and b.get("title") and b.get("status") == s,
              "%s: problem+json" % name, b)
s, b, _ = req("POST", "/lightrag/ingest-async", {"chunks": [{"text": "ok"}, {"text": ""}]})
eq(b["detail"], "chunks[1].text: must not be empty", "422 names the offending chunk index")
s, b, h = rt.request("POST", "/lightrag/ingest-async", {"chunks": [{"text": "x"}]},
                     {"Authorization": "Bearer wrong"})
eq(s, 401, "a bad token is refused")
eq(rt.request("GET", "/jobs")[0], 401, "a missing token is refused")
eq(rt.request("GET", "/health")[0], 200, "/health needs no token")

# raw sockets: slow headers, pipelining, a request split into single bytes
start = time.time()
out = rt.raw(b"GET /health HTTP/1.1\r\nHost: x\r\n", timeout=5)
check(b"HTTP/1.1" not in out or b" 408 " in out, "slow headers are not served")
check(time.time() - start < 3, "... and the connection is dropped at the header timeout")
pipelined = b"".join(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" for _ in range(3))
out = rt.raw(pipelined + b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
eq(out.count(b"HTTP/1.1 200"), 4, "pipelined requests are all answered")
import socket
s = socket.create_connection(("127.0.0.1", rt.port), timeout=5)
for byte in b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n":
    s.send(bytes([byte]))
out = b""
while True:
    d = s.recv(4096)
    if not d:
        break
    out += d
s.close()
check(out.startswith(b"HTTP/1.1 200"), "a request split into single bytes is answered")
out = rt.raw(b"GARBAGE\r\n\r\n")
check(out.startswith(b"HTTP/1.1 400"), "a malformed request gets 400", out[:40])
eq(rt.request("GET", "/health")[0], 200, "the server still answers after bad input")

# --- listing and cancelling -------------------------------------------------------------
s, b, _ = req("GET", "/jobs?status=completed&limit=5")
check(s == 200 and 1 <= b["count"] <= 5 and all(j["status"] == "completed" for j in b["jobs"]),
      "GET /jobs filters by status and limit")
s, b, _ = req("GET", "/jobs?limit=1000")
eq([j["counts"] for j in b["jobs"] if j["job_id"] == job], [{"entities": 5, "relations": 1}],
   "GET /jobs lists the counts from PostgreSQL")
s, b, _ = ingest(["slow"] * 20, [{"slow_ms": 300}] * 20)
slow = b["job_id"]
s, b, _ = req("DELETE", "/jobs/" + slow)
eq((s, b["status"]), (200, "cancelled"), "DELETE cancels a running job")
final = wait_job(slow, ("cancelled",))
time.sleep(3)
s, b, _ = req("GET", "/jobs/" + slow)
eq(b["status"], "cancelled", "the job stays cancelled")
check(b["chunks_skipped"] > 0, "chunks not started are skipped (%s)" % b["chunks_skipped"])
eq(b["chunks_processed"] + b["chunks_failed"] + b["chunks_skipped"], 20, "... and counted")
eq(req("DELETE", "/jobs/" + slow)[0], 409, "cancelling twice: 409")

# --- expiry: the hash goes, PostgreSQL answers ------------------------------------------
live = req("GET", "/jobs/" + job)[1]
check(wait_for(lambda: redis("EXISTS", "job:" + job) == "0", 15), "the job hash expires after status_ttl")
s, b, _ = req("GET", "/jobs/" + job)
eq(b, live, "PostgreSQL's view of the job is the one Redis gave (every field)")
eq((s, b["status"], b["chunks_processed"], b["percent_complete"]), (200, "completed", 2, 100),
   "GET /jobs/<id> answers from PostgreSQL after expiry")
eq(b["counts"], {"entities": 5, "relations": 1}, "... with the counts")

# --- the access log: one line per request, with its X-Request-Id ------------------------------
s, b, h = req("GET", "/health", headers={"X-Request-Id": "audit-42"})
eq((s, h.get("x-request-id")), (200, "audit-42"), "X-Request-Id taken from the request")
line = r"info +supervisor\[\d+\] http GET /health 200 [1-9]\d* bytes \d+\.\d ms id=audit-42$"


def logged():
    return [l for l in open(rt.log).read().splitlines() if re.search(line, l)]


check(wait_for(lambda: len(logged()) == 1, 5), "one access-log line: method, path, status, bytes, duration, id",
      [l for l in open(rt.log).read().splitlines() if "audit-42" in l])

# --- Redis down: 503 and nothing enqueued --------------------------------------------------
def queued_events():
    return redis("XRANGE", "shield:events", "-", "+").split("\n").count("ingestion.queued")


queued = queued_events()
servers("redis-stop")
s, b, h = ingest(["while redis is down"])
eq(s, 503, "Redis down: 503")
check("retry-after" in h, "... with Retry-After")
check(re.match(r"redis: (?!redis:)\S", b.get("detail", "")), "... naming Redis once (%r)" % b.get("detail"))
servers("redis-start")
check(wait_for(lambda: redis("PING") == "PONG", 20), "Redis back")
eq(queued_events(), queued, "... and the refused request enqueued nothing")
check(wait_for(lambda: ingest(["after"])[0] == 202, 20), "accepting again once Redis is back")

finish(rt)
