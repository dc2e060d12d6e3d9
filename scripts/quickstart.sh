#!/usr/bin/env bash
# README command (1): install everything, build, and run the main job on the embedded defaults.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
cd "$root"
cargo build --release --locked -p sinhtrac-server
./target/release/sinhtrac demo "$@"
