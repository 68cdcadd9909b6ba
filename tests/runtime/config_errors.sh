#!/usr/bin/env bash
# Each broken configuration gives one clear line naming the file and the key
# path, exit status 1, and starts nothing.
set -u
bin=${SHIELD_BIN:?}
src=${SHIELD_SOURCE_DIR:?}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fails=0 passes=0

# expect NAME CONFIG_BODY EXPECTED_LINE
expect() {
  local name=$1 body=$2 want=$3 cfg="$dir/$1.lua"
  printf '%s\n' "$body" > "$cfg"
  local out status
  out=$(cd "$src" && "$bin" --config "$cfg" --check 2>&1 >/dev/null)
  status=$?
  if [[ $status -eq 1 && "$out" == "$cfg: $want" ]]; then
    passes=$((passes + 1))
  else
    echo "FAIL $name: status $status"
    echo "  want: $cfg: $want"
    echo "  got:  $out"
    fails=$((fails + 1))
  fi
}

expect wrong_type 'return { pool = { size = "four" } }' \
  'pool.size: expected an integer from 1 to 256, got "four"'
expect out_of_range 'return { pool = { concurrency = 0 } }' \
  'pool.concurrency: expected an integer from 1 to 4096, got 0'
expect not_integer 'return { pool = { batch_size = 2.5 } }' \
  'pool.batch_size: expected an integer from 1 to 10000, got 2.5'
expect unknown_key 'return { pool = { sise = 4 } }' \
  'pool.sise: unknown key'
expect unknown_section 'return { pools = {} }' \
  'pools: unknown key'
expect section_type 'return { redis = "redis://x" }' \
  'redis: expected a table, got "redis://x"'
expect bad_url 'return { redis = { url = "http://127.0.0.1:1" } }' \
  'redis.url: expected a URL starting with redis:// or unix://, got "http://127.0.0.1:1"'
expect bad_listen 'return { http = { listen = "8000" } }' \
  'http.listen: expected "host:port", got "8000"'
expect bad_level 'return { log = { level = "loud" } }' \
  'log.level: expected one of debug, info, warn, error, got "loud"'
expect not_table 'return 42' \
  'the file must return a table, got 42'
expect missing_script 'return { script = "scripts/nope.lua" }' \
  "script: file \"scripts/nope.lua\" not found (looked in the working folder and in $dir)"

# A Lua syntax error names the file and line.
printf 'return {\n  pool = { size = 4 \n' > "$dir/syntax.lua"
out=$("$bin" --config "$dir/syntax.lua" --check 2>&1); status=$?
if [[ $status -eq 1 && "$out" == "$dir/syntax.lua:3: '}' expected (to close '{' at line 2) near '<eof>'" ]]; then
  passes=$((passes + 1))
else
  echo "FAIL syntax: status $status: $out"; fails=$((fails + 1))
fi

# A missing file.
out=$("$bin" --config "$dir/absent.lua" --check 2>&1); status=$?
if [[ $status -eq 1 && "$out" == "$dir/absent.lua: cannot read the configuration file: No such file or directory" ]]; then
  passes=$((passes + 1))
else
  echo "FAIL missing: status $status: $out"; fails=$((fails + 1))
fi

# Every problem is listed, one per line.
printf 'return { pool = { size = 0, sise = 1 }, http = { listen = 1 } }\n' > "$dir/many.lua"
out=$("$bin" --config "$dir/many.lua" --check 2>&1); status=$?
if [[ $status -eq 1 && $(printf '%s\n' "$out" | wc -l) -eq 3 ]]; then
  passes=$((passes + 1))
else
  echo "FAIL many: status $status: $out"; fails=$((fails + 1))
fi

# Nothing was started: the supervisor refuses too.
out=$("$bin" --config "$dir/wrong_type.lua" 2>&1); status=$?
if [[ $status -eq 1 && "$out" == *'pool.size: expected an integer'* && "$out" != *'worker'* ]]; then
  passes=$((passes + 1))
else
  echo "FAIL supervisor refuses: status $status: $out"; fails=$((fails + 1))
fi

# A good config checks out.
printf 'return { script = "scripts/noop.lua" }\n' > "$dir/good.lua"
out=$(cd "$src" && "$bin" --config "$dir/good.lua" --check 2>&1); status=$?
if [[ $status -eq 0 && "$out" == "$dir/good.lua: ok (script $src/scripts/noop.lua, version "* ]]; then
  passes=$((passes + 1))
else
  echo "FAIL good: status $status: $out"; fails=$((fails + 1))
fi

# Settings the script's init rejects fail the check too, naming the key.
printf 'return { script = "scripts/lightrag.lua", lightrag = { llm = { provider = "olama" } } }\n' > "$dir/settings.lua"
out=$(cd "$src" && "$bin" --config "$dir/settings.lua" --check 2>&1); status=$?
if [[ $status -eq 1 && "$out" == *'init failed: lightrag.llm.provider: one of ollama, openai expected, got olama'* ]]; then
  passes=$((passes + 1))
else
  echo "FAIL settings: status $status: $out"; fails=$((fails + 1))
fi

echo "$passes passed, $fails failed"
[[ $fails -eq 0 ]]
