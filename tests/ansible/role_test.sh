#!/usr/bin/env bash
# The orchestrator_workers role (ansible/): syntax check, ansible-lint when
# installed, the rendered systemd unit through systemd-analyze verify, then real
# runs against this machine (-c local, as root) into a temporary prefix, in the
# process service mode, with the harness' Redis and PostgreSQL:
#   1. a first run: the pool runs, the validation tasks pass, a POSTed job
#      completes (in Redis and in PostgreSQL's audit trail);
#   2. a second run changes nothing (changed=0), same supervisor;
#   3. a script change notifies only the reload handler, and the running pool
#      processes the next job with the new script, same supervisor pid;
#   4. a configuration that --check refuses is not installed, the pool runs on.
# Run under tests/harness/with-servers.sh (SERVERS). Exits 77 (skipped) when
# ansible-playbook is missing.
set -uo pipefail

if ! command -v ansible-playbook >/dev/null; then
  echo "SKIP: ansible-playbook is not installed (Debian: apt-get install ansible-core)"
  exit 77
fi
# shellcheck source=../e2e/lib.sh
. "${SHIELD_SOURCE_DIR:?}/tests/e2e/lib.sh"

((EUID == 0)) || e2e_fail "the role test runs the role as root (packages, service user); run it as root"

# The service user must reach the install: E2E_DIR is made private by mktemp.
chmod 755 "$E2E_DIR"
W=$E2E_DIR
ansible_dir=$W/src/ansible # the snapshot's, taken below
role_dir=$ansible_dir/roles/orchestrator_workers
token=ansible-test-token-$RANDOM
http_url=http://127.0.0.1:${SHIELD_TEST_HTTP_PORT:?}
pid_file=$W/run/shield-runtime.pid
E2E_RUNTIME_LOG=$W/log/shield-runtime.log # shown by e2e_fail
passes=0

ok() {
  passes=$((passes + 1))
  echo "ok - $*"
}

# The process-mode supervisor is not E2E_RUNTIME_PID (the role started it):
# stop it here, then the whole session it leads, whatever happens.
stop_runtime() {
  local pid
  [[ -f $pid_file ]] || return 0
  pid=$(cat "$pid_file")
  start-stop-daemon --stop --quiet --oknodo --pidfile "$pid_file" --name shield-runtime \
    --retry TERM/30/KILL/5 >/dev/null 2>&1
  kill -KILL -- "-$pid" 2>/dev/null
  rm -f "$pid_file"
}
trap 'stop_runtime; e2e_cleanup' EXIT
trap 'exit 143' TERM # with-servers.sh stops a test with SIGTERM: run the EXIT trap
trap 'exit 130' INT

# A configuration of the test's own, so no ansible.cfg around changes the runs.
cat >"$W/ansible.cfg" <<EOF
[defaults]
nocolor = True
retry_files_enabled = False
local_tmp = $W/ansible-tmp
remote_tmp = $W/ansible-tmp
EOF
export ANSIBLE_CONFIG=$W/ansible.cfg
printf '[shield_workers]\nlocalhost ansible_connection=local ansible_python_interpreter=%s\n' \
  "$(command -v python3)" >"$W/inventory.ini"

# The role builds and installs a snapshot of the source tree: a file edited in
# the checkout between two runs would otherwise (rightly) count as a change.
mkdir -p "$W/src"
tar -C "$SHIELD_SOURCE_DIR" --exclude='./build*' --exclude=./var --exclude=./.git --exclude=./.cache -cf - . |
  tar -C "$W/src" -xf - || e2e_fail "could not snapshot $SHIELD_SOURCE_DIR"

# The test's own processing script, copied by the role from scripts-src.
mkdir -p "$W/scripts-src"
cp "$W/src/tests/ansible/probe_script.lua" "$W/scripts-src/probe.lua"
# A copy of Debian's redis.conf (appendonly no) for the persistence tasks; the
# running Redis they switch is the harness' (already appendonly yes).
if [[ -f /etc/redis/redis.conf ]]; then
  cp /etc/redis/redis.conf "$W/redis.conf"
