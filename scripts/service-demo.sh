#!/usr/bin/env bash
# The service part of README command (1): start `sinhtrac serve` on a fresh embedded gallery (var/demo),
# enrol a sample of LFW identities for two tenants (a social-insurance agency and a bank), run both
# Python example flows against it and print their decisions, then stop the server gracefully.
# Needs scripts/setup.sh (models, the examples' Python venv) and a release build.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
shared=${SINHTRAC_SHARED:-$root/../shared}
lfw=$(cd "$shared/datasets/lfw/images" && pwd)
pad=$(cd "$shared/datasets/face_pad_samples" && pwd)
bin=${CARGO_TARGET_DIR:-$root/target}/release/sinhtrac
py=$root/.venv-examples/bin/python
state=${SINHTRAC_DEMO_DIR:-$root/var/demo}
[ -x "$bin" ] || { echo "service-demo: build first: cargo build --release -p sinhtrac-server" >&2; exit 1; }
[ -x "$py" ] || { echo "service-demo: run scripts/setup.sh first (examples venv)" >&2; exit 1; }
rm -rf "$state"
mkdir -p "$state"
ins_key=demo-insurance-key
bank_key=demo-bank-key

"$bin" serve --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
  --gallery "$state/gallery.db" --audit-log "$state/audit.jsonl" \
  --api-key "insurance:$ins_key" --api-key "bank:$bank_key" >"$state/serve.out" 2>"$state/serve.log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 120); do
  grep -q "listening on" "$state/serve.out" 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || { cat "$state/serve.log" >&2; exit 1; }
  sleep 0.5
done
addr=$(sed -n 's/^sinhtrac: listening on //p' "$state/serve.out")
[ -n "$addr" ] || { echo "service-demo: the server did not start" >&2; cat "$state/serve.log" >&2; exit 1; }
echo "== sinhtrac serve on $addr ($(sed -n 's/^sinhtrac: metrics on //p' "$state/serve.out"))"

client() { local key=$1; shift; "$bin" client --addr "http://$addr" --api-key "$key" "$@"; }
echo "== insurance gallery: the first 300 LFW identities with 2+ images (EnrollBatch)"
client "$ins_key" enroll-dir "$lfw" --limit 300 --min-images 2 --prefix VN- --duplicates flag
echo "== insurance gallery: the same person enrolled a second time under another id (benefit fraud)"
client "$ins_key" enroll VN-DUP-0001 "$lfw/Colin_Powell/Colin_Powell_0049.jpg" --duplicates allow >/dev/null
echo "== bank gallery: the first 100 LFW identities with 2+ images as existing customers"
client "$bank_key" enroll-dir "$lfw" --limit 100 --min-images 2 --prefix CUST- --duplicates flag

cd "$root/examples/python"
claim() { echo "-- claim check: $1"; shift; "$py" insurance_claim.py --addr "$addr" --api-key "$ins_key" "$@"; }
ekyc() { echo "-- eKYC onboarding: $1"; shift; "$py" bank_ekyc.py --addr "$addr" --api-key "$bank_key" "$@"; }
echo "== social-insurance claim check (examples/python/insurance_claim.py)"
claim "genuine claimant" --claimant VN-Ariel_Sharon --photo "$lfw/Ariel_Sharon/Ariel_Sharon_0030.jpg"
claim "claimant enrolled under a second identity, with a gallery sweep" \
  --claimant VN-Colin_Powell --photo "$lfw/Colin_Powell/Colin_Powell_0071.jpg" --sweep
claim "someone else claiming" --claimant VN-Bill_Gates --photo "$lfw/Ariel_Sharon/Ariel_Sharon_0045.jpg"
echo "== bank eKYC onboarding (examples/python/bank_ekyc.py)"
ekyc "new customer" --customer NEW-0001 --selfie "$lfw/Serena_Williams/Serena_Williams_0003.jpg" \
  --card-photo "$lfw/Serena_Williams/Serena_Williams_0001.jpg"
ekyc "printed-photo spoof" --customer NEW-0002 --selfie "$pad/minivision_image_F1.jpg" \
  --card-photo "$lfw/Serena_Williams/Serena_Williams_0014.jpg"
ekyc "existing customer opening a second account" --customer NEW-0003 \
  --selfie "$lfw/Angelina_Jolie/Angelina_Jolie_0002.jpg" --card-photo "$lfw/Angelina_Jolie/Angelina_Jolie_0008.jpg"

cd "$root"
fvc=$(cd "$shared/datasets/fingerprints/fvc2002/DB1_B" && pwd)
decision() { grep -E '^\s+(score|threshold|r#match|model_id):' | head -4 | tr -s ' ' | tr '\n' ' '; echo; }
echo "== pensioner with face + right index fingerprint (FVC2002 DB1_B, ISO position 2)"
client "$ins_key" enroll PENSION-101 "$lfw/Tony_Blair/Tony_Blair_0018.jpg" "finger:2:$fvc/101_1.tif" >/dev/null
echo "-- fingerprint claim, same finger:     $(client "$ins_key" verify PENSION-101 "finger:2:$fvc/101_3.tif" | decision)"
echo "-- fingerprint claim, another finger:  $(client "$ins_key" verify PENSION-101 "finger:2:$fvc/105_2.tif" | decision)"
echo "-- face + fingerprint, fused:          $(client "$ins_key" verify PENSION-101 "$lfw/Tony_Blair/Tony_Blair_0032.jpg" --also "finger:2:$fvc/101_3.tif" | decision)"
candidates() { grep -E '^ {12}(subject_id|score):' | tr -s ' ' | tr '\n' ' '; echo; }
echo "-- who is this? face + fingerprint, fused 1:N: $(client "$ins_key" identify "$lfw/Tony_Blair/Tony_Blair_0032.jpg" --also "finger:2:$fvc/101_3.tif" --top-k 3 | candidates)"

kill -TERM "$pid"
wait "$pid"
trap - EXIT
echo "== server stopped cleanly; $(wc -l <"$state/audit.jsonl") audited decisions in $state/audit.jsonl"
