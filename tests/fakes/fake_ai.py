#!/usr/bin/env python3
"""Local stand-ins for the AI services the runtime talks to, speaking their real
HTTP formats: Ollama (/api/chat, /api/embed, /api/embeddings), OpenAI-compatible
(/v1/chat/completions, /v1/embeddings), Qdrant REST (/collections/...) and a
LightRAG server (/documents/text, /documents/texts, /documents/track_status/<id>).
Used by tests (tests/httpc, pipeline end-to-end tests); Python standard library only.

Start: fake_ai.py [--service all|ollama|openai|qdrant|lightrag] [--port 0] [--dim 16]
       [--api-key KEY] [--mode ok|429|500|slow|garbage|hang|failed] [--count N]
       [--delay-ms MS] [--retry-after S] [--lightrag-polls N]
Prints the bound port on stdout, then serves until SIGTERM or SIGINT.

Chat answers are LightRAG delimited records derived from the prompt's text
(capitalised words become entities, neighbouring entities relations, ending
<|COMPLETE|>); embeddings are unit vectors hashed from the text's words. Both
are deterministic.

Test controls (never subject to the modes):
  POST /_control {"mode": ..., "count": N, "delay_ms": .., "retry_after": ..,
                  "route": "/api/"}  the next N requests (all when count is
                  absent) whose path starts with route behave so; "ok" clears.
                  "failed": LightRAG inserts succeed but their documents fail.
  GET  /_stats   {"connections": accepted TCP connections, "total": requests,
                  "in_flight": n, "requests": {"METHOD /path": n}}
  POST /_reset   clears modes, stats, Qdrant collections and LightRAG documents
  ANY  /_echo    {"method","path","query","headers","body"}; query: delay_ms=,
                  status=, bytes=N (a body of N "x"), close=1 (no answer);
                  answers carry X-Echo: 1 and two X-Multi headers (a, b)
  GET  /_redirect?to=URL[&code=302]  (without to: redirects to itself)
  ANY  /_hang    never answers
"""

import argparse
import base64
import hashlib
import json
import math
import re
import signal
import struct
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

TUPLE = "<|#|>"
DONE = "<|COMPLETE|>"
ENTITY_TYPES = ["person", "organization", "location", "event", "concept"]
STOPWORDS = {"The", "A", "An", "In", "On", "At", "It", "Its", "This", "That", "These", "Those", "He", "She",
             "They", "We", "I", "You", "And", "But", "Or", "Of", "For", "To", "With", "As", "By", "From",
             "After", "Before", "When", "While", "If", "Then", "There", "Here", "His", "Her", "Their"}
MAX_ENTITIES = 20


class State:
    """Everything the handlers share, behind one lock."""

    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.reset()
        self.set_mode({"mode": args.mode, "count": args.count, "delay_ms": args.delay_ms,
                       "retry_after": args.retry_after})

    def reset(self):
        self.connections = 0
        self.total = 0
        self.in_flight = 0
        self.requests = {}
        self.mode = None
        self.collections = {}
        self.operation = 0
        self.tracks = {}
        self.started = time.time()

    def set_mode(self, c):
        mode = c.get("mode", "ok")
        if mode not in ("ok", "429", "500", "slow", "garbage", "hang", "failed"):
            raise ValueError("unknown mode %r" % mode)
        if mode == "ok":
            self.mode = None
            return
        count = c.get("count")
        self.mode = {"mode": mode, "left": None if count is None else int(count),
                     "delay_ms": int(c.get("delay_ms") or 1000), "retry_after": c.get("retry_after", 1),
                     "route": c.get("route") or "/"}

    def take_mode(self, path):
        """The mode the request at path gets, counting it down."""
        with self.lock:
            m = self.mode
            if not m or not path.startswith(m["route"]):
                return None
            if m["left"] is not None:
                m["left"] -= 1
                if m["left"] <= 0:
                    self.mode = None
            return dict(m)


