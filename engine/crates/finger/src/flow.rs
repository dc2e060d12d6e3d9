//! Ridge-flow descriptors: the ridge orientation around a minutia, sampled
//! on [`FLOW_RINGS`] relative to the minutia's direction (Tico and
//! Kuosmanen, IEEE TPAMI 2003), and how alike two of them are.
//!
//! The matcher multiplies a pair's cylinder similarity by the descriptors'
//! agreement ([`FLOW_WEIGHT`]). Cylinders see only neighbouring minutiae,
//! which noise adds and removes; the orientation field around the same
//! point of the same finger stays alike however the ridges broke up.
//!
//! A descriptor is stored as 4-bit codes, two to a byte: an orientation
//! level `0..FLOW_LEVELS` or [`FLOW_OFF_PRINT`]. The matcher unpacks it to
//! one byte a sample, padded with off-print codes to [`FLOW_LANES`], so the
//! AVX2 kernel compares a descriptor in two 32-byte loads; it is tested
//! against the portable one.

use crate::params::{
    FLOW_LEVELS, FLOW_MIN_SHARED, FLOW_OFF_PRINT, FLOW_RINGS, FLOW_SAMPLES, FLOW_TAU, FLOW_WEIGHT,
};
use serde::{Deserialize, Serialize};
use std::f32::consts::{PI, TAU};
use std::sync::OnceLock;

/// Bytes of a packed descriptor.
pub const FLOW_BYTES: usize = FLOW_SAMPLES.div_ceil(2);
/// Samples of an unpacked descriptor: [`FLOW_SAMPLES`] padded with
/// off-print codes to whole 32-byte vectors.
pub(crate) const FLOW_LANES: usize = 64;
const _: () = assert!(FLOW_SAMPLES <= FLOW_LANES && FLOW_LEVELS <= FLOW_OFF_PRINT);

/// One minutia's ridge-flow descriptor, packed (sample `2k` in the low
/// nibble of byte `k`). Every nibble value is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FlowDescriptor(pub [u8; FLOW_BYTES]);

impl FlowDescriptor {
    /// Packs [`FLOW_SAMPLES`] codes (each `0..=15`; higher bits ignored).
    pub fn from_codes(codes: &[u8; FLOW_SAMPLES]) -> Self {
        let mut b = [0u8; FLOW_BYTES];
        for (k, c) in codes.iter().enumerate() {
            b[k / 2] |= (c & 0x0f) << (4 * (k % 2));
        }
        FlowDescriptor(b)
    }

    /// The sample codes, in ring order (innermost first), each ring
    /// starting at the minutia's direction and turning like it.
    pub fn codes(&self) -> [u8; FLOW_SAMPLES] {
        let mut c = [0u8; FLOW_SAMPLES];
        for (k, v) in c.iter_mut().enumerate() {
            *v = (self.0[k / 2] >> (4 * (k % 2))) & 0x0f;
        }
        c
    }

    /// One byte a sample, padded with off-print codes: the matcher's form.
    pub(crate) fn lanes(&self) -> [u8; FLOW_LANES] {
        let mut l = [FLOW_OFF_PRINT; FLOW_LANES];
        l[..FLOW_SAMPLES].copy_from_slice(&self.codes());
        l
    }
}

/// Samples the ridge orientation around a minutia at (`x`, `y`) with
/// direction `theta`: `orientation(px, py)` gives the ridge orientation in
/// `[0, π)` at an on-print pixel and `None` off the print or the image.
pub(crate) fn describe(
    x: f32,
    y: f32,
    theta: f32,
    orientation: impl Fn(isize, isize) -> Option<f32>,
) -> FlowDescriptor {
    let mut codes = [FLOW_OFF_PRINT; FLOW_SAMPLES];
    let mut k = 0;
    for (radius, count) in FLOW_RINGS {
        for i in 0..count {
            let a = theta + TAU * i as f32 / count as f32;
            let (px, py) = (
                (x + radius * a.cos()).round() as isize,
                (y + radius * a.sin()).round() as isize,
            );
            if let Some(o) = orientation(px, py) {
                let rel = (o - theta).rem_euclid(PI);
                codes[k] = (rel / PI * f32::from(FLOW_LEVELS)).round() as u8 % FLOW_LEVELS;
            }
            k += 1;
        }
    }
    FlowDescriptor::from_codes(&codes)
}

