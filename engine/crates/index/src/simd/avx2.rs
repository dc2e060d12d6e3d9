//! AVX2 + FMA + F16C kernels (x86-64).
//!
//! The public functions are safe: each checks the CPU features and the slice
//! lengths, then calls a `#[target_feature]` body. Tiles are register-blocked
//! 2 queries × 4 rows: 8 accumulators, 4 row registers and 1 query register
//! stay within the 16 ymm registers, and each row load feeds two FMAs.

use std::arch::x86_64::*;

use half::f16;

/// Whether this CPU has AVX2, FMA and F16C (std caches the CPUID result).
pub fn is_available() -> bool {
    is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c")
}

fn check() {
    assert!(
        is_available(),
        "AVX2/FMA/F16C kernels called on a CPU without them"
    );
}

/// Inner product of two f32 vectors of equal length.
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot_f32: length mismatch");
    check();
    // SAFETY: the CPU features were checked above and both slices hold a.len() values.
    unsafe { dot_f32_impl(a.as_ptr(), b.as_ptr(), a.len()) }
}

/// Inner product of an f32 query with an f16 code.
pub fn dot_f16(q: &[f32], c: &[u16]) -> f32 {
    assert_eq!(q.len(), c.len(), "dot_f16: length mismatch");
    check();
    // SAFETY: features checked; both slices hold q.len() values.
    unsafe { dot_f16_impl(q.as_ptr(), c.as_ptr(), q.len()) }
}

/// Integer inner product of two int8 codes.
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    assert_eq!(a.len(), b.len(), "dot_i8: length mismatch");
    check();
    // SAFETY: features checked; both slices hold a.len() values.
    unsafe { dot_i8_impl(a.as_ptr(), b.as_ptr(), a.len()) }
}

/// Score tile, f32 × f32 (see [`super::TileFn`]).
pub fn tile_f32(queries: &[f32], rows: &[f32], dim: usize, out: &mut [f32]) {
    let (nq, nr) = super::tile_shape(queries.len(), rows.len(), dim, out.len());
    check();
    // SAFETY: features checked; tile_shape asserted queries = nq*dim, rows = nr*dim
    // and out >= nq*nr, which are exactly the extents the body touches.
    unsafe {
        tile_f32_impl(
            queries.as_ptr(),
            nq,
            rows.as_ptr(),
            nr,
            dim,
            out.as_mut_ptr(),
        )
    }
}

/// Score tile, f32 × f16.
pub fn tile_f16(queries: &[f32], rows: &[u16], dim: usize, out: &mut [f32]) {
    let (nq, nr) = super::tile_shape(queries.len(), rows.len(), dim, out.len());
    check();
    // SAFETY: as in tile_f32: extents asserted by tile_shape, features checked.
    unsafe {
        tile_f16_impl(
            queries.as_ptr(),
            nq,
            rows.as_ptr(),
            nr,
            dim,
            out.as_mut_ptr(),
        )
    }
}

/// Score tile, int8 × int8, integer results. Query values must lie in −127..=127 (what the
/// query quantiser produces); rows may hold any i8. A −128 query value is a logic error: the
/// score can be wrong (checked in debug builds), never out of bounds.
pub fn tile_i8(queries: &[i8], rows: &[i8], dim: usize, out: &mut [i32]) {
    let (nq, nr) = super::tile_shape(queries.len(), rows.len(), dim, out.len());
    check();
    debug_assert!(
        !queries.contains(&i8::MIN),
        "tile_i8: query values must lie in -127..=127"
    );
    // SAFETY: as in tile_f32: extents asserted by tile_shape, features checked.
    unsafe {
        tile_i8_impl(
            queries.as_ptr(),
            nq,
            rows.as_ptr(),
            nr,
            dim,
            out.as_mut_ptr(),
        )
    }
}

// ---------------------------------------------------------------- helpers

#[inline]
#[target_feature(enable = "avx2,fma")]
fn hsum_ps(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let sh = _mm_movehdup_ps(s);
    let s2 = _mm_add_ps(s, sh);
    let hi = _mm_movehl_ps(sh, s2);
    _mm_cvtss_f32(_mm_add_ss(s2, hi))
}

