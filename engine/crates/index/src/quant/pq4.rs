//! 4-bit product quantisation with 2 dimensions per sub-quantiser (FAISS `PQ{d/2}x4fs`): 16
//! centroids per pair of dimensions, learned by k-means, so a 128-d vector is 64 codes of 4 bits
//! (32 bytes). A query's inner products with every centroid form a table of `d/2 × 16` values,
//! quantised to bytes ([`QueryLut`]) so that the scan kernel ([`crate::simd::Pq4ScanFn`]) adds
//! them with `pshufb` lookups.
//!
//! ```
//! use sinhtrac_index::quant::pq4::Pq4Codebook;
//! // 256 training vectors of 4 dimensions: 2 sub-quantisers.
//! let sample: Vec<f32> = (0..1024).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect();
//! let book = Pq4Codebook::train(&sample, 4, 10, 1).unwrap();
//! let mut code = [0u8; 2];
//! book.encode(&sample[..4], &mut code);
//! assert!(code.iter().all(|&c| c < 16));
//! let lut = book.lut(&[1.0, 0.0, 0.0, 0.0]);
//! assert_eq!(lut.bytes.len(), 2 * 16);
//! ```

use rand::{rngs::StdRng, Rng, SeedableRng};
use rayon::prelude::*;

use crate::simd::PQ4_BLOCK;
use crate::{IndexError, Result};

/// Centroids per sub-quantiser (4-bit codes).
pub const CENTROIDS: usize = 16;

/// Dimensions per sub-quantiser.
pub const SUB_DIM: usize = 2;

/// The learned centroids of every sub-quantiser.
#[derive(Clone, Debug, PartialEq)]
pub struct Pq4Codebook {
    dim: usize,
    /// `m × 16 × 2` values: centroid `c` of sub-quantiser `s` at `(s * 16 + c) * 2`.
    centroids: Vec<f32>,
}

/// One query's table, quantised to bytes: `bytes[s * 16 + c] ≈ (ip_s(c) − min_s) · scale`.
#[derive(Clone, Debug)]
pub struct QueryLut {
    /// `m × 16` bytes, the layout [`crate::simd::Pq4ScanFn`] takes.
    pub bytes: Vec<u8>,
    /// Byte units per unit of inner product.
    pub scale: f32,
    /// Σ over sub-quantisers of the smallest entry (the inner product of a sum of 0).
    pub bias: f32,
}

impl QueryLut {
    /// The approximate inner product a kernel sum stands for.
    pub fn score(&self, sum: u16) -> f32 {
        sum as f32 / self.scale + self.bias
    }
}

