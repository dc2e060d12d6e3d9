//! Symmetric int8 scalar quantiser.
//!
//! A vector `x` is stored as `code[j] = round(y[j] / s)` with `y[j] = x[j] / d[j]`
//! (`d` = optional per-dimension scale, else 1) and a per-vector scale
//! `s = max|y| / 127`, so codes lie in [-127, 127] (−128 is never used, which
//! keeps the code symmetric). A query is quantised the same way after folding
//! `d` into it (`q'[j] = q[j]·d[j]`), and the score is
//! `dot_int(q_code, x_code) · s_q · s_x`: one integer dot per pair.

/// Largest code magnitude.
pub const QMAX: f32 = 127.0;

/// Quantiser parameters shared by all vectors of an index.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sq8Params {
    /// Per-dimension scale `d`, or `None` for per-vector scaling only.
    pub dim_scale: Option<Vec<f32>>,
}

impl Sq8Params {
    /// Per-vector scaling only.
    pub fn per_vector() -> Self {
        Sq8Params { dim_scale: None }
    }

    /// Learns a per-dimension scale (max |x_j| over the sample) from `n × dim` values.
    pub fn train_per_dimension(vectors: &[f32], dim: usize) -> Self {
        let mut d = vec![0.0f32; dim];
        for row in vectors.chunks_exact(dim) {
            for (dj, x) in d.iter_mut().zip(row) {
                *dj = dj.max(x.abs());
            }
        }
        // A dimension that is always zero gets scale 1 rather than a division by 0.
        for dj in &mut d {
            if *dj <= f32::MIN_POSITIVE {
                *dj = 1.0;
            }
        }
        Sq8Params { dim_scale: Some(d) }
    }

    /// Encodes `v` into `out`; returns the vector's scale.
    pub fn encode(&self, v: &[f32], out: &mut [i8]) -> f32 {
        assert_eq!(v.len(), out.len(), "sq8::encode: length mismatch");
        let y = |j: usize| match &self.dim_scale {
            Some(d) => v[j] / d[j],
            None => v[j],
        };
        let m = (0..v.len()).map(|j| y(j).abs()).fold(0.0f32, f32::max);
        if m == 0.0 {
            out.fill(0);
            return 0.0;
        }
        let s = m / QMAX;
        for (j, o) in out.iter_mut().enumerate() {
            *o = (y(j) / s).round().clamp(-QMAX, QMAX) as i8;
        }
        s
    }

    /// Decodes a code with its scale back to approximate f32 values.
    pub fn decode(&self, code: &[i8], scale: f32, out: &mut [f32]) {
        assert_eq!(code.len(), out.len(), "sq8::decode: length mismatch");
        for (j, (o, c)) in out.iter_mut().zip(code).enumerate() {
            let d = self.dim_scale.as_ref().map_or(1.0, |d| d[j]);
            *o = *c as f32 * scale * d;
        }
    }

    /// Quantises a query to −127..=127; returns its scale.
    pub fn quantize_query(&self, q: &[f32], out: &mut [i8]) -> f32 {
        assert_eq!(q.len(), out.len(), "sq8::quantize_query: length mismatch");
        let y = |j: usize| match &self.dim_scale {
            Some(d) => q[j] * d[j],
            None => q[j],
        };
        let m = (0..q.len()).map(|j| y(j).abs()).fold(0.0f32, f32::max);
        if m == 0.0 {
            out.fill(0);
            return 0.0;
        }
        let s = m / QMAX;
        for (j, o) in out.iter_mut().enumerate() {
            *o = (y(j) / s).round().clamp(-QMAX, QMAX) as i8;
        }
        s
    }
}
