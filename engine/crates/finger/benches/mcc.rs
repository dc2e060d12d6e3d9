//! 1:1 and 1:N matching speed (criterion).
//!
//! The gallery is built from the 400 real FVC templates (FVC2000 DB1–4 B,
//! FVC2002 DB1 B) cloned up to `GALLERY` entries: speed per comparison
//! depends on minutiae counts, which real templates give honestly.
//! Throughput is reported in comparisons (gallery entries) per second.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rayon::prelude::*;
use sinhtrac_finger::{
    fvc, ClassicalExtractor, FingerPosition, Gallery, Matcher, SearchOptions, SearchTemplate,
};
use std::hint::black_box;
use std::path::PathBuf;

const GALLERY: usize = 20_000;

fn shared() -> PathBuf {
    std::env::var_os("SINHTRAC_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../../shared"))
        })
}

fn real_templates() -> Vec<SearchTemplate> {
    let root = shared().join("datasets/fingerprints");
    let mut files = Vec::new();
    for db in [
        "fvc2000/DB1_B",
        "fvc2000/DB2_B",
        "fvc2000/DB3_B",
        "fvc2000/DB4_B",
        "fvc2002/DB1_B",
    ] {
        let dir = root.join(db);
        let samples = fvc::list_samples(&dir)
            .unwrap_or_else(|e| panic!("FVC data missing at {}: {e}", dir.display()));
        assert!(!samples.is_empty(), "no images in {}", dir.display());
        files.extend(samples.into_iter().map(|s| s.path));
    }
    files
        .par_iter()
        .filter_map(|p| fvc::extract_file(&ClassicalExtractor, p, 500).ok())
        .map(|t| SearchTemplate::new(&t))
        .collect()
}

fn bench(c: &mut Criterion) {
    let real = real_templates();
    let probe = Matcher::from_search(real[0].clone());
    let mut g = c.benchmark_group("mcc_1to1");
    g.throughput(Throughput::Elements(1));
    g.bench_function("exact_genuine", |b| {
        b.iter(|| probe.score(black_box(&real[1])))
    });
    g.bench_function("exact_impostor", |b| {
        b.iter(|| probe.score(black_box(&real[200])))
    });
    g.bench_function("partial16_impostor", |b| {
        b.iter(|| probe.score_best(black_box(&real[200]), 16))
    });
    g.bench_function("coarse", |b| {
        b.iter(|| probe.coarse_score(black_box(&real[200])))
    });
    g.finish();

    let mut gallery = Gallery::new();
    for i in 0..GALLERY {
        gallery.push(
            i as u64,
            FingerPosition::UNKNOWN,
            real[i % real.len()].clone(),
        );
    }
    // Several probes per iteration, spread over the databases: one probe's
    // minutiae count would decide the figure.
    let probes: Vec<Matcher> = (0..8)
        .map(|q| Matcher::from_search(real[(q * 53) % real.len()].clone()))
        .collect();
    let search_all = |opts: &SearchOptions| {
        for p in &probes {
            black_box(gallery.search(p, FingerPosition::UNKNOWN, opts));
        }
    };
    let mut g = c.benchmark_group("mcc_1toN");
    g.sample_size(10);
    g.throughput(Throughput::Elements((GALLERY * probes.len()) as u64));
    let no_refine = SearchOptions {
        preselect_fraction: 0.02,
        refine_cylinders: 0,
        ..SearchOptions::default()
    };
    for (name, opts) in [
        ("default", SearchOptions::default()),
        ("no_refine_2pct", no_refine),
        ("exhaustive", SearchOptions::exhaustive(10)),
    ] {
        g.bench_with_input(BenchmarkId::new("cascade", name), &opts, |b, o| {
            b.iter(|| search_all(o))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
