#!/usr/bin/env bash
# with-fake.sh CMD...: runs CMD with a private fake AI server (tests/fakes/fake_ai.py)
# on a free port, exported as SHIELD_FAKE_URL (http://127.0.0.1:PORT), and
# SHIELD_CLOSED_PORT, a port nothing listens on. Stops the server on every exit.
set -u
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d)
fake=
cleanup() {
  if [[ -n $fake ]]; then
    kill "$fake" 2>/dev/null
    wait "$fake" 2>/dev/null
  fi
  rm -rf "$dir"
}
trap cleanup EXIT

# Requests go to 127.0.0.1 directly, whatever proxy the environment names.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY

python3 "$here/../fakes/fake_ai.py" > "$dir/port" 2> "$dir/err" &
fake=$!
for _ in $(seq 100); do
  [[ -s $dir/port ]] && break
  kill -0 "$fake" 2>/dev/null || break
  sleep 0.05
done
port=$(head -n1 "$dir/port")
if [[ ! $port =~ ^[0-9]+$ ]]; then
  echo "with-fake.sh: the fake server did not start" >&2
  cat "$dir/err" >&2
  exit 1
fi
export SHIELD_FAKE_URL="http://127.0.0.1:$port"
export SHIELD_CLOSED_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$@"
rc=$?
if [[ -s $dir/err ]]; then
  echo "--- fake server stderr:" >&2
  cat "$dir/err" >&2
fi
exit $rc
