//! Duplicate sweep: equals naive all-pairs, finds planted duplicates, resumes.

use std::ops::ControlFlow;

use sinhtrac_index::bench::gen::{clustered, random_unit};
use sinhtrac_index::simd::scalar;
use sinhtrac_index::sweep::{sweep, DuplicatePair, SweepCheckpoint, SweepConfig, SweepOutcome};
use sinhtrac_index::{Codec, FlatConfig, FlatIndex, IndexError, SimdLevel};

fn finished(o: SweepOutcome) -> Vec<DuplicatePair> {
    match o {
        SweepOutcome::Finished(p) => p,
        SweepOutcome::Stopped(_) => panic!("sweep stopped"),
    }
}

#[test]
fn sweep_equals_naive_all_pairs() {
    let dim = 24;
    let c = clustered(100, 3, dim, 0.8, 4);
    let ids: Vec<u64> = (0..300).collect();
    let mut cfg = FlatConfig::new(dim, Codec::F32);
    cfg.simd = Some(SimdLevel::Scalar);
    let mut ix = FlatIndex::new(cfg).unwrap();
    ix.extend(&ids, &c.vectors, None).unwrap();
    ix.remove(17).unwrap();
    // Subject = id / 2: pairs (0,1), (2,3)... are one subject.
    let subject = |id: u64| id / 2;
    let th = 0.55;
    let mut sc = SweepConfig::new(th);
    sc.tile_rows = 37;
    let got = finished(sweep(&ix, &sc, subject, None, |_, _| ControlFlow::Continue(())).unwrap());
    let mut want = Vec::new();
    for a in 0..300u64 {
        for b in a + 1..300 {
            if a == 17 || b == 17 || subject(a) == subject(b) {
                continue;
            }
            let s = scalar::dot_f32(&ix.vector(a).unwrap(), &ix.vector(b).unwrap());
            if s >= th {
                want.push(DuplicatePair { a, b, score: s });
            }
        }
    }
    want.sort_by(|x, y| {
        y.score
            .total_cmp(&x.score)
            .then(x.a.cmp(&y.a))
            .then(x.b.cmp(&y.b))
    });
    assert!(!want.is_empty());
    assert_eq!(got, want);
}

#[test]
fn planted_duplicates_found_and_resumable() {
    let dim = 64;
    let n = 3000;
    let mut data = random_unit(n, dim, 11);
    // Plant 50 duplicates: row 2i+1 := noisy copy of row 2i (cos ≈ 0.95).
    let noise = random_unit(50, dim, 12);
    let mut planted = Vec::new();
    for i in 0..50 {
        let (src, dst) = (i * 40, i * 40 + 1);
        for j in 0..dim {
            data[dst * dim + j] = data[src * dim + j] + 0.3 * noise[i * dim + j];
        }
        planted.push((src as u64, dst as u64));
    }
    let ids: Vec<u64> = (0..n as u64).collect();
    for codec in [
        Codec::F32,
        Codec::Sq8 {
            per_dimension: false,
        },
    ] {
        let mut ix = FlatIndex::new(FlatConfig::new(dim, codec).with_rerank_copy()).unwrap();
        ix.extend(&ids, &data, None).unwrap();
        let mut sc = SweepConfig::new(0.85);
        sc.tile_rows = 500;
        let full =
            finished(sweep(&ix, &sc, |id| id, None, |_, _| ControlFlow::Continue(())).unwrap());
        for (a, b) in &planted {
            assert!(
                full.iter().any(|p| p.a == *a && p.b == *b),
                "{codec:?}: planted ({a},{b}) missed"
            );
        }
        assert!(full.windows(2).all(|w| w[0].score >= w[1].score), "ranked");

        // Stop after two tiles, round-trip the checkpoint through JSON, resume.
        let mut calls = 0;
        let stopped = sweep(
            &ix,
            &sc,
            |id| id,
            None,
            |p, _| {
                calls += 1;
                assert!(p.work_fraction > 0.0 && p.work_fraction <= 1.0);
                if calls == 2 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            },
        )
        .unwrap();
        let SweepOutcome::Stopped(ck) = stopped else {
            panic!("did not stop")
        };
        assert_eq!(ck.next_tile, 2);
        let json = serde_json::to_string(&ck).unwrap();
        let ck: SweepCheckpoint = serde_json::from_str(&json).unwrap();
        let resumed = finished(
            sweep(
                &ix,
                &sc,
                |id| id,
                Some(ck.clone()),
                |_, _| ControlFlow::Continue(()),
            )
            .unwrap(),
        );
        assert_eq!(resumed, full);

        // A checkpoint does not apply to a changed gallery.
        let mut changed = ix.clone();
        changed.remove(5).unwrap();
        let err = sweep(
            &changed,
            &sc,
            |id| id,
            Some(ck),
            |_, _| ControlFlow::Continue(()),
        )
        .unwrap_err();
        assert!(matches!(err, IndexError::CheckpointMismatch(_)));
    }
}
