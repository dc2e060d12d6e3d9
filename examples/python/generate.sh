#!/usr/bin/env bash
# Generate the Python stubs of sinhtrac.v1 from the one copy of the protos (server/proto) into
# examples/python/gen/ (not committed). Usage: generate.sh [python]  (default: .venv-examples/bin/python).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
py=${1:-$root/.venv-examples/bin/python}
rm -rf "$here/gen"
mkdir -p "$here/gen"
"$py" -m grpc_tools.protoc -I "$root/server/proto" \
  --python_out="$here/gen" --grpc_python_out="$here/gen" --pyi_out="$here/gen" \
  "$root/server/proto/sinhtrac/v1/sinhtrac.proto"
touch "$here/gen/sinhtrac/__init__.py" "$here/gen/sinhtrac/v1/__init__.py"
