//! Scanning: blocked multi-query tiles, rayon over shards, top-k and threshold.

use std::ops::Range;

use rayon::prelude::*;

use super::topk::{for_each_above, Scored, TopK};
use super::{Codes, Filter, FlatIndex};
use crate::error::{IndexError, Result};
use crate::quant::sq8::Sq8Params;

/// A search result.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Hit {
    /// External id.
    pub id: u64,
    /// Inner product (cosine) with the query; exact f32 when re-ranked.
    pub score: f32,
}

/// Search options.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SearchParams {
    /// Which rows may be returned (deleted rows never are).
    pub filter: Filter,
    /// With f16/int8 codes and an exact copy: scan for `k × rerank_factor`
    /// candidates, then re-score them exactly. 0 or 1 turns re-ranking off.
    pub rerank_factor: usize,
    /// Threshold search with re-ranking: scan for `threshold − margin`, then keep
    /// the exact scores ≥ threshold (the margin must cover the code's score error).
    pub rerank_margin: f32,
}

impl Default for SearchParams {
    fn default() -> Self {
        SearchParams {
            filter: Filter::ALL,
            rerank_factor: 4,
            rerank_margin: 0.02,
        }
    }
}

impl SearchParams {
    /// Default parameters with a filter.
    pub fn with_filter(filter: Filter) -> Self {
        SearchParams {
            filter,
            ..Default::default()
        }
    }
}

/// Queries prepared for the index's codec.
pub(crate) struct Prepared {
    pub nq: usize,
    /// Normalised f32 queries (used for f32/f16 codes and for re-ranking).
    pub f32: Vec<f32>,
    /// Int8 queries with per-query scales (int8 codes only).
    pub i8: Option<(Vec<i8>, Vec<f32>)>,
}

/// Queries per block: 64 f32 queries of 128-d are 32 KiB, which stays in L1/L2
/// while a row tile streams past them.
const QUERY_BLOCK: usize = 16;

/// Bytes of codes per row tile: small enough to stay in L2 while every query
/// block of a batch passes over it, so a batch costs one pass over memory.
const TILE_BYTES: usize = 64 * 1024;

impl FlatIndex {
    /// Rows per tile for this index.
    pub(crate) fn tile_rows(&self) -> usize {
        let row_bytes = self.dim() * self.config().codec.bytes_per_value();
        ((TILE_BYTES / row_bytes.max(1)).clamp(16, 2048)) & !3
    }

    pub(crate) fn prepare(&self, queries: &[f32]) -> Result<Prepared> {
        let dim = self.dim();
        if queries.is_empty() || !queries.len().is_multiple_of(dim) {
            return Err(IndexError::DimensionMismatch {
                expected: dim,
                received: queries.len() % dim,
            });
        }
        Ok(self.prepare_normalized(self.validated(queries)?))
    }

    /// Builds prepared queries from values that are already normalised.
    pub(crate) fn prepare_normalized(&self, f32: Vec<f32>) -> Prepared {
        let dim = self.dim();
        let nq = f32.len() / dim;
        let i8 = match &self.codes {
            Codes::Sq8 { params, .. } => {
                let p = params.clone().unwrap_or_else(Sq8Params::per_vector);
                let mut q = vec![0i8; nq * dim];
                let scales = q
                    .chunks_mut(dim)
                    .zip(f32.chunks(dim))
                    .map(|(o, v)| p.quantize_query(v, o))
                    .collect();
                Some((q, scales))
            }
            _ => None,
        };
        Prepared { nq, f32, i8 }
    }

