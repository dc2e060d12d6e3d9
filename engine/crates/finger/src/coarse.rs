//! Pre-selection codes: a 12× smaller summary of each cylinder, scored
//! against a whole gallery before the exact MCC comparison of the best few.
//!
//! [`CoarseTable`] keeps a gallery's codes as a structure of arrays, each
//! template's codes padded to a multiple of 4 with codes that never count,
//! so the AVX2 kernel scores one probe code against 4 gallery codes per
//! instruction; the portable loop over [`CoarseCode`]s is the reference it
//! is tested against and the fallback without AVX2.

use crate::mcc::{has_fast_popcount, Cylinder, CELLS};
use crate::params::*;
use std::f32::consts::TAU;

/// Pre-selection code of one cylinder: 2×2 spatial cells × 3 direction
/// layers pooled into one bit (128 bits), the pooled validity mask, and
/// the minutia direction quantised to 256 steps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CoarseCode {
    bits: [u64; 2],
    mask: [u64; 2],
    angle: u8,
}

pub(crate) fn coarse_code(c: &Cylinder) -> CoarseCode {
    let mut bits = [0u64; 2];
    let mut mask = [0u64; 2];
    let half = MCC_NS / 2;
    for dl in 0..2 {
        for cj in 0..half {
            for ci in 0..half {
                let (mut n, mut valid) = (0, 0);
                for k in dl * 3..dl * 3 + 3 {
                    for (dj, di) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                        let bit = k * CELLS + (2 * cj + dj) * MCC_NS + 2 * ci + di;
                        n += ((c.bits[bit / 64] >> (bit % 64)) & 1) as u32;
                        let cell = bit % CELLS;
                        valid += ((c.mask[cell / 64] >> (cell % 64)) & 1) as u32;
                    }
                }
                let b = dl * 64 + cj * half + ci;
                if n >= COARSE_MIN_FINE_BITS {
                    bits[b / 64] |= 1 << (b % 64);
                }
                // Valid when most of its 12 fine cells are.
                if valid >= 8 {
                    mask[b / 64] |= 1 << (b % 64);
                }
            }
        }
    }
    CoarseCode {
        bits,
        mask,
        angle: ((c.angle / TAU * 256.0) as i32).rem_euclid(256) as u8,
    }
}

/// Sum over probe codes of the best Dice similarity `⌊512·|a∧b| / (|a|+|b|)⌋`
/// (0..=256) against the candidate's codes, over commonly valid cells, for
/// directions within ±90°: the MCC-Bit local similarity on a 12× smaller
/// code, without the square roots. The floor is monotone in the ratio, so a
/// kernel may keep the best ratio and divide once per probe code.
pub(crate) fn coarse_similarity(a: &[CoarseCode], b: &[CoarseCode]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    if has_fast_popcount() {
        // SAFETY: has_fast_popcount() checked popcnt and AVX2 at run time.
        return unsafe { coarse_similarity_avx2(a, b) };
    }
    coarse_similarity_generic(a, b)
}

/// [`coarse_similarity_generic`] compiled with hardware popcount: the
/// baseline x86-64 target lacks it and this loop is all popcounts.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt,avx2")]
unsafe fn coarse_similarity_avx2(a: &[CoarseCode], b: &[CoarseCode]) -> u32 {
    coarse_similarity_generic(a, b)
}

#[inline(always)]
fn coarse_similarity_generic(a: &[CoarseCode], b: &[CoarseCode]) -> u32 {
    let mut total = 0;
    for p in a {
        let mut best = 0u32;
        for q in b {
            // ±64 steps of 256 = ±90°; wrapping i8 arithmetic is the wrap.
            if (p.angle.wrapping_sub(q.angle) as i8).unsigned_abs() > 64 {
                continue;
            }
            let m0 = p.mask[0] & q.mask[0];
            let m1 = p.mask[1] & q.mask[1];
            let (a0, a1) = (p.bits[0] & m0, p.bits[1] & m1);
            let (b0, b1) = (q.bits[0] & m0, q.bits[1] & m1);
            let sum = a0.count_ones() + a1.count_ones() + b0.count_ones() + b1.count_ones();
            if sum == 0 || (m0.count_ones() + m1.count_ones()) < 48 {
                continue;
            }
            let common = (a0 & b0).count_ones() + (a1 & b1).count_ones();
            best = best.max(512 * common / sum);
        }
        total += best;
    }
    total
}