else
  printf 'port 6379\nappendonly no\n# appendfsync always\nappendfsync no\n' >"$W/redis.conf"
fi

cat >"$W/vars.json" <<EOF
{
  "shield_service_manager": "process",
  "shield_source_dir": "$W/src",
  "shield_build_dir": "$W/build",
  "shield_prefix": "$W/prefix",
  "shield_config_dir": "$W/etc",
  "shield_run_dir": "$W/run",
  "shield_log_dir": "$W/log",
  "shield_scripts_src": "$W/scripts-src",
  "shield_script": "probe.lua",
  "shield_redis_url": "$SHIELD_TEST_REDIS_URL",
  "shield_postgres_url": "$SHIELD_TEST_PG_URL",
  "shield_http_listen": "127.0.0.1:$SHIELD_TEST_HTTP_PORT",
  "shield_api_token": "$token",
  "shield_lightrag": {"note": "quote \" and backslash \\\\", "nested": {"n": 1.5, "on": true, "list": [1, "a"]}},
  "shield_environment": {"SHIELD_ROLE_TEST": "1"},
  "worker_pool_size": 2,
  "worker_graceful_shutdown_timeout": 10,
  "shield_manage_redis": true,
  "shield_redis_conf": "$W/redis.conf",
  "shield_redis_service": "",
  "shield_apt_cache_valid_time": 31536000,
  "ansible_become": false
}
EOF

# playbook NAME [ARGS...]: runs the playbook, output in $W/NAME.log.
playbook() {
  local name=$1
  shift
  (cd "$ansible_dir" && ansible-playbook -i "$W/inventory.ini" -c local playbook.yml \
    -e "@$W/vars.json" "$@") >"$W/$name.log" 2>&1
}

# recap NAME FIELD: a field of the PLAY RECAP line (ok, changed, failed, ...).
recap() {
  grep -E '^localhost +:' "$W/$1.log" | grep -oE "$2=[0-9]+" | cut -d= -f2
}

show_log_and_fail() {
  echo "--- $W/$1.log, last 60 lines:" >&2
  tail -n 60 "$W/$1.log" >&2
  e2e_fail "$2"
}

runtime_pid() { cat "$pid_file" 2>/dev/null; }

auth=(-H "Authorization: Bearer $token")

# job_completes: POSTs a one-chunk job, waits until GET /jobs/<id> says
# completed; sets JOB_ID.
job_completed() {
  e2e_http GET "$http_url/jobs/$JOB_ID" "" "${auth[@]}" && [[ $(e2e_json status) == completed ]]
}
job_completes() {
  e2e_http POST "$http_url/lightrag/ingest-async" '{"chunks":[{"text":"Marie Curie worked in Paris."}]}' \
    "${auth[@]}" || e2e_fail "POST /lightrag/ingest-async: $E2E_HTTP_ERROR"
  e2e_assert_eq 202 "$E2E_STATUS" "POST /lightrag/ingest-async status ($E2E_BODY)"
  JOB_ID=$(e2e_json job_id)
  e2e_wait_until 30 job_completed || e2e_fail "job $JOB_ID did not complete: $E2E_STATUS $E2E_BODY"
  e2e_assert_eq 1 "$(e2e_json chunks_processed)" "chunks_processed of job $JOB_ID"
}

# --- static checks ----------------------------------------------------------------
(cd "$ansible_dir" && ansible-playbook -i "$W/inventory.ini" playbook.yml --syntax-check) >"$W/syntax.log" 2>&1 ||
  show_log_and_fail syntax "ansible-playbook --syntax-check failed"
ok "ansible-playbook --syntax-check"

if command -v ansible-lint >/dev/null; then
  (cd "$ansible_dir" && ansible-lint --offline --nocolor -p playbook.yml roles/orchestrator_workers) \
    >"$W/lint.log" 2>&1 || show_log_and_fail lint "ansible-lint found problems"
  ok "ansible-lint (production profile)"
else
  echo "# ansible-lint is not installed: lint step skipped (Debian: apt-get install ansible-lint)"
