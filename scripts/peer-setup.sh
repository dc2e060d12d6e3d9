#!/usr/bin/env bash
# Install the Python peers (what users would run instead) into .venv-peer/ for comparisons in one run:
# onnxruntime + OpenCV for the face pipeline. Idempotent.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv-peer"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" 2>/dev/null || { apt-get install -y -qq python3-venv >/dev/null && python3 -m venv "$venv"; }
fi
"$venv/bin/python" -c "import onnxruntime, cv2, numpy" 2>/dev/null || \
  "$venv/bin/pip" install -q onnxruntime==1.32.0 opencv-python-headless numpy
echo "peer-setup: ok ($venv)"
