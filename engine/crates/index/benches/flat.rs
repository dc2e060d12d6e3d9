//! Flat search at batch 1 / 8 / 64 on a 100k×128 clustered gallery (f32, f16, int8).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sinhtrac_index::bench::gen::clustered;
use sinhtrac_index::{Codec, FlatConfig, FlatIndex, SearchParams};

fn flat(c: &mut Criterion) {
    let dim = 128;
    let data = clustered(25_000, 4, dim, 0.8, 1);
    let (queries, _) = data.queries(64, 2);
    let ids: Vec<u64> = (0..data.len() as u64).collect();
    let plain = SearchParams {
        rerank_factor: 1,
        ..Default::default()
    };
    for codec in [
        Codec::F32,
        Codec::F16,
        Codec::Sq8 {
            per_dimension: false,
        },
    ] {
        let mut ix = FlatIndex::new(FlatConfig::new(dim, codec)).expect("config");
        ix.extend(&ids, &data.vectors, None).expect("load");
        let mut g = c.benchmark_group(format!("flat100k/{}", codec.name()));
        for batch in [1usize, 8, 64] {
            g.throughput(Throughput::Elements(batch as u64));
            let q = &queries[..batch * dim];
            g.bench_function(format!("batch{batch}"), |b| {
                b.iter(|| ix.search_batch(black_box(q), 10, &plain).expect("search"))
            });
        }
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_millis(500));
    targets = flat
}
criterion_main!(benches);
