#!/usr/bin/env bash
# The supervisor re-forks killed workers in their slot, backs off from a
# crash loop, kills stalled workers, refuses to start when init raises, and
# drains on SIGTERM leaving no process behind.
set -u
. "$(dirname "$0")/../lib/runtime.sh"

# --- kill -9 of a worker: a new pid in the same slot within 2 s ----------------
cfg=$(write_config pool 'script = "scripts/noop.lua", pool = { size = 3 }')
start_supervisor "$cfg"
check "3 workers ready" wait_for 10 workers_ready 3
old=$(worker_pid 1) keep0=$(worker_pid 0) keep2=$(worker_pid 2)
kill -9 "$old"
new_in_slot_1() { local p; p=$(worker_pid 1); [[ -n $p && $p != "$old" ]] && alive "$p"; }
check "killed worker re-forked in slot 1 within 2 s" wait_for 2 new_in_slot_1
check "the kill was reported" grep -q "worker 1 killed by signal 9" "$T/sup.log"
check "the other slots kept their workers" test "$(worker_pid 0) $(worker_pid 2)" = "$keep0 $keep2"
events() { redis XRANGE shield:events - + | grep -A5 -x "$1" | grep '^{'; }
lost_event() { events worker.stopped | grep "\"pid\":$old[,}]" | grep -q 'killed by signal 9'; }
check "a worker.stopped event for the killed worker, with the signal" wait_for 5 lost_event
started_event() { events worker.started | grep -q "\"pid\":$(worker_pid 1)[,}]"; }
check "a worker.started event for its successor" wait_for 5 started_event
pids=$(pgrep -P "$SUP_PID" | sort | tr '\n' ' ')
# Workers close what they inherit at fork: a worker holding the listening
# socket would keep the port from a restarted supervisor.
listeners=$(ss -Hltnp "sport = :$SHIELD_TEST_HTTP_PORT" | grep -o 'pid=[0-9]*' | sort -u | tr '\n' ' ')
check "only the supervisor holds the HTTP listening socket ($listeners)" test "$listeners" = "pid=$SUP_PID "

# --- SIGTERM: the whole tree exits 0 within the timeout ---------------------------
kill -TERM "$SUP_PID"
start=$SECONDS
wait_supervisor 30; status=$?
check "SIGTERM exits 0 (got $status)" test "$status" -eq 0
check "shutdown took under 10 s" test $((SECONDS - start)) -lt 10
left=0
for p in $pids; do alive "$p" && left=$((left + 1)); done
check "no worker left behind" test "$left" -eq 0
check "workers drained" grep -q "draining (shutdown): no new tasks" "$T/sup.log"
SUP_PID=

# --- SIGINT: the same graceful stop ------------------------------------------------
cfg=$(write_config sigint 'script = "scripts/noop.lua", pool = { size = 1 }')
start_supervisor "$cfg"
check "a worker ready" wait_for 10 workers_ready 1
kill -INT "$SUP_PID"
wait_supervisor 30; status=$?
check "SIGINT exits 0 (got $status)" test "$status" -eq 0
check "... after a graceful shutdown" grep -q "Interrupt: graceful shutdown" "$T/sup.log"
SUP_PID=

# --- a second signal exits at once; JSON logs -------------------------------------
cfg=$(write_config json 'script = "scripts/noop.lua", pool = { size = 2, graceful_shutdown_timeout = 30 }, log = { format = "json" }')
start_supervisor "$cfg"
check "workers up (json logs)" wait_for 10 grep -q '"msg":"ready: script' "$T/sup.log"
check "log lines are JSON objects with time, level, role and slot" \
  python3 -c '
import json, re, sys
for l in open(sys.argv[1]):
    e = json.loads(l)
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", e["time"]), e
    assert e["level"] in ("debug", "info", "warn", "error") and e["role"] in ("supervisor", "worker"), e
    assert isinstance(e["slot"], int) and isinstance(e["pid"], int) and isinstance(e["msg"], str), e