/// Agreement of one sample pair by level difference (0..=7 steps of
/// π / [`FLOW_LEVELS`]), exp(−d / [`FLOW_TAU`]) in 1/255 units: integer, so
/// both kernels give bit-identical sums.
fn agreement_table() -> &'static [u8; 16] {
    static T: OnceLock<[u8; 16]> = OnceLock::new();
    T.get_or_init(|| {
        let mut t = [0u8; 16];
        for (d, v) in t
            .iter_mut()
            .enumerate()
            .take(usize::from(FLOW_LEVELS / 2) + 1)
        {
            let angle = d as f32 * PI / f32::from(FLOW_LEVELS);
            *v = (255.0 * (-angle / FLOW_TAU).exp()).round() as u8;
        }
        t
    })
}

/// (sum of agreements in 1/255 units, samples on-print in both), portable.
pub(crate) fn agreement(a: &[u8; FLOW_LANES], b: &[u8; FLOW_LANES]) -> (u32, u32) {
    let table = agreement_table();
    let (mut sum, mut shared) = (0u32, 0u32);
    for (&x, &y) in a.iter().zip(b) {
        if x == FLOW_OFF_PRINT || y == FLOW_OFF_PRINT {
            continue;
        }
        let d = x.abs_diff(y);
        let d = d.min(FLOW_LEVELS - d);
        sum += u32::from(table[usize::from(d)]);
        shared += 1;
    }
    (sum, shared)
}

/// [`agreement`] with AVX2: the circular difference, the off-print mask and
/// the agreement lookup (vpshufb) for 32 samples at a time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,popcnt")]
#[inline]
pub(crate) fn agreement_avx2(a: &[u8; FLOW_LANES], b: &[u8; FLOW_LANES]) -> (u32, u32) {
    use std::arch::x86_64::*;
    let t = agreement_table();
    // SAFETY: the table is 16 bytes, exactly the one 128-bit load; vpshufb looks
    // up within each 128-bit lane, so both lanes get the table.
    let lut = _mm256_broadcastsi128_si256(unsafe { _mm_loadu_si128(t.as_ptr() as *const __m128i) });
    let off = _mm256_set1_epi8(FLOW_OFF_PRINT as i8);
    let levels = _mm256_set1_epi8(FLOW_LEVELS as i8);
    let zero = _mm256_setzero_si256();
    let (mut sum, mut shared) = (0u32, 0u32);
    for half in 0..FLOW_LANES / 32 {
        // SAFETY: each array holds FLOW_LANES = 64 bytes; this reads 32 at 32·half.
        let (x, y) = unsafe {
            (
                _mm256_loadu_si256(a.as_ptr().add(32 * half) as *const __m256i),
                _mm256_loadu_si256(b.as_ptr().add(32 * half) as *const __m256i),
            )
        };
        let d = _mm256_sub_epi8(_mm256_max_epu8(x, y), _mm256_min_epu8(x, y));
        let d = _mm256_min_epu8(d, _mm256_sub_epi8(levels, d));
        let outside = _mm256_or_si256(_mm256_cmpeq_epi8(x, off), _mm256_cmpeq_epi8(y, off));
        // Off-print lanes become 0 before the lookup's sum.
        let v = _mm256_andnot_si256(outside, _mm256_shuffle_epi8(lut, d));
        let s = _mm256_sad_epu8(v, zero);
        let s = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256::<1>(s));
        sum += (_mm_cvtsi128_si64(s) + _mm_extract_epi64::<1>(s)) as u32;
        shared += 32 - (_mm256_movemask_epi8(outside) as u32).count_ones();
    }
    (sum, shared)
}