# ---- deterministic content ----

def entities_of(text):
    names = []
    for m in re.finditer(r"\b[A-Z][\w-]*(?:\s+[A-Z][\w-]*)*", text):
        words = m.group(0).split()
        while words and words[0] in STOPWORDS:
            words.pop(0)
        name = " ".join(words)
        if name and name not in names:
            names.append(name)
        if len(names) == MAX_ENTITIES:
            break
    return names


def sentence_with(text, name):
    for s in re.split(r"(?<=[.!?])\s+", text):
        if name in s:
            return " ".join(s.split())[:200]
    return text[:200]


def records(text):
    names = entities_of(text)
    lines = []
    for n in names:
        kind = ENTITY_TYPES[int(hashlib.md5(n.encode()).hexdigest(), 16) % len(ENTITY_TYPES)]
        lines.append(TUPLE.join(["entity", n, kind, "%s appears in the text: %s" % (n, sentence_with(text, n))]))
    for a, b in zip(names, names[1:]):
        lines.append(TUPLE.join(["relation", a, b, "related, co-occurrence",
                                 "%s and %s are mentioned together in the text." % (a, b)]))
    lines.append(DONE)
    return "\n".join(lines)


FENCED = re.compile(r"Text:\s*\n(`{3,})\n(.*)\n\1", re.S)


