#!/usr/bin/env bash
# with-servers.sh itself: it passes CMD's exit status on, and whether CMD ends,
# it gets SIGTERM or the whole tree gets SIGKILL (as ctest does on a timeout),
# no redis-server or postgres process, port reservation or folder remains.
# Two harnesses running at once get distinct ports.
# shellcheck disable=SC2016 # the inner commands expand their own variables
set -euo pipefail
. "${SHIELD_SOURCE_DIR:?}/tests/e2e/lib.sh"
term_pid=
kill_pid=
# On a failure, the background harnesses get SIGTERM and so stop their servers.
on_exit() {
  for pid in $term_pid $kill_pid; do
    kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  done
  e2e_cleanup
}
trap on_exit EXIT

harness=$SHIELD_SOURCE_DIR/tests/harness
locks=${TMPDIR:-/tmp}/shield-test-ports-$(id -u)

# The inner command records what it saw: folder, ports, server pids.
record='info=$1
{
  echo "$SHIELD_TEST_DIR $SHIELD_TEST_REDIS_PORT $SHIELD_TEST_PG_PORT $SHIELD_TEST_HTTP_PORT"
  cat "$SHIELD_TEST_DIR/redis/redis.pid"
  pm=$(head -n 1 "$SHIELD_TEST_DIR/pg/data/postmaster.pid")
  echo "$pm" $(pgrep -P "$pm")
} >"$info.tmp"
mv "$info.tmp" "$info"'

pid_gone() { ! e2e_alive "$1"; }

no_process_mentions() { ! pgrep -f -- "$(printf '%s' "$1" | sed 's/[.[\*^$]/\\&/g')" >/dev/null; }

# check_clean INFO WHAT: everything INFO lists is gone, within a deadline (the
# SIGKILL case waits for the watchdog).
check_clean() {
  local info=$1 what=$2 dir rport pport hport pid
  read -r dir rport pport hport <"$info"
  e2e_wait_until 30 eval "[[ ! -e '$dir' ]]" || e2e_fail "$what: $dir still exists"
  for pid in $(tail -n +2 "$info"); do
    e2e_wait_until 10 pid_gone "$pid" || e2e_fail "$what: server process $pid still runs"
  done
  e2e_wait_until 10 no_process_mentions "$dir" ||
    e2e_fail "$what: processes of $dir remain: $(pgrep -af -- "$dir")"
  for port in "$rport" "$pport"; do
    e2e_port_closed "$port" || e2e_fail "$what: port $port still accepts connections"
  done
  for port in "$rport" "$pport" "$hport"; do
    if [[ -f $locks/$port/owner && $(cat "$locks/$port/owner") == "$dir" ]]; then
      e2e_fail "$what: the reservation of port $port remains"
    fi
  done
}

# 1. CMD's status comes back; arguments keep their spaces; all is cleaned up.
rc=0
"$harness/with-servers.sh" bash -c "$record"'
  [[ $2 == "two words" ]] || exit 99
  exit 7' _ "$E2E_DIR/normal" "two words" || rc=$?
e2e_assert_eq 7 "$rc" "exit status of CMD"
check_clean "$E2E_DIR/normal" "normal exit"
"$harness/with-servers.sh" true
echo "ok: status passed on, cleaned up after a normal exit"

# 2 and 3 at once: SIGTERM to with-servers; SIGKILL to the whole tree.
"$harness/with-servers.sh" bash -c "$record"'
  exec sleep 300' _ "$E2E_DIR/term" &
term_pid=$!
"$harness/with-servers.sh" bash -c "$record"'
  exec sleep 300' _ "$E2E_DIR/kill" &
kill_pid=$!
e2e_wait_until 60 test -s "$E2E_DIR/term" || e2e_fail "the SIGTERM case did not start"
e2e_wait_until 60 test -s "$E2E_DIR/kill" || e2e_fail "the SIGKILL case did not start"

read -r -a a <"$E2E_DIR/term"
read -r -a b <"$E2E_DIR/kill"
e2e_assert_eq 6 "$(printf '%s\n' "${a[@]:1}" "${b[@]:1}" | sort -u | wc -l | tr -d ' ')" "distinct ports"
[[ ${a[0]} != "${b[0]}" ]] || e2e_fail "both harnesses share ${a[0]}"

kill -TERM "$term_pid"
rc=0
wait "$term_pid" || rc=$?
term_pid=
e2e_assert_eq 143 "$rc" "status after SIGTERM"
check_clean "$E2E_DIR/term" "SIGTERM"
echo "ok: cleaned up after SIGTERM"

pkill -KILL -P "$kill_pid"
kill -KILL "$kill_pid"
wait "$kill_pid" 2>/dev/null || true # bash would report "Killed"
kill_pid=
check_clean "$E2E_DIR/kill" "SIGKILL"
echo "ok: the watchdog cleaned up after SIGKILL"

# 4. servers.sh never removes a folder it did not make.
foreign=$E2E_DIR/foreign
mkdir -p "$foreign"
touch "$foreign/file"
out=$("$harness/servers.sh" stop "$foreign" 2>&1) && e2e_fail "stop of a foreign folder succeeded"
e2e_assert_eq "servers.sh: $foreign was not made by servers.sh: not removing it" "$out" "stop refusal"
out=$("$harness/servers.sh" start "$foreign" 2>&1) && e2e_fail "start in a non-empty folder succeeded"
e2e_assert_eq "servers.sh: $foreign is not empty" "$out" "start refusal"
[[ -f $foreign/file ]] || e2e_fail "the foreign folder was touched"
echo "ok: foreign folders left alone"
