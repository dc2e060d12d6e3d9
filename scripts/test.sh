#!/usr/bin/env bash
# README command (2): the idempotent set-up, then formatting, lints and every test on real models and data.
# Tests, benches and the CLI share the release profile, so heavy dependencies compile once.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
cd "$root"
export OPENBLAS_NUM_THREADS=1
cargo fmt --all --check
cargo clippy --release --locked --workspace --all-targets -- -D warnings
cargo test --release --locked --workspace