fi

# --- run 1: deploy -------------------------------------------------------------------
playbook run1 || show_log_and_fail run1 "the first run failed"
e2e_assert_eq 0 "$(recap run1 failed)" "failed tasks in the first run"
ok "first run: $(grep -E '^localhost +:' "$W/run1.log" | tr -s ' ')"

pid=$(runtime_pid)
if [[ -z $pid ]] || ! e2e_alive "$pid"; then
  e2e_fail "no supervisor running after the first run (pid file: '$pid')"
fi
e2e_assert_eq shield-runtime "$(ps -o comm= -p "$pid")" "the pid file's process"
e2e_assert_eq shield-runtime "$(ps -o user= -p "$pid")" "the supervisor's user"
ok "the supervisor runs as shield-runtime (pid $pid)"

for task in "Check the configuration and the processing script" "Wait for GET /health" \
  "Wait for the workers' consumers and the job_status table" "Check what the probe found"; do
  grep -A1 -F "TASK [orchestrator_workers : $task]" "$W/run1.log" | grep -q '^ok: \[localhost\]' ||
    show_log_and_fail run1 "validation task '$task' did not pass"
done
probe=$(grep -F 'the probe found' "$W/run1.log")
for slot in 0 1; do
  [[ $probe == *"$(uname -n)-w$slot"* ]] || show_log_and_fail run1 "consumer $(uname -n)-w$slot missing in: $probe"
done
ok "validation tasks passed (--check, GET /health, XINFO CONSUMERS, job_status)"

e2e_http GET "$http_url/health" || e2e_fail "GET /health: $E2E_HTTP_ERROR"
e2e_assert_eq '200 {"status":"up"}' "$E2E_STATUS $E2E_BODY" "GET /health"
e2e_http GET "$http_url/jobs/none" || e2e_fail "GET /jobs/none: $E2E_HTTP_ERROR"
e2e_assert_eq 401 "$E2E_STATUS" "GET /jobs without the rendered token"
ok "GET /health answers; the API wants the token from the role"

e2e_assert_eq "appendonly yes" "$(grep -E '^\s*appendonly\s' "$W/redis.conf")" "redis.conf appendonly"
e2e_assert_eq "appendfsync everysec" "$(grep -E '^\s*appendfsync\s' "$W/redis.conf")" "redis.conf appendfsync"
ok "redis.conf: appendonly yes, appendfsync everysec"

job_completes
e2e_assert_eq v1 "$(e2e_redis GET "ansible-test:version:$JOB_ID")" "script version that processed job 1"
synced() { [[ $(e2e_sql "SELECT status FROM job_status WHERE id = '$JOB_ID'") == completed ]]; }
e2e_wait_until 30 synced || e2e_fail "job $JOB_ID is not completed in PostgreSQL's job_status"
ok "a POSTed job completes (script v1; job_status row completed)"

# --- the systemd unit ----------------------------------------------------------------
mkdir -p "$W/unit"
(cd "$ansible_dir" && ansible-playbook -i localhost, -c local "$W/src/tests/ansible/render_unit.yml" \
  -e "role_dir=$role_dir" -e "out_dir=$W/unit" -e "shield_prefix=$W/prefix") >"$W/unit.log" 2>&1 ||
  show_log_and_fail unit "rendering the systemd unit failed"
unit=$W/unit/shield-runtime.service
verify=$(systemd-analyze verify "$unit" 2>&1) || e2e_fail "systemd-analyze verify: $verify"
e2e_assert_eq "" "$verify" "systemd-analyze verify's warnings"
# shellcheck disable=SC2016 # $MAINPID is for systemd
for line in Type=notify NotifyAccess=main KillMode=mixed KillSignal=SIGTERM 'ExecReload=/bin/kill -HUP $MAINPID' \
  NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes TimeoutStopSec=90; do
  grep -qxF "$line" "$unit" || e2e_fail "the unit lacks the line '$line'"
