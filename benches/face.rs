//! Criterion benches for each face stage on a real LFW photo and the real models:
//! `cargo bench -p sinhtrac-benches --bench face`.

use criterion::{criterion_group, criterion_main, Criterion};
use sinhtrac_engine::face::{align, Detector, FaceConfig, FaceEngine};
use sinhtrac_engine::image::{decode, DecodeLimits};

fn photo() -> Vec<u8> {
    let p = sinhtrac_engine::paths::datasets_dir()
        .join("lfw/images/Aaron_Peirsol/Aaron_Peirsol_0001.jpg");
    std::fs::read(&p).unwrap_or_else(|e| panic!("benchmark data missing at {}: {e}", p.display()))
}

fn face_stages(c: &mut Criterion) {
    let bytes = photo();
    let engine =
        FaceEngine::load(FaceConfig::default()).expect("face models (run scripts/setup.sh)");
    let limits = DecodeLimits::default();
    let img = decode(&bytes, &limits).expect("decodes").rgb;
    let faces = engine.detector.detect(&img).expect("detects");
    let face = engine.select(&faces, img.dimensions()).expect("one face");
    let crop = align::align_face(&img, &face.landmarks, 112).expect("aligns");

    let mut g = c.benchmark_group("face");
    g.bench_function("decode_jpeg_250px", |b| b.iter(|| decode(&bytes, &limits)));
    g.bench_function("detect_yunet", |b| b.iter(|| engine.detector.detect(&img)));
    // The same photo in one pass enlarged to 640 px, as without the manifest's `refine`.
    let mut entry = engine.detector.entry().clone();
    entry.params.remove("refine");
    let one_pass = Detector::load(&entry, &engine.config().runtime).expect("detector");
    g.bench_function("detect_yunet_one_pass", |b| {
        b.iter(|| one_pass.detect(&img))
    });
    g.bench_function("align_112", |b| {
        b.iter(|| align::align_face(&img, &face.landmarks, 112))
    });
    g.bench_function("embed_mobilefacenet", |b| {
        b.iter(|| engine.embedder.embed(&[&crop]))
    });
    g.bench_function("liveness_ensemble", |b| {
        b.iter(|| engine.liveness.score(&img, &face.bbox))
    });
    g.bench_function("end_to_end_extract", |b| {
        b.iter(|| decode(&bytes, &limits).map(|d| engine.extract(&d.rgb)))
    });
    g.finish();
}

criterion_group!(benches, face_stages);
criterion_main!(benches);