/// Horizontal sums of four vectors at once: lane i of the result = sum of v[i].
#[inline]
#[target_feature(enable = "avx2,fma")]
fn hsum4_ps(a: __m256, b: __m256, c: __m256, d: __m256) -> __m128 {
    let ab = _mm256_hadd_ps(a, b);
    let cd = _mm256_hadd_ps(c, d);
    let abcd = _mm256_hadd_ps(ab, cd);
    _mm_add_ps(
        _mm256_castps256_ps128(abcd),
        _mm256_extractf128_ps::<1>(abcd),
    )
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn hsum4_epi32(a: __m256i, b: __m256i, c: __m256i, d: __m256i) -> __m128i {
    let ab = _mm256_hadd_epi32(a, b);
    let cd = _mm256_hadd_epi32(c, d);
    let abcd = _mm256_hadd_epi32(ab, cd);
    _mm_add_epi32(
        _mm256_castsi256_si128(abcd),
        _mm256_extracti128_si256::<1>(abcd),
    )
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn hsum_epi32(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
    _mm_cvtsi128_si32(s)
}

// ---------------------------------------------------------------- pair kernels

#[target_feature(enable = "avx2,fma")]
unsafe fn dot_f32_impl(a: *const f32, b: *const f32, n: usize) -> f32 {
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    // Four independent accumulators hide the 4-cycle FMA latency.
    while i + 32 <= n {
        for (u, acc_u) in acc.iter_mut().enumerate() {
            let o = i + 8 * u;
            *acc_u = _mm256_fmadd_ps(_mm256_loadu_ps(a.add(o)), _mm256_loadu_ps(b.add(o)), *acc_u);
        }
        i += 32;
    }
    while i + 8 <= n {
        acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(a.add(i)), _mm256_loadu_ps(b.add(i)), acc[0]);
        i += 8;
    }
    let v = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let mut s = hsum_ps(v);
    while i < n {
        s += *a.add(i) * *b.add(i);
        i += 1;
    }
    s
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_f16_impl(q: *const f32, c: *const u16, n: usize) -> f32 {
    let mut acc0 = _mm256_setzero_ps();
    let mut acc1 = _mm256_setzero_ps();
    let mut i = 0;
    while i + 16 <= n {
        let c0 = _mm256_cvtph_ps(_mm_loadu_si128(c.add(i) as *const __m128i));
        let c1 = _mm256_cvtph_ps(_mm_loadu_si128(c.add(i + 8) as *const __m128i));
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(q.add(i)), c0, acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(q.add(i + 8)), c1, acc1);
        i += 16;
    }
    while i + 8 <= n {
        let c0 = _mm256_cvtph_ps(_mm_loadu_si128(c.add(i) as *const __m128i));
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(q.add(i)), c0, acc0);
        i += 8;
    }
    let mut s = hsum_ps(_mm256_add_ps(acc0, acc1));
    while i < n {
        s += *q.add(i) * f16::from_bits(*c.add(i)).to_f32();
        i += 1;
    }
    s
}

#[target_feature(enable = "avx2,fma")]
unsafe fn dot_i8_impl(a: *const i8, b: *const i8, n: usize) -> i32 {
    let mut acc = _mm256_setzero_si256();
    let mut i = 0;
    // Widen to i16 and use vpmaddwd: exact for every i8 value, −128 included (the tile
    // kernel's vpmaddubsw form is exact only within −127..=127).
    while i + 16 <= n {
        let va = _mm256_cvtepi8_epi16(_mm_loadu_si128(a.add(i) as *const __m128i));
        let vb = _mm256_cvtepi8_epi16(_mm_loadu_si128(b.add(i) as *const __m128i));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(va, vb));
        i += 16;
    }
    let mut s = hsum_epi32(acc);
    while i < n {
        s += *a.add(i) as i32 * *b.add(i) as i32;
        i += 1;
    }
    s
}

// ---------------------------------------------------------------- tile kernels

/// Drives a 2×4 / 1×4 micro-kernel over a tile and finishes the row tail with
/// the pair kernel. `micro(q, r, out)` scores NQ queries from `q` against the
/// 4 rows from `r`, writing `out[qi*nr + j]`.
macro_rules! drive_tile {
    ($qp:expr, $nq:expr, $rp:expr, $nr:expr, $dim:expr, $out:expr,
     $micro2:expr, $micro1:expr, $pair:expr) => {{
        let (qp, nq, rp, nr, dim, out) = ($qp, $nq, $rp, $nr, $dim, $out);
        let mut r = 0;
        while r + 4 <= nr {
            let mut q = 0;
            while q + 2 <= nq {
                $micro2(
                    qp.add(q * dim),
                    rp.add(r * dim),
                    dim,
                    out.add(q * nr + r),
                    nr,
                );
                q += 2;
            }
            if q < nq {
                $micro1(
                    qp.add(q * dim),
                    rp.add(r * dim),
                    dim,
                    out.add(q * nr + r),
                    nr,
                );
            }
            r += 4;
        }
        while r < nr {
            for q in 0..nq {
                *out.add(q * nr + r) = $pair(qp.add(q * dim), rp.add(r * dim), dim);
            }
            r += 1;
        }
    }};
}

