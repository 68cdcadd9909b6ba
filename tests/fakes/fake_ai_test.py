#!/usr/bin/env python3
"""Checks fake_ai.py speaks the formats the runtime's clients expect (Ollama,
OpenAI-compatible, Qdrant, LightRAG server), that its controls force the
behaviours tests ask for, and that it stops on SIGTERM."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.request

FAKE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_ai.py")
for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
    os.environ.pop(var, None)


def start(*args):
    proc = subprocess.Popen([sys.executable, FAKE, *args], stdout=subprocess.PIPE, text=True)
    port = int(proc.stdout.readline())
    return proc, "http://127.0.0.1:%d" % port


def call(base, method, path, body=None, headers=None, timeout=10):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def jcall(base, method, path, body=None, headers=None):
    status, hs, raw = call(base, method, path, body, headers)
    return status, json.loads(raw) if raw else None


PROMPT = ("---Task---\nExtract the entities.\n\nEntity types: [person]\nText:\n```\n"
          "Grace Hopper joined Remington Rand in Philadelphia.\n```")
RECORDS = ("entity<|#|>Grace Hopper<|#|>", "entity<|#|>Remington Rand<|#|>", "entity<|#|>Philadelphia<|#|>",
           "relation<|#|>Grace Hopper<|#|>Remington Rand<|#|>")


class FakeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.proc, cls.base = start()

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        cls.proc.wait(5)
        cls.proc.stdout.close()

    def setUp(self):
        self.assertEqual(call(self.base, "POST", "/_reset")[0], 200)

    def test_ollama_chat(self):
        body = {"model": "m", "stream": False, "messages": [{"role": "system", "content": "x"},
                                                             {"role": "user", "content": PROMPT}]}
        status, a = jcall(self.base, "POST", "/api/chat", body)
        self.assertEqual(status, 200)
        self.assertEqual(a["model"], "m")
        self.assertTrue(a["done"])
        self.assertEqual(a["message"]["role"], "assistant")
        for r in RECORDS:
            self.assertIn(r, a["message"]["content"])
        self.assertTrue(a["message"]["content"].endswith("\n<|COMPLETE|>"))
        self.assertEqual(jcall(self.base, "POST", "/api/chat", body)[1]["message"], a["message"], "deterministic")
        gleaning = dict(body, messages=body["messages"] + [{"role": "assistant", "content": "x"},
                                                           {"role": "user", "content": "more?"}])
        self.assertEqual(jcall(self.base, "POST", "/api/chat", gleaning)[1]["message"]["content"], "<|COMPLETE|>")
        self.assertEqual(jcall(self.base, "POST", "/api/chat", {"messages": []}), (400, {"error": "model is required"}))

    def test_ollama_chat_streams_by_default(self):
        status, hs, raw = call(self.base, "POST", "/api/chat",
                               {"model": "m", "messages": [{"role": "user", "content": PROMPT}]})
        lines = [json.loads(x) for x in raw.decode().splitlines()]
        self.assertEqual(hs["Content-Type"], "application/x-ndjson")
        self.assertTrue(all(not x["done"] for x in lines[:-1]) and lines[-1]["done"])
        self.assertIn(RECORDS[0], "".join(x["message"]["content"] for x in lines))

    def test_ollama_embed(self):
        status, a = jcall(self.base, "POST", "/api/embed", {"model": "e", "input": ["alpha beta", "gamma"]})
        self.assertEqual(status, 200)
        self.assertEqual(a["model"], "e")
        self.assertEqual([len(v) for v in a["embeddings"]], [16, 16])
        self.assertAlmostEqual(sum(x * x for x in a["embeddings"][0]), 1.0, places=4)
        again = jcall(self.base, "POST", "/api/embed", {"model": "e", "input": "alpha beta"})[1]
        self.assertEqual(again["embeddings"], a["embeddings"][:1])

    def test_openai(self):
        status, a = jcall(self.base, "POST", "/v1/chat/completions",
                          {"model": "g", "messages": [{"role": "user", "content": PROMPT}]})
        self.assertEqual(status, 200)
        self.assertEqual(a["object"], "chat.completion")
        self.assertEqual(a["choices"][0]["index"], 0)
        self.assertEqual(a["choices"][0]["finish_reason"], "stop")
        self.assertIn(RECORDS[3], a["choices"][0]["message"]["content"])
        self.assertEqual(set(a["usage"]), {"prompt_tokens", "completion_tokens", "total_tokens"})
        status, e = jcall(self.base, "POST", "/v1/embeddings", {"model": "e", "input": ["a", "b c"]})
        self.assertEqual((status, e["object"], e["model"]), (200, "list", "e"))
        self.assertEqual([(d["object"], d["index"], len(d["embedding"])) for d in e["data"]],
                         [("embedding", 0, 16), ("embedding", 1, 16)])

    def test_qdrant(self):
        status, a = jcall(self.base, "GET", "/collections/c")
        self.assertEqual((status, a["status"]["error"]), (404, "Not found: Collection `c` doesn't exist!"))
        self.assertEqual(jcall(self.base, "PUT", "/collections/c", {"vectors": {"size": 2, "distance": "Cosine"}})[0], 200)
        self.assertEqual(jcall(self.base, "PUT", "/collections/c", {"vectors": {"size": 2, "distance": "Cosine"}})[0], 409)
        pts = {"points": [{"id": 1, "vector": [1, 0], "payload": {"k": "a"}},
                          {"id": "5C56C793-69F3-4FBF-87E6-C4BF54C28C26", "vector": [0, 1], "payload": {"k": "b"}}]}
        status, a = jcall(self.base, "PUT", "/collections/c/points?wait=true", pts)
        self.assertEqual((status, a["status"], a["result"]["status"]), (200, "ok", "completed"))
        self.assertIsInstance(a["result"]["operation_id"], int)
        status, a = jcall(self.base, "PUT", "/collections/c/points", {"points": [{"id": 3, "vector": [1, 2, 3]}]})
        self.assertEqual((status, a["status"]["error"]),
                         (400, "Wrong input: Vector dimension error: expected dim: 2, got 3"))
        info = jcall(self.base, "GET", "/collections/c")[1]["result"]
        self.assertEqual(info["points_count"], 2)
        self.assertEqual(info["config"]["params"]["vectors"], {"size": 2, "distance": "Cosine"})
        page = jcall(self.base, "POST", "/collections/c/points/scroll", {"limit": 1})[1]["result"]
        self.assertEqual(page["points"], [{"id": 1, "payload": {"k": "a"}}])
        self.assertEqual(page["next_page_offset"], "5c56c793-69f3-4fbf-87e6-c4bf54c28c26")
        self.assertEqual(jcall(self.base, "POST", "/collections/c/points/count", {"exact": True})[1]["result"],
                         {"count": 2})
        hits = jcall(self.base, "POST", "/collections/c/points/search", {"vector": [0.1, 1], "limit": 1})[1]
        self.assertEqual(hits["result"][0]["payload"], {"k": "b"})

    def test_lightrag(self):
        status, a = jcall(self.base, "POST", "/documents/text", {"text": "Hello World", "file_source": "a.txt"})
        self.assertEqual((status, a["status"]), (200, "success"))
        self.assertTrue(a["track_id"].startswith("insert_"))
        first = jcall(self.base, "GET", "/documents/track_status/" + a["track_id"])[1]
        self.assertEqual(first["documents"][0]["status"], "processing")
        done = jcall(self.base, "GET", "/documents/track_status/" + a["track_id"])[1]
        self.assertEqual((done["total_count"], done["status_summary"]), (1, {"processed": 1}))
        d = done["documents"][0]
        self.assertEqual((d["status"], d["file_path"], d["error_msg"]), ("processed", "a.txt", None))
        self.assertEqual(jcall(self.base, "POST", "/documents/text", {"text": ""})[0], 422)
        call(self.base, "POST", "/_control", {"mode": "failed", "count": 1})
        track = jcall(self.base, "POST", "/documents/text", {"text": "x"})[1]["track_id"]
        jcall(self.base, "GET", "/documents/track_status/" + track)
        d = jcall(self.base, "GET", "/documents/track_status/" + track)[1]["documents"][0]
        self.assertEqual((d["status"], d["error_msg"]), ("failed", "extraction failed (fake)"))

    def test_controls_and_stats(self):
        call(self.base, "POST", "/_control", {"mode": "429", "count": 2, "retry_after": 7, "route": "/v1/"})
        body = {"model": "g", "messages": [{"role": "user", "content": "Hi"}]}
        for _ in range(2):
            status, hs, raw = call(self.base, "POST", "/v1/chat/completions", body)
            self.assertEqual((status, hs["Retry-After"]), (429, "7"))
            self.assertEqual(json.loads(raw)["error"]["code"], "rate_limit_exceeded")
        self.assertEqual(call(self.base, "POST", "/v1/chat/completions", body)[0], 200)
        call(self.base, "POST", "/_control", {"mode": "500", "count": 1})
        self.assertEqual(jcall(self.base, "POST", "/api/embed", {"model": "e", "input": "x"}),
                         (500, {"error": "internal server error (fake)"}))
        call(self.base, "POST", "/_control", {"mode": "garbage", "count": 1})
        self.assertEqual(call(self.base, "POST", "/api/embed", {"model": "e", "input": "x"})[2], b"<html>this is not JSON")
        call(self.base, "POST", "/_control", {"mode": "slow", "count": 1, "delay_ms": 300})
        t0 = time.time()
        call(self.base, "GET", "/collections")
        self.assertGreaterEqual(time.time() - t0, 0.29)
        call(self.base, "POST", "/_control", {"mode": "hang", "count": 1})
        with self.assertRaises(OSError):
            call(self.base, "GET", "/collections", timeout=0.3)
        self.assertEqual(call(self.base, "GET", "/collections")[0], 200)
        self.assertEqual(call(self.base, "POST", "/_control", {"mode": "nope"})[0], 400)
        stats = jcall(self.base, "GET", "/_stats")[1]
        self.assertEqual(stats["requests"]["POST /v1/chat/completions"], 3)
        self.assertEqual(stats["requests"]["GET /collections"], 3)
        self.assertGreaterEqual(stats["connections"], 10)

    def test_keep_alive_counts_connections(self):
        s = socket.create_connection(("127.0.0.1", int(self.base.rsplit(":", 1)[1])))
        f = s.makefile("rb")
        for _ in range(3):
            s.sendall(b"GET /_echo HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertTrue(f.readline().startswith(b"HTTP/1.1 200"))
            length = 0
            while True:
                line = f.readline()
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
                if line == b"\r\n":
                    break
            f.read(length)
        f.close()
        s.close()
        self.assertEqual(jcall(self.base, "GET", "/_stats")[1]["connections"], 2)  # that one and this


class OptionsTest(unittest.TestCase):
    def test_service_api_key_and_sigterm(self):
        proc, base = start("--service", "openai", "--api-key", "k1", "--dim", "4")
        try:
            body = {"model": "e", "input": "x"}
            self.assertEqual(jcall(base, "POST", "/api/embed", body)[0], 404)
            self.assertEqual(jcall(base, "POST", "/v1/embeddings", body)[1]["error"]["code"], "invalid_api_key")
            status, a = jcall(base, "POST", "/v1/embeddings", body, {"Authorization": "Bearer k1"})
            self.assertEqual((status, len(a["data"][0]["embedding"])), (200, 4))
            call(base, "POST", "/_control", {"mode": "hang"})
            with self.assertRaises(OSError):
                call(base, "GET", "/v1/models", timeout=0.3)
        finally:
            t0 = time.time()
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(5), 0)
            self.assertLess(time.time() - t0, 2)
            proc.stdout.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