/// Gallery codes, structure of arrays (see the module docs).
#[derive(Debug, Clone, Default)]
pub(crate) struct CoarseTable {
    bits: [Vec<u64>; 2],
    mask: [Vec<u64>; 2],
    angle: Vec<u64>,
}

/// Codes scored per vector.
const LANES: usize = 4;

/// Most codes one template of this crate has in the table (after padding).
const MAX_TEMPLATE_CODES: usize = COARSE_MINUTIAE.div_ceil(LANES) * LANES;

/// A padding code has an empty mask: it never overlaps, so it never counts.
const PADDING: CoarseCode = CoarseCode {
    bits: [0; 2],
    mask: [0; 2],
    angle: 0,
};

impl CoarseTable {
    /// Appends one template's codes; returns their range in the table.
    pub fn push(&mut self, codes: &[CoarseCode]) -> (u32, u32) {
        let offset = |n: usize| u32::try_from(n).expect("coarse table beyond 2^32 codes");
        let start = self.angle.len();
        let padded = codes.len().div_ceil(LANES) * LANES;
        for c in codes
            .iter()
            .chain(std::iter::repeat_n(&PADDING, padded - codes.len()))
        {
            for w in 0..2 {
                self.bits[w].push(c.bits[w]);
                self.mask[w].push(c.mask[w]);
            }
            self.angle.push(u64::from(c.angle));
        }
        (offset(start), offset(self.angle.len()))
    }

    fn code(&self, i: usize) -> CoarseCode {
        CoarseCode {
            bits: [self.bits[0][i], self.bits[1][i]],
            mask: [self.mask[0][i], self.mask[1][i]],
            angle: self.angle[i] as u8,
        }
    }

    /// [`coarse_similarity`] of `probe` against the codes in `range`.
    #[cfg(test)]
    pub fn similarity(&self, probe: &[CoarseCode], range: (u32, u32)) -> u32 {
        let mut out = Vec::with_capacity(1);
        self.similarities(probe, &[range], &mut out);
        out[0]
    }

