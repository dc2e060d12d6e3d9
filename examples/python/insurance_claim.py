#!/usr/bin/env python3
"""Social-insurance claim check: before paying a benefit, (1) verify 1:1 that the claimant is the
enrolled person, with liveness on the live photo, (2) identify the photo against the whole gallery to
find the same face enrolled under other identities, (3) run a gallery-wide duplicate sweep.
With `--finger POSITION:PATH` (a fingerprint taken at the office) steps 1 and 2 are fused: face and
finger decide together, for claimants whose face alone is unreliable.
Prints one JSON line per step and the payment decision.

    insurance_claim.py --claimant VN-0012 --photo claimant.jpg [--finger 2:right-index.tif]
                       [--addr host:port] [--api-key KEY]
"""
import argparse
import sys

import grpc

from sinhtrac_client import connect, face, finger, pb, reason, show


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--claimant", required=True, help="enrolled subject id of the claimant")
    ap.add_argument("--photo", required=True, help="photo taken at the benefit office")
    ap.add_argument("--finger", help="POSITION:PATH of a fingerprint taken with the photo (fused)")
    ap.add_argument("--addr")
    ap.add_argument("--api-key")
    ap.add_argument("--ca", help="CA certificate for a TLS server")
    ap.add_argument("--sweep", action="store_true", help="also run the gallery-wide duplicate sweep")
    args = ap.parse_args()
    stub = connect(args.addr, args.api_key, args.ca)
    ref = f"claim-check:{args.claimant}"
    also = [finger(args.finger)] if args.finger else []

    try:
        v = stub.Verify(pb.VerifyRequest(subject_id=args.claimant, probe=face(args.photo),
                                         check_liveness=True, additional_probes=also,
                                         client_reference=ref), timeout=30)
    except grpc.RpcError as e:
        show("verify", error=e.code().name, reason=reason(e), message=e.details())
        show("outcome", pay=False, why=f"verification failed: {reason(e) or e.code().name}")
        return 0
    d = v.decision
    show("verify", match=d.match, score=round(d.score, 4), threshold=round(d.threshold, 4),
         target_fmr=d.target_fmr, model=d.model_id, live=v.liveness.live,
         liveness=round(v.liveness.score, 4), request_id=v.request_id,
         probe_scores=[[pb.Modality.Name(p.modality), round(p.score, 4)] for p in v.probe_scores])

    ident = stub.Identify(pb.IdentifyRequest(probe=face(args.photo), additional_probes=also, top_k=5,
                                             client_reference=ref), timeout=30)
    others = [c.subject_id for c in ident.candidates if c.subject_id != args.claimant]
    show("identify", candidates=[[c.subject_id, round(c.score, 4)] for c in ident.candidates],
         other_identities=others, gallery_size=ident.gallery_size, model=ident.model_id,
         request_id=ident.request_id)

    if args.sweep:
        job = stub.StartDuplicateSweep(pb.StartDuplicateSweepRequest(max_pairs=100), timeout=30)
        for state in stub.WatchJob(pb.WatchJobRequest(job_id=job.job_id), timeout=600):
            pass
        result = stub.GetJobResult(pb.GetJobResultRequest(job_id=job.job_id), timeout=30)
        show("sweep", templates=result.templates_swept, threshold=round(result.threshold, 4),
             pairs=[[p.subject_a, p.subject_b, round(p.score, 4)] for p in result.pairs])

    why = []
    if not d.match:
        why.append("the photo does not match the enrolled claimant")
    if not v.liveness.live:
        why.append("the photo failed the liveness check")
    if others:
        why.append("the person is also enrolled as " + ", ".join(others))
    show("outcome", pay=not why, why="; ".join(why) or "verified, live, no other identity")
    return 0


if __name__ == "__main__":
    sys.exit(main())