    /// Scores queries `qs` of `p` against `rows`, into `out[(q - qs.start) * nr + r]`.
    pub(crate) fn score_tile(
        &self,
        p: &Prepared,
        qs: Range<usize>,
        rows: Range<usize>,
        out: &mut [f32],
        scratch: &mut Vec<i32>,
    ) {
        let dim = self.dim();
        let k = self.kernels();
        let nr = rows.len();
        let nq = qs.len();
        let rspan = rows.start * dim..rows.end * dim;
        let qspan = qs.start * dim..qs.end * dim;
        match &self.codes {
            Codes::F32(b) => (k.tile_f32)(&p.f32[qspan], &b.as_slice()[rspan], dim, out),
            Codes::F16(b) => (k.tile_f16)(&p.f32[qspan], &b.as_slice()[rspan], dim, out),
            Codes::Sq8 { codes, scales, .. } => {
                // prepare() always fills i8 for int8 codes.
                let Some((q8, qscale)) = &p.i8 else {
                    unreachable!("int8 index without int8 queries")
                };
                scratch.resize(nq * nr, 0);
                (k.tile_i8)(&q8[qspan], &codes.as_slice()[rspan], dim, scratch);
                let rs = &scales[rows];
                for (qi, qsc) in qscale[qs].iter().enumerate() {
                    let (o, s) = (
                        &mut out[qi * nr..(qi + 1) * nr],
                        &scratch[qi * nr..(qi + 1) * nr],
                    );
                    for ((o, &s), &r) in o.iter_mut().zip(s).zip(rs) {
                        *o = s as f32 * qsc * r;
                    }
                }
            }
        }
    }

    fn shard_rows(&self) -> usize {
        let tile = self.tile_rows();
        // Several shards per thread so rayon can balance a shared, noisy box.
        let per = self
            .rows()
            .div_ceil(rayon::current_num_threads() * 4)
            .max(tile * 4);
        per.div_ceil(tile) * tile
    }

    /// Scans all rows; `visit(shard_state, q, row, score)` sees every score.
    fn scan<S: Send>(
        &self,
        p: &Prepared,
        init: impl Fn() -> S + Sync,
        visit: impl Fn(&mut S, usize, usize, &[f32]) + Sync,
        reduce: impl Fn(S, S) -> S + Sync + Send,
    ) -> S {
        let n = self.rows();
        let shard = self.shard_rows();
        let tile = self.tile_rows();
        (0..n.div_ceil(shard))
            .into_par_iter()
            .map(|s| {
                let mut state = init();
                let qb = p.nq.min(QUERY_BLOCK);
                let mut out = vec![0.0f32; qb * tile];
                let mut scratch = Vec::new();
                let end = ((s + 1) * shard).min(n);
                let mut t = s * shard;
                while t < end {
                    let rows = t..(t + tile).min(end);
                    let nr = rows.len();
                    let mut q0 = 0;
                    while q0 < p.nq {
                        let qs = q0..(q0 + QUERY_BLOCK).min(p.nq);
                        let o = &mut out[..qs.len() * nr];
                        self.score_tile(p, qs.clone(), rows.clone(), o, &mut scratch);
                        for (qi, q) in qs.enumerate() {
                            visit(&mut state, q, rows.start, &o[qi * nr..(qi + 1) * nr]);
                        }
                        q0 += QUERY_BLOCK;
                    }
                    t = rows.end;
                }
                state
            })
            .reduce(&init, reduce)
    }

    fn topk_rows(&self, p: &Prepared, k: usize, filter: Filter) -> Vec<Vec<Scored>> {
        let nq = p.nq;
        let heaps = self.scan(
            p,
            || vec![TopK::new(k); nq],
            |h, q, row0, scores| {
                let h = &mut h[q];
                // Rows are visited in ascending order within a shard, so an equal score
                // never displaces a kept row (lower row wins ties): strictly above.
                for_each_above(scores, h.threshold(), false, |j, s| {
                    let row = row0 + j;
                    if self.passes(row, filter) {
                        h.push(Scored {
                            score: s,
                            row: row as u32,
                        });
                    }
                    h.threshold()
                });
            },
            |mut a, b| {
                for (x, y) in a.iter_mut().zip(b) {
                    x.merge(y);
                }
                a
            },
        );
        heaps.into_iter().map(TopK::into_sorted).collect()
    }

