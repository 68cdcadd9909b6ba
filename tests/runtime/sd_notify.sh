#!/usr/bin/env bash
# Under systemd (NOTIFY_SOCKET set) the supervisor says READY=1 once every
# worker has run its script's init (slow_init.lua takes 1.5 s), RELOADING=1 then READY=1 around a reload, WATCHDOG=1 when asked to, and
# STOPPING=1 on shutdown; the datagrams are read by a small listener here.
set -u
. "$(dirname "$0")/../lib/runtime.sh"
sock="$T/notify.sock"
python3 -u - "$sock" > "$T/notify.log" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(30)  # a missing STOPPING=1 ends the listener and fails its check
while True:
    try:
        msg = s.recv(4096).decode()
    except socket.timeout:
        break
    print(msg.replace("\n", "|"), flush=True)
    if msg.startswith("STOPPING=1"):
        break
PY
listener=$!
wait_for 5 test -S "$sock"
cfg=$(write_config pool 'script = "tests/runtime/slow_init.lua", pool = { size = 2 }')
(cd "$src" && NOTIFY_SOCKET="$sock" WATCHDOG_USEC=400000 exec "$bin" --config "$cfg") > "$T/sup.log" 2>&1 &
SUP_PID=$!
ready() { grep -q '^READY=1|STATUS=running$' "$T/notify.log"; }
check "READY=1 once the workers run" wait_for 15 ready
check "the workers are up" wait_for 5 workers_ready 2
# Each worker logs its ready line before its state moves to idle, and the
# supervisor logs its own right after sending READY=1.
ready_after_workers() {
  awk '/ready: script/ { w++ } /ready: all 2 workers/ { exit !(w == 2) }' "$T/sup.log" &&
    grep -q 'ready: all 2 workers' "$T/sup.log"
}
check "READY=1 only after both workers finished init" ready_after_workers
pinged() { [[ $(grep -c '^WATCHDOG=1$' "$T/notify.log") -ge 2 ]]; }
check "WATCHDOG=1 pings at half the interval" wait_for 5 pinged
kill -HUP "$SUP_PID"
reloaded() { grep -q '^RELOADING=1$' "$T/notify.log" && [[ $(grep -c '^READY=1' "$T/notify.log") -ge 2 ]]; }
check "RELOADING=1 then READY=1 around a reload" wait_for 10 reloaded
stop_supervisor; status=$?
check "exit 0" test "$status" -eq 0
wait "$listener"
check "STOPPING=1 on shutdown" grep -q '^STOPPING=1' "$T/notify.log"
finish
