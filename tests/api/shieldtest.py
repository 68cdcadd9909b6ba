"""Helpers for the HTTP end-to-end tests: a supervisor on a free port with the
harness's Redis and PostgreSQL, a JSON client, raw sockets, a strict parser of
the Prometheus text format, and tap-style checks that end with the "N passed,
N failed" line."""
import atexit
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

BIN = os.environ["SHIELD_BIN"]
SRC = os.environ["SHIELD_SOURCE_DIR"]
REDIS_PORT = os.environ["SHIELD_TEST_REDIS_PORT"]
PG_URL = os.environ["SHIELD_TEST_PG_URL"]
SERVERS = os.path.join(SRC, "tests/harness/servers.sh")

passed = failed = 0


def check(ok, name, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print("ok - " + name, flush=True)
    else:
        failed += 1
        print("FAIL - %s %s" % (name, detail), flush=True)
    return ok


def eq(got, want, name):
    return check(got == want, name, "want %r, got %r" % (want, got))


def finish(runtime=None):
    if runtime:
        runtime.stop()
        if failed:
            print(runtime.log_tail())
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(fn, timeout=30, interval=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(interval)
    return None


def redis(*args):
    out = subprocess.run(["redis-cli", "-p", REDIS_PORT] + [str(a) for a in args],
                         capture_output=True, text=True)
    return out.stdout.strip()


def psql(sql):
    out = subprocess.run(["psql", "-X", "-A", "-t", "-q", PG_URL, "-c", sql], capture_output=True, text=True)
    return out.stdout.strip()


def servers(action):
    subprocess.run([SERVERS, action, os.environ["SHIELD_TEST_DIR"]], check=True, capture_output=True)


class Runtime:
    """The supervisor with a config built from keyword sections."""

    def __init__(self, script="scripts/noop.lua", **sections):
        self.dir = tempfile.mkdtemp()
        self.port = free_port()
        sections.setdefault("pool", {}).setdefault("size", 2)
        cfg = {
            "script": script,
            "redis": {"url": os.environ["SHIELD_TEST_REDIS_URL"]},
            "postgres": {"url": PG_URL},
            "http": dict({"listen": "127.0.0.1:%d" % self.port}, **sections.pop("http", {})),
        }
        cfg.update(sections)
        self.config = os.path.join(self.dir, "pool.lua")
        with open(self.config, "w") as f:
            f.write("return " + lua_table(cfg) + "\n")
        self.log = os.path.join(self.dir, "runtime.log")
        self.proc = subprocess.Popen([BIN, "--config", self.config], cwd=SRC, stdout=open(self.log, "w"),
                                     stderr=subprocess.STDOUT)
        atexit.register(self.stop)  # a test that raises must not leave the pool running
        if not wait_for(lambda: self.up(), 20):
            print(self.log_tail())
            raise SystemExit("the runtime did not answer /health")

    def up(self):
        try:
            return self.request("GET", "/health")[0] == 200
        except OSError:
            return False

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        data = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
        conn.request(method, path, body=data, headers=headers or {})
        r = conn.getresponse()
        raw = r.read()
        conn.close()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return r.status, parsed, dict((k.lower(), v) for k, v in r.getheaders())

    def ingest(self, texts, metadata=None, headers=None):
        chunks = [{"text": t, "metadata": metadata[i] if metadata else {}} for i, t in enumerate(texts)]
        return self.request("POST", "/lightrag/ingest-async", {"chunks": chunks}, headers)

    def wait_job(self, job_id, statuses=("completed", "failed", "cancelled"), timeout=60):
        def done():
            status, body, _ = self.request("GET", "/jobs/" + job_id)
            return body if status == 200 and body["status"] in statuses else None
        return wait_for(done, timeout, 0.1)

    def raw(self, data, read=True, timeout=5):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        s.sendall(data)
        out = b""
        if read:
            try:
                while True:
                    b = s.recv(65536)
                    if not b:
                        break
                    out += b
            except socket.timeout:
                pass
        s.close()
        return out

    def detailed(self):
        """GET /health/detailed: (status, body)."""
        status, body, _ = self.request("GET", "/health/detailed")
        return status, body

    def metrics(self):
        """GET /metrics parsed by parse_metrics (raises if it does not parse)."""
        status, text, _ = self.request("GET", "/metrics")
        assert status == 200, "GET /metrics answered %d" % status
        return parse_metrics(text)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.returncode

    def log_tail(self, n=40):
        with open(self.log) as f:
            return "".join(f.readlines()[-n:])


class SSE:
    """A raw-socket Server-Sent Events client."""

    def __init__(self, runtime, path, last_event_id=None):
        self.sock = socket.create_connection(("127.0.0.1", runtime.port), timeout=30)
        extra = "Last-Event-ID: %s\r\n" % last_event_id if last_event_id else ""
        self.sock.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (path, extra)).encode())
        self.buf = b""
        head = self._until(b"\r\n\r\n")
        self.status = int(head.split(b" ")[1])
        self.headers = head.decode().lower()

    def _until(self, sep):
        while sep not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError
            self.buf += data
        part, self.buf = self.buf.split(sep, 1)
        return part

    def event(self):
        """The next message with an id: (id, event, data); comments and retry skipped."""
        while True:
            block = self._until(b"\n\n").decode()
            fields = {}
            for line in block.split("\n"):
                if line.startswith(":"):
                    continue
                k, _, v = line.partition(": ")
                fields[k] = v
            if "id" in fields:
                return fields["id"], fields.get("event"), fields.get("data")
            if "retry" in fields:
                self.retry = fields["retry"]

    def events_until(self, kinds, limit=100000):
        out = []
        while len(out) < limit:
            e = self.event()
            out.append(e)
            if e[1] in kinds:
                return out
        return out

    def close(self):
        self.sock.close()


