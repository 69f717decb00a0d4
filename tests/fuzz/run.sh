#!/usr/bin/env bash
# Runs every built fuzz driver for a while over a scratch copy of its seed corpus.
#   tests/fuzz/run.sh [SECONDS [FUZZ_DIR]]      (defaults: 10, build/fuzz; build with `make fuzz`)
# Prints "fuzz_X: N execs, C crashes" per driver and a closing line "N passed, N failed" (one
# per driver); exits 1 when any driver crashed (or none is built). The repository's corpus is
# never written: new inputs go to FUZZ_DIR/run/<driver>/corpus, and a crashing input to
# FUZZ_DIR/run/<driver>/ (its name and the full log are printed).
set -u
secs=${1:-10}
fuzz_dir=${2:-build/fuzz}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
passed=0
failed=0

case "$secs" in
  '' | *[!0-9]*) echo "tests/fuzz/run.sh: SECONDS must be a number (got '$secs')" >&2; exit 2 ;;
esac

for bin in "$fuzz_dir"/fuzz_*; do
  [ -f "$bin" ] && [ -x "$bin" ] || continue
  name=$(basename "$bin")
  work="$fuzz_dir/run/$name"
  rm -rf "$work"
  mkdir -p "$work/corpus"
  if [ -d "tests/fuzz/corpus/$name" ]; then
    cp -R "tests/fuzz/corpus/$name/." "$work/corpus/"
  fi
  args=(-max_total_time="$secs" -timeout=5 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$work/")
  [ -f "tests/fuzz/$name.dict" ] && args+=(-dict="tests/fuzz/$name.dict")

  "$bin" "${args[@]}" "$work/corpus" >"$work/log" 2>&1
  rc=$?

  execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$work/log" | tail -1 |
          grep -oE '[0-9]+$')
  if [ -z "$execs" ]; then # no final stats (killed early): the last progress line
    execs=$(grep -oE '^#[0-9]+' "$work/log" | tail -1 | tr -d '#')
  fi
  crashes=$(find "$work" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o \
            -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
  if [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ]; then
    crashes=1 # died without leaving an input (e.g. failed to start)
  fi
  echo "$name: ${execs:-0} execs, $crashes crashes"
  if [ "$crashes" -eq 0 ]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    find "$work" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o \
         -name 'timeout-*' -o -name 'oom-*' \) -exec echo "  reproducer: {}" \;
    echo "  log: $work/log"
    grep -E 'ERROR: |check failed|runtime error|SUMMARY' "$work/log" | head -n 5 | sed 's/^/  /'
  fi
done

if [ $((passed + failed)) -eq 0 ]; then
  echo "tests/fuzz/run.sh: no drivers in $fuzz_dir (run \`make fuzz\` first)" >&2
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
