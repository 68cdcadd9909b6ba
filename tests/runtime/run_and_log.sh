#!/usr/bin/env bash
# The command line (--version, --help, a usage error), `shield-runtime run
# FILE`'s exit status (a number, false is 1, an error is 1 and is logged, nothing
# is 0), and the log: one line per event in both formats (a traceback
# included), the text fields, log.level filtering.
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

run_lua text 'local shield = require("shield")
local function fails() error("lost in a thread") end
shield.spawn(fails)
shield.sleep(10)'
check "a spawned thread nobody joins logs its error with the traceback" \
  grep -qE 'error +run\[[0-9]+\] light thread failed: [^ ]*main.lua:2: lost in a thread\\nstack traceback:.*main.lua:2' "$T/err"

run_lua text 'require("shield").log.warn("first\nsecond\nthird")'
check "shield.log.warn: one text line for a three-line message" test "$(grep -c . "$T/err")" -eq 1
check "... with the newlines escaped" grep -q 'warn .*first\\nsecond\\nthird$' "$T/err"

run_lua json 'require("shield").log.error("a\nb")'
check "json: one line" test "$(grep -c . "$T/err")" -eq 1
check "... that parses, with the message whole" python3 -c '
import json, sys
e = json.loads(open(sys.argv[1]).read())
assert e["msg"] == "a\nb" and e["level"] == "error" and e["role"] == "run", e' "$T/err"

run_lua text 'local log = require("shield").log
log.info("visible at info")
log.debug("hidden at info")'
check "text lines: time, level, role[pid], message" \
  grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{3}Z info  run\[[0-9]+\] visible at info$' "$T/err"
check "log.level info leaves debug out" test "$(grep -c 'hidden at info' "$T/err")" -eq 0
printf 'local c = dofile("%s")\nc.log.level = "warn"\nreturn c\n' "$(cfg text)" > "$T/warn.cfg.lua"
printf 'local log = require("shield").log\nlog.info("an info")\nlog.warn("a warning")\n' > "$T/main.lua"
(cd "$src" && "$bin" --config "$T/warn.cfg.lua" run "$T/main.lua") 2> "$T/err"
check "log.level warn: warnings only" test "$(grep -c 'a warning' "$T/err") $(grep -c 'an info' "$T/err")" = "1 0"

out=$("$bin" --version); check "--version exits 0" test $? -eq 0
check "... printing the name and version" grep -qE '^shield-runtime [0-9]+\.[0-9]+\.[0-9]+$' <<<"$out"
out=$("$bin" --help); check "--help exits 0" test $? -eq 0
check "... printing the usage" grep -q '^usage: shield-runtime' <<<"$out"
"$bin" --no-such-flag > /dev/null 2> "$T/err"; check "an unknown flag is a usage error (exit 2)" test $? -eq 2
check "... naming it" grep -q "unknown argument .--no-such-flag." "$T/err"
finish