/// The factor a pair's local similarity is multiplied by: the mean
/// agreement of the shared samples to the power [`FLOW_WEIGHT`], or 0 when
/// fewer than [`FLOW_MIN_SHARED`] of the samples are on both prints.
#[inline(always)]
pub(crate) fn factor((sum, shared): (u32, u32)) -> f32 {
    if (shared as f32) < FLOW_MIN_SHARED * FLOW_SAMPLES as f32 || shared == 0 {
        return 0.0;
    }
    let mean = sum as f32 / (255.0 * shared as f32);
    if FLOW_WEIGHT == 0.5 {
        mean.sqrt()
    } else {
        mean.powf(FLOW_WEIGHT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_lanes(seed: &mut u32) -> [u8; FLOW_LANES] {
        let mut l = [FLOW_OFF_PRINT; FLOW_LANES];
        for v in l.iter_mut().take(FLOW_SAMPLES) {
            *seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            // About one sample in eight off the print.
            *v = ((*seed >> 24) % 17).min(u32::from(FLOW_OFF_PRINT)) as u8;
        }
        l
    }

    #[test]
    fn packing_round_trips_every_code() {
        let mut codes = [0u8; FLOW_SAMPLES];
        for (k, c) in codes.iter_mut().enumerate() {
            *c = (k % 16) as u8;
        }
        let d = FlowDescriptor::from_codes(&codes);
        assert_eq!(d.codes(), codes);
        assert_eq!(&d.lanes()[..FLOW_SAMPLES], &codes[..]);
        assert!(d.lanes()[FLOW_SAMPLES..]
            .iter()
            .all(|&c| c == FLOW_OFF_PRINT));
    }

    #[test]
    fn agreement_is_circular_and_skips_off_print_samples() {
        let mut a = [FLOW_OFF_PRINT; FLOW_LANES];
        let mut b = [FLOW_OFF_PRINT; FLOW_LANES];
        // Levels 0 and 14 are one step apart across the π wrap.
        (a[0], b[0]) = (0, FLOW_LEVELS - 1);
        (a[1], b[1]) = (3, 3);
        (a[2], b[2]) = (5, FLOW_OFF_PRINT);
        let t = agreement_table();
        assert_eq!(agreement(&a, &b), (u32::from(t[1]) + 255, 2));
        assert_eq!(t[0], 255);
        assert!(t[1] < 255 && t[7] < t[1] && t[8] == 0);
    }

    #[test]
    fn avx2_kernel_equals_the_portable_one() {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("popcnt") {
            let mut seed = 7;
            for _ in 0..500 {
                let (a, b) = (random_lanes(&mut seed), random_lanes(&mut seed));
                // SAFETY: AVX2 and popcnt were detected above.
                let fast = unsafe { agreement_avx2(&a, &b) };
                assert_eq!(fast, agreement(&a, &b));
            }
        }
    }

    #[test]
    fn factor_needs_a_third_of_the_samples_shared() {
        let need = (FLOW_MIN_SHARED * FLOW_SAMPLES as f32).ceil() as u32;
        assert_eq!(factor((255 * (need - 1), need - 1)), 0.0);
        assert!((factor((255 * need, need)) - 1.0).abs() < 1e-6);
        assert!((factor((255 * need / 4, need)) - 0.5).abs() < 0.01);
    }

    /// Rotating and moving a straight-ridge field with the minutia leaves the
    /// descriptor unchanged; turning the ridges against the minutia changes it.
    #[test]
    fn descriptor_is_relative_to_the_minutia() {
        let field = |rot: f32| move |_x: isize, _y: isize| Some((0.3 + rot).rem_euclid(PI));
        let a = describe(200.0, 200.0, 1.0, field(0.0));
        let b = describe(50.0, 80.0, 1.0 + 0.8, field(0.8));
        assert_eq!(a, b);
        let c = describe(200.0, 200.0, 1.0, field(PI / 2.0));
        assert_ne!(a, c);
        let (la, lc) = (a.lanes(), c.lanes());
        assert!(factor(agreement(&la, &la)) > 0.99);
        assert!(factor(agreement(&la, &lc)) < 0.2);
        // Off the print on one side: not enough shared samples.
        let none = describe(200.0, 200.0, 1.0, |_, _| None);
        assert_eq!(factor(agreement(&la, &none.lanes())), 0.0);
    }
}