' "$T/sup.log"
grep -m1 '"role":"worker"' "$T/sup.log" | grep -q '"slot":[01]' && ok "worker lines carry their slot" || fail "worker lines carry their slot"
pids=$(pgrep -P "$SUP_PID" | tr '\n' ' ')
# Hold the workers so the first SIGTERM cannot finish: stop them (SIGSTOP).
for p in $pids; do kill -STOP "$p"; done
kill -TERM "$SUP_PID"
sleep 0.3
kill -TERM "$SUP_PID"
start=$SECONDS
wait_supervisor 30; status=$?
check "a second signal exits at once (status $status)" test $((SECONDS - start)) -lt 3 -a "$status" -ne 0
gone=0
for p in $pids; do alive "$p" || gone=$((gone + 1)); done
for p in $pids; do kill -KILL "$p" 2>/dev/null; done
check "... and takes the workers with it" test "$gone" -eq 2
SUP_PID=

# --- init raising: reported with file and line, nothing started -------------------
cat > "$T/bad_init.lua" <<'LUA'
local M = {}
function M.init(config)
  error("cannot reach the model server")
end
function M.process(task, ctx) end
return M
LUA
cfg=$(write_config bad 'script = "'"$T"'/bad_init.lua", pool = { size = 2 }')
out=$(cd "$src" && timeout 20 "$bin" --config "$cfg" 2>&1); status=$?
check "init raising exits 1 (got $status)" test "$status" -eq 1
check "the error names file and line" grep -q "$T/bad_init.lua:3: cannot reach the model server" <<<"$out"
check "no worker was started" test "$(grep -c 'worker 0 started' <<<"$out")" -eq 0

# --- a syntax error in the script: file and line ---------------------------------
printf 'local M = {}\nfunction M.process(task)\n  return (\nend\nreturn M\n' > "$T/syntax.lua"
cfg=$(write_config syntax 'script = "'"$T"'/syntax.lua"')
out=$(cd "$src" && timeout 20 "$bin" --config "$cfg" 2>&1); status=$?
check "syntax error exits 1" test "$status" -eq 1
check "syntax error names file and line" grep -q "$T/syntax.lua:4: unexpected symbol near 'end'" <<<"$out"

# --- a worker whose loop is stuck is killed and re-forked -------------------------
cat > "$T/stall.lua" <<'LUA'
local shield = require "shield"
local M = {}
function M.init(config)
  if shield.role == "worker" then
    shield.spawn(function()
      shield.sleep(200)
      while true do end -- a runaway script: only the stall kill stops it
    end)
  end
end
function M.process(task, ctx) end
return M
LUA
cfg=$(write_config stall 'script = "'"$T"'/stall.lua", pool = { size = 1, stall_seconds = 2 }')
start_supervisor "$cfg"
check "worker ready" wait_for 10 workers_ready 1
first=$(worker_pid 0)
stall_killed() { grep -q "worker 0 (pid $first) has not heart-beaten" "$T/sup.log"; }
check "stalled worker killed" wait_for 10 stall_killed
refork() { local p; p=$(worker_pid 0); [[ -n $p && $p != "$first" ]]; }
check "stalled worker re-forked" wait_for 5 refork
kill -TERM "$SUP_PID"; wait_supervisor 30
SUP_PID=

# --- a crash loop is backed off and reported --------------------------------------
cat > "$T/crash.lua" <<'LUA'
local shield = require "shield"
local M = {}
function M.init(config)
  if shield.role == "worker" then os.exit(7) end
end
function M.process(task, ctx) end
return M
LUA
cfg=$(write_config crash 'script = "'"$T"'/crash.lua", pool = { size = 1 }')
start_supervisor "$cfg"
backoff() { grep -q "worker 0 exited with status 7: [0-9]* crashes in a row, next start in" "$T/sup.log"; }
check "crash loop reported with backoff" wait_for 10 backoff
sleep 1
starts=$(grep -c "worker 0 started" "$T/sup.log")
check "not spun on: $starts starts in ~1.5 s" test "$starts" -le 6
kill -TERM "$SUP_PID"; wait_supervisor 30; status=$?
check "crash-looping pool still stops with 0 (got $status)" test "$status" -eq 0
SUP_PID=

[[ $fails -gt 0 ]] && cat "$T/sup.log"
finish
