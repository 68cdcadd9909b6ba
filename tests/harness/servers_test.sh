#!/usr/bin/env bash
# The harness' servers, run under with-servers.sh: both answer on 127.0.0.1 only,
# with the promised settings, and each one stops and restarts on the same port
# with its data.
set -euo pipefail
. "${SHIELD_SOURCE_DIR:?}/tests/e2e/lib.sh"

servers=$SHIELD_SOURCE_DIR/tests/harness/servers.sh
dir=${SHIELD_TEST_DIR:?}
rport=${SHIELD_TEST_REDIS_PORT:?}
pport=${SHIELD_TEST_PG_PORT:?}

e2e_assert_eq "redis://127.0.0.1:$rport/0" "$SHIELD_TEST_REDIS_URL" "redis url"
e2e_assert_eq "postgresql://postgres@127.0.0.1:$pport/shield" "$SHIELD_TEST_PG_URL" "pg url"
[[ $SHIELD_TEST_HTTP_PORT =~ ^[0-9]+$ ]] || e2e_fail "SHIELD_TEST_HTTP_PORT: '$SHIELD_TEST_HTTP_PORT'"
e2e_port_closed "$SHIELD_TEST_HTTP_PORT" || e2e_fail "the reserved HTTP port is in use"
[[ -d $dir ]] || e2e_fail "SHIELD_TEST_DIR $dir missing"

# Listening on 127.0.0.1 only.
for port in "$rport" "$pport"; do
  e2e_assert_eq "127.0.0.1:$port" "$(ss -Hltn "sport = :$port" | awk '{print $4}' | sort -u)" "listeners on $port"
done

# Redis: answers, appendonly with everysec, data under DIR/redis.
e2e_assert_eq PONG "$(e2e_redis ping)" "redis ping"
e2e_assert_eq "appendonly yes" "$(e2e_redis config get appendonly | paste -sd' ')" "appendonly"
e2e_assert_eq "appendfsync everysec" "$(e2e_redis config get appendfsync | paste -sd' ')" "appendfsync"
e2e_assert_eq "dir $dir/redis" "$(e2e_redis config get dir | paste -sd' ')" "redis dir"
e2e_assert_eq OK "$(e2e_redis set harness:key kept)" "redis set"
e2e_assert_eq 3 "$(e2e_redis rpush harness:list a b c)" "redis rpush"

# PostgreSQL: the shield database, fast settings, trust over TCP.
e2e_assert_eq "shield|postgres" "$(e2e_sql 'select current_database(), current_user')" "pg identity"
e2e_assert_eq "off|off" "$(e2e_sql "select current_setting('fsync'), current_setting('synchronous_commit')")" "pg settings"
e2e_assert_eq "15" "$(e2e_sql "select current_setting('server_version_num')::int / 10000")" "pg version"
e2e_sql 'create table harness_t (id int primary key, v text)'
e2e_sql "insert into harness_t values (1, 'kept'), (2, 'also')"

# redis-stop: refused; redis-start: same port, the AOF brings the data back.
"$servers" redis-stop "$dir"
out=$(e2e_redis ping 2>&1) && e2e_fail "redis answered after redis-stop: $out"
e2e_assert_eq "Could not connect to Redis at 127.0.0.1:$rport: Connection refused" "$out" "redis refused"
"$servers" redis-start "$dir"
e2e_assert_eq PONG "$(e2e_redis ping)" "redis ping after restart"
e2e_assert_eq kept "$(e2e_redis get harness:key)" "redis key after restart"
e2e_assert_eq "a b c" "$(e2e_redis lrange harness:list 0 -1 | paste -sd' ')" "redis list after restart"
# Idempotent: starting a running server is a no-op.
"$servers" redis-start "$dir"
e2e_assert_eq kept "$(e2e_redis get harness:key)" "redis key after second start"

# pg-stop: refused (pg_isready 2 = no response); pg-start: same port and data.
"$servers" pg-stop "$dir"
rc=0
pg_isready -q -h 127.0.0.1 -p "$pport" || rc=$?
e2e_assert_eq 2 "$rc" "pg_isready after pg-stop"
out=$(e2e_sql 'select 1' 2>&1) && e2e_fail "PostgreSQL answered after pg-stop: $out"
e2e_assert_contains "$out" "Connection refused" "pg refused"
"$servers" pg-start "$dir"
e2e_assert_eq "1|kept,2|also" "$(e2e_sql 'select id, v from harness_t order by id' | paste -sd,)" "pg rows after restart"
e2e_assert_eq "$pport" "$(e2e_sql "select current_setting('port')")" "pg port after restart"

# Another port can be reserved for this folder, distinct from the others.
extra=$("$servers" port "$dir")
for used in "$rport" "$pport" "$SHIELD_TEST_HTTP_PORT"; do
  [[ $extra != "$used" ]] || e2e_fail "servers.sh port returned a used port $extra"
done
[[ -d ${TMPDIR:-/tmp}/shield-test-ports-$(id -u)/$extra ]] || e2e_fail "port $extra not reserved"

echo "ok: servers answer, stop and restart with their data"
