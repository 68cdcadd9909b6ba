"""The LightRAG scripts end to end against the local stand-ins of the AI
services (tests/fakes/fake_ai.py, their real HTTP formats), through the pool
and the HTTP API:
- Ollama chat and embeddings with Qdrant: a 20-chunk job fills the entity and
  relation tables and the Qdrant collection with the expected rows and points;
  the same job again leaves them as they were; the LLM cap held in Redis is
  never exceeded; a 429 storm ends in success through retries.
- OpenAI-compatible chat and embeddings (API key from the environment) with
  PostgreSQL vectors; garbage and 401 answers fail chunks for good, with the
  error text kept.
- scripts/lightrag_server.lua: chunks go to the LightRAG server's insert API and
  follow its track; a failed document fails the chunk; a retried chunk resumes
  its track instead of inserting again."""
import http.client
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.environ["SHIELD_SOURCE_DIR"], "tests", "api"))
sys.path.insert(0, os.path.join(os.environ["SHIELD_SOURCE_DIR"], "tests", "fakes"))
from shieldtest import SRC, Runtime, check, eq, finish, psql, redis  # noqa: E402
import fake_ai  # noqa: E402

DIM = 16
TYPES = {"person": "Person", "organization": "Organization", "location": "Location", "event": "Event",
         "concept": "Concept"}


class Fake:
    """fake_ai.py on a free port."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([sys.executable, os.path.join(SRC, "tests/fakes/fake_ai.py"), "--dim", str(DIM)]
                                     + list(args), stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline())
        self.url = "http://127.0.0.1:%d" % self.port

    def call(self, method, path, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request(method, path, body=None if body is None else json.dumps(body))
        r = conn.getresponse()
        data = json.loads(r.read() or b"null")
        conn.close()
        return data

    def control(self, **mode):
        return self.call("POST", "/_control", mode)

    def count(self, key):
        return self.call("GET", "/_stats")["requests"].get(key, 0)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def run_job(rt, texts, what, status="completed"):
    code, body, _ = rt.ingest(texts)
    eq(code, 202, what + ": accepted")
    job = rt.wait_job(body["job_id"], timeout=120) or {}
    eq(job.get("status"), status, what + ": " + status)
    return job


def expected_graph(texts):
    """Entities {name: (type, chunks)} and relations {(lo, hi): weight} the
    fake's answers lead to, by the merge rules."""
    entities, relations = {}, {}
    for text in texts:
        names = fake_ai.entities_of(text)
        for n in names:
            kind = fake_ai.ENTITY_TYPES[int(fake_ai.hashlib.md5(n.encode()).hexdigest(), 16) % 5]
            entities.setdefault(n, [TYPES[kind], 0])[1] += 1
        for a, b in zip(names, names[1:]):
            key = tuple(sorted((a.encode(), b.encode())))
            relations[key] = relations.get(key, 0) + 1
    return entities, {(a.decode(), b.decode()): w for (a, b), w in relations.items()}


def graph_rows():
    ents = {}
    for line in psql("SELECT name || '|' || entity_type || '|' || cardinality(source_ids) "
                     "FROM lightrag_entities").splitlines():
        n, t, c = line.split("|")
        ents[n] = [t, int(c)]
    rels = {}
    for line in psql("SELECT source || '|' || target || '|' || weight FROM lightrag_relations").splitlines():
        a, b, w = line.split("|")
        rels[(a, b)] = float(w)
    return ents, rels


def digest():
    return psql("""SELECT concat_ws(' ',
      (SELECT md5(string_agg(name || '|' || entity_type || '|' || description || '|' || source_ids::text,
         E'\\n' ORDER BY name)) FROM lightrag_entities),
      (SELECT md5(string_agg(source || '|' || target || '|' || keywords || '|' || description || '|'
         || weight::text || '|' || source_ids::text, E'\\n' ORDER BY source, target)) FROM lightrag_relations))""")


def reset_tables():
    psql("TRUNCATE lightrag_entities, lightrag_relations, lightrag_vectors, lightrag_chunks")


