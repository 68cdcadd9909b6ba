"""The default LightRAG script end to end on its offline stand-ins, through the
pool and the HTTP API: a job of prose paragraphs yields entities, relations and
vectors; a 20-chunk job fills the tables; the same job submitted again leaves
them as they were; the job's counts are the sums of its chunks' reports, in
GET /jobs/<id> and in job_status; /metrics has a duration histogram per step;
editing the step order in the script file while the pool runs takes effect
without a restart."""
import os
import re
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.join(os.environ["SHIELD_SOURCE_DIR"], "tests", "api"))
from shieldtest import SRC, Runtime, check, eq, finish, psql, wait_for  # noqa: E402

PROSE = [
    "Marie Curie and Pierre Curie worked together at the University of Paris. "
    "In 1903 the Royal Swedish Academy of Sciences gave them the Nobel Prize in Physics.",
    "After the war Lise Meitner moved from Berlin to Stockholm, where she joined the Manne Siegbahn Institute. "
    "Otto Hahn stayed in Germany.",
    "Niels Bohr founded the Institute of Theoretical Physics in Copenhagen. "
    "Werner Heisenberg worked there with Niels Bohr in 1926.",
]

# Twenty chunks: each names a scientist, a city and an organization.
PEOPLE = ["Ada Lovelace", "Alan Turing", "Grace Hopper", "John von Neumann", "Claude Shannon",
          "Barbara Liskov", "Edsger Dijkstra", "Donald Knuth", "Frances Allen", "Tony Hoare",
          "Niklaus Wirth", "Margaret Hamilton", "Ken Thompson", "Dennis Ritchie", "Leslie Lamport",
          "Radia Perlman", "Vint Cerf", "Bob Kahn", "Hedy Lamarr", "Katherine Johnson"]
CITIES = ["London", "Manchester", "Philadelphia", "Princeton", "Boston"]
ORGS = ["University of Cambridge", "Bank of England", "Museum of Science", "Academy of Arts", "Institute of Physics"]
TWENTY = ["%s visited %s in spring. There %s gave a lecture at the %s." % (p, CITIES[i % 5], p, ORGS[i % 5])
          for i, p in enumerate(PEOPLE)]


def fnv1a64(data):
    """The script version the runtime reports (runtime/script.c)."""
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def digest():
    return psql("""SELECT concat_ws(' ',
      (SELECT md5(string_agg(name || '|' || entity_type || '|' || description || '|' || source_ids::text
         || '|' || type_counts::text, E'\\n' ORDER BY name)) FROM lightrag_entities),
      (SELECT md5(string_agg(source || '|' || target || '|' || keywords || '|' || description || '|'
         || weight::text || '|' || source_ids::text, E'\\n' ORDER BY source, target)) FROM lightrag_relations),
      (SELECT md5(string_agg(id || '|' || model || '|' || embedding::text, E'\\n' ORDER BY id)) FROM lightrag_vectors),
      (SELECT count(*) FROM lightrag_entities), (SELECT count(*) FROM lightrag_relations),
      (SELECT count(*) FROM lightrag_vectors))""")


COUNT_NAMES = ("entities", "relations", "vectors")


def report_sums():
    """The counts of the chunks' reports in lightrag_chunks, summed."""
    return psql("SELECT concat_ws(' ', %s) FROM lightrag_chunks"
                % ", ".join("sum((report->'counts'->>'%s')::int)" % n for n in COUNT_NAMES))


def job_counts(rt, job_id):
    """The job's counts in GET /jobs/<id>, in the order of COUNT_NAMES."""
    counts = rt.request("GET", "/jobs/" + job_id)[1]["counts"]
    return " ".join(str(counts.get(n)) for n in COUNT_NAMES) if sorted(counts) == list(COUNT_NAMES) else counts


