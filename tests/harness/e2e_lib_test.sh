#!/usr/bin/env bash
# tests/e2e/lib.sh against the real runtime (under with-servers.sh): the config
# it writes starts the supervisor, the HTTP helpers report status, headers,
# JSON fields and transport errors, and the runtime stops with its status.
set -euo pipefail
. "${SHIELD_SOURCE_DIR:?}/tests/e2e/lib.sh"

# JSON paths, without a server.
doc='{"a":[0,{"b":"x y"}],"n":12,"t":true,"o":{"k":null}}'
e2e_assert_eq "x y" "$(e2e_json a.1.b "$doc")" "json string"
e2e_assert_eq 12 "$(e2e_json n "$doc")" "json number"
e2e_assert_eq true "$(e2e_json t "$doc")" "json boolean"
e2e_assert_eq null "$(e2e_json o.k "$doc")" "json null"
e2e_assert_eq '{"k": null}' "$(e2e_json o "$doc")" "json object"
e2e_json missing "$doc" 2>/dev/null && e2e_fail "a missing field succeeded"

# Deadlines: a condition that never holds times out, with the message.
start=$(e2e_now_ms)
out=$(e2e_wait_until 1 false 2>&1) && e2e_fail "wait_until false succeeded"
elapsed=$(($(e2e_now_ms) - start))
((elapsed >= 1000 && elapsed < 3000)) || e2e_fail "wait_until 1 took ${elapsed} ms"
e2e_assert_eq "e2e: timeout waiting for: false" "$out" "timeout message"

# The runtime with the harness' servers, one worker of the no-op script.
e2e_config basic 'cfg.script = "scripts/noop.lua"' 'cfg.pool.size = 1'
e2e_assert_eq "http://127.0.0.1:$SHIELD_TEST_HTTP_PORT" "$E2E_HTTP_URL" "http url"
e2e_http GET "$E2E_HTTP_URL/health" && e2e_fail "answered before the start"
e2e_assert_contains "$E2E_HTTP_ERROR" "connection refused: " "error before the start"

e2e_runtime_start "$E2E_CONFIG"
e2e_wait_for_port "$SHIELD_TEST_HTTP_PORT" 1
e2e_http GET "$E2E_HTTP_URL/health" || e2e_fail "GET /health: $E2E_HTTP_ERROR"
e2e_assert_eq 200 "$E2E_STATUS" "health status"
e2e_assert_eq up "$(e2e_json status)" "health body"
e2e_assert_contains "$(e2e_http_header content-type)" "application/json" "health content type"

e2e_http DELETE "$E2E_HTTP_URL/health" || e2e_fail "DELETE /health: $E2E_HTTP_ERROR"
e2e_assert_eq 405 "$E2E_STATUS" "method not allowed"
e2e_assert_eq GET "$(e2e_http_header Allow)" "Allow header"

e2e_http POST "$E2E_HTTP_URL/nowhere" '{"x":1}' -H 'X-Test: 1' || e2e_fail "POST: $E2E_HTTP_ERROR"
e2e_assert_eq 404 "$E2E_STATUS" "unknown route"
e2e_assert_eq "application/problem+json" "$(e2e_http_header Content-Type)" "problem content type"
e2e_assert_eq "Not Found" "$(e2e_json title)" "problem title"

e2e_assert_eq PONG "$(e2e_redis ping)" "e2e_redis"
e2e_assert_eq 1 "$(e2e_sql 'select 1')" "e2e_sql"

e2e_runtime_stop TERM 30 || e2e_fail "the runtime had to be killed"
e2e_assert_eq 0 "$E2E_RUNTIME_STATUS" "exit status after SIGTERM"
e2e_wait_for_port_closed "$SHIELD_TEST_HTTP_PORT" 5
e2e_assert_contains "$(cat "$E2E_RUNTIME_LOG")" "shutdown complete" "runtime log"
echo "ok: e2e helpers work against the runtime"
