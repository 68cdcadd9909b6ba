#!/usr/bin/env bash
# Runs CMD ARGS... with a private Redis and PostgreSQL (servers.sh) in a fresh
# temporary folder, its SHIELD_TEST_* variables exported; always stops them, and
# exits with CMD's status. Used by ctest for tests declared with SERVERS.
# shellcheck disable=SC2317 # cleanup and on_signal run from traps
set -uo pipefail

if (($# == 0)); then
  echo "usage: with-servers.sh CMD ARGS..." >&2
  exit 2
fi
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
servers=$here/servers.sh
# Parallel tests must never share ports: ignore run.sh's fixed-port settings.
unset SHIELD_SERVERS_REDIS_PORT SHIELD_SERVERS_PG_PORT SHIELD_SERVERS_HTTP_PORT SHIELD_SERVERS_DURABLE
dir=$(mktemp -d "${TMPDIR:-/tmp}/shield-test.XXXXXX") || exit 1
child=

cleanup() {
  "$servers" stop "$dir" || echo "with-servers.sh: could not stop the servers in $dir" >&2
}
trap cleanup EXIT

# INT/TERM: stop the command first, then the EXIT trap stops the servers.
on_signal() {
  if [[ -n $child ]]; then
    kill -TERM "$child" 2>/dev/null
    wait "$child"
  fi
  exit "$1"
}
trap 'on_signal 130' INT
trap 'on_signal 143' TERM

# ctest kills a timed-out test with SIGKILL, which runs no trap. A watchdog,
# detached (double fork, own session) so the kill of the test's process tree
# misses it, stops the servers once this shell is gone.
# shellcheck disable=SC2016 # the script's variables are its own arguments
(setsid bash -c 'while kill -0 "$1" 2>/dev/null && [[ -d $2 ]]; do sleep 0.5; done
  [[ -d $2 ]] && exec "$3" stop "$2"' with-servers-watchdog "$$" "$dir" "$servers" \
  </dev/null >/dev/null 2>&1 &)

"$servers" start "$dir" || exit 1
# shellcheck source=/dev/null
. "$dir/env.sh"

# In the background so that a signal reaches on_signal at once.
"$@" &
child=$!
wait "$child"
exit $?
