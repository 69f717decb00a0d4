#!/usr/bin/env bash
# Runs the test tiers and prints one closing line "N passed, N failed" over all of them.
#   tests/run.sh unit|integration|asan|fuzz|all [BUILD_DIR]
# unit: every BUILD_DIR/tests/test_* binary (each prints "name: N passed, N failed").
# integration: pytest under /usr/bin/python3 (Debian's, with scipy) on tests/integration against
#   BUILD_DIR/abgate, twice: socket I/O batched through io_uring (the default), then one system
#   call per read and write (io_uring: false).
# asan: both tiers again against the sanitizer build (BUILD_DIR/asan: AddressSanitizer,
#   UndefinedBehaviorSanitizer, LeakSanitizer); every report goes to a file, and any file
#   written counts as a failure.
# fuzz: each libFuzzer driver in BUILD_DIR/fuzz for a short smoke period over its seed corpus.
set -u
tier=${1:-all}
build=${2:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
passed=0
failed=0

count() { # adds the counts found in a "N passed, M failed" style text
  local text=$1 p f e
  p=$(grep -oE '[0-9]+ passed' <<<"$text" | tail -1 | grep -oE '[0-9]+')
  f=$(grep -oE '[0-9]+ failed' <<<"$text" | tail -1 | grep -oE '[0-9]+')
  e=$(grep -oE '[0-9]+ errors?' <<<"$text" | tail -1 | grep -oE '[0-9]+')
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0} + ${e:-0}))
}

run_unit() {
  local t out rc
  for t in "$build"/tests/test_*; do
    [ -x "$t" ] || continue
    out=$("$t" 2>&1)
    rc=$?
    printf '%s\n' "$out" | tail -n 30
    count "$(tail -n 1 <<<"$out")"
    if [ $rc -ne 0 ] && ! grep -qE '[1-9][0-9]* failed' <<<"$(tail -n 1 <<<"$out")"; then
      echo "$t: exited with status $rc"
      failed=$((failed + 1))
    fi
  done
}

run_integration() { # extra pytest arguments may follow
  local out rc
  out=$(ABGATE_BIN="$(cd "$build" && pwd)/abgate" /usr/bin/python3 -m pytest -q -p no:cacheprovider \
        tests/integration "$@" 2>&1)
  rc=$?
  printf '%s\n' "$out" | tail -n 60
  count "$(tail -n 1 <<<"$out")"
  if [ $rc -ne 0 ] && [ $rc -ne 1 ]; then
    echo "pytest exited with status $rc"
    failed=$((failed + 1))
  fi
}

run_asan() {
  local reports="$root/$build/asan/reports" saved=$build n
  rm -rf "$reports"
  mkdir -p "$reports"
  export ASAN_OPTIONS="log_path=$reports/asan:detect_leaks=1"
  export UBSAN_OPTIONS="log_path=$reports/ubsan:print_stacktrace=1:halt_on_error=0"
  echo "== sanitizer build: unit and integration tiers =="
  build="$saved/asan"
  run_unit
  run_integration
  build=$saved
  unset ASAN_OPTIONS UBSAN_OPTIONS
  n=$(find "$reports" -type f | wc -l)
  if [ "$n" -gt 0 ]; then
    echo "sanitizer reports: $n (in $reports)"
    find "$reports" -type f | head -5 | while read -r f; do head -40 "$f"; done
    failed=$((failed + n))
  else
    echo "sanitizer reports: 0"
  fi
}

run_fuzz() {
  local out
  if ! ls "$build"/fuzz/fuzz_* >/dev/null 2>&1; then
    echo "fuzz drivers not built (make fuzz)"
    failed=$((failed + 1))
    return
  fi
  out=$(bash tests/fuzz/run.sh "${FUZZ_TIME:-10}" "$build/fuzz" 2>&1)
  printf '%s\n' "$out" | tail -n 20
  count "$(tail -n 1 <<<"$out")"
}

# The integration tier once more with the data path making one system call per socket read
# and write (io_uring: false in every configuration the harness writes), the path taken where
# the kernel refuses io_uring. The minute-long soak runs in the other passes only.
run_integration_direct() {
  echo "== integration tier, socket I/O call by call (io_uring: false) =="
  ABGATE_TEST_IO_URING=false run_integration --deselect tests/integration/test_soak.py
}

case "$tier" in
  unit) run_unit ;;
  integration) run_integration; run_integration_direct ;;
  asan) run_asan ;;
  fuzz) run_fuzz ;;
  all) run_unit; run_integration; run_integration_direct; run_asan; run_fuzz ;;
  *) echo "tests/run.sh: unknown tier '$tier' (unit, integration, asan, fuzz, all)" >&2; exit 1 ;;
esac

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