    pub(crate) fn rerank(&self, p: &Prepared, q: usize, cands: &mut [Scored]) {
        let dim = self.dim();
        let qv = &p.f32[q * dim..(q + 1) * dim];
        // Candidates are scattered over the gallery, so each row is a cache (and TLB) miss: ask for
        // the rows a few candidates ahead so that their misses overlap with the scoring.
        const AHEAD: usize = 8;
        for c in cands.iter().take(AHEAD) {
            self.prefetch_row(c.row as usize);
        }
        for i in 0..cands.len() {
            if let Some(next) = cands.get(i + AHEAD) {
                self.prefetch_row(next.row as usize);
            }
            let c = &mut cands[i];
            if let Some(r) = self.exact_row(c.row as usize) {
                c.score = (self.kernels().dot_f32)(qv, r);
            }
        }
        cands.sort_by(Scored::better_first);
    }

    /// Hints the CPU to load an exact row into the cache (no effect on other architectures).
    #[inline]
    fn prefetch_row(&self, row: usize) {
        #[cfg(target_arch = "x86_64")]
        if let Some(r) = self.exact_row(row) {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            for line in r.chunks(16) {
                // SAFETY: a prefetch is only a hint; the address lies inside the row slice.
                unsafe { _mm_prefetch::<_MM_HINT_T0>(line.as_ptr() as *const i8) };
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = row;
    }

    pub(crate) fn needs_rerank(&self, params: &SearchParams) -> bool {
        params.rerank_factor > 1 && self.exact.is_some()
    }

    fn to_hits(&self, v: Vec<Scored>) -> Vec<Hit> {
        v.into_iter()
            .map(|s| Hit {
                id: self.ids[s.row as usize],
                score: s.score,
            })
            .collect()
    }

    /// The `k` best live rows for one query, best first.
    pub fn search(&self, query: &[f32], k: usize, params: &SearchParams) -> Result<Vec<Hit>> {
        if query.len() != self.dim() {
            return Err(IndexError::DimensionMismatch {
                expected: self.dim(),
                received: query.len(),
            });
        }
        Ok(self
            .search_batch(query, k, params)?
            .pop()
            .unwrap_or_default())
    }

    /// The `k` best live rows for each of `queries.len() / dim` queries. The
    /// whole batch shares each pass over the codes.
    pub fn search_batch(
        &self,
        queries: &[f32],
        k: usize,
        params: &SearchParams,
    ) -> Result<Vec<Vec<Hit>>> {
        let p = self.prepare(queries)?;
        let rerank = self.needs_rerank(params);
        let kc = if rerank {
            k.saturating_mul(params.rerank_factor)
        } else {
            k
        };
        let per_query = self.topk_rows(&p, kc, params.filter);
        Ok(per_query
            .into_iter()
            .enumerate()
            .map(|(q, mut c)| {
                if rerank {
                    self.rerank(&p, q, &mut c);
                    c.truncate(k);
                }
                self.to_hits(c)
            })
            .collect())
    }

    /// Every live row scoring ≥ `threshold` for each query, best first.
    pub fn search_threshold(
        &self,
        queries: &[f32],
        threshold: f32,
        params: &SearchParams,
    ) -> Result<Vec<Vec<Hit>>> {
        if !threshold.is_finite() {
            return Err(IndexError::InvalidArgument(format!(
                "threshold {threshold}"
            )));
        }
        let p = self.prepare(queries)?;
        let rerank = self.needs_rerank(params);
        let scan_th = if rerank {
            threshold - params.rerank_margin.max(0.0)
        } else {
            threshold
        };
        let nq = p.nq;
        let filter = params.filter;
        let found = self.scan(
            &p,
            || vec![Vec::new(); nq],
            |acc: &mut Vec<Vec<Scored>>, q, row0, scores| {
                for_each_above(scores, scan_th, true, |j, s| {
                    if self.passes(row0 + j, filter) {
                        acc[q].push(Scored {
                            score: s,
                            row: (row0 + j) as u32,
                        });
                    }
                    scan_th
                });
            },
            |mut a, b| {
                for (x, y) in a.iter_mut().zip(b) {
                    x.extend(y);
                }
                a
            },
        );
        Ok(found
            .into_iter()
            .enumerate()
            .map(|(q, mut c)| {
                if rerank {
                    self.rerank(&p, q, &mut c);
                    c.retain(|s| s.score >= threshold);
                } else {
                    c.sort_by(Scored::better_first);
                }
                self.to_hits(c)
            })
            .collect())
    }
}
