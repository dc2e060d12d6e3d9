#!/usr/bin/env bash
# README command (1): install everything, build, run the main job on the embedded defaults (face
# comparison, liveness and the LFW evaluation), then the gRPC service with both example client flows.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
cd "$root"
cargo build --release --locked -p sinhtrac-server
"${CARGO_TARGET_DIR:-$root/target}/release/sinhtrac" demo "$@"
# The gRPC service on an embedded gallery, with both example flows (insurance claim check, bank eKYC).
"$root/scripts/service-demo.sh"
