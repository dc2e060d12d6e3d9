#!/usr/bin/env bash
# Link (or copy) model weights into models/weights/ and verify them against models/manifest.tsv.
# Usage: models/fetch.sh [--copy] [SOURCE_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mode=link
if [ "${1:-}" = "--copy" ]; then mode=copy; shift; fi
src=${1:-${SINHTRAC_MODELS_SRC:-$here/../../shared/models}}
[ -d "$src" ] || { echo "models: source directory '$src' does not exist (set SINHTRAC_MODELS_SRC or pass it)" >&2; exit 1; }
src=$(cd "$src" && pwd)
dest="$here/weights"
mkdir -p "$dest"
fail=0
while IFS=$'\t' read -r id role file sha rest; do
  case "$id" in ''|'#'*|id) continue ;; esac
  if [ ! -f "$src/$file" ]; then
    echo "models: MISSING $file (model '$id') in $src" >&2; fail=1; continue
  fi
  got=$(sha256sum "$src/$file" | cut -d' ' -f1)
  if [ "$got" != "$sha" ]; then
    echo "models: CHECKSUM MISMATCH $src/$file (model '$id'): expected $sha, got $got" >&2; fail=1; continue
  fi
  rm -f "$dest/$file"
  if [ "$mode" = copy ]; then cp "$src/$file" "$dest/$file"; else ln -s "$src/$file" "$dest/$file"; fi
  echo "models: ok $id ($file)"
done < "$here/manifest.tsv"
[ "$fail" = 0 ] || { echo "models: some models are missing or corrupt (see above)" >&2; exit 1; }
