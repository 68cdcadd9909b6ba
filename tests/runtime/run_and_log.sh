#!/usr/bin/env bash
# `shield-runtime run FILE` exits with the file's status (a number, false is 1,
# an error is 1 and is logged, nothing is 0), and every log event is one line in
# both formats, a multi-line message (a traceback) included.
set -u
. "$(dirname "$0")/../lib/runtime.sh"

cfg() { # cfg FORMAT: a run configuration logging in FORMAT
  printf 'local c = dofile("%s/tests/runtime/run.cfg.lua")\nc.log = { format = "%s" }\nreturn c\n' "$src" "$1" \
    > "$T/$1.cfg.lua"
  echo "$T/$1.cfg.lua"
}
run_lua() { # run_lua FORMAT BODY: runs BODY as a file; its stderr in $T/err
  printf '%s\n' "$2" > "$T/main.lua"
  (cd "$src" && "$bin" --config "$(cfg "$1")" run "$T/main.lua") 2> "$T/err"
}

run_lua text 'return 7'; check "a number is the exit status" test $? -eq 7
run_lua text 'return false'; check "false exits 1" test $? -eq 1
run_lua text 'return'; check "nothing exits 0" test $? -eq 0
run_lua text 'local function deep() error("boom") end deep()'
check "an error exits 1" test $? -eq 1
check "... and is logged with its traceback on one line" \
  grep -qE '^[^ ]+ error +run\[[0-9]+\] [^ ]*main.lua:1: boom\\nstack traceback:\\n.*deep' "$T/err"

run_lua text 'require("shield").log.warn("first\nsecond\nthird")'
check "shield.log.warn: one text line for a three-line message" test "$(grep -c . "$T/err")" -eq 1
check "... with the newlines escaped" grep -q 'warn .*first\\nsecond\\nthird$' "$T/err"

run_lua json 'require("shield").log.error("a\nb")'
check "json: one line" test "$(grep -c . "$T/err")" -eq 1
check "... that parses, with the message whole" python3 -c '
import json, sys
e = json.loads(open(sys.argv[1]).read())
assert e["msg"] == "a\nb" and e["level"] == "error" and e["role"] == "run", e' "$T/err"
finish
