//! Every SIMD level against the scalar reference, at tail dims 1..=64 and 128/512.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sinhtrac_index::simd::{kernels_for, scalar, SimdLevel};

fn dims() -> Vec<usize> {
    (1..=64).chain([127, 128, 129, 512]).collect()
}

fn rand_f32(rng: &mut StdRng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// Error bound of a length-d float sum: d·ε·Σ|a_i b_i| (plus a floor).
fn tol(a: &[f32], b: &[f32]) -> f32 {
    let mag: f32 = a.iter().zip(b).map(|(x, y)| (x * y).abs()).sum();
    a.len() as f32 * f32::EPSILON * mag + 1e-6
}

#[test]
fn pair_kernels_match_scalar() {
    let mut rng = StdRng::seed_from_u64(1);
    for level in SimdLevel::all_available() {
        let k = kernels_for(level).unwrap();
        for d in dims() {
            let a = rand_f32(&mut rng, d);
            let b = rand_f32(&mut rng, d);
            let (x, y) = ((k.dot_f32)(&a, &b), scalar::dot_f32(&a, &b));
            assert!(
                (x - y).abs() <= tol(&a, &b),
                "{level:?} dot_f32 d={d}: {x} vs {y}"
            );

            let h: Vec<u16> = b
                .iter()
                .map(|&v| half::f16::from_f32(v).to_bits())
                .collect();
            let bh: Vec<f32> = h
                .iter()
                .map(|&v| half::f16::from_bits(v).to_f32())
                .collect();
            let (x, y) = ((k.dot_f16)(&a, &h), scalar::dot_f16(&a, &h));
            assert!(
                (x - y).abs() <= tol(&a, &bh),
                "{level:?} dot_f16 d={d}: {x} vs {y}"
            );

            let ia: Vec<i8> = (0..d).map(|_| rng.random_range(-127i8..=127)).collect();
            let ib: Vec<i8> = (0..d).map(|_| rng.random_range(-127i8..=127)).collect();
            assert_eq!(
                (k.dot_i8)(&ia, &ib),
                scalar::dot_i8(&ia, &ib),
                "{level:?} dot_i8 d={d}"
            );
        }
    }
}

#[test]
fn extreme_int8_values_do_not_saturate() {
    for level in SimdLevel::all_available() {
        let k = kernels_for(level).unwrap();
        let a = vec![127i8; 512];
        let b = vec![-127i8; 512];
        assert_eq!((k.dot_i8)(&a, &b), -127 * 127 * 512);
        let mut out = [0i32; 1];
        (k.tile_i8)(&a, &b, 512, &mut out);
        assert_eq!(out[0], -127 * 127 * 512);
        // Both signs at the extremes, in every micro-kernel shape (2×4, 1×4, row tail).
        let q: Vec<i8> = (0..3 * 512)
            .map(|i| if i % 3 == 0 { -127 } else { 127 })
            .collect();
        let r: Vec<i8> = (0..5 * 512)
            .map(|i| if i % 2 == 0 { -127 } else { 127 })
            .collect();
        let (mut got, mut want) = (vec![0i32; 15], vec![0i32; 15]);
        (k.tile_i8)(&q, &r, 512, &mut got);
        scalar::tile_i8(&q, &r, 512, &mut want);
        assert_eq!(got, want, "{level:?}");
        // Stored rows may hold −128 (only queries are limited to ±127).
        let r: Vec<i8> = (0..5 * 512)
            .map(|i| if i % 3 == 0 { i8::MIN } else { 127 })
            .collect();
        (k.tile_i8)(&q, &r, 512, &mut got);
        scalar::tile_i8(&q, &r, 512, &mut want);
        assert_eq!(got, want, "{level:?} rows at -128");
    }
}

#[test]
fn tile_kernels_match_scalar() {
    let mut rng = StdRng::seed_from_u64(2);
    for level in SimdLevel::all_available() {
        let k = kernels_for(level).unwrap();
        for d in dims() {
            for (nq, nr) in [
                (1, 1),
                (1, 4),
                (2, 4),
                (3, 9),
                (5, 7),
                (2, 13),
                (4, 8),
                (8, 12),
                (11, 6),
            ] {
                let q = rand_f32(&mut rng, nq * d);
                let r = rand_f32(&mut rng, nr * d);
                let mut out = vec![0.0; nq * nr];
                let mut want = vec![0.0; nq * nr];
                (k.tile_f32)(&q, &r, d, &mut out);
                scalar::tile_f32(&q, &r, d, &mut want);
                for qi in 0..nq {
                    for ri in 0..nr {
                        let t = tol(&q[qi * d..(qi + 1) * d], &r[ri * d..(ri + 1) * d]);
                        let (x, y) = (out[qi * nr + ri], want[qi * nr + ri]);
                        assert!(
                            (x - y).abs() <= t,
                            "{level:?} tile_f32 d={d} {nq}x{nr} [{qi},{ri}]: {x} vs {y}"
                        );
                    }
                }

                let h: Vec<u16> = r
                    .iter()
                    .map(|&v| half::f16::from_f32(v).to_bits())
                    .collect();
                (k.tile_f16)(&q, &h, d, &mut out);
                scalar::tile_f16(&q, &h, d, &mut want);
                for (i, (x, y)) in out.iter().zip(&want).enumerate() {
                    assert!(
                        (x - y).abs() <= 2.0 * d as f32 * f32::EPSILON * d as f32 + 1e-5,
                        "{level:?} tile_f16 d={d} #{i}: {x} vs {y}"
                    );
                }

                let qi8: Vec<i8> = (0..nq * d)
                    .map(|_| rng.random_range(-127i8..=127))
                    .collect();
                let ri8: Vec<i8> = (0..nr * d)
                    .map(|_| rng.random_range(i8::MIN..=i8::MAX))
                    .collect();
                let mut oi = vec![0i32; nq * nr];
                let mut wi = vec![0i32; nq * nr];
                (k.tile_i8)(&qi8, &ri8, d, &mut oi);
                scalar::tile_i8(&qi8, &ri8, d, &mut wi);
                assert_eq!(oi, wi, "{level:?} tile_i8 d={d} {nq}x{nr}");
            }
        }
    }
}

#[test]
#[should_panic(expected = "length mismatch")]
fn mismatched_lengths_panic_not_overread() {
    let k = kernels_for(SimdLevel::best_available()).unwrap();
    (k.dot_f32)(&[1.0; 9], &[1.0; 8]);
}

#[test]
fn pq4_scan_matches_scalar_and_a_direct_lookup() {
    // Every level's fast-scan equals the scalar kernel bit for bit, and the scalar kernel equals a
    // lookup written straight from the layout (row j's code of sub-quantiser s is in byte s·16 + j
    // mod 16, low nibble for j < 16). Table values up to 255 and 256 sub-quantisers (512-d) reach
    // sums above 32767, so a signed accumulator would show.
    let mut rng = StdRng::seed_from_u64(4);
    for level in SimdLevel::all_available() {
        let k = kernels_for(level).unwrap();
        for (m, blocks) in [(2usize, 1usize), (8, 3), (64, 5), (256, 2)] {
            let lut: Vec<u8> = (0..m * 16).map(|_| rng.random_range(200..=255u8)).collect();
            let codes: Vec<u8> = (0..blocks * m * 16).map(|_| rng.random()).collect();
            let mut got = vec![0u16; blocks * 32];
            let mut want = vec![0u16; blocks * 32];
            (k.pq4_scan)(&codes, &lut, &mut got);
            scalar::pq4_scan(&codes, &lut, &mut want);
            assert_eq!(got, want, "{level:?} pq4_scan m={m}");
            for b in 0..blocks {
                for j in 0..32 {
                    let direct: u32 = (0..m)
                        .map(|s| {
                            let byte = codes[b * m * 16 + s * 16 + j % 16];
                            let code = if j < 16 { byte & 15 } else { byte >> 4 };
                            lut[s * 16 + code as usize] as u32
                        })
                        .sum();
                    assert_eq!(want[b * 32 + j] as u32, direct, "m={m} block {b} row {j}");
                }
            }
        }
    }
}

#[test]
#[should_panic(expected = "pq4 scan")]
fn pq4_scan_refuses_partial_blocks() {
    let k = kernels_for(SimdLevel::best_available()).unwrap();
    let mut out = [0u16; 32];
    (k.pq4_scan)(&[0u8; 48], &[0u8; 32], &mut out);
}