def answer_for(messages):
    """Records for the chunk in the last user message; a follow-up (gleaning)
    after an extraction finds nothing more; any other prompt is read whole."""
    users = [m.get("content") or "" for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    if not users:
        return DONE
    m = FENCED.search(users[-1])
    if m:
        return records(m.group(2))
    if any(FENCED.search(u) for u in users[:-1]):
        return DONE
    return records(users[-1])


def embed(text, dim):
    v = [0.0] * dim
    for w in re.findall(r"\w+", text.lower()):
        h = hashlib.sha256(w.encode()).digest()
        v[int.from_bytes(h[:4], "little") % dim] += 1.0 if h[4] & 1 else -1.0
    norm = math.sqrt(sum(x * x for x in v))
    if norm == 0:
        v[0], norm = 1.0, 1.0
    return [round(x / norm, 6) for x in v]


def tokens(text):
    return max(1, len(text.split()))


def iso_now():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%06dZ" % int((t % 1) * 1e6)


# ---- HTTP ----

class Reply(Exception):
    """Ends a handler with an answer: raise Reply(status, body[, headers])."""

    def __init__(self, status, body, headers=None):
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


def service_of(path):
    if path.startswith("/api/"):
        return "ollama"
    if path.startswith("/v1/"):
        return "openai"
    if path.startswith("/collections"):
        return "qdrant"
    if path.startswith("/documents") or path == "/health":
        return "lightrag"
    return None


def error_body(service, status, message, started=None):
    if service == "openai":
        kind = {401: "invalid_request_error", 429: "requests", 404: "invalid_request_error"}.get(status, "server_error")
        code = {401: "invalid_api_key", 429: "rate_limit_exceeded"}.get(status)
        return {"error": {"message": message, "type": kind, "param": None, "code": code}}
    if service == "qdrant":
        return {"status": {"error": message}, "time": 0.0001}
    if service == "lightrag":
        return {"detail": message}
    return {"error": message}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-ai/1"
    # Headers and body go out in two writes: without this, Nagle and delayed
    # ACKs hold every keep-alive answer back 40 ms.
    disable_nagle_algorithm = True
    state = None  # set in main

    def setup(self):
        super().setup()
        with self.state.lock:
            self.state.connections += 1

    def log_message(self, fmt, *a):
        if self.state.args.verbose:
            sys.stderr.write("fake_ai: " + (fmt % a) + "\n")

    def do_GET(self):
        self.handle_any()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def send(self, status, body, headers=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            ctype = "application/json"
        else:
            body = body.encode() if isinstance(body, str) else body
            ctype = "text/plain; charset=utf-8"
        self.send_response(status)
        hs = {"Content-Type": ctype}
        hs.update(headers or {})
        for k, v in hs.items():
            for one in v if isinstance(v, list) else [v]:
                self.send_header(k, str(one))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def hang(self):
        """Holds the connection without an answer until the server stops."""
        self.close_connection = True
        self.state.stopping.wait(3600)
        raise _Close()

    def handle_any(self):
        st = self.state
        url = urlsplit(self.path)
        path, query = url.path, parse_qs(url.query)
        body = self.read_body()
        with st.lock:
            st.total += 1
            st.in_flight += 1
            key = "%s %s" % (self.command, path)
            st.requests[key] = st.requests.get(key, 0) + 1
        try:
            self.route(path, query, body)
        except Reply as r:
            self.send(r.status, r.body, r.headers)
        finally:
            with st.lock:
                st.in_flight -= 1

    def route(self, path, query, body):
        st = self.state
        if path == "/_control":
            try:
                with st.lock:
                    st.set_mode(json.loads(body or b"{}"))
            except (ValueError, TypeError) as e:
                raise Reply(400, {"error": str(e)})
            raise Reply(200, {"ok": True})
        if path == "/_stats":
            with st.lock:
                raise Reply(200, {"connections": st.connections, "total": st.total,
                                  "in_flight": st.in_flight - 1, "requests": dict(st.requests)})
        if path == "/_reset":
            with st.lock:
                st.reset()
            raise Reply(200, {"ok": True})

        service = service_of(path)
        mode = st.take_mode(path)
        if mode:
            self.apply(mode, service)
        if path == "/_echo":
            self.echo(query, body)
        if path == "/_redirect":
            raise Reply(int(query.get("code", ["302"])[0]), "", {"Location": query.get("to", [self.path])[0]})
        if path == "/_hang":
            self.hang()
        if service is None or st.args.service not in ("all", service):
            raise Reply(404, {"error": "no route for %s %s" % (self.command, path)})
        self.check_key(service)
        doc = None
        if body:
            try:
                doc = json.loads(body)
            except ValueError as e:
                raise Reply(400, error_body(service, 400, "invalid JSON body: %s" % e))
        getattr(self, "svc_" + service)(path, query, doc, mode)

    def apply(self, mode, service):
        m = mode["mode"]
        if m == "hang":
            self.hang()
        if m == "slow":
            time.sleep(mode["delay_ms"] / 1000.0)
        elif m == "429":
            raise Reply(429, error_body(service, 429, "rate limit reached, retry later"),
                        {"Retry-After": mode["retry_after"]})
        elif m == "500":
            raise Reply(500, error_body(service, 500, "internal server error (fake)"))
        elif m == "garbage":
            raise Reply(200, b"<html>this is not JSON", {"Content-Type": "application/json"})

    def check_key(self, service):
        key = self.state.args.api_key
        if not key:
            return
        got = {"openai": (self.headers.get("Authorization") or "").removeprefix("Bearer "),
               "qdrant": self.headers.get("api-key"),
               "lightrag": self.headers.get("X-API-Key")}.get(service, key)
        if got != key:
            raise Reply(401 if service != "lightrag" else 403, error_body(service, 401, "invalid API key"))

    def echo(self, query, body):
        if query.get("close"):
            self.close_connection = True
            raise _Close()
        if "delay_ms" in query:
            time.sleep(int(query["delay_ms"][0]) / 1000.0)
        status = int(query.get("status", ["200"])[0])
        headers = {"X-Echo": "1", "X-Multi": ["a", "b"]}
        if "bytes" in query:
            raise Reply(status, b"x" * int(query["bytes"][0]), headers)
        raise Reply(status, {
            "method": self.command, "path": urlsplit(self.path).path, "query": urlsplit(self.path).query,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body.decode("utf-8", "replace"),
        }, headers)

    # ---- Ollama ----

    def svc_ollama(self, path, query, doc, mode):
        doc = doc if isinstance(doc, dict) else {}
        model = doc.get("model")
        if self.command != "POST" or path not in ("/api/chat", "/api/embed", "/api/embeddings"):
            raise Reply(404, error_body("ollama", 404, "404 page not found"))
        if not model:
            raise Reply(400, {"error": "model is required"})
        stats = {"total_duration": 1000000, "load_duration": 100000, "prompt_eval_count": 1}
        if path == "/api/embed":
            inputs = doc.get("input", [])
            inputs = [inputs] if isinstance(inputs, str) else inputs
            if not isinstance(inputs, list) or not all(isinstance(x, str) for x in inputs):
                raise Reply(400, {"error": "invalid input type"})
            vectors = [embed(x, self.state.args.dim) for x in inputs]
            raise Reply(200, dict(stats, model=model, embeddings=vectors,
                                  prompt_eval_count=sum(tokens(x) for x in inputs)))
        if path == "/api/embeddings":
            raise Reply(200, {"embedding": embed(str(doc.get("prompt", "")), self.state.args.dim)})
        messages = doc.get("messages")
        if not isinstance(messages, list):
            raise Reply(400, {"error": "messages must be an array"})
        content = answer_for(messages)
        final = dict(stats, model=model, created_at=iso_now(),
                     message={"role": "assistant", "content": content}, done_reason="stop", done=True,
                     prompt_eval_duration=100000, eval_count=tokens(content), eval_duration=500000)
        if doc.get("stream") is False:
            raise Reply(200, final)
        # Ollama streams by default: NDJSON pieces, then the final record with an empty message.
        lines = [json.dumps({"model": model, "created_at": iso_now(),
                             "message": {"role": "assistant", "content": piece}, "done": False})
                 for piece in re.findall(r".{1,40}", content, re.S)]
        final["message"] = {"role": "assistant", "content": ""}
        lines.append(json.dumps(final))
        raise Reply(200, ("\n".join(lines) + "\n").encode(), {"Content-Type": "application/x-ndjson"})

    # ---- OpenAI-compatible ----

    def svc_openai(self, path, query, doc, mode):
        doc = doc if isinstance(doc, dict) else {}
        model = doc.get("model")
        if self.command == "GET" and path == "/v1/models":
            raise Reply(200, {"object": "list", "data": [{"id": "fake", "object": "model", "created": 0,
                                                          "owned_by": "fake"}]})
        if self.command != "POST" or path not in ("/v1/chat/completions", "/v1/embeddings"):
            raise Reply(404, error_body("openai", 404, "Unknown request URL: %s %s" % (self.command, path)))
        if not model:
            raise Reply(400, error_body("openai", 400, "you must provide a model parameter"))
        with self.state.lock:
            self.state.operation += 1
            n = self.state.operation
        if path == "/v1/embeddings":
            inputs = doc.get("input")
            inputs = [inputs] if isinstance(inputs, str) else inputs
            if not isinstance(inputs, list) or not inputs:
                raise Reply(400, error_body("openai", 400, "'input' is a required property"))
            dim = int(doc.get("dimensions") or self.state.args.dim)
            data = []
            for i, x in enumerate(inputs):
                v = embed(x if isinstance(x, str) else json.dumps(x), dim)
                if doc.get("encoding_format") == "base64":
                    v = base64.b64encode(struct.pack("<%df" % len(v), *v)).decode()
                data.append({"object": "embedding", "index": i, "embedding": v})
            used = sum(tokens(x) if isinstance(x, str) else len(x) for x in inputs)
            raise Reply(200, {"object": "list", "data": data, "model": model,
                              "usage": {"prompt_tokens": used, "total_tokens": used}})
        messages = doc.get("messages")
        if not isinstance(messages, list) or not messages:
            raise Reply(400, error_body("openai", 400, "'messages' is a required property"))
        content = answer_for(messages)
        prompt = sum(tokens(str(m.get("content", ""))) for m in messages if isinstance(m, dict))
        completion = tokens(content)
        ident, created = "chatcmpl-fake%06d" % n, int(time.time())
        if doc.get("stream"):
            events = [{"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                       "choices": [{"index": 0, "delta": {"role": "assistant", "content": piece},
                                    "finish_reason": None}]}
                      for piece in re.findall(r".{1,40}", content, re.S)]
            events.append({"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                           "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            text = "".join("data: %s\n\n" % json.dumps(e) for e in events) + "data: [DONE]\n\n"
            raise Reply(200, text.encode(), {"Content-Type": "text/event-stream"})
        raise Reply(200, {
            "id": ident, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion},
        })

    # ---- Qdrant ----

    def qdrant_ok(self, result, t0):
        raise Reply(200, {"result": result, "status": "ok", "time": round(time.time() - t0, 6)})

    def qdrant_fail(self, status, message):
        raise Reply(status, error_body("qdrant", status, message))

    def svc_qdrant(self, path, query, doc, mode):
        t0 = time.time()
        st = self.state
        parts = path.strip("/").split("/")
        if parts == ["collections"] and self.command == "GET":
            with st.lock:
                self.qdrant_ok({"collections": [{"name": n} for n in sorted(st.collections)]}, t0)
        if len(parts) < 2:
            self.qdrant_fail(404, "Not found")
        name, rest = parts[1], parts[2:]
        with st.lock:
            col = st.collections.get(name)
            if not rest:
                self.qdrant_collection(name, col, doc, t0)
            if col is None:
                self.qdrant_fail(404, "Not found: Collection `%s` doesn't exist!" % name)
            if rest == ["points"] and self.command == "PUT":
                self.qdrant_upsert(col, doc, query, t0)
            if rest == ["points", "delete"] and self.command == "POST":
                for pid in (doc or {}).get("points", []):
                    col["points"].pop(self.point_id(pid), None)
                st.operation += 1
                self.qdrant_ok({"operation_id": st.operation, "status": "completed"}, t0)
            if rest == ["points", "count"] and self.command == "POST":
                pts = self.filtered(col, (doc or {}).get("filter"))
                self.qdrant_ok({"count": len(pts)}, t0)
            if rest == ["points", "scroll"] and self.command == "POST":
                self.qdrant_scroll(col, doc or {}, t0)
            if rest == ["points", "search"] and self.command == "POST":
                self.qdrant_search(col, doc or {}, t0)
        self.qdrant_fail(404, "Not found")

    def qdrant_collection(self, name, col, doc, t0):
        st = self.state
        if self.command == "GET":
            if col is None:
                self.qdrant_fail(404, "Not found: Collection `%s` doesn't exist!" % name)
            n = len(col["points"])
            self.qdrant_ok({
                "status": "green", "optimizer_status": "ok", "vectors_count": n, "indexed_vectors_count": 0,
                "points_count": n, "segments_count": 1,
                "config": {"params": {"vectors": {"size": col["size"], "distance": col["distance"]},
                                      "shard_number": 1, "replication_factor": 1,
                                      "write_consistency_factor": 1, "on_disk_payload": True},
                           "hnsw_config": {"m": 16, "ef_construct": 100, "full_scan_threshold": 10000},
                           "optimizer_config": {"indexing_threshold": 20000},
                           "wal_config": {"wal_capacity_mb": 32, "wal_segments_ahead": 0},
                           "quantization_config": None},
                "payload_schema": {}}, t0)
        if self.command == "PUT":
            if col is not None:
                self.qdrant_fail(409, "Wrong input: Collection `%s` already exists!" % name)
            v = (doc or {}).get("vectors")
            if not isinstance(v, dict) or not isinstance(v.get("size"), int) or v["size"] < 1 \
                    or v.get("distance") not in ("Cosine", "Euclid", "Dot", "Manhattan"):
                self.qdrant_fail(400, "Format error in JSON body: vectors: expected {size, distance}")
            st.collections[name] = {"size": v["size"], "distance": v["distance"], "points": {}}
            self.qdrant_ok(True, t0)
        if self.command == "DELETE":
            self.qdrant_ok(st.collections.pop(name, None) is not None, t0)
        self.qdrant_fail(405, "Method not allowed")

    def point_id(self, pid):
        if isinstance(pid, int) and not isinstance(pid, bool) and pid >= 0:
            return pid
        if isinstance(pid, str):
            try:
                return str(uuid.UUID(pid))
            except ValueError:
                pass
        self.qdrant_fail(400, "Format error in JSON body: value %s is not a valid point ID, valid values "
                              "are either an unsigned integer or a UUID" % json.dumps(pid))

    def qdrant_upsert(self, col, doc, query, t0):
        doc = doc or {}
        if "batch" in doc:
            b = doc["batch"]
            ids, vecs = b.get("ids", []), b.get("vectors", [])
            pays = b.get("payloads") or [None] * len(ids)
            points = [{"id": i, "vector": v, "payload": p} for i, v, p in zip(ids, vecs, pays)]
        else:
            points = doc.get("points")
        if not isinstance(points, list):
            self.qdrant_fail(400, "Format error in JSON body: missing field `points`")
        staged = {}
        for p in points:
            pid = self.point_id(p.get("id"))
            v = p.get("vector")
            if not isinstance(v, list) or not all(isinstance(x, (int, float)) for x in v):
                self.qdrant_fail(400, "Format error in JSON body: vector must be an array of numbers")
            if len(v) != col["size"]:
                self.qdrant_fail(400, "Wrong input: Vector dimension error: expected dim: %d, got %d"
                                 % (col["size"], len(v)))
            staged[pid] = {"vector": [float(x) for x in v], "payload": p.get("payload") or {}}
        col["points"].update(staged)
        self.state.operation += 1
        status = "completed" if query.get("wait", ["false"])[0] == "true" else "acknowledged"
        self.qdrant_ok({"operation_id": self.state.operation, "status": status}, t0)

    @staticmethod
    def filtered(col, flt):
        conds = (flt or {}).get("must", [])

        def ok(p):
            return all(p["payload"].get(c.get("key")) == (c.get("match") or {}).get("value") for c in conds)
        return [(pid, p) for pid, p in col["points"].items() if ok(p)]

    @staticmethod
    def order(pid):
        return (0, pid, "") if isinstance(pid, int) else (1, 0, pid)

    def point_out(self, pid, p, doc):
        out = {"id": pid}
        if doc.get("with_payload", True):
            out["payload"] = p["payload"]
        if doc.get("with_vector", False):
            out["vector"] = p["vector"]
        return out

    def qdrant_scroll(self, col, doc, t0):
        pts = sorted(self.filtered(col, doc.get("filter")), key=lambda x: self.order(x[0]))
        if doc.get("offset") is not None:
            start = self.order(self.point_id(doc["offset"]))
            pts = [x for x in pts if self.order(x[0]) >= start]
        limit = int(doc.get("limit") or 10)
        page, nxt = pts[:limit], pts[limit:limit + 1]
        self.qdrant_ok({"points": [self.point_out(pid, p, doc) for pid, p in page],
                        "next_page_offset": nxt[0][0] if nxt else None}, t0)

    def qdrant_search(self, col, doc, t0):
        q = doc.get("vector")
        if not isinstance(q, list) or len(q) != col["size"]:
            self.qdrant_fail(400, "Wrong input: Vector dimension error: expected dim: %d, got %d"
                             % (col["size"], len(q) if isinstance(q, list) else 0))

        def cos(v):
            d = math.sqrt(sum(x * x for x in v)) * math.sqrt(sum(x * x for x in q))
            return sum(a * b for a, b in zip(v, q)) / d if d else 0.0
        scored = sorted(((cos(p["vector"]), pid, p) for pid, p in self.filtered(col, doc.get("filter"))),
                        key=lambda x: (-x[0], self.order(x[1])))
        threshold = doc.get("score_threshold")
        out = []
        for score, pid, p in scored[:int(doc.get("limit") or 10)]:
            if threshold is not None and score < threshold:
                break
            out.append(dict(self.point_out(pid, p, doc), version=0, score=round(score, 6)))
        self.qdrant_ok(out, t0)

    # ---- LightRAG server ----

    def svc_lightrag(self, path, query, doc, mode):
        st = self.state
        if path == "/health" and self.command == "GET":
            raise Reply(200, {"status": "healthy", "working_directory": "/tmp/fake", "pipeline_busy": False})
        if self.command == "POST" and path in ("/documents/text", "/documents/texts"):
            doc = doc if isinstance(doc, dict) else {}
            if path == "/documents/text":
                texts, sources = [doc.get("text")], [doc.get("file_source")]
            else:
                texts = doc.get("texts")
                sources = doc.get("file_sources") or [None] * (len(texts) if isinstance(texts, list) else 0)
            field = "text" if path == "/documents/text" else "texts"
            if not isinstance(texts, list) or not texts or \
                    not all(isinstance(t, str) and t.strip() for t in texts):
                raise Reply(422, {"detail": [{"type": "string_too_short", "loc": ["body", field],
                                              "msg": "String should have at least 1 character", "input": ""}]})
            now = iso_now()
            stamp = time.strftime("%Y%m%d_%H%M%S", time.gmtime())
            with st.lock:
                st.operation += 1
                track = "insert_%s_%08x" % (stamp, st.operation)
                st.tracks[track] = {"polls": 0, "failed": bool(mode and mode["mode"] == "failed"), "docs": [{
                    "id": "doc-" + hashlib.md5(t.strip().encode()).hexdigest(),
                    "content_summary": t.strip()[:100], "content_length": len(t), "created_at": now,
                    "updated_at": now, "track_id": track, "chunks_count": max(1, len(t) // 1200),
                    "metadata": {}, "file_path": s or "unknown_source"} for t, s in zip(texts, sources)]}
            raise Reply(200, {"status": "success", "track_id": track,
                              "message": "Text successfully received. Processing will continue in background."})
        m = re.fullmatch(r"/documents/track_status/(.+)", path)
        if m and self.command == "GET":
            with st.lock:
                t = st.tracks.get(m.group(1))
                if t is None:
                    raise Reply(200, {"track_id": m.group(1), "documents": [], "total_count": 0,
                                      "status_summary": {}})
                t["polls"] += 1
                done = t["polls"] > st.args.lightrag_polls
                status = ("failed" if t["failed"] else "processed") if done else "processing"
                docs = [dict(d, status=status, error_msg="extraction failed (fake)" if status == "failed" else None)
                        for d in t["docs"]]
            raise Reply(200, {"track_id": m.group(1), "documents": docs, "total_count": len(docs),
                              "status_summary": {status: len(docs)}})
        raise Reply(404, {"detail": "Not Found"})


class _Close(Exception):
    """Ends the connection without an answer."""


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (_Close, ConnectionError)):
            super().handle_error(request, client_address)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--service", default="all", choices=["all", "ollama", "openai", "qdrant", "lightrag"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--dim", type=int, default=16)
    p.add_argument("--api-key")
    p.add_argument("--mode", default="ok")
    p.add_argument("--count", type=int)
    p.add_argument("--delay-ms", type=int, default=1000)
    p.add_argument("--retry-after", default="1")
    p.add_argument("--lightrag-polls", type=int, default=1,
                   help="track_status answers 'processing' this many times before the final status")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args()

    Handler.state = State(args)
    server = Server((args.host, args.port), Handler)

    def stop(*_):
        Handler.state.stopping.set()
        raise SystemExit(0)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
