//! Flat (exhaustive) index: codes in one aligned structure-of-arrays store.
//!
//! Per row the index keeps, each in its own contiguous array: the code
//! (f32 / f16 / int8, see [`crate::quant`]), for int8 the per-vector scale, the
//! external id, a [`Tag`] and a tombstone bit; optionally an exact f32 copy used
//! to re-rank int8/f16 candidates. Ids map to rows through a hash map.
//!
//! **Vectors on insert** are checked (right dimension, all finite) and then,
//! per [`Normalization`], either L2-normalised explicitly (the default: scores
//! are cosines whatever the caller passed) or required to have norm 1 within a
//! tolerance. Queries follow the same rule.
//!
//! ```
//! use sinhtrac_index::{Codec, FlatConfig, FlatIndex, SearchParams, Tag};
//! let mut index = FlatIndex::new(FlatConfig::new(2, Codec::F32)).unwrap();
//! index.extend(&[10, 11], &[1.0, 0.0, 0.0, 1.0], None).unwrap();
//! let hits = index.search(&[0.9, 0.1], 1, &SearchParams::default()).unwrap();
//! assert_eq!(hits[0].id, 10);
//! index.remove(10).unwrap();
//! let hits = index.search(&[0.9, 0.1], 1, &SearchParams::default()).unwrap();
//! assert_eq!(hits[0].id, 11);
//! ```

mod filter;
mod search;
pub(crate) mod topk;

pub use filter::{Filter, Tag};
pub use search::{Hit, SearchParams};

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use rayon::prelude::*;

use crate::error::{IndexError, Result};
use crate::quant::{self, sq8::Sq8Params, Codec};
use crate::simd::{kernels_for, AlignedBuf, Kernels, SimdLevel};

/// What to do with vectors that are not unit length.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Normalization {
    /// Divide by the L2 norm (error only for a zero vector).
    Normalize,
    /// Reject vectors whose norm is further than `tolerance` from 1 (stored as given).
    Require {
        /// Allowed |norm − 1|.
        tolerance: f32,
    },
}

/// Construction parameters of a [`FlatIndex`].
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FlatConfig {
    /// Vector dimension.
    pub dim: usize,
    /// How codes are stored.
    pub codec: Codec,
    /// Keep an exact f32 copy beside f16/int8 codes to re-rank candidates
    /// (ignored for [`Codec::F32`], whose codes are exact already).
    pub keep_f32: bool,
    /// Normalisation policy for vectors and queries.
    pub normalization: Normalization,
    /// Force a kernel level (None: [`SimdLevel::detect`]).
    pub simd: Option<SimdLevel>,
}

impl FlatConfig {
    /// Defaults: no exact copy, explicit normalisation, detected SIMD level.
    pub fn new(dim: usize, codec: Codec) -> Self {
        FlatConfig {
            dim,
            codec,
            keep_f32: false,
            normalization: Normalization::Normalize,
            simd: None,
        }
    }

    /// Same, keeping an exact f32 copy for re-ranking.
    pub fn with_rerank_copy(mut self) -> Self {
        self.keep_f32 = true;
        self
    }
}

#[derive(Clone, Debug)]
pub(crate) enum Codes {
    F32(AlignedBuf<f32>),
    F16(AlignedBuf<u16>),
    Sq8 {
        codes: AlignedBuf<i8>,
        scales: Vec<f32>,
        params: Option<Sq8Params>,
    },
}

/// Exact (or int8/f16 with optional exact re-rank) inner-product index.
#[derive(Clone, Debug)]
pub struct FlatIndex {
    cfg: FlatConfig,
    kernels: &'static Kernels,
    pub(crate) codes: Codes,
    pub(crate) exact: Option<AlignedBuf<f32>>,
    ids: Vec<u64>,
    tags: Vec<Tag>,
    deleted: Vec<u64>,
    n_deleted: usize,
    id_to_row: HashMap<u64, u32>,
    /// Cached [`FlatIndex::fingerprint`]; reset by every change to rows.
    fp: OnceLock<u64>,
}