#[target_feature(enable = "avx2,fma")]
unsafe fn tile_f32_impl(
    qp: *const f32,
    nq: usize,
    rp: *const f32,
    nr: usize,
    dim: usize,
    out: *mut f32,
) {
    drive_tile!(
        qp,
        nq,
        rp,
        nr,
        dim,
        out,
        micro_f32::<2>,
        micro_f32::<1>,
        dot_f32_impl
    )
}

#[target_feature(enable = "avx2,fma")]
unsafe fn micro_f32<const NQ: usize>(
    q: *const f32,
    r: *const f32,
    dim: usize,
    out: *mut f32,
    nr: usize,
) {
    let mut acc = [[_mm256_setzero_ps(); 4]; NQ];
    if NQ == 1 {
        // One query is memory-bound: walk the 4 rows one after the other (a single
        // ascending stream for the prefetcher) instead of side by side. Each
        // (query, row) keeps its own accumulator and lane order, so scores are
        // bit-identical to the blocked path whatever the batch size.
        for (j, acc_j) in acc[0].iter_mut().enumerate() {
            let mut i = 0;
            while i + 8 <= dim {
                let rv = _mm256_loadu_ps(r.add(j * dim + i));
                let qv = _mm256_loadu_ps(q.add(i));
                *acc_j = _mm256_fmadd_ps(qv, rv, *acc_j);
                i += 8;
            }
        }
    } else {
        let mut i = 0;
        while i + 8 <= dim {
            let rv = [
                _mm256_loadu_ps(r.add(i)),
                _mm256_loadu_ps(r.add(dim + i)),
                _mm256_loadu_ps(r.add(2 * dim + i)),
                _mm256_loadu_ps(r.add(3 * dim + i)),
            ];
            for (qi, acc_q) in acc.iter_mut().enumerate() {
                let qv = _mm256_loadu_ps(q.add(qi * dim + i));
                for j in 0..4 {
                    acc_q[j] = _mm256_fmadd_ps(qv, rv[j], acc_q[j]);
                }
            }
            i += 8;
        }
    }
    let i = dim - dim % 8;
    for (qi, acc_q) in acc.iter().enumerate() {
        let mut s = [0.0f32; 4];
        _mm_storeu_ps(
            s.as_mut_ptr(),
            hsum4_ps(acc_q[0], acc_q[1], acc_q[2], acc_q[3]),
        );
        for k in i..dim {
            let qk = *q.add(qi * dim + k);
            for (j, sj) in s.iter_mut().enumerate() {
                *sj += qk * *r.add(j * dim + k);
            }
        }
        for (j, sj) in s.iter().enumerate() {
            *out.add(qi * nr + j) = *sj;
        }
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tile_f16_impl(
    qp: *const f32,
    nq: usize,
    rp: *const u16,
    nr: usize,
    dim: usize,
    out: *mut f32,
) {
    drive_tile!(
        qp,
        nq,
        rp,
        nr,
        dim,
        out,
        micro_f16::<2>,
        micro_f16::<1>,
        dot_f16_impl
    )
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn micro_f16<const NQ: usize>(
    q: *const f32,
    r: *const u16,
    dim: usize,
    out: *mut f32,
    nr: usize,
) {
    let mut acc = [[_mm256_setzero_ps(); 4]; NQ];
    if NQ == 1 {
        // One query is memory-bound: walk the 4 rows one after the other (a single
        // ascending stream for the prefetcher) instead of side by side. Each
        // (query, row) keeps its own accumulator and lane order, so scores are
        // bit-identical to the blocked path whatever the batch size.
        for (j, acc_j) in acc[0].iter_mut().enumerate() {
            let mut i = 0;
            while i + 8 <= dim {
                let rv = _mm256_cvtph_ps(_mm_loadu_si128(r.add(j * dim + i) as *const __m128i));
                let qv = _mm256_loadu_ps(q.add(i));
                *acc_j = _mm256_fmadd_ps(qv, rv, *acc_j);
                i += 8;
            }
        }
    } else {
        let mut i = 0;
        while i + 8 <= dim {
            // Each row's halves are widened once and reused by every query of the block.
            let rv = [
                _mm256_cvtph_ps(_mm_loadu_si128(r.add(i) as *const __m128i)),
                _mm256_cvtph_ps(_mm_loadu_si128(r.add(dim + i) as *const __m128i)),
                _mm256_cvtph_ps(_mm_loadu_si128(r.add(2 * dim + i) as *const __m128i)),
                _mm256_cvtph_ps(_mm_loadu_si128(r.add(3 * dim + i) as *const __m128i)),
            ];
            for (qi, acc_q) in acc.iter_mut().enumerate() {
                let qv = _mm256_loadu_ps(q.add(qi * dim + i));
                for j in 0..4 {
                    acc_q[j] = _mm256_fmadd_ps(qv, rv[j], acc_q[j]);
                }
            }
            i += 8;
        }
    }
    let i = dim - dim % 8;
    for (qi, acc_q) in acc.iter().enumerate() {
        let mut s = [0.0f32; 4];
        _mm_storeu_ps(
            s.as_mut_ptr(),
            hsum4_ps(acc_q[0], acc_q[1], acc_q[2], acc_q[3]),
        );
        for k in i..dim {
            let qk = *q.add(qi * dim + k);
            for (j, sj) in s.iter_mut().enumerate() {
                *sj += qk * f16::from_bits(*r.add(j * dim + k)).to_f32();
            }
        }
        for (j, sj) in s.iter().enumerate() {
            *out.add(qi * nr + j) = *sj;
        }
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn tile_i8_impl(
    qp: *const i8,
    nq: usize,
    rp: *const i8,
    nr: usize,
    dim: usize,
    out: *mut i32,
) {
    drive_tile!(
        qp,
        nq,
        rp,
        nr,
        dim,
        out,
        micro_i8::<2>,
        micro_i8::<1>,
        dot_i8_impl
    )
}

/// `NQ` int8 queries × 4 int8 rows, 32 values per step.
///
/// vpmaddubsw multiplies unsigned by signed bytes, so the row's sign moves onto the query
/// (|r|·(q·sgn r) = q·r). With queries in −127..=127 (the query quantiser's range; vpsignb
/// cannot negate −128) and rows any i8 (|r| ≤ 128), a pair sum is at most 2·128·127 = 32512,
/// so the i16 result cannot saturate: the integer dot product is exact, as with widening to
/// i16 and vpmaddwd, but without the widening shuffles and with twice the values per
/// instruction. The restriction sits on the query side because queries are quantised per
/// search, while rows are stored codes.
#[target_feature(enable = "avx2,fma")]
unsafe fn micro_i8<const NQ: usize>(
    q: *const i8,
    r: *const i8,
    dim: usize,
    out: *mut i32,
    nr: usize,
) {
    let ones = _mm256_set1_epi16(1);
    let mut acc = [[_mm256_setzero_si256(); 4]; NQ];
    let step = |acc: &mut __m256i, ra: __m256i, rv: __m256i, qv: __m256i| {
        let pairs = _mm256_maddubs_epi16(ra, _mm256_sign_epi8(qv, rv));
        *acc = _mm256_add_epi32(*acc, _mm256_madd_epi16(pairs, ones));
    };
    if NQ == 1 {
        // One query is memory-bound: walk the 4 rows one after the other (a single
        // ascending stream for the prefetcher) instead of side by side.
        for (j, acc_j) in acc[0].iter_mut().enumerate() {
            let mut i = 0;
            while i + 32 <= dim {
                let qv = _mm256_loadu_si256(q.add(i) as *const __m256i);
                let rv = _mm256_loadu_si256(r.add(j * dim + i) as *const __m256i);
                step(acc_j, _mm256_abs_epi8(rv), rv, qv);
                i += 32;
            }
        }
    } else {
        let mut i = 0;
        while i + 32 <= dim {
            let rv = [
                _mm256_loadu_si256(r.add(i) as *const __m256i),
                _mm256_loadu_si256(r.add(dim + i) as *const __m256i),
                _mm256_loadu_si256(r.add(2 * dim + i) as *const __m256i),
                _mm256_loadu_si256(r.add(3 * dim + i) as *const __m256i),
            ];
            let ra = rv.map(|v| _mm256_abs_epi8(v));
            for (qi, acc_q) in acc.iter_mut().enumerate() {
                let qv = _mm256_loadu_si256(q.add(qi * dim + i) as *const __m256i);
                for j in 0..4 {
                    step(&mut acc_q[j], ra[j], rv[j], qv);
                }
            }
            i += 32;
        }
    }
    let i = dim - dim % 32;
    for (qi, acc_q) in acc.iter().enumerate() {
        let mut s = [0i32; 4];
        _mm_storeu_si128(
            s.as_mut_ptr() as *mut __m128i,
            hsum4_epi32(acc_q[0], acc_q[1], acc_q[2], acc_q[3]),
        );
        for k in i..dim {
            let qk = *q.add(qi * dim + k) as i32;
            for (j, sj) in s.iter_mut().enumerate() {
                *sj += qk * *r.add(j * dim + k) as i32;
            }
        }
        for (j, sj) in s.iter().enumerate() {
            *out.add(qi * nr + j) = *sj;
        }
    }
}

/// 4-bit PQ fast-scan ([`super::Pq4ScanFn`]).
pub fn pq4_scan(codes: &[u8], lut: &[u8], out: &mut [u16]) {
    let (m, nb) = super::pq4_shape(codes.len(), lut.len(), out.len());
    check();
    // SAFETY: features checked; pq4_shape asserted `codes` = nb blocks of m × 16 bytes, `lut` =
    // m × 16 bytes (m even) and `out` ≥ nb × 32 values, which is all the body touches.
    unsafe { pq4_scan_impl(codes.as_ptr(), lut.as_ptr(), m, nb, out.as_mut_ptr()) }
}

/// The two 128-bit lanes of `v` added (u16, wrapping).
#[inline]
#[target_feature(enable = "avx2")]
fn fold(v: __m256i) -> __m128i {
    _mm_add_epi16(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v))
}

#[target_feature(enable = "avx2")]
unsafe fn pq4_scan_impl(codes: *const u8, lut: *const u8, m: usize, nb: usize, out: *mut u16) {
    let nibble = _mm256_set1_epi8(0x0f);
    let block = m * 16;
    for b in 0..nb {
        let c0 = codes.add(b * block);
        // u16 sums of rows 0..16 (lo) and 16..32 (hi); lane 0 sums the even sub-quantisers, lane 1
        // the odd ones. As in FAISS's `kernel_accumulate_block`, each 16-bit word of a lookup
        // (even row + 256 × odd row) is added whole, the odd rows are added apart, and the even
        // sums are recovered at the end as whole − 256 × odd (exact in wrapping u16).
        let (mut lo_w, mut lo_o) = (_mm256_setzero_si256(), _mm256_setzero_si256());
        let (mut hi_w, mut hi_o) = (_mm256_setzero_si256(), _mm256_setzero_si256());
        let mut s = 0;
        while s < m {
            let c = _mm256_loadu_si256(c0.add(s * 16) as *const __m256i);
            let l = _mm256_loadu_si256(lut.add(s * 16) as *const __m256i);
            let lo = _mm256_shuffle_epi8(l, _mm256_and_si256(c, nibble));
            let hi = _mm256_shuffle_epi8(l, _mm256_and_si256(_mm256_srli_epi16(c, 4), nibble));
            lo_w = _mm256_add_epi16(lo_w, lo);
            lo_o = _mm256_add_epi16(lo_o, _mm256_srli_epi16(lo, 8));
            hi_w = _mm256_add_epi16(hi_w, hi);
            hi_o = _mm256_add_epi16(hi_o, _mm256_srli_epi16(hi, 8));
            s += 2;
        }
        let lo_e = _mm256_sub_epi16(lo_w, _mm256_slli_epi16(lo_o, 8));
        let hi_e = _mm256_sub_epi16(hi_w, _mm256_slli_epi16(hi_o, 8));
        let (lo_e, lo_o, hi_e, hi_o) = (fold(lo_e), fold(lo_o), fold(hi_e), fold(hi_o));
        let o = out.add(b * 32) as *mut __m128i;
        _mm_storeu_si128(o, _mm_unpacklo_epi16(lo_e, lo_o));
        _mm_storeu_si128(o.add(1), _mm_unpackhi_epi16(lo_e, lo_o));
        _mm_storeu_si128(o.add(2), _mm_unpacklo_epi16(hi_e, hi_o));
        _mm_storeu_si128(o.add(3), _mm_unpackhi_epi16(hi_e, hi_o));
    }
}