    /// [`CoarseTable::similarity`] for each range, appended to `out`: one call
    /// for a whole slice of the gallery, so the AVX2 kernel inlines into the
    /// loop (a call per template was a quarter of the pass).
    pub fn similarities(&self, probe: &[CoarseCode], ranges: &[(u32, u32)], out: &mut Vec<u32>) {
        for &(start, end) in ranges {
            assert!(
                start <= end
                    && end as usize <= self.angle.len()
                    && ((end - start) as usize).is_multiple_of(LANES),
                "coarse table: bad range {:?}",
                (start, end)
            );
        }
        out.reserve(ranges.len());
        #[cfg(target_arch = "x86_64")]
        if has_fast_popcount() {
            // SAFETY: AVX2 detected; every range was checked against every array above
            // (they all have the same length) and is a whole number of vectors.
            unsafe { self.similarities_avx2(probe, ranges, out) };
            return;
        }
        out.extend(ranges.iter().map(|&r| self.similarity_portable(probe, r)));
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn similarities_avx2(
        &self,
        probe: &[CoarseCode],
        ranges: &[(u32, u32)],
        out: &mut Vec<u32>,
    ) {
        for &(start, end) in ranges {
            // SAFETY: the caller checked the ranges and AVX2.
            out.push(unsafe { self.similarity_avx2(probe, start as usize, end as usize) });
        }
    }

    fn similarity_portable(&self, probe: &[CoarseCode], range: (u32, u32)) -> u32 {
        let (start, end) = (range.0 as usize, range.1 as usize);
        // Portable path: a template's codes, on the stack when they fit (they always do
        // for templates built by this crate).
        let mut buf = [PADDING; MAX_TEMPLATE_CODES];
        if end - start <= MAX_TEMPLATE_CODES {
            for (slot, i) in buf.iter_mut().zip(start..end) {
                *slot = self.code(i);
            }
            return coarse_similarity(probe, &buf[..end - start]);
        }
        let codes: Vec<CoarseCode> = (start..end).map(|i| self.code(i)).collect();
        coarse_similarity(probe, &codes)
    }

    /// 4 gallery codes per step, exactly [`coarse_similarity_generic`]'s result:
    /// byte popcounts by nibble lookup summed into 64-bit lanes (vpsadbw), every
    /// test a lane mask. Each lane keeps its best ratio `common / sum` by cross
    /// multiplication (products ≤ 128·256 fit the 32-bit multiplier); the floor
    /// `512·common / sum` is taken once per probe code, by a float division
    /// that is exact here (see `float_floor_division_is_exact`).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn similarity_avx2(&self, probe: &[CoarseCode], start: usize, end: usize) -> u32 {
        use crate::mcc::popcount_bytes;
        use std::arch::x86_64::*;
        let zero = _mm256_setzero_si256();
        let load = |v: &Vec<u64>, i: usize| {
            // SAFETY: i + LANES <= end <= v.len(), checked by the caller.
            unsafe { _mm256_loadu_si256(v.as_ptr().add(i) as *const __m256i) }
        };
        let splat = |x: u64| _mm256_set1_epi64x(x as i64);
        let (byte, overlap_min, window) = (splat(255), splat(47), splat(129));
        let mut total = 0;
        for p in probe {
            let (pb0, pb1, pm0, pm1) = (
                splat(p.bits[0]),
                splat(p.bits[1]),
                splat(p.mask[0]),
                splat(p.mask[1]),
            );
            // Gap + 64 (mod 256) ≤ 128 ⇔ the gap is within ±64 steps (±90°).
            let pa = splat(u64::from(p.angle) + 64);
            let (mut best_common, mut best_sum) = (zero, splat(1));
            let mut i = start;
            while i < end {
                let m0 = _mm256_and_si256(pm0, load(&self.mask[0], i));
                let m1 = _mm256_and_si256(pm1, load(&self.mask[1], i));
                let (a0, a1) = (_mm256_and_si256(pb0, m0), _mm256_and_si256(pb1, m1));
                let b0 = _mm256_and_si256(load(&self.bits[0], i), m0);
                let b1 = _mm256_and_si256(load(&self.bits[1], i), m1);
                // Byte counts stay ≤ 16, so byte adds cannot overflow.
                let diff = _mm256_sad_epu8(
                    _mm256_add_epi8(
                        popcount_bytes(_mm256_xor_si256(a0, b0)),
                        popcount_bytes(_mm256_xor_si256(a1, b1)),
                    ),
                    zero,
                );
                let common = _mm256_sad_epu8(
                    _mm256_add_epi8(
                        popcount_bytes(_mm256_and_si256(a0, b0)),
                        popcount_bytes(_mm256_and_si256(a1, b1)),
                    ),
                    zero,
                );
                // |a| + |b| = |a ⊕ b| + 2·|a ∧ b|: two popcounts instead of four.
                let sum = _mm256_add_epi64(diff, _mm256_add_epi64(common, common));
                let overlap = _mm256_sad_epu8(
                    _mm256_add_epi8(popcount_bytes(m0), popcount_bytes(m1)),
                    zero,
                );
                let gap = _mm256_and_si256(_mm256_sub_epi64(pa, load(&self.angle, i)), byte);
                let counted = _mm256_and_si256(
                    _mm256_cmpgt_epi64(window, gap),
                    _mm256_cmpgt_epi64(overlap, overlap_min),
                );
                // A lane that does not count (or has sum 0, hence common 0) has ratio
                // 0, which never beats the best (≥ 0/1).
                let common = _mm256_and_si256(common, counted);
                let better = _mm256_cmpgt_epi64(
                    _mm256_mul_epu32(common, best_sum),
                    _mm256_mul_epu32(best_common, sum),
                );
                best_common = _mm256_blendv_epi8(best_common, common, better);
                best_sum = _mm256_blendv_epi8(best_sum, sum, better);
                i += LANES;
            }
            // ⌊512·common / sum⌋ per lane (values < 2^24: exact as f32), then the max.
            let sim = _mm256_cvttps_epi32(_mm256_div_ps(
                _mm256_cvtepi32_ps(_mm256_slli_epi64::<9>(best_common)),
                _mm256_cvtepi32_ps(best_sum),
            ));
            let mut lanes = [0u64; LANES];
            _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, sim);
            // Each 64-bit lane's low half holds it (the high halves divide 0 by 0: junk, dropped).
            total += lanes.iter().map(|&l| l as u32).max().unwrap_or(0);
        }
        total
    }
}