impl FlatIndex {
    /// An empty index.
    pub fn new(cfg: FlatConfig) -> Result<Self> {
        if cfg.dim == 0 || cfg.dim > (1 << 16) {
            return Err(IndexError::InvalidArgument(format!(
                "dim {} not in 1..=65536",
                cfg.dim
            )));
        }
        let level = cfg.simd.unwrap_or_else(SimdLevel::detect);
        let kernels = kernels_for(level).ok_or_else(|| {
            IndexError::InvalidArgument(format!("SIMD level {level:?} not available on this CPU"))
        })?;
        let codes = match cfg.codec {
            Codec::F32 => Codes::F32(AlignedBuf::new()),
            Codec::F16 => Codes::F16(AlignedBuf::new()),
            Codec::Sq8 { per_dimension } => Codes::Sq8 {
                codes: AlignedBuf::new(),
                scales: Vec::new(),
                params: (!per_dimension).then(Sq8Params::per_vector),
            },
        };
        let exact = (cfg.keep_f32 && cfg.codec != Codec::F32).then(AlignedBuf::new);
        Ok(FlatIndex {
            cfg,
            kernels,
            codes,
            exact,
            ids: Vec::new(),
            tags: Vec::new(),
            deleted: Vec::new(),
            n_deleted: 0,
            id_to_row: HashMap::new(),
            fp: OnceLock::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &FlatConfig {
        &self.cfg
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.cfg.dim
    }

    /// The kernel level in use.
    pub fn simd_level(&self) -> SimdLevel {
        self.kernels.level
    }

    pub(crate) fn kernels(&self) -> &'static Kernels {
        self.kernels
    }

    /// Number of live (not deleted) vectors.
    pub fn len(&self) -> usize {
        self.ids.len() - self.n_deleted
    }

    /// Whether there are no live vectors.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of rows including tombstones.
    pub fn rows(&self) -> usize {
        self.ids.len()
    }

    /// Whether a live row has this id.
    pub fn contains(&self, id: u64) -> bool {
        self.id_to_row.contains_key(&id)
    }

    /// External id of a row.
    pub fn id_of_row(&self, row: usize) -> Option<u64> {
        self.ids.get(row).copied()
    }

    /// Row of an id, if present.
    pub fn row_of(&self, id: u64) -> Option<usize> {
        self.id_to_row.get(&id).map(|&r| r as usize)
    }

    /// Tag of a row.
    pub fn tag_of_row(&self, row: usize) -> Option<Tag> {
        self.tags.get(row).copied()
    }

    /// Whether a row is a tombstone.
    #[inline]
    pub fn is_deleted(&self, row: usize) -> bool {
        self.deleted
            .get(row / 64)
            .is_some_and(|w| w >> (row % 64) & 1 == 1)
    }

    #[inline]
    pub(crate) fn passes(&self, row: usize, filter: Filter) -> bool {
        !self.is_deleted(row) && filter.matches(self.tags[row])
    }

    /// Whether an exact f32 copy is available for re-ranking.
    pub fn has_exact(&self) -> bool {
        matches!(self.codes, Codes::F32(_)) || self.exact.is_some()
    }

    /// Bytes of heap memory held (codes, scales, exact copy, ids, tags, map).
    pub fn memory_bytes(&self) -> usize {
        let codes = match &self.codes {
            Codes::F32(b) => b.allocated_bytes(),
            Codes::F16(b) => b.allocated_bytes(),
            Codes::Sq8 { codes, scales, .. } => codes.allocated_bytes() + scales.capacity() * 4,
        };
        let exact = self.exact.as_ref().map_or(0, |b| b.allocated_bytes());
        // A std HashMap<u64,u32> entry costs ~16 bytes plus one control byte, at ≤ 7/8 load.
        let map = self.id_to_row.capacity() * 17;
        codes
            + exact
            + self.ids.capacity() * 8
            + self.tags.capacity() * 4
            + self.deleted.capacity() * 8
            + map
    }

    /// Learns the per-dimension int8 scale from a sample (only for
    /// `Codec::Sq8 { per_dimension: true }`, before the first insert). Without
    /// it, the first batch inserted is the sample.
    pub fn train(&mut self, sample: &[f32]) -> Result<()> {
        let dim = self.cfg.dim;
        if sample.is_empty() || !sample.len().is_multiple_of(dim) {
            return Err(IndexError::DimensionMismatch {
                expected: dim,
                received: sample.len() % dim,
            });
        }
        let normalized = self.validated(sample)?;
        if let Codes::Sq8 { params, .. } = &mut self.codes {
            if params.is_none() {
                *params = Some(Sq8Params::train_per_dimension(&normalized, dim));
            }
        }
        Ok(())
    }

    /// Adds one vector.
    pub fn add(&mut self, id: u64, vector: &[f32], tag: Tag) -> Result<()> {
        if vector.len() != self.cfg.dim {
            return Err(IndexError::DimensionMismatch {
                expected: self.cfg.dim,
                received: vector.len(),
            });
        }
        self.extend(&[id], vector, Some(&[tag]))
    }

    /// Adds a batch: `vectors` holds `ids.len() × dim` values, row-major; `tags`
    /// defaults to `Tag(0)`. All-or-nothing: on error nothing is added. Encoding
    /// runs in parallel, which is what makes a cold load of 1M×128 fast.
    pub fn extend(&mut self, ids: &[u64], vectors: &[f32], tags: Option<&[Tag]>) -> Result<()> {
        let dim = self.cfg.dim;
        if vectors.len() != ids.len() * dim {
            return Err(IndexError::BatchLength {
                ids: ids.len(),
                values: vectors.len(),
                dim,
            });
        }
        if let Some(t) = tags {
            if t.len() != ids.len() {
                return Err(IndexError::InvalidArgument(format!(
                    "{} tags for {} ids",
                    t.len(),
                    ids.len()
                )));
            }
        }
        if self.ids.len() + ids.len() > u32::MAX as usize {
            return Err(IndexError::InvalidArgument("more than 2^32 rows".into()));
        }
        let mut seen = HashSet::with_capacity(ids.len());
        for &id in ids {
            if self.id_to_row.contains_key(&id) || !seen.insert(id) {
                return Err(IndexError::DuplicateId(id));
            }
        }
        drop(seen);
        let normalized = self.validated(vectors)?;
        if ids.is_empty() {
            return Ok(());
        }
        let start = self.ids.len();
        let n = ids.len();
        let total = start + n;
        match &mut self.codes {
            Codes::F32(buf) => buf.extend_from_slice(&normalized),
            Codes::F16(buf) => {
                buf.resize_zeroed(total * dim);
                buf.as_mut_slice()[start * dim..]
                    .par_chunks_mut(dim)
                    .zip(normalized.par_chunks(dim))
                    .for_each(|(o, v)| quant::f16::encode(v, o));
            }
            Codes::Sq8 {
                codes,
                scales,
                params,
            } => {
                let p =
                    params.get_or_insert_with(|| Sq8Params::train_per_dimension(&normalized, dim));
                codes.resize_zeroed(total * dim);
                scales.resize(total, 0.0);
                codes.as_mut_slice()[start * dim..]
                    .par_chunks_mut(dim)
                    .zip(scales[start..].par_iter_mut())
                    .zip(normalized.par_chunks(dim))
                    .for_each(|((o, s), v)| *s = p.encode(v, o));
            }
        }
        if let Some(ex) = &mut self.exact {
            ex.extend_from_slice(&normalized);
        }
        self.ids.extend_from_slice(ids);
        match tags {
            Some(t) => self.tags.extend_from_slice(t),
            None => self.tags.resize(total, Tag(0)),
        }
        self.deleted.resize(total.div_ceil(64), 0);
        self.id_to_row.reserve(n);
        for (i, &id) in ids.iter().enumerate() {
            self.id_to_row.insert(id, (start + i) as u32);
        }
        self.fp = OnceLock::new();
        Ok(())
    }

    /// Checks (and, per policy, normalises) a batch; returns the values to store.
    pub(crate) fn validated(&self, vectors: &[f32]) -> Result<Vec<f32>> {
        let dim = self.cfg.dim;
        let policy = self.cfg.normalization;
        let mut out = vectors.to_vec();
        out.par_chunks_mut(dim)
            .enumerate()
            .try_for_each(|(index, v)| {
                if let Some(position) = v.iter().position(|x| !x.is_finite()) {
                    return Err(IndexError::NonFinite { index, position });
                }
                // Accumulate in f64: the check must not depend on summation order.
                let norm = v.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt() as f32;
                match policy {
                    Normalization::Normalize => {
                        // Also catches a NaN norm (overflowing squares).
                        if norm.is_nan() || norm <= 1e-30 {
                            return Err(IndexError::ZeroVector { index });
                        }
                        let inv = 1.0 / norm;
                        v.iter_mut().for_each(|x| *x *= inv);
                    }
                    Normalization::Require { tolerance } => {
                        if (norm - 1.0).abs() > tolerance {
                            return Err(IndexError::NotNormalized {
                                index,
                                norm,
                                tolerance,
                            });
                        }
                    }
                }
                Ok(())
            })?;
        Ok(out)
    }

    /// Tombstones the row of `id`; it disappears from every search and sweep.
    pub fn remove(&mut self, id: u64) -> Result<()> {
        let row = self
            .id_to_row
            .remove(&id)
            .ok_or(IndexError::UnknownId(id))? as usize;
        self.deleted[row / 64] |= 1 << (row % 64);
        self.n_deleted += 1;
        self.fp = OnceLock::new();
        Ok(())
    }

    /// Changes the tag of a live row.
    pub fn set_tag(&mut self, id: u64, tag: Tag) -> Result<()> {
        let row = *self.id_to_row.get(&id).ok_or(IndexError::UnknownId(id))? as usize;
        self.tags[row] = tag;
        Ok(())
    }

    /// Rewrites the store without tombstones (rows are renumbered); returns how
    /// many rows were dropped.
    pub fn compact(&mut self) -> Result<usize> {
        if self.n_deleted == 0 {
            return Ok(0);
        }
        let keep: Vec<usize> = (0..self.rows()).filter(|&r| !self.is_deleted(r)).collect();
        let dim = self.cfg.dim;
        fn gather<T: crate::simd::Element>(
            b: &AlignedBuf<T>,
            keep: &[usize],
            dim: usize,
        ) -> AlignedBuf<T> {
            let mut out = AlignedBuf::new();
            out.reserve(keep.len() * dim);
            for &r in keep {
                out.extend_from_slice(&b.as_slice()[r * dim..(r + 1) * dim]);
            }
            out
        }
        self.codes = match &self.codes {
            Codes::F32(b) => Codes::F32(gather(b, &keep, dim)),
            Codes::F16(b) => Codes::F16(gather(b, &keep, dim)),
            Codes::Sq8 {
                codes,
                scales,
                params,
            } => Codes::Sq8 {
                codes: gather(codes, &keep, dim),
                scales: keep.iter().map(|&r| scales[r]).collect(),
                params: params.clone(),
            },
        };
        self.exact = self.exact.as_ref().map(|b| gather(b, &keep, dim));
        let dropped = self.n_deleted;
        self.ids = keep.iter().map(|&r| self.ids[r]).collect();
        self.tags = keep.iter().map(|&r| self.tags[r]).collect();
        self.deleted = vec![0; self.ids.len().div_ceil(64)];
        self.n_deleted = 0;
        self.id_to_row = self
            .ids
            .iter()
            .enumerate()
            .map(|(r, &id)| (id, r as u32))
            .collect();
        self.fp = OnceLock::new();
        Ok(dropped)
    }

    /// The stored vector of `id`, decoded to f32 (exact copy when kept).
    pub fn vector(&self, id: u64) -> Result<Vec<f32>> {
        let row = *self.id_to_row.get(&id).ok_or(IndexError::UnknownId(id))? as usize;
        let mut out = vec![0.0; self.cfg.dim];
        self.decode_rows(row..row + 1, &mut out);
        Ok(out)
    }

    /// At most about `max_rows` rows, every `ceil(rows / max_rows)`-th one (tombstoned rows
    /// included), decoded: the training sample of the quantisers built over this index.
    pub(crate) fn strided_sample(&self, max_rows: usize) -> Vec<f32> {
        let (dim, n) = (self.cfg.dim, self.rows());
        let stride = n.div_ceil(max_rows.max(1)).max(1);
        let mut sample = vec![0.0f32; n.div_ceil(stride) * dim];
        for (i, out) in sample.chunks_exact_mut(dim).enumerate() {
            let r = i * stride;
            self.decode_rows(r..r + 1, out);
        }
        sample
    }

    /// Decodes rows into `out` (`rows.len() × dim`), preferring the exact copy.
    pub(crate) fn decode_rows(&self, rows: std::ops::Range<usize>, out: &mut [f32]) {
        let dim = self.cfg.dim;
        let span = rows.start * dim..rows.end * dim;
        if let Some(ex) = &self.exact {
            out.copy_from_slice(&ex.as_slice()[span]);
            return;
        }
        match &self.codes {
            Codes::F32(b) => out.copy_from_slice(&b.as_slice()[span]),
            Codes::F16(b) => quant::f16::decode(&b.as_slice()[span], out),
            Codes::Sq8 {
                codes,
                scales,
                params,
            } => {
                let p = params.clone().unwrap_or_else(Sq8Params::per_vector);
                for (i, r) in rows.enumerate() {
                    p.decode(
                        &codes.as_slice()[r * dim..(r + 1) * dim],
                        scales[r],
                        &mut out[i * dim..(i + 1) * dim],
                    );
                }
            }
        }
    }

    /// The exact f32 row (codes or copy), if the index has one.
    #[inline]
    pub(crate) fn exact_row(&self, row: usize) -> Option<&[f32]> {
        let dim = self.cfg.dim;
        match (&self.exact, &self.codes) {
            (Some(ex), _) => Some(&ex.as_slice()[row * dim..(row + 1) * dim]),
            (None, Codes::F32(b)) => Some(&b.as_slice()[row * dim..(row + 1) * dim]),
            _ => None,
        }
    }

    /// A 64-bit fingerprint of the rows (ids, tombstones and stored values), used
    /// to tell whether a persisted ANN index was built from these vectors.
    /// Computed once per change (it reads every stored value), then cached.
    pub fn fingerprint(&self) -> u64 {
        *self.fp.get_or_init(|| self.compute_fingerprint())
    }

    fn compute_fingerprint(&self) -> u64 {
        let mut h = Fp::new(self.cfg.dim as u64 ^ (self.rows() as u64) << 20);
        h.words(self.ids.iter().copied());
        h.words(self.deleted.iter().copied());
        match (&self.exact, &self.codes) {
            (Some(ex), _) | (None, Codes::F32(ex)) => {
                h.words(ex.as_slice().iter().map(|x| x.to_bits() as u64))
            }
            (None, Codes::F16(b)) => h.words(b.as_slice().iter().map(|&x| x as u64)),
            (None, Codes::Sq8 { codes, .. }) => {
                h.words(codes.as_slice().iter().map(|&x| x as u8 as u64))
            }
        }
        h.finish()
    }
}

/// A small multiply-xorshift hash (not cryptographic: it detects staleness, not tampering).
struct Fp(u64);
impl Fp {
    fn new(seed: u64) -> Self {
        Fp(seed ^ 0x9e37_79b9_7f4a_7c15)
    }
    fn words(&mut self, it: impl Iterator<Item = u64>) {
        for w in it {
            self.0 = (self.0 ^ w)
                .wrapping_mul(0xff51_afd7_ed55_8ccd)
                .rotate_left(29);
        }
    }
    fn finish(&self) -> u64 {
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^ (x >> 33)
    }
}