def lua_table(v):
    if isinstance(v, dict):
        return "{" + ", ".join("[%s] = %s" % (json.dumps(k), lua_table(x)) for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "{" + ", ".join(lua_table(x) for x in v) + "}"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(v)


# --- the Prometheus text exposition format (version 0.0.4), strictly --------------
METRIC_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\["\\n])*"'
_VALUE = r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]Inf|NaN"
_SAMPLE = re.compile(r"^(%s)(\{(?:%s(?:,%s)*)?\})? (%s)$" % (METRIC_NAME, _LABEL, _LABEL, _VALUE))


class Metrics(dict):
    """Family name -> [(sample name, labels text, value)]; .types: family -> kind."""
    types = None


def parse_metrics(text):
    """The families of an exposition; raises AssertionError on anything the format
    does not allow: a sample outside its family (HELP then TYPE, then its samples),
    a repeated family, a counter not named _total, a histogram series whose
    buckets are not cumulative in increasing le ending at +Inf, or whose _count
    is not its +Inf bucket."""
    families, types, current = Metrics(), {}, None
    assert text.endswith("\n"), "the text must end with a newline"
    for n, line in enumerate(text[:-1].split("\n"), 1):
        if line.startswith("# HELP "):
            current = line.split(" ")[2]
            assert re.match("^%s$" % METRIC_NAME, current), "line %d: bad family name %r" % (n, current)
            assert current not in families, "line %d: family %s repeated" % (n, current)
            families[current] = []
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name == current and kind in ("counter", "gauge", "histogram", "summary", "untyped"), \
                "line %d: %r" % (n, line)
            types[name] = kind
        else:
            m = _SAMPLE.match(line)
            assert m, "line %d is not a sample: %r" % (n, line)
            name = m.group(1)
            kind = types.get(current)
            base = re.sub(r"_(bucket|sum|count)$", "", name) if kind in ("histogram", "summary") else name
            assert base == current, "line %d: sample %s outside its family %s" % (n, name, current)
            families[current].append((name, m.group(2) or "", float(m.group(3))))
    for name, kind in types.items():
        if kind == "counter":
            assert name.endswith("_total"), "counter %s must end in _total" % name
        if kind == "histogram":
            _check_histogram(name, families[name])
    families.types = types
    return families


_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def _check_histogram(name, samples):
    """Each series (the labels but le) of histogram name: buckets cumulative in
    increasing le up to +Inf, and a _count equal to the +Inf bucket."""
    buckets, counts = {}, {}
    for s, labels, v in samples:
        pairs = dict(_PAIR.findall(labels))
        le = pairs.pop("le", None)
        series = "{%s}" % ",".join('%s="%s"' % kv for kv in sorted(pairs.items()))
        if s.endswith("_bucket"):
            assert le is not None, "%s: a bucket without le: %s" % (name, labels)
            buckets.setdefault(series, []).append((float(le), v))
        elif s.endswith("_count"):
            counts[series] = v
    assert buckets, "histogram %s has no buckets" % name
    for series, bs in buckets.items():
        bounds, values = [b for b, _ in bs], [v for _, v in bs]
        assert bounds == sorted(set(bounds)) and bounds[-1] == float("inf"), \
            "%s%s: le must increase to +Inf: %r" % (name, series, bounds)
        assert values == sorted(values), "%s%s: buckets not cumulative: %r" % (name, series, values)
        assert counts.get(series) == values[-1], "%s%s: _count %r is not the +Inf bucket %r" % (
            name, series, counts.get(series), values[-1])


def sample(families, family, name=None, **labels):
    """The value of one sample (name defaults to the family's) whose labels are
    exactly these (le included, values as written), or None."""
    for s, l, v in families.get(family, []):
        if s == (name or family) and dict(_PAIR.findall(l)) == labels:
            return v
    return None
