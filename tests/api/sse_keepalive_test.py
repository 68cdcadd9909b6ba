"""An idle GET /events/stream connection (issue 6): its first bytes carry
`retry:` once, then a `: keepalive` comment line arrives within the 15 s of
runtime/sse.c's KEEPALIVE_MS (waited for up to 17 s), and the connection stays
open after it."""
import re
import socket
import time
import uuid

from shieldtest import Runtime, check, eq, finish

WAIT_S = 17  # the interval is 15 s, from a timer shared by every subscriber

rt = Runtime()
# A job no event is for: nothing but the keepalive may reach this connection,
# whatever the pool emits meanwhile (worker.started and the like).
path = "/events/stream?job_id=" + str(uuid.uuid4())
sock = socket.create_connection(("127.0.0.1", rt.port), timeout=WAIT_S)
opened = time.monotonic()
sock.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
received, keepalive_after, closed = b"", None, False
while keepalive_after is None and time.monotonic() < opened + WAIT_S:
    sock.settimeout(max(0.05, opened + WAIT_S - time.monotonic()))
    try:
        data = sock.recv(4096)
    except socket.timeout:
        break
    if not data:
        closed = True
        break
    received += data
    if b"\n\n: keepalive\n\n" in received:
        keepalive_after = time.monotonic() - opened

head, _, body = received.partition(b"\r\n\r\n")
check(head.startswith(b"HTTP/1.1 200 "), "the stream answers 200", head[:60])
check(b"\r\ncontent-type: text/event-stream" in head.lower(), "as text/event-stream", head)
check(body.startswith(b"retry: "), "the first bytes of the stream carry retry:", body[:40])
eq(body.count(b"retry:"), 1, "retry: is sent once")
check(not closed, "the idle connection is not closed by the server", received)
check(keepalive_after is not None, "a ': keepalive' comment line arrives on the idle connection within %d s" % WAIT_S,
      "after %.1f s got %r" % (time.monotonic() - opened, body))
check(re.fullmatch(rb"retry: [0-9]+\n\n: keepalive\n\n", body),
      "nothing but retry: and the comment line reached the idle connection", body)
if keepalive_after is not None:
    print("# keepalive after %.1f s" % keepalive_after)
sock.settimeout(0.5)
try:
    still_open = sock.recv(4096) != b""
except socket.timeout:
    still_open = True
check(still_open, "the connection stays open after the comment line")
sock.close()
eq(rt.request("GET", "/health")[0], 200, "the server still answers")

eq(rt.stop(), 0, "the supervisor shuts down cleanly (exit 0)")
finish(rt)
