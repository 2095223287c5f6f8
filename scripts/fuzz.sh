#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 10). Needs a nightly toolchain;
# installs cargo-fuzz if missing. For a long hunt: scripts/fuzz.sh 3600
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-10}
if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz: no nightly toolchain (rustup toolchain install nightly); skipped" >&2
  exit 0
fi
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz >&2
# Real inputs to start from, where the project has them.
seeds() {
  case $1 in
    raw_pickle) echo "../tests/fixtures/pickles" ;;
    mjpeg) echo "../tests/fixtures/mjpeg" ;;
  esac
}
for target in $(cargo +nightly fuzz list); do
  echo "fuzz: $target for ${seconds}s" >&2
  log=$(mktemp)
  mkdir -p "corpus/$target"
  # shellcheck disable=SC2046 # seeds() yields zero or one directory
  if ! cargo +nightly fuzz run "$target" "corpus/$target" $(seeds "$target") -- -max_total_time="$seconds" -rss_limit_mb=2048 >"$log" 2>&1; then
    grep -E "panicked|ERROR|SUMMARY|Test unit written" "$log" >&2 || tail -20 "$log" >&2
    echo "fuzz: $target FAILED; reproduce with: cd fuzz && cargo +nightly fuzz run $target artifacts/$target/<file>" >&2
    rm -f "$log"
    exit 1
  fi
  grep -E "^Done" "$log" >&2 || true
  rm -f "$log"
done
