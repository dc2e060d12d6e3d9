#!/usr/bin/env bash
# Idempotent, non-interactive set-up for a fresh Debian bookworm machine (as root, or a user with sudo).
# Installs system packages, the ONNX Runtime shared library (from the PyPI onnxruntime wheel, pinned and
# checksummed), links and verifies the models, and checks that the datasets are where tests expect them.
# Environment:
#   SINHTRAC_HOME        where the runtime library lives (default ~/.cache/sinhtrac)
#   SINHTRAC_SHARED      the shared folder with models/ and datasets/ (default ../shared beside the checkout)
#   SINHTRAC_MODELS_SRC  where model weights come from (default $SINHTRAC_SHARED/models)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
home=${SINHTRAC_HOME:-$HOME/.cache/sinhtrac}
shared=${SINHTRAC_SHARED:-$root/../shared}
ort_version=1.32.0
ort_lib_sha256=6c1585d1bbf45b0712ea4a21b705c5fcb4ba04ff2e30f1fbf81a49faf658638f
say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }

# 1. System packages (only what is missing; apt-get update only when needed).
packages=(build-essential pkg-config cmake libopenblas-dev liblapack-dev python3 python3-pip python3-venv fonts-dejavu-core)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  say "installing ${missing[*]}"
  $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || die "cargo not found: install the Rust toolchain (rustup) first"

# 2. ONNX Runtime shared library from the PyPI wheel (no build step downloads anything).
ort_dir="$home/onnxruntime-$ort_version"
ort_lib="$ort_dir/libonnxruntime.so.$ort_version"
if [ ! -f "$ort_lib" ] || [ "$(sha256sum "$ort_lib" | cut -d' ' -f1)" != "$ort_lib_sha256" ]; then
  say "fetching onnxruntime $ort_version from PyPI"
  mkdir -p "$home/dl" "$ort_dir"
  pip=(python3 -m pip)
  "${pip[@]}" --version >/dev/null 2>&1 || die "python3 -m pip is not available"
  "${pip[@]}" download -q "onnxruntime==$ort_version" --no-deps --only-binary=:all: \
    --platform manylinux_2_28_x86_64 --python-version 3.12 -d "$home/dl"
  wheel=$(ls "$home"/dl/onnxruntime-"$ort_version"-*.whl | head -n1)
  python3 - "$wheel" "$ort_lib" <<'PY'
import sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z, open(out + ".part", "wb") as f:
    f.write(z.read("onnxruntime/capi/libonnxruntime.so." + out.rsplit(".so.", 1)[1]))
PY
  got=$(sha256sum "$ort_lib.part" | cut -d' ' -f1)
  [ "$got" = "$ort_lib_sha256" ] || die "onnxruntime library checksum mismatch: expected $ort_lib_sha256, got $got"
  mv "$ort_lib.part" "$ort_lib"
fi
ln -sf "libonnxruntime.so.$ort_version" "$ort_dir/libonnxruntime.so"
say "onnxruntime ok: $ort_dir/libonnxruntime.so"

# 3. Models: linked from the shared folder and verified against models/manifest.tsv.
SINHTRAC_MODELS_SRC=${SINHTRAC_MODELS_SRC:-$shared/models} "$root/models/fetch.sh" >/dev/null
say "models ok: $root/models/weights"

# 4. Datasets: tests and evaluations read them in place; fail loudly when absent.
"$root/datasets/check.sh" "$shared/datasets"

# 5. The Python example client: a venv with grpcio-tools (PyPI), stubs generated from server/proto.
venv=$root/.venv-examples
req=$root/examples/python/requirements.txt
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "creating the examples' Python venv ($venv)"
  python3 -m venv "$venv" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
  echo "$want" >"$stamp"
fi
"$root/examples/python/generate.sh" "$venv/bin/python"
say "examples ok: $venv"
