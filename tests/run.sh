#!/usr/bin/env bash
# Runs the test tiers and prints one closing line "N passed, N failed" over all of them.
#   tests/run.sh unit|integration|all [BUILD_DIR]
# The unit tier runs every BUILD_DIR/tests/test_* binary (each prints "name: N passed, N failed");
# the integration tier runs pytest under /usr/bin/python3 (Debian's, with scipy) on
# tests/integration against BUILD_DIR/abgate.
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

run_integration() {
  local out rc
  out=$(ABGATE_BIN="$(cd "$build" && pwd)/abgate" /usr/bin/python3 -m pytest -q -p no:cacheprovider \
        tests/integration 2>&1)
  rc=$?
  printf '%s\n' "$out" | tail -n 60
  count "$(tail -n 1 <<<"$out")"
  if [ $rc -ne 0 ] && [ $rc -ne 1 ]; then
    echo "pytest exited with status $rc"
    failed=$((failed + 1))
  fi
}

case "$tier" in
  unit) run_unit ;;
  integration) run_integration ;;
  all) run_unit; run_integration ;;
  *) echo "tests/run.sh: unknown tier '$tier' (unit, integration, all)" >&2; exit 1 ;;
esac

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
