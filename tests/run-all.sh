#!/usr/bin/env bash
# The project's test command (README, CI): builds build/ and runs every ctest
# test there (C tests, busted specs, end-to-end tests), then does the same in
# build-asan/ with AddressSanitizer and UBSan. Exits non-zero if any fails.
# Extra arguments go to both ctest runs (e.g. -R harness). SHIELD_BUILD moves
# the build folders (SHIELD_BUILD and SHIELD_BUILD-asan); SHIELD_TEST_JOBS sets -j.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${SHIELD_BUILD:-$root/build}
jobs=${SHIELD_TEST_JOBS:-2}
failed=()
summary=()

# suite NAME BUILD_DIR CMAKE_ARGS... -- CTEST_ARGS...
suite() {
  local name=$1 build=$2 log
  shift 2
  local cmake_args=()
  while (($#)) && [[ $1 != -- ]]; do
    cmake_args+=("$1")
    shift
  done
  shift
  log=$build/ctest.log
  echo "=== $name: build in $build"
  if ! cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${cmake_args[@]}" >/dev/null ||
    ! cmake --build "$build" -j"$jobs"; then
    failed+=("$name: build")
    summary+=("$name: build failed")
    return
  fi
  echo "=== $name: ctest -j$jobs"
  ctest --test-dir "$build" -j"$jobs" --output-on-failure "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  summary+=("$name: $(grep -E 'tests passed|No tests were found' "$log" | tail -n 1)")
  if ((rc != 0)); then
    failed+=("$name")
    summary+=("$(sed -n '/The following tests FAILED/,$p' "$log")")
  fi
}

suite release "$build" -- "$@"

# LeakSanitizer stays on: the runtime frees what it allocates, and LuaJIT's own
# allocator maps its memory outside malloc. UBSan stops at the first report.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
# Debug: the sanitizer run also keeps the assertions (RelWithDebInfo drops them).
suite asan "$build-asan" -DSHIELD_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug -- "$@"

echo
echo "=== summary"
printf '%s\n' "${summary[@]}"
if ((${#failed[@]})); then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "all tests passed"
