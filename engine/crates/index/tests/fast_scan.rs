//! The 4-bit PQ fast-scan tier (no FAISS): recall after exact re-rank on face-like data,
//! tombstones and filters, stale-index refusal, and the same answer on one thread or several.

use sinhtrac_index::bench::gen::clustered;
use sinhtrac_index::fast_scan::{FastScanConfig, FastScanIndex};
use sinhtrac_index::{Codec, Filter, FlatConfig, FlatIndex, Hit, SearchParams, Tag};

const DIM: usize = 128;

/// `identities` × 4 face-like 128-d samples (ids = rows; tenant = row % 3) and fresh samples of
/// enrolled identities as queries.
fn gallery(identities: usize, queries: usize) -> (FlatIndex, Vec<f32>) {
    let c = clustered(identities, 4, DIM, 0.8, 11);
    let (q, _) = c.queries(queries, 12);
    let n = identities * 4;
    let ids: Vec<u64> = (0..n as u64).collect();
    let tags: Vec<Tag> = (0..n).map(|r| Tag::new((r % 3) as u16, 1)).collect();
    let mut ix = FlatIndex::new(FlatConfig::new(DIM, Codec::F32)).unwrap();
    ix.extend(&ids, &c.vectors, Some(&tags)).unwrap();
    (ix, q)
}

fn recall(got: &[Vec<Hit>], want: &[Vec<Hit>]) -> f64 {
    let hits: usize = got
        .iter()
        .zip(want)
        .map(|(g, w)| g.iter().filter(|h| w.iter().any(|x| x.id == h.id)).count())
        .sum();
    hits as f64 / want.iter().map(Vec::len).sum::<usize>() as f64
}

#[test]
fn fast_scan_finds_the_exact_top_10_and_honours_tombstones_and_filters() {
    let (mut flat, q) = gallery(12_500, 100);
    let p = SearchParams::default();
    let exact = flat.search_batch(&q, 10, &p).unwrap();
    let tier = FastScanIndex::build(&flat, &FastScanConfig::default()).unwrap();
    let got = tier.search_batch(&flat, &q, 10, &p).unwrap();
    let r = recall(&got, &exact);
    assert!(r >= 0.99, "recall@10 {r} on 50,000 face-like rows");
    // Re-ranked scores are exact, best first.
    for (g, w) in got.iter().zip(&exact) {
        assert_eq!(g[0].id, w[0].id);
        assert!((g[0].score - w[0].score).abs() < 1e-5);
        assert!(g.windows(2).all(|x| x[0].score >= x[1].score));
    }
    // A tenant filter: only that tenant's rows, and its own exact top 10.
    let only1 = SearchParams::with_filter(Filter::tenant(1));
    let got1 = tier.search_batch(&flat, &q, 10, &only1).unwrap();
    assert!(got1.iter().flatten().all(|h| h.id % 3 == 1));
    let r1 = recall(&got1, &flat.search_batch(&q, 10, &only1).unwrap());
    assert!(r1 >= 0.99, "filtered recall@10 {r1}");

    // A tombstoned row is never returned, and an index built before the delete is refused.
    let top = exact[0][0].id;
    flat.remove(top).unwrap();
    let err = tier.search_batch(&flat, &q, 10, &p).unwrap_err();
    assert!(err.to_string().contains("stale"), "{err}");
    let tier = FastScanIndex::build(&flat, &FastScanConfig::default()).unwrap();
    assert!(tier.search_batch(&flat, &q, 10, &p).unwrap()[0]
        .iter()
        .all(|h| h.id != top));
}

#[test]
fn one_thread_and_several_give_the_same_answer() {
    // A query's scan is split over the threads; the kept candidates and so the results must not
    // depend on the split.
    let (flat, q) = gallery(2_000, 20);
    let cfg = FastScanConfig {
        rerank_factor: 5,
        ..FastScanConfig::default()
    };
    let tier = FastScanIndex::build(&flat, &cfg).unwrap();
    let run = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| tier.search_batch(&flat, &q, 10, &SearchParams::default()))
            .unwrap()
    };
    let one = run(1);
    assert_eq!(one, run(2));
    assert_eq!(one, run(5));
    // A batch answers as the queries one by one.
    for (i, want) in one.iter().enumerate() {
        let single = tier
            .search_batch(
                &flat,
                &q[i * DIM..(i + 1) * DIM],
                10,
                &SearchParams::default(),
            )
            .unwrap();
        assert_eq!(&single[0], want);
    }
}