impl Pq4Codebook {
    /// Learns 16 centroids per pair of dimensions from `sample` (`n × dim`, row-major) with
    /// `iterations` rounds of k-means, seeded. `dim` must be a multiple of 4 (an even number of
    /// sub-quantisers, as the kernel takes them two at a time).
    pub fn train(sample: &[f32], dim: usize, iterations: usize, seed: u64) -> Result<Self> {
        if dim == 0 || !dim.is_multiple_of(2 * SUB_DIM) {
            return Err(IndexError::InvalidArgument(format!(
                "4-bit PQ needs a dimension that is a multiple of 4, got {dim}"
            )));
        }
        let n = sample.len() / dim;
        if n < CENTROIDS || !sample.len().is_multiple_of(dim) {
            return Err(IndexError::InvalidArgument(format!(
                "4-bit PQ training needs at least {CENTROIDS} whole vectors, got {} values",
                sample.len()
            )));
        }
        if sample.iter().any(|v| !v.is_finite()) {
            return Err(IndexError::InvalidArgument(
                "4-bit PQ training sample holds a NaN or infinite value".into(),
            ));
        }
        let m = dim / SUB_DIM;
        let centroids: Vec<f32> = (0..m)
            .into_par_iter()
            .flat_map_iter(|s| {
                let points: Vec<[f32; 2]> = sample
                    .chunks_exact(dim)
                    .map(|v| [v[s * 2], v[s * 2 + 1]])
                    .collect();
                kmeans_2d(
                    &points,
                    iterations,
                    seed ^ (s as u64).wrapping_mul(0x9e37_79b9),
                )
                .into_iter()
                .flatten()
            })
            .collect();
        Ok(Pq4Codebook { dim, centroids })
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Sub-quantisers (`dim / 2`).
    pub fn subquantizers(&self) -> usize {
        self.dim / SUB_DIM
    }

    fn centroid(&self, s: usize, c: usize) -> [f32; 2] {
        let i = (s * CENTROIDS + c) * SUB_DIM;
        [self.centroids[i], self.centroids[i + 1]]
    }

    /// The nearest centroid of each sub-quantiser for `v` (`dim` values) into `out` (`dim / 2`).
    /// Panics if `v` is shorter than `dim` (as slice indexing does).
    pub fn encode(&self, v: &[f32], out: &mut [u8]) {
        for (s, o) in out.iter_mut().enumerate().take(self.subquantizers()) {
            *o = nearest(&[v[s * 2], v[s * 2 + 1]], |c| self.centroid(s, c));
        }
    }

    /// The query's quantised table (`q`: `dim` values; panics if shorter). The scale keeps every
    /// entry ≤ 255 and every sum of one entry per sub-quantiser ≤ `u16::MAX`, so the kernel's u16
    /// sums never wrap.
    pub fn lut(&self, q: &[f32]) -> QueryLut {
        let m = self.subquantizers();
        let mut f = vec![0.0f32; m * CENTROIDS];
        let (mut bias, mut widest, mut total) = (0.0f32, 0.0f32, 0.0f32);
        for s in 0..m {
            let row = &mut f[s * CENTROIDS..(s + 1) * CENTROIDS];
            for (c, x) in row.iter_mut().enumerate() {
                let p = self.centroid(s, c);
                *x = q[s * 2] * p[0] + q[s * 2 + 1] * p[1];
            }
            let lo = row.iter().copied().fold(f32::INFINITY, f32::min);
            let hi = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            row.iter_mut().for_each(|x| *x -= lo);
            bias += lo;
            widest = widest.max(hi - lo);
            total += hi - lo;
        }
        let scale = if widest > 0.0 {
            (255.0 / widest).min((u16::MAX as usize - m) as f32 / total)
        } else {
            1.0
        };
        let bytes = f
            .iter()
            .map(|&x| (x * scale).round().clamp(0.0, 255.0) as u8)
            .collect();
        QueryLut { bytes, scale, bias }
    }
}

/// Packs the codes of up to [`PQ4_BLOCK`] rows (`codes[r * m + s]`, values < 16) into one block of
/// `m × 16` bytes in the kernel's layout; missing rows get code 0.
pub fn pack_block(codes: &[u8], m: usize, out: &mut [u8]) {
    out.fill(0);
    for (r, row) in codes.chunks_exact(m).take(PQ4_BLOCK).enumerate() {
        for (s, &c) in row.iter().enumerate() {
            let byte = &mut out[s * 16 + r % 16];
            *byte |= if r < 16 { c & 15 } else { (c & 15) << 4 };
        }
    }
}

fn nearest(p: &[f32; 2], centroid: impl Fn(usize) -> [f32; 2]) -> u8 {
    let mut best = (f32::INFINITY, 0u8);
    for c in 0..CENTROIDS {
        let q = centroid(c);
        let d = (p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2);
        if d < best.0 {
            best = (d, c as u8);
        }
    }
    best.1
}

/// Lloyd's k-means in 2-d, 16 centroids started on distinct sample points; an emptied centroid
/// restarts on a random point.
fn kmeans_2d(points: &[[f32; 2]], iterations: usize, seed: u64) -> Vec<[f32; 2]> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut cent: Vec<[f32; 2]> = rand::seq::index::sample(&mut rng, points.len(), CENTROIDS)
        .into_iter()
        .map(|i| points[i])
        .collect();
    for _ in 0..iterations.max(1) {
        let mut sum = [[0.0f64; 2]; CENTROIDS];
        let mut count = [0usize; CENTROIDS];
        for p in points {
            let c = nearest(p, |c| cent[c]) as usize;
            sum[c][0] += p[0] as f64;
            sum[c][1] += p[1] as f64;
            count[c] += 1;
        }
        for c in 0..CENTROIDS {
            cent[c] = if count[c] > 0 {
                [
                    (sum[c][0] / count[c] as f64) as f32,
                    (sum[c][1] / count[c] as f64) as f32,
                ]
            } else {
                points[rng.random_range(0..points.len())]
            };
        }
    }
    cent
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n * dim).map(|_| rng.random_range(-1.0..1.0)).collect()
    }

    #[test]
    fn codes_are_the_nearest_centroids_and_the_table_scores_them() {
        let dim = 8;
        let v = sample(2000, dim, 1);
        let book = Pq4Codebook::train(&v, dim, 15, 3).unwrap();
        let q = &v[dim..2 * dim];
        let lut = book.lut(q);
        for x in v.chunks_exact(dim).take(50) {
            let mut code = [0u8; 4];
            book.encode(x, &mut code);
            for (s, &c) in code.iter().enumerate() {
                let p = [x[s * 2], x[s * 2 + 1]];
                let d = |k: usize| {
                    let q = book.centroid(s, k);
                    (p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2)
                };
                assert!((0..CENTROIDS).all(|k| d(c as usize) <= d(k)));
            }
            // The table's sum is the query's inner product with the reconstruction, to within
            // half a byte step per sub-quantiser.
            let sum: u16 = code
                .iter()
                .enumerate()
                .map(|(s, &c)| lut.bytes[s * 16 + c as usize] as u16)
                .sum();
            let recon: f32 = code
                .iter()
                .enumerate()
                .map(|(s, &c)| {
                    let p = book.centroid(s, c as usize);
                    q[s * 2] * p[0] + q[s * 2 + 1] * p[1]
                })
                .sum();
            assert!((lut.score(sum) - recon).abs() <= 0.5 * 4.0 / lut.scale + 1e-5);
        }
    }

    #[test]
    fn packing_puts_rows_in_the_kernel_layout() {
        let m = 4;
        let codes: Vec<u8> = (0..20 * m).map(|i| (i % 16) as u8).collect();
        let mut block = vec![0u8; m * 16];
        pack_block(&codes, m, &mut block);
        for r in 0..32 {
            for s in 0..m {
                let byte = block[s * 16 + r % 16];
                let got = if r < 16 { byte & 15 } else { byte >> 4 };
                let want = if r < 20 { codes[r * m + s] } else { 0 };
                assert_eq!(got, want, "row {r} sub-quantiser {s}");
            }
        }
    }

    #[test]
    fn bad_training_input_is_refused() {
        assert!(Pq4Codebook::train(&sample(100, 6, 1), 6, 5, 1).is_err());
        assert!(Pq4Codebook::train(&sample(8, 8, 1), 8, 5, 1).is_err());
        let mut v = sample(100, 8, 1);
        v[17] = f32::NAN;
        assert!(Pq4Codebook::train(&v, 8, 5, 1).is_err());
    }
}
