#!/usr/bin/env bash
# The README's test command: set-up, formatting, lints, every test, and a short run of
# every fuzz target where a nightly toolchain is installed (scripts/fuzz.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo fmt --check
cargo fmt --check --manifest-path fuzz/Cargo.toml
cargo clippy --locked --all-targets -- -D warnings
scripts/fuzz.sh "${FUZZ_SECONDS:-10}"
# Last, so that its summary closes the output.
cargo nextest run --locked
