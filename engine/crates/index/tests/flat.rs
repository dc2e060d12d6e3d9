//! Flat index: exact results equal a naive reference (property tests), filters,
//! tombstones, validation, quantised recall.

use proptest::prelude::*;
use sinhtrac_index::bench::gen::{clustered, random_unit};
use sinhtrac_index::simd::scalar;
use sinhtrac_index::{
    Codec, Filter, FlatConfig, FlatIndex, Hit, IndexError, Normalization, SearchParams, SimdLevel,
    Tag,
};

const PLAIN: SearchParams = SearchParams {
    filter: Filter::ALL,
    rerank_factor: 1,
    rerank_margin: 0.0,
};

#[derive(Debug, Clone)]
struct Case {
    dim: usize,
    data: Vec<f32>,
    queries: Vec<f32>,
    tags: Vec<Tag>,
    deleted: Vec<u64>,
}

fn build(c: &Case, codec: Codec, simd: SimdLevel) -> FlatIndex {
    let mut cfg = FlatConfig::new(c.dim, codec);
    cfg.simd = Some(simd);
    let mut ix = FlatIndex::new(cfg).unwrap();
    let n = c.data.len() / c.dim;
    let ids: Vec<u64> = (0..n as u64).map(|i| i * 3 + 1).collect();
    ix.extend(&ids, &c.data, Some(&c.tags)).unwrap();
    for &id in &c.deleted {
        ix.remove(id).unwrap();
    }
    ix
}

/// Naive reference: score every live, passing row with the scalar kernel on the
/// stored values, sort by (score desc, id asc).
fn naive(ix: &FlatIndex, c: &Case, q: &[f32], filter: Filter) -> Vec<Hit> {
    let n = ix.rows();
    let norm = q.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt() as f32;
    let qn: Vec<f32> = q.iter().map(|x| x * (1.0 / norm)).collect();
    let mut all: Vec<Hit> = (0..n)
        .filter(|&r| !ix.is_deleted(r) && filter.matches(c.tags[r]))
        .map(|r| {
            let id = ix.id_of_row(r).unwrap();
            Hit {
                id,
                score: scalar::dot_f32(&qn, &ix.vector(id).unwrap()),
            }
        })
        .collect();
    all.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
    all
}

