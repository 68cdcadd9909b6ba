#!/usr/bin/env bash
# Under systemd (NOTIFY_SOCKET set) the supervisor says READY=1 once its workers
# run, RELOADING=1 then READY=1 around a reload, WATCHDOG=1 when asked to, and
# STOPPING=1 on shutdown; the datagrams are read by a small listener here.
set -u
. "$(dirname "$0")/../lib/runtime.sh"
sock="$T/notify.sock"
python3 -u - "$sock" > "$T/notify.log" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
while True:
    msg = s.recv(4096).decode()
    print(msg.replace("\n", "|"), flush=True)
    if msg.startswith("STOPPING=1"):
        break
PY
listener=$!
wait_for 5 test -S "$sock"
cfg=$(write_config pool 'script = "scripts/noop.lua", pool = { size = 2 }')
(cd "$src" && NOTIFY_SOCKET="$sock" WATCHDOG_USEC=400000 exec "$bin" --config "$cfg") > "$T/sup.log" 2>&1 &
SUP_PID=$!
ready() { grep -q '^READY=1|STATUS=running$' "$T/notify.log"; }
check "READY=1 once the workers run" wait_for 10 ready
check "the workers are up" wait_for 5 workers_ready 2
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