/// The AVX2 kernel's `(512·c as f32 / s as f32) as u32` equals the integer floor for
/// every c ≤ s ≤ 256: when 512c/s is not an integer it is at least 1/s from one,
/// while f32 rounds the quotient within 512 · 2⁻²⁴ < 1/256.
#[cfg(test)]
fn float_floor_division_is_exact() -> bool {
    (1..=256u32).all(|s| (0..=s).all(|c| ((512 * c) as f32 / s as f32) as u32 == 512 * c / s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(seed: u64) -> CoarseCode {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        // Dense masks so that most pairs pass the overlap test.
        CoarseCode {
            bits: [next() & next(), next() & next()],
            mask: [next() | next() | next(), next() | next() | next()],
            angle: next() as u8,
        }
    }

    /// Fixed pairs at every edge of the reference's tests: overlap 47 / 48 cells, no bits
    /// in common cells, identical codes, angle gaps at and around ±90° and 180°.
    #[test]
    fn the_table_is_exact_at_the_edges() {
        let ones = |n: u32| if n >= 64 { u64::MAX } else { (1u64 << n) - 1 };
        let base = CoarseCode {
            bits: [0x5555_5555_5555_5555, 0x0f0f_0f0f_0f0f_0f0f],
            mask: [u64::MAX, u64::MAX],
            angle: 10,
        };
        let mut cases = vec![base];
        for overlap in [47u32, 48, 49] {
            cases.push(CoarseCode {
                mask: [ones(overlap.min(64)), ones(overlap.saturating_sub(64))],
                ..base
            });
        }
        cases.push(CoarseCode {
            bits: [0, 0],
            ..base
        });
        cases.push(CoarseCode {
            bits: [0x5555_5555_0000_0000, 0],
            ..base
        });
        for gap in [63u8, 64, 65, 127, 128, 129, 191, 192, 193] {
            cases.push(CoarseCode {
                angle: base.angle.wrapping_add(gap),
                ..base
            });
        }
        let mut table = CoarseTable::default();
        let one = std::slice::from_ref;
        for probe in &cases {
            for candidate in &cases {
                let range = table.push(one(candidate));
                let want = coarse_similarity(one(probe), one(candidate));
                assert_eq!(
                    table.similarity(one(probe), range),
                    want,
                    "{probe:?} vs {candidate:?}"
                );
            }
        }
        // The cases reach both sides of each test.
        let score = |c: &CoarseCode| coarse_similarity(one(&base), one(c));
        assert_eq!(score(&base), 256, "identical codes");
        assert_eq!(score(&cases[1]), 0, "47 common cells do not count");
        assert!(score(&cases[2]) > 0, "48 common cells count");
        let empty = CoarseCode {
            bits: [0, 0],
            ..base
        };
        assert_eq!(
            coarse_similarity(one(&empty), one(&empty)),
            0,
            "no bits on either side: skipped"
        );
        let by_gap = |g: u8| {
            score(&CoarseCode {
                angle: base.angle.wrapping_add(g),
                ..base
            })
        };
        assert!(by_gap(64) > 0 && by_gap(192) > 0, "±90° counts");
        assert_eq!((by_gap(65), by_gap(128), by_gap(191)), (0, 0, 0));
    }

    #[test]
    fn the_float_floor_division_is_the_integer_one() {
        assert!(float_floor_division_is_exact());
    }

    #[test]
    fn the_table_scores_exactly_like_the_reference_loop() {
        let mut table = CoarseTable::default();
        let templates: Vec<Vec<CoarseCode>> = (0..40u64)
            .map(|t| (0..(t % 17)).map(|i| code(t * 100 + i)).collect())
            .collect();
        let ranges: Vec<(u32, u32)> = templates.iter().map(|t| table.push(t)).collect();
        for probe in templates.iter().take(10) {
            for (t, &r) in templates.iter().zip(&ranges) {
                assert_eq!(table.similarity(probe, r), coarse_similarity(probe, t));
            }
        }
        // Some pairs must have counted, or the test proves nothing.
        assert!(templates[12].len() > 4 && coarse_similarity(&templates[12], &templates[12]) > 0);
    }
}