fn case_strategy() -> impl Strategy<Value = Case> {
    (
        1usize..300,
        prop_oneof![1usize..40, Just(128usize)],
        1usize..6,
        any::<u64>(),
        any::<bool>(),
    )
        .prop_flat_map(|(n, dim, nq, seed, clustered_data)| {
            let data = if clustered_data {
                clustered(n.div_ceil(3), 3, dim, 0.8, seed).vectors[..n * dim].to_vec()
            } else {
                random_unit(n, dim, seed)
            };
            let queries = random_unit(nq, dim, seed ^ 1);
            (
                Just(dim),
                Just(data),
                Just(queries),
                proptest::collection::vec(0u32..3, n),
                proptest::collection::vec(any::<bool>(), n),
            )
        })
        .prop_map(|(dim, data, queries, tags, del)| Case {
            dim,
            data,
            queries,
            tags: tags.into_iter().map(|t| Tag::new(t as u16, 0)).collect(),
            deleted: del
                .iter()
                .enumerate()
                .filter(|(i, &d)| d && i % 4 == 0)
                .map(|(i, _)| i as u64 * 3 + 1)
                .collect(),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// With the scalar kernels the scan must reproduce the naive ranking exactly.
    #[test]
    fn scalar_flat_equals_naive(c in case_strategy(), k in 1usize..20, t in 0u16..4) {
        let filter = if t == 3 { Filter::ALL } else { Filter::tenant(t) };
        let ix = build(&c, Codec::F32, SimdLevel::Scalar);
        let got = ix.search_batch(&c.queries, k, &SearchParams { filter, ..PLAIN }).unwrap();
        for (qi, q) in c.queries.chunks(c.dim).enumerate() {
            let mut want = naive(&ix, &c, q, filter);
            want.truncate(k);
            prop_assert_eq!(&got[qi], &want);
        }
    }

    /// With the SIMD kernels, scores agree within rounding and every returned row
    /// is within rounding of the true k-th score.
    #[test]
    fn simd_flat_matches_naive(c in case_strategy(), k in 1usize..20, th in -0.2f32..0.9) {
        let ix = build(&c, Codec::F32, SimdLevel::best_available());
        let got = ix.search_batch(&c.queries, k, &PLAIN).unwrap();
        let got_th = ix.search_threshold(&c.queries, th, &PLAIN).unwrap();
        let tol = 1e-5;
        for (qi, q) in c.queries.chunks(c.dim).enumerate() {
            let all = naive(&ix, &c, q, Filter::ALL);
            let want: Vec<Hit> = all.iter().take(k).copied().collect();
            prop_assert_eq!(got[qi].len(), want.len());
            for (g, w) in got[qi].iter().zip(&want) {
                prop_assert!((g.score - w.score).abs() <= tol, "{} vs {}", g.score, w.score);
                let exact = all.iter().find(|h| h.id == g.id).unwrap().score;
                prop_assert!((g.score - exact).abs() <= tol);
            }
            // Threshold: everything clearly above is found, nothing clearly below is.
            for h in &all {
                let found = got_th[qi].iter().any(|g| g.id == h.id);
                if h.score >= th + tol { prop_assert!(found, "missing {} {}", h.id, h.score); }
                if h.score < th - tol { prop_assert!(!found, "extra {} {}", h.id, h.score); }
            }
            prop_assert!(got_th[qi].windows(2).all(|w| w[0].score >= w[1].score));
        }
    }
}

fn recall_at(got: &[Vec<Hit>], want: &[Vec<Hit>]) -> f64 {
    let mut r = 0.0;
    for (g, w) in got.iter().zip(want) {
        r += g.iter().filter(|h| w.iter().any(|x| x.id == h.id)).count() as f64 / w.len() as f64;
    }
    r / got.len() as f64
}

#[test]
fn quantised_codecs_recall_and_rerank() {
    let dim = 128;
    let c = clustered(1000, 4, dim, 0.8, 9);
    let (q, _) = c.queries(64, 3);
    let ids: Vec<u64> = (0..4000).collect();
    let mut exact = FlatIndex::new(FlatConfig::new(dim, Codec::F32)).unwrap();
    exact.extend(&ids, &c.vectors, None).unwrap();
    let truth = exact.search_batch(&q, 10, &PLAIN).unwrap();
    for codec in [
        Codec::F16,
        Codec::Sq8 {
            per_dimension: false,
        },
        Codec::Sq8 {
            per_dimension: true,
        },
    ] {
        let mut ix = FlatIndex::new(FlatConfig::new(dim, codec).with_rerank_copy()).unwrap();
        ix.extend(&ids, &c.vectors, None).unwrap();
        let got = ix.search_batch(&q, 10, &PLAIN).unwrap();
        let r = recall_at(&got, &truth);
        assert!(r >= 0.9, "{codec:?} recall@10 {r}");
        // Score error of the codes themselves.
        for (qi, hits) in got.iter().enumerate() {
            for h in hits {
                let e = scalar::dot_f32(&exact.vector(h.id).unwrap(), &q[qi * dim..(qi + 1) * dim]);
                let qn: f32 = q[qi * dim..(qi + 1) * dim]
                    .iter()
                    .map(|x| x * x)
                    .sum::<f32>()
                    .sqrt();
                assert!(
                    (h.score - e / qn).abs() < 0.02,
                    "{codec:?} score error {} vs {}",
                    h.score,
                    e / qn
                );
            }
        }
        let rr = ix.search_batch(&q, 10, &SearchParams::default()).unwrap();
        let r = recall_at(&rr, &truth);
        assert!(r >= 0.99, "{codec:?} re-ranked recall@10 {r}");
        for (g, w) in rr.iter().zip(&truth) {
            assert!(
                (g[0].score - w[0].score).abs() < 1e-5,
                "re-ranked scores are exact"
            );
        }
    }
}

#[test]
fn validation_errors() {
    let mut ix = FlatIndex::new(FlatConfig::new(4, Codec::F32)).unwrap();
    assert!(matches!(
        ix.add(1, &[1.0, 0.0], Tag(0)),
        Err(IndexError::DimensionMismatch {
            expected: 4,
            received: 2
        })
    ));
    assert!(matches!(
        ix.add(1, &[1.0, f32::NAN, 0.0, 0.0], Tag(0)),
        Err(IndexError::NonFinite {
            index: 0,
            position: 1
        })
    ));
    assert!(matches!(
        ix.add(1, &[0.0; 4], Tag(0)),
        Err(IndexError::ZeroVector { index: 0 })
    ));
    assert!(matches!(
        ix.extend(&[1, 2], &[1.0; 4], None),
        Err(IndexError::BatchLength { .. })
    ));
    assert!(matches!(
        ix.extend(&[5, 5], &[1.0; 8], None),
        Err(IndexError::DuplicateId(5))
    ));
    assert_eq!(ix.len(), 0, "failed batches add nothing");
    ix.add(1, &[2.0, 0.0, 0.0, 0.0], Tag(0)).unwrap();
    assert!(
        (ix.vector(1).unwrap()[0] - 1.0).abs() < 1e-7,
        "normalised explicitly"
    );
    assert!(matches!(
        ix.add(1, &[1.0; 4], Tag(0)),
        Err(IndexError::DuplicateId(1))
    ));
    assert!(matches!(ix.remove(9), Err(IndexError::UnknownId(9))));
    assert!(matches!(
        ix.search(&[1.0; 3], 1, &PLAIN),
        Err(IndexError::DimensionMismatch { .. })
    ));
    assert!(matches!(
        ix.search(&[f32::INFINITY; 4], 1, &PLAIN),
        Err(IndexError::NonFinite { .. })
    ));

    let mut cfg = FlatConfig::new(2, Codec::F32);
    cfg.normalization = Normalization::Require { tolerance: 1e-3 };
    let mut strict = FlatIndex::new(cfg).unwrap();
    assert!(matches!(
        strict.add(1, &[2.0, 0.0], Tag(0)),
        Err(IndexError::NotNormalized { .. })
    ));
    strict.add(1, &[0.6, 0.8], Tag(0)).unwrap();
}

#[test]
fn tombstones_filters_and_compaction() {
    let dim = 16;
    let data = random_unit(500, dim, 5);
    let ids: Vec<u64> = (100..600).collect();
    let tags: Vec<Tag> = (0..500)
        .map(|i| Tag::new((i % 3) as u16, (i % 2) as u8))
        .collect();
    for codec in [
        Codec::F32,
        Codec::F16,
        Codec::Sq8 {
            per_dimension: false,
        },
    ] {
        let mut ix = FlatIndex::new(FlatConfig::new(dim, codec).with_rerank_copy()).unwrap();
        ix.extend(&ids, &data, Some(&tags)).unwrap();
        let q = &data[7 * dim..8 * dim];
        assert_eq!(
            ix.search(q, 1, &SearchParams::default()).unwrap()[0].id,
            107
        );
        ix.remove(107).unwrap();
        for params in [SearchParams::default(), PLAIN] {
            let hits = ix.search(q, 500, &params).unwrap();
            assert_eq!(hits.len(), 499);
            assert!(hits.iter().all(|h| h.id != 107), "deleted row returned");
            let th = ix.search_threshold(q, -1.0, &params).unwrap();
            assert!(th[0].iter().all(|h| h.id != 107));
        }
        let f = Filter::tenant(2).and(Filter::modality(1));
        let hits = ix.search(q, 500, &SearchParams::with_filter(f)).unwrap();
        assert!(!hits.is_empty());
        assert!(hits.iter().all(|h| {
            let i = (h.id - 100) as usize;
            i % 3 == 2 && i % 2 == 1
        }));
        let before = ix.search(&data[..dim], 20, &PLAIN).unwrap();
        assert_eq!(ix.compact().unwrap(), 1);
        assert_eq!(ix.rows(), 499);
        assert_eq!(ix.search(&data[..dim], 20, &PLAIN).unwrap(), before);
        // A removed id may be enrolled again.
        ix.add(107, q, Tag(0)).unwrap();
        assert_eq!(ix.search(q, 1, &PLAIN).unwrap()[0].id, 107);
    }
}

#[test]
fn fingerprint_tracks_content() {
    let data = random_unit(50, 8, 1);
    let ids: Vec<u64> = (0..50).collect();
    let mut a = FlatIndex::new(FlatConfig::new(8, Codec::F32)).unwrap();
    a.extend(&ids, &data, None).unwrap();
    let mut b = a.clone();
    assert_eq!(a.fingerprint(), b.fingerprint());
    b.remove(3).unwrap();
    assert_ne!(a.fingerprint(), b.fingerprint());
    a.add(99, &data[..8], Tag(0)).unwrap();
    assert_ne!(a.fingerprint(), b.fingerprint());
}

/// A batch larger than the scan's query block (and not a multiple of it) must
/// give each query the same answer as searching it alone, for every codec.
#[test]
fn large_batch_equals_single_queries() {
    let dim = 40;
    let data = random_unit(3000, dim, 21);
    let queries = random_unit(77, dim, 22);
    let ids: Vec<u64> = (0..3000).collect();
    for codec in [
        Codec::F32,
        Codec::F16,
        Codec::Sq8 {
            per_dimension: false,
        },
    ] {
        let mut ix = FlatIndex::new(FlatConfig::new(dim, codec)).unwrap();
        ix.extend(&ids, &data, None).unwrap();
        let batch = ix.search_batch(&queries, 7, &PLAIN).unwrap();
        let th = ix.search_threshold(&queries, 0.3, &PLAIN).unwrap();
        assert_eq!(batch.len(), 77);
        for (qi, q) in queries.chunks(dim).enumerate() {
            assert_eq!(
                batch[qi],
                ix.search(q, 7, &PLAIN).unwrap(),
                "{codec:?} query {qi}"
            );
            assert_eq!(
                th[qi],
                ix.search_threshold(q, 0.3, &PLAIN).unwrap()[0],
                "{codec:?} query {qi}"
            );
        }
    }
}