done
! grep -qE "^\s*MemoryDenyWriteExecute" "$unit" || e2e_fail "the unit sets MemoryDenyWriteExecute (breaks the JIT)"
ok "systemd unit: systemd-analyze verify clean; notify, mixed kill, SIGHUP reload, hardening, no MDWE"

# --- run 2: idempotence ----------------------------------------------------------------
playbook run2 || show_log_and_fail run2 "the second run failed"
[[ $(recap run2 changed) == 0 ]] || show_log_and_fail run2 "the second run changed: $(grep -B 3 '^changed:' "$W/run2.log")"
e2e_assert_eq "$pid" "$(runtime_pid)" "supervisor pid after the second run"
ok "second run: changed=0, same supervisor"

# --- run 3: a script change reloads --------------------------------------------------------
old_version=$(e2e_http GET "$http_url/health/detailed" "" "${auth[@]}" && e2e_json script.version)
[[ -n $old_version ]] || e2e_fail "no script version in /health/detailed: $E2E_BODY"
sed -i 's/^local VERSION = "v1"$/local VERSION = "v2"/' "$W/scripts-src/probe.lua"
grep -q '"v2"' "$W/scripts-src/probe.lua" || e2e_fail "could not edit the probe script"
playbook run3 || show_log_and_fail run3 "the script-change run failed"
grep -qF 'RUNNING HANDLER [orchestrator_workers : Reload the shield-runtime process with SIGHUP]' "$W/run3.log" ||
  show_log_and_fail run3 "the reload handler did not run"
! grep -qE 'RUNNING HANDLER \[orchestrator_workers : (Stop|Start) the shield-runtime process' "$W/run3.log" ||
  show_log_and_fail run3 "a script change restarted the service"
e2e_assert_eq 2 "$(recap run3 changed)" "changed tasks in the script-change run (script copy, SIGHUP)"
# The script folder is watched too: only this line shows the signal arrived.
e2e_wait_until 10 grep -q 'SIGHUP: reloading the processing script' "$E2E_RUNTIME_LOG" ||
  e2e_fail "the supervisor never received the handler's SIGHUP"
ok "script change: only the reload handler ran"

# Every worker swaps to the new version between tasks.
swapped() {
  e2e_http GET "$http_url/health/detailed" "" "${auth[@]}" || return 1
  python3 -c '
import json, sys
d = json.loads(sys.argv[1])
v = d["script"]["version"]
ws = d["worker_pool"]["workers"]
sys.exit(0 if v != sys.argv[2] and ws and all(w["script_version"] == v for w in ws) else 1)
' "$E2E_BODY" "$old_version"
}
e2e_wait_until 30 swapped || e2e_fail "the workers did not swap from script version $old_version: $E2E_BODY"
new_version=$(e2e_json script.version)
e2e_assert_eq "$pid" "$(runtime_pid)" "supervisor pid after the reload"
e2e_alive "$pid" || e2e_fail "the supervisor $pid is gone after the reload"
job_completes
e2e_assert_eq v2 "$(e2e_redis GET "ansible-test:version:$JOB_ID")" "script version that processed job 2"
ok "the running pool picked up the new script (version $old_version -> $new_version), same supervisor $pid"

# --- run 4: a broken configuration is refused ------------------------------------------
cp "$W/etc/pool.lua" "$W/pool.lua.before"
if playbook run4 -e worker_pool_size=0; then
  show_log_and_fail run4 "a run with worker_pool_size=0 succeeded"
fi
grep -qF 'pool.size: expected an integer from 1 to 256, got 0' "$W/run4.log" ||
  show_log_and_fail run4 "the failure is not the --check message for pool.size"
cmp -s "$W/pool.lua.before" "$W/etc/pool.lua" || e2e_fail "the refused configuration replaced pool.lua"
e2e_assert_eq "$pid" "$(runtime_pid)" "supervisor pid after the refused run"
e2e_http GET "$http_url/health" || e2e_fail "GET /health after the refused run: $E2E_HTTP_ERROR"
e2e_assert_eq 200 "$E2E_STATUS" "GET /health after the refused run"
ok "worker_pool_size=0 is refused by --check in the template's validate; the pool keeps running"

echo "$passes passed"
