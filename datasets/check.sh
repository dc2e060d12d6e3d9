#!/usr/bin/env bash
# Check that the evaluation datasets are where tests and `sinhtrac eval` expect them.
# Usage: datasets/check.sh [DATASETS_DIR]   (default $SINHTRAC_SHARED/datasets, else ../shared/datasets)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-${SINHTRAC_SHARED:-$here/../../shared}/datasets}
fail=0
need() { [ -e "$dir/$1" ] || { echo "datasets: MISSING $dir/$1 ($2)" >&2; fail=1; }; }
need lfw/pairs.txt "LFW View-2 pairs"
need lfw/images/Aaron_Peirsol/Aaron_Peirsol_0001.jpg "LFW deep-funneled images"
need face_pad_samples/minivision_image_T1.jpg "liveness samples"
for db in fvc2000/DB1_B fvc2000/DB2_B fvc2000/DB3_B fvc2000/DB4_B fvc2002/DB1_B; do
  need "fingerprints/$db/101_1.tif" "FVC $db"
done
[ "$fail" = 0 ] || { echo "datasets: see above; set SINHTRAC_SHARED to the folder holding datasets/" >&2; exit 1; }
n=$(find "$dir/lfw/images" -name '*.jpg' | wc -l)
[ "$n" -ge 7701 ] || { echo "datasets: expected 7701 LFW images in $dir/lfw/images, found $n" >&2; exit 1; }
echo "setup: datasets ok: $dir"