PEOPLE = ["Ada Lovelace", "Alan Turing", "Grace Hopper", "John Backus", "Claude Shannon",
          "Barbara Liskov", "Edsger Dijkstra", "Donald Knuth", "Frances Allen", "Tony Hoare",
          "Niklaus Wirth", "Margaret Hamilton", "Ken Thompson", "Dennis Ritchie", "Leslie Lamport",
          "Radia Perlman", "Vint Cerf", "Bob Kahn", "Hedy Lamarr", "Katherine Johnson"]
CITIES = ["London", "Manchester", "Philadelphia", "Princeton", "Boston"]
TWENTY = ["%s travelled to %s by train. The talk of %s at Bletchley Park was long." % (p, CITIES[i % 5], p)
          for i, p in enumerate(PEOPLE)]

fake = Fake()
key = "shield:lightrag:llm_leases"
try:
    # ---- Ollama + Qdrant ----
    lightrag = {
        "llm": {"provider": "ollama", "url": fake.url, "model": "qwen", "max_concurrency": 2},
        "embedding": {"provider": "ollama", "url": fake.url, "model": "embed", "dim": DIM},
        "vectors": {"store": "qdrant", "url": fake.url, "collection": "kg"},
    }
    rt = Runtime(script="scripts/lightrag.lua", pool={"size": 2, "concurrency": 8, "retry_attempts": 5},
                 lightrag=lightrag)
    leases, sampling = [], [True]

    def sample():
        while sampling[0]:
            n = redis("ZCARD", key)
            leases.append(int(n) if n.isdigit() else -1)
            time.sleep(0.005)
    fake.control(mode="slow", delay_ms=50, route="/api/chat")
    sampler = threading.Thread(target=sample)
    sampler.start()
    run_job(rt, TWENTY, "ollama 20 chunks")
    sampling[0] = False
    sampler.join()
    fake.control(mode="ok")
    eq(max(leases), 2, "cap: at most 2 LLM calls in flight across both workers (max_concurrency)")
    eq(redis("ZCARD", key), "0", "cap: every lease given back")

    want_e, want_r = expected_graph(TWENTY)
    got_e, got_r = graph_rows()
    eq(sorted(got_e), sorted(want_e), "ollama: the expected entities")
    eq(got_e, want_e, "ollama: their types and source chunk counts")
    eq(got_r, {k: float(v) for k, v in want_r.items()}, "ollama: the expected relations and weights")
    eq(fake.count("POST /api/chat"), 40, "ollama: an extraction and a gleaning pass per chunk")
    eq(fake.count("POST /api/embed"), 20, "ollama: one batched embedding request per chunk")
    info = fake.call("GET", "/collections/kg")["result"]
    points = len(want_e) + len(want_r) + 20
    eq(info["points_count"], points, "qdrant: a point per chunk, entity and relation")
    eq(info["config"]["params"]["vectors"], {"size": DIM, "distance": "Cosine"}, "qdrant: created with size and cosine")
    eq(fake.count("PUT /collections/kg"), 1, "qdrant: the collection created once")
    eq(psql("SELECT count(*) FROM lightrag_vectors"), "0", "qdrant: nothing in the PostgreSQL vector table")
    page = fake.call("POST", "/collections/kg/points/scroll",
                     {"filter": {"must": [{"key": "ref", "match": {"value": "Ada Lovelace"}}]}, "limit": 5})
    eq([p["payload"]["kind"] for p in page["result"]["points"]], ["entity"], "qdrant: the entity's point and payload")

    once = digest()
    run_job(rt, TWENTY, "the same job again")
    eq(digest(), once, "again: the graph as after once")
    eq(fake.call("GET", "/collections/kg")["result"]["points_count"], points, "again: no new Qdrant point")

    # A 429 storm on the LLM: 25 refusals with Retry-After: 1
    storm = ["Sofia Kovalevskaya met Emmy Noether in Berlin. Part %d." % i for i in range(10)]
    before = fake.count("POST /api/chat")
    fake.control(mode="429", count=25, retry_after="1", route="/api/chat")
    job = run_job(rt, storm, "429 storm")
    eq(job.get("chunks_processed"), 10, "429 storm: every chunk processed")
    eq(job.get("chunks_failed"), 0, "429 storm: none failed")
    check(fake.count("POST /api/chat") - before >= 45, "429 storm: all 25 refusals served, then 2 calls per chunk")
    retries = redis("XRANGE", "shield:events", "-", "+").splitlines().count("chunk.retry")
    check(retries >= 1, "429 storm: chunks went through the retry schedule (%d chunk.retry events)" % retries)
    rt.stop()

    # ---- OpenAI-compatible + PostgreSQL vectors, with an API key ----
    fake.stop()
    fake = Fake("--api-key", "sk-fake")
    os.environ["SHIELD_TEST_OPENAI_KEY"] = "sk-fake"
    os.environ["SHIELD_TEST_BAD_KEY"] = "sk-wrong"
    reset_tables()
    lightrag = {
        "llm": {"provider": "openai", "url": fake.url + "/v1", "model": "gpt", "api_key_env": "SHIELD_TEST_OPENAI_KEY"},
        "embedding": {"provider": "openai", "url": fake.url, "model": "text-embed",
                      "api_key_env": "SHIELD_TEST_OPENAI_KEY"},
    }
    rt = Runtime(script="scripts/lightrag.lua", pool={"size": 1, "concurrency": 4}, lightrag=lightrag)
    five = TWENTY[:5]
    run_job(rt, five, "openai 5 chunks")
    want_e, want_r = expected_graph(five)
    got_e, got_r = graph_rows()
    eq(got_e, want_e, "openai: the expected entities")
    eq(psql("SELECT count(*) FROM lightrag_vectors WHERE model = 'text-embed' AND dim = %d" % DIM),
       str(len(want_e) + len(want_r) + 5), "openai: PostgreSQL vectors per chunk, entity and relation")
    eq(fake.count("POST /v1/chat/completions"), 10, "openai: two chat calls per chunk")

    fake.control(mode="garbage", count=1, route="/v1/chat")
    job = run_job(rt, ["Rosalind Franklin worked in London."], "garbage answer", status="failed")
    eq(job.get("chunks_failed"), 1, "garbage answer: the chunk failed")
    err = job.get("error") or ""
    check(err.startswith("step extract: llm: POST %s/v1/chat/completions: bad answer" % fake.url),
          "garbage answer: the error text kept: " + err)
    eq(fake.count("POST /v1/chat/completions"), 11, "garbage answer: not retried")
    rt.stop()

    lightrag["llm"]["api_key_env"] = "SHIELD_TEST_BAD_KEY"
    rt = Runtime(script="scripts/lightrag.lua", pool={"size": 1, "concurrency": 4}, lightrag=lightrag)
    job = run_job(rt, ["Lise Meitner lived in Stockholm."], "bad API key", status="failed")
    check((job.get("error") or "").startswith(
        "step extract: llm: POST %s/v1/chat/completions: http 401: " % fake.url),
        "bad API key: a final 401 with its text: " + str(job.get("error")))
    rt.stop()

    # ---- LightRAG server ----
    fake.stop()
    fake = Fake()
    rt = Runtime(script="scripts/lightrag_server.lua", pool={"size": 1, "concurrency": 4},
                 lightrag={"server": {"url": fake.url, "poll_ms": 20}})
    run_job(rt, TWENTY[:5], "server: 5 chunks")
    eq(fake.count("POST /documents/text"), 5, "server: a document insert per chunk")
    tracks = sum(n for k, n in fake.call("GET", "/_stats")["requests"].items()
                 if k.startswith("GET /documents/track_status/"))
    eq(tracks, 10, "server: each track polled until processed")
    eq(redis("KEYS", "shield:lightrag_server:track:*"), "", "server: no track left behind")

    fake.control(mode="500", count=3, route="/documents/track_status")
    run_job(rt, ["Chien-Shiung Wu worked at Columbia University."], "server: a retried chunk")
    eq(fake.count("POST /documents/text"), 6, "server: the retry resumed its track, no second insert")

    fake.control(mode="failed", count=1, route="/documents/text")
    job = run_job(rt, ["Dorothy Hodgkin worked in Oxford."], "server: a failed document", status="failed")
    check((job.get("error") or "").startswith("lightrag server: document doc-")
          and job["error"].endswith("failed: extraction failed (fake)"),
          "server: the document's error kept: " + str(job.get("error")))
finally:
    fake.stop()
finish(rt)