def metric_samples(text, family):
    """{labels: value} of a family's samples, labels as written."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(%s\w*)(\{[^}]*\})? (\S+)$" % family, line)
        if m:
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def run_job(rt, texts, what):
    status, body, _ = rt.ingest(texts)
    eq(status, 202, what + ": accepted")
    job = rt.wait_job(body["job_id"], timeout=90)
    eq(job and job["status"], "completed", what + ": completed")
    eq(job and job["chunks_processed"], len(texts), what + ": every chunk processed")
    return body["job_id"]


folder = tempfile.mkdtemp()
script = os.path.join(folder, "lightrag.lua")
shutil.copy(os.path.join(SRC, "scripts", "lightrag.lua"), script)
rt = Runtime(script=script, pool={"size": 2, "concurrency": 4}, lightrag={})
try:
    # Prose: people, places and organizations
    run_job(rt, PROSE, "prose")
    types = dict(line.split("|") for line in psql(
        "SELECT name || '|' || entity_type FROM lightrag_entities").splitlines())
    for name, kind in [("Marie Curie", "Person"), ("Pierre Curie", "Person"), ("University of Paris", "Organization"),
                       ("Lise Meitner", "Person"), ("Berlin", "Location"), ("Stockholm", "Location"),
                       ("Niels Bohr", "Person"), ("Copenhagen", "Location"),
                       ("Institute of Theoretical Physics", "Organization")]:
        eq(types.get(name), kind, "prose: %s is a %s" % (name, kind))
    eq(psql("SELECT weight FROM lightrag_relations WHERE source = 'Marie Curie' AND target = 'Pierre Curie'"), "1",
       "prose: Marie Curie and Pierre Curie are related")
    eq(psql("SELECT count(*) FROM lightrag_relations WHERE source = 'Copenhagen' AND target = 'Niels Bohr'"), "1",
       "prose: Niels Bohr and Copenhagen are related")
    eq(psql("SELECT count(*) FROM lightrag_vectors WHERE kind = 'chunk'"), "3", "prose: a vector per chunk")
    eq(psql("SELECT count(*) FROM lightrag_vectors WHERE kind = 'entity'"),
       psql("SELECT count(*) FROM lightrag_entities"), "prose: a vector per entity")
    eq(psql("SELECT count(*) FROM lightrag_vectors WHERE kind = 'relation'"),
       psql("SELECT count(*) FROM lightrag_relations"), "prose: a vector per relation")

    # Twenty chunks
    psql("TRUNCATE lightrag_entities, lightrag_relations, lightrag_vectors, lightrag_chunks")
    twenty = run_job(rt, TWENTY, "20 chunks")
    eq(psql("SELECT count(*) FROM lightrag_chunks"), "20", "20 chunks: a row per chunk")
    sums = report_sums()
    check(sums.split()[0] != "0", "20 chunks: the reports count entities", sums)
    eq(job_counts(rt, twenty), sums, "20 chunks: the job's counts are the sums of its chunks' reports")
    check(wait_for(lambda: psql("SELECT concat_ws(' ', %s) FROM job_status WHERE id = '%s'"
                                % (", ".join("counts->>'%s'" % n for n in COUNT_NAMES), twenty)) == sums, 10),
          "20 chunks: job_status has the same counts")
    people = psql("SELECT count(*) FROM lightrag_entities WHERE entity_type = 'Person' AND name IN (%s)"
                  % ", ".join("'%s'" % p for p in PEOPLE))
    eq(people, "20", "20 chunks: every person, typed Person")
    eq(psql("SELECT string_agg(name, ',' ORDER BY name) FROM lightrag_entities WHERE entity_type = 'Organization'"),
       ",".join(sorted(ORGS)), "20 chunks: the organizations")
    eq(psql("SELECT cardinality(source_ids) FROM lightrag_entities WHERE name = 'London'"), "4",
       "20 chunks: London comes from its 4 chunks")
    eq(psql("SELECT count(*) FROM lightrag_relations WHERE source = 'Alan Turing' AND target = 'Manchester'"), "1",
       "20 chunks: Alan Turing and Manchester")
    eq(psql("SELECT (SELECT count(*) FROM lightrag_vectors) = (SELECT count(*) FROM lightrag_entities)"
            " + (SELECT count(*) FROM lightrag_relations) + 20"), "t",
       "20 chunks: a vector per chunk, entity and relation")
    eq(psql("SELECT count(*) FROM lightrag_vectors WHERE dim <> 256 OR model <> 'hash-256'"), "0",
       "20 chunks: hash vectors of 256 dimensions")
    once = digest()
    check(once.split()[-1] != "0", "20 chunks: vectors stored")

    # The same job again
    again = run_job(rt, TWENTY, "the same job again")
    eq(digest(), once, "the same job again: entities, relations and vectors as after once")
    eq(job_counts(rt, again), sums, "the same job again: the same counts, in a job of its own")

    # Per-step durations: a histogram series per step, every ok chunk in each
    text = rt.request("GET", "/metrics")[1]
    check("# TYPE shield_step_duration_seconds histogram" in text, "metrics: the step durations are a histogram")
    ok = metric_samples(text, "shield_chunks_total")['shield_chunks_total{outcome="ok"}']
    steps = metric_samples(text, "shield_step_duration_seconds")
    for step in ("extract", "graph", "embed", "vectors"):
        buckets = [(k, v) for k, v in steps.items() if k.startswith("shield_step_duration_seconds_bucket{")
                   and k.endswith(',step="%s"}' % step)]
        counts = [v for k, v in buckets]
        eq((len(buckets), buckets[-1][0] if buckets else None, counts == sorted(counts)),
           (13, 'shield_step_duration_seconds_bucket{le="+Inf",step="%s"}' % step, True),
           "metrics: %s has 12 cumulative buckets and +Inf" % step)
        eq((counts[-1] if counts else None, steps.get('shield_step_duration_seconds_count{step="%s"}' % step)),
           (ok, ok), "metrics: %s counted every ok chunk (%d)" % (step, ok))
        check(steps.get('shield_step_duration_seconds_sum{step="%s"}' % step, 0) > 0, "metrics: time spent in %s" % step)

    # Reorder the step list while the pool runs
    with open(script) as f:
        source = f.read()
    old = 'local ORDER = { "extract", "graph", "embed", "vectors" }'
    check(old in source, "reorder: the script declares its order in one list")
    source = source.replace(old, 'local ORDER = { "extract", "embed", "vectors", "graph" }')
    with open(script, "w") as f:
        f.write(source)
    version = fnv1a64(source.encode())

    def swapped():
        status, body, _ = rt.request("GET", "/health/detailed")
        ws = body["worker_pool"]["workers"] if status == 200 else []
        return ws and all(w["script_version"] == version for w in ws)
    check(wait_for(swapped, 30), "reorder: every worker reloaded the script without a restart")
    run_job(rt, ["Emmy Noether taught at the University of Göttingen.",
                 "Sofia Kovalevskaya lectured in Stockholm."], "reorder")
    eq(psql("SELECT string_agg(DISTINCT (SELECT string_agg(s->>'name', ',' ORDER BY o) FROM "
            "jsonb_array_elements(report->'steps') WITH ORDINALITY AS x(s, o)), ';') FROM lightrag_chunks "
            "WHERE content LIKE 'Emmy%' OR content LIKE 'Sofia%'"),
       "extract,embed,vectors,graph", "reorder: the new order ran")
    eq(psql("SELECT count(*) FROM lightrag_entities WHERE name IN ('Emmy Noether', 'Sofia Kovalevskaya')"), "2",
       "reorder: the graph step still ran, last")
    eq(psql("SELECT count(*) FROM lightrag_vectors WHERE ref IN ('Emmy Noether', 'Sofia Kovalevskaya')"), "2",
       "reorder: their vectors come from the extracted records")
finally:
    shutil.rmtree(folder, ignore_errors=True)
finish(rt)
