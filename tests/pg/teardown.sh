#!/bin/sh
# Runs teardown_test.lua, which ends with statements in flight, then checks
# that it exited promptly and that the server is no longer running them.
set -u
start=$(date +%s%N)
"$SHIELD_BIN" --config "$SHIELD_SOURCE_DIR/tests/pg/pg.cfg.lua" run "$SHIELD_SOURCE_DIR/tests/pg/teardown_test.lua"
status=$?
took=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$status" -eq 0 ] || { echo "FAIL - exit status $status"; exit 1; }
[ "$took" -lt 3000 ] || { echo "FAIL - took $took ms to exit"; exit 1; }
echo "ok - exited with 0 in $took ms"
# The cancels were sent before the runtime exited; the backends act on them
# within moments.
for _ in $(seq 1 50); do
  left=$(psql "$SHIELD_TEST_PG_URL" -Atc "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)'")
  [ "$left" = 0 ] && break
  sleep 0.1
done
[ "$left" = 0 ] || { echo "FAIL - $left statements still on the server"; exit 1; }
echo "ok - no statement left on the server"