#[test]
fn bad_dimensions_and_empty_galleries_are_refused() {
    let mut odd = FlatIndex::new(FlatConfig::new(6, Codec::F32)).unwrap();
    odd.extend(&[1, 2, 3], &[0.5; 18], None).unwrap();
    assert!(FastScanIndex::build(&odd, &FastScanConfig::default()).is_err());
    let empty = FlatIndex::new(FlatConfig::new(8, Codec::F32)).unwrap();
    assert!(FastScanIndex::build(&empty, &FastScanConfig::default()).is_err());
    let (flat, _) = gallery(100, 1);
    let tier = FastScanIndex::build(&flat, &FastScanConfig::default()).unwrap();
    assert!(tier
        .search_batch(&flat, &[0.1; DIM - 1], 10, &SearchParams::default())
        .is_err());
}

#[test]
fn equal_scores_go_to_the_lowest_rows_however_the_scan_is_split() {
    // 3,000 copies of one vector: every approximate and exact score ties, so the answer is decided
    // by row alone and must be the lowest rows (of the tenant, when filtered) on any thread count,
    // also when a filter leaves some parts of the scan short of candidates.
    let dim = 16;
    let v: Vec<f32> = (0..dim).map(|i| (i as f32 + 1.0).sqrt()).collect();
    let n = 3000usize;
    let ids: Vec<u64> = (0..n as u64).collect();
    let tags: Vec<Tag> = (0..n)
        .map(|r| Tag::new(if r < 2000 { (r % 3) as u16 } else { 7 }, 1))
        .collect();
    let vectors: Vec<f32> = (0..n).flat_map(|_| v.iter().copied()).collect();
    let mut flat = FlatIndex::new(FlatConfig::new(dim, Codec::F32)).unwrap();
    flat.extend(&ids, &vectors, Some(&tags)).unwrap();
    let cfg = FastScanConfig {
        rerank_factor: 2,
        ..FastScanConfig::default()
    };
    let tier = FastScanIndex::build(&flat, &cfg).unwrap();
    for (params, want) in [
        (SearchParams::default(), (0..10).collect::<Vec<u64>>()),
        (
            SearchParams::with_filter(Filter::tenant(1)),
            (0..10).map(|i| 1 + 3 * i).collect(),
        ),
        (
            SearchParams::with_filter(Filter::tenant(7)),
            (2000..2010).collect(),
        ),
    ] {
        for threads in [1, 2, 5] {
            let got = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| tier.search_batch(&flat, &v, 10, &params))
                .unwrap();
            let got: Vec<u64> = got[0].iter().map(|h| h.id).collect();
            assert_eq!(got, want, "{threads} threads, filter {:?}", params.filter);
        }
    }
}

#[test]
fn a_flat_index_without_exact_rows_is_refused() {
    // The re-rank must score from exact values; an int8-only index would return PQ estimates as
    // if they were exact.
    let (exact, _) = gallery(100, 1);
    let mut sq8 = FlatIndex::new(FlatConfig::new(
        DIM,
        Codec::Sq8 {
            per_dimension: false,
        },
    ))
    .unwrap();
    let mut all = vec![0.0f32; 400 * DIM];
    for (i, row) in all.chunks_exact_mut(DIM).enumerate() {
        row.copy_from_slice(&exact.vector(i as u64).unwrap());
    }
    sq8.extend(&(0..400).collect::<Vec<u64>>(), &all, None)
        .unwrap();
    let err = FastScanIndex::build(&sq8, &FastScanConfig::default())
        .err()
        .expect("refused");
    assert!(err.to_string().contains("exact"), "{err}");
}

#[test]
fn a_large_batch_answers_as_its_queries_one_by_one() {
    // Batches share each pass over the codes and are searched in groups of 64 queries: 150 queries
    // (three groups) give what each query gives alone.
    let (flat, q) = gallery(1_000, 150);
    let tier = FastScanIndex::build(&flat, &FastScanConfig::default()).unwrap();
    let p = SearchParams::default();
    let batch = tier.search_batch(&flat, &q, 5, &p).unwrap();
    assert_eq!(batch.len(), 150);
    for (i, want) in batch.iter().enumerate() {
        let alone = tier
            .search_batch(&flat, &q[i * DIM..(i + 1) * DIM], 5, &p)
            .unwrap();
        assert_eq!(&alone[0], want, "query {i}");
    }
}
