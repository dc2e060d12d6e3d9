#!/usr/bin/env python3
"""Bank eKYC onboarding: (1) passive liveness on the selfie, (2) compare the selfie with the photo read
from the ID card's chip, (3) check the new customer against existing customers, (4) enrol.
Prints one JSON line per step and the onboarding outcome.

    bank_ekyc.py --customer CUST-9 --selfie selfie.jpg --card-photo chip.jpg [--addr ...] [--api-key ...]
"""
import argparse
import sys

import grpc

from sinhtrac_client import connect, face, pb, reason, show


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customer", required=True, help="new customer id")
    ap.add_argument("--selfie", required=True)
    ap.add_argument("--card-photo", required=True, help="face image read from the ID card chip")
    ap.add_argument("--addr")
    ap.add_argument("--api-key")
    ap.add_argument("--ca", help="CA certificate for a TLS server")
    args = ap.parse_args()
    stub = connect(args.addr, args.api_key, args.ca)
    ref = f"ekyc:{args.customer}"

    def reject(why):
        show("outcome", onboarded=False, why=why)
        return 0

    live = stub.CheckLiveness(pb.CheckLivenessRequest(image=face(args.selfie).face_image,
                                                      client_reference=ref), timeout=30)
    show("liveness", live=live.liveness.live, score=round(live.liveness.score, 4),
         threshold=live.liveness.threshold, models=list(live.liveness.model_ids))
    if not live.liveness.live:
        return reject("the selfie failed the liveness check (possible spoof)")

    cmp = stub.Compare(pb.CompareRequest(a=face(args.selfie), b=face(args.card_photo),
                                         client_reference=ref), timeout=30)
    d = cmp.decision
    show("compare", match=d.match, score=round(d.score, 4), threshold=round(d.threshold, 4),
         target_fmr=d.target_fmr, request_id=cmp.request_id)
    if not d.match:
        return reject("the selfie does not match the ID card photo")

    ident = stub.Identify(pb.IdentifyRequest(probe=pb.Biometric(template=cmp.template_b), top_k=3,
                                             client_reference=ref), timeout=30)
    existing = [[c.subject_id, round(c.score, 4)] for c in ident.candidates]
    show("identify", existing_customers=existing, gallery_size=ident.gallery_size)
    if existing:
        return reject("already a customer as " + existing[0][0])

    try:
        e = stub.Enroll(pb.EnrollRequest(subject_id=args.customer, biometrics=[face(args.card_photo)],
                                         duplicate_policy=pb.DUPLICATE_POLICY_REJECT,
                                         metadata={"source": "ekyc"}, client_reference=ref), timeout=30)
    except grpc.RpcError as err:
        show("enroll", error=err.code().name, reason=reason(err), message=err.details())
        return reject(f"enrolment refused: {reason(err) or err.code().name}")
    show("enroll", subject_id=e.subject_id, templates=len(e.templates), request_id=e.request_id)
    show("outcome", onboarded=True, why="live selfie matches the ID card; new customer enrolled")
    return 0


if __name__ == "__main__":
    sys.exit(main())
