//! Kernel throughput per SIMD level: pair dots, register-blocked tiles and the 4-bit PQ fast-scan.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sinhtrac_index::bench::gen::random_unit;
use sinhtrac_index::simd::{kernels_for, SimdLevel};

fn kernels(c: &mut Criterion) {
    for level in SimdLevel::all_available() {
        let k = kernels_for(level).expect("available level");
        for dim in [128usize, 512] {
            let a = random_unit(1, dim, 1);
            let b = random_unit(1, dim, 2);
            let h: Vec<u16> = b
                .iter()
                .map(|&x| half::f16::from_f32(x).to_bits())
                .collect();
            let ia: Vec<i8> = a.iter().map(|&x| (x * 300.0) as i8).collect();
            let ib: Vec<i8> = b.iter().map(|&x| (x * 300.0) as i8).collect();
            let mut g = c.benchmark_group(format!("dot/{level:?}/d{dim}"));
            g.throughput(Throughput::Elements(dim as u64));
            g.bench_function("f32", |bch| {
                bch.iter(|| (k.dot_f32)(black_box(&a), black_box(&b)))
            });
            g.bench_function("f16", |bch| {
                bch.iter(|| (k.dot_f16)(black_box(&a), black_box(&h)))
            });
            g.bench_function("i8", |bch| {
                bch.iter(|| (k.dot_i8)(black_box(&ia), black_box(&ib)))
            });
            g.finish();
        }
        // A 64-query × 128-row tile at 128-d: the inner block of a batch-64 scan.
        let dim = 128;
        let (nq, nr) = (64, 128);
        let q = random_unit(nq, dim, 3);
        let r = random_unit(nr, dim, 4);
        let rh: Vec<u16> = r
            .iter()
            .map(|&x| half::f16::from_f32(x).to_bits())
            .collect();
        let q8: Vec<i8> = q.iter().map(|&x| (x * 127.0) as i8).collect();
        let r8: Vec<i8> = r
            .iter()
            .map(|&x| (x * 300.0).clamp(-127.0, 127.0) as i8)
            .collect();
        let mut out = vec![0.0f32; nq * nr];
        let mut outi = vec![0i32; nq * nr];
        let mut g = c.benchmark_group(format!("tile64x128/{level:?}"));
        g.throughput(Throughput::Elements((nq * nr) as u64));
        g.bench_function("f32", |bch| {
            bch.iter(|| (k.tile_f32)(black_box(&q), black_box(&r), dim, &mut out))
        });
        g.bench_function("f16", |bch| {
            bch.iter(|| (k.tile_f16)(black_box(&q), black_box(&rh), dim, &mut out))
        });
        g.bench_function("i8", |bch| {
            bch.iter(|| (k.tile_i8)(black_box(&q8), black_box(&r8), dim, &mut outi))
        });
        g.finish();
        // 4-bit PQ fast-scan, 64 sub-quantisers (128-d): 64 blocks of 32 rows, in cache, so this is
        // the kernel's compute rate (a 1M-row scan is bound by memory at 32 bytes per row).
        let m = 64;
        let codes: Vec<u8> = (0..64 * m * 16).map(|i| (i * 131 % 251) as u8).collect();
        let lut: Vec<u8> = (0..m * 16).map(|i| (i * 37 % 251) as u8).collect();
        let mut sums = vec![0u16; 64 * 32];
        let mut g = c.benchmark_group(format!("pq4_scan/{level:?}"));
        g.throughput(Throughput::Elements(64 * 32));
        g.bench_function("m64_2048rows", |bch| {
            bch.iter(|| (k.pq4_scan)(black_box(&codes), black_box(&lut), &mut sums))
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    // Short runs: the machine is shared.
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    targets = kernels
}
criterion_main!(benches);
