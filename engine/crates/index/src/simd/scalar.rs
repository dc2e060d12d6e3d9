//! Portable reference kernels. Every other level is tested against these.
//!
//! The f32 dot keeps 8 independent partial sums: it lets LLVM vectorise the
//! fallback and keeps rounding closer to the 8-lane SIMD kernels.

use half::f16;

/// Inner product of two f32 vectors of equal length.
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot_f32: length mismatch");
    let mut acc = [0.0f32; 8];
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        s += x * y;
    }
    s
}

/// Inner product of an f32 query with an f16 code.
pub fn dot_f16(q: &[f32], c: &[u16]) -> f32 {
    assert_eq!(q.len(), c.len(), "dot_f16: length mismatch");
    let mut acc = [0.0f32; 8];
    let mut cq = q.chunks_exact(8);
    let mut cc = c.chunks_exact(8);
    for (x, y) in (&mut cq).zip(&mut cc) {
        for l in 0..8 {
            acc[l] += x[l] * f16::from_bits(y[l]).to_f32();
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in cq.remainder().iter().zip(cc.remainder()) {
        s += x * f16::from_bits(*y).to_f32();
    }
    s
}

/// Integer inner product of two int8 codes (exact: no overflow below 2^17 dims).
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    assert_eq!(a.len(), b.len(), "dot_i8: length mismatch");
    a.iter().zip(b).map(|(&x, &y)| x as i32 * y as i32).sum()
}

/// Score tile, f32 × f32 (see [`super::TileFn`]).
pub fn tile_f32(queries: &[f32], rows: &[f32], dim: usize, out: &mut [f32]) {
    let (nq, nr) = super::tile_shape(queries.len(), rows.len(), dim, out.len());
    for q in 0..nq {
        let qv = &queries[q * dim..(q + 1) * dim];
        for r in 0..nr {
            out[q * nr + r] = dot_f32(qv, &rows[r * dim..(r + 1) * dim]);
        }
    }
}

/// Score tile, f32 × f16.
pub fn tile_f16(queries: &[f32], rows: &[u16], dim: usize, out: &mut [f32]) {
    let (nq, nr) = super::tile_shape(queries.len(), rows.len(), dim, out.len());
    for q in 0..nq {
        let qv = &queries[q * dim..(q + 1) * dim];
        for r in 0..nr {
            out[q * nr + r] = dot_f16(qv, &rows[r * dim..(r + 1) * dim]);
        }
    }
}

/// Score tile, int8 × int8, integer results.
pub fn tile_i8(queries: &[i8], rows: &[i8], dim: usize, out: &mut [i32]) {
    let (nq, nr) = super::tile_shape(queries.len(), rows.len(), dim, out.len());
    for q in 0..nq {
        let qv = &queries[q * dim..(q + 1) * dim];
        for r in 0..nr {
            out[q * nr + r] = dot_i8(qv, &rows[r * dim..(r + 1) * dim]);
        }
    }
}

/// 4-bit PQ fast-scan: for each block of [`super::PQ4_BLOCK`] rows, the sum over sub-quantisers
/// of `lut[s * 16 + code]` over sub-quantisers `s` (wrapping u16). See [`super::Pq4ScanFn`] for the layout.
pub fn pq4_scan(codes: &[u8], lut: &[u8], out: &mut [u16]) {
    let (m, nb) = super::pq4_shape(codes.len(), lut.len(), out.len());
    let block = m * 16;
    for b in 0..nb {
        let c = &codes[b * block..(b + 1) * block];
        for (j, o) in out[b * 32..(b + 1) * 32].iter_mut().enumerate() {
            let mut s = 0u16;
            for q in 0..m {
                let byte = c[q * 16 + j % 16];
                let code = if j < 16 { byte & 15 } else { byte >> 4 };
                s = s.wrapping_add(lut[q * 16 + code as usize] as u16);
            }
            *o = s;
        }
    }
}
