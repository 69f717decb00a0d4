#!/usr/bin/env bash
# Installs the Debian packages abgate needs to build, test and benchmark.
# Idempotent and quiet when everything is already there.
#   scripts/deps.sh          build + run dependencies
#   scripts/deps.sh test     also the test tools
#   scripts/deps.sh bench    also the benchmark peers
set -eu

build_pkgs="gcc make pkg-config libevent-dev libssl-dev libcjson-dev libgsl-dev libyaml-dev liburing-dev"
test_pkgs="curl wrk openssl python3 python3-pytest python3-scipy python3-statsmodels prometheus clang libclang-rt-14-dev chromium"
bench_pkgs="wrk nginx-light haproxy strace python3-pandas time"

want="$build_pkgs"
for arg in "$@"; do
  case "$arg" in
    test) want="$want $test_pkgs" ;;
    bench) want="$want $test_pkgs $bench_pkgs" ;;
    *) echo "deps.sh: unknown argument '$arg' (use: test, bench)" >&2; exit 1 ;;
  esac
done

missing=""
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "deps.sh: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
