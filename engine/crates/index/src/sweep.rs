//! Duplicate sweep: every pair of rows of *different subjects* scoring at or
//! above a threshold, over the whole gallery (benefit-fraud check).
//!
//! Exact mode is a blocked all-pairs self-join: the gallery is cut into row
//! tiles `I`; for each `I`, rows of `I` are the queries (in blocks of 64) and every
//! row from the diagonal on is scanned with the same tile kernels as search,
//! rayon-parallel over column tiles. After each row tile the sweep reports
//! progress and hands out a serialisable [`SweepCheckpoint`]; passing it back
//! resumes after the last finished row tile. The result is ranked, best first.
//!
//! ```
//! use std::ops::ControlFlow;
//! use sinhtrac_index::{Codec, FlatConfig, FlatIndex};
//! use sinhtrac_index::sweep::{sweep, SweepConfig, SweepOutcome};
//! let mut index = FlatIndex::new(FlatConfig::new(2, Codec::F32))?;
//! index.extend(&[1, 2, 3], &[1.0, 0.0, 0.99, 0.14, 0.0, 1.0], None)?;
//! let out = sweep(&index, &SweepConfig::new(0.9), |id| id, None, |_, _| ControlFlow::Continue(()))?;
//! let SweepOutcome::Finished(pairs) = out else { unreachable!() };
//! assert_eq!((pairs[0].a, pairs[0].b), (1, 2));
//! # Ok::<(), sinhtrac_index::IndexError>(())
//! ```

use std::ops::ControlFlow;

use rayon::prelude::*;

use crate::error::{IndexError, Result};
use crate::flat::topk::Scored;
use crate::flat::{Filter, FlatIndex, SearchParams};

/// Sweep parameters.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SweepConfig {
    /// Report pairs scoring ≥ this (exact score when re-ranked).
    pub threshold: f32,
    /// Rows per checkpointed row tile.
    pub tile_rows: usize,
    /// Only rows passing this filter take part.
    pub filter: Filter,
    /// With int8/f16 codes and an exact copy: scan at `threshold − margin`, then
    /// re-score exactly.
    pub rerank_margin: f32,
}

impl SweepConfig {
    /// Defaults for a threshold: 1024-row tiles, all rows, margin 0.02.
    pub fn new(threshold: f32) -> Self {
        SweepConfig {
            threshold,
            tile_rows: 1024,
            filter: Filter::ALL,
            rerank_margin: 0.02,
        }
    }
}

/// A suspected duplicate: two ids of different subjects. `a` is the earlier row.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DuplicatePair {
    /// Id of the first row.
    pub a: u64,
    /// Id of the second row.
    pub b: u64,
    /// Their score.
    pub score: f32,
}

/// Where a sweep stands; serialise it (serde) to resume after a restart.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SweepCheckpoint {
    /// [`FlatIndex::fingerprint`] of the gallery being swept.
    pub fingerprint: u64,
    /// The sweep's configuration.
    pub config: SweepConfig,
    /// Row tiles finished (the next one to run).
    pub next_tile: usize,
    /// Total row tiles.
    pub tiles: usize,
    /// Pairs found so far (unsorted).
    pub pairs: Vec<DuplicatePair>,
}

/// Progress after each row tile.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SweepProgress {
    /// Row tiles finished.
    pub tiles_done: usize,
    /// Total row tiles.
    pub tiles: usize,
    /// Fraction of the pair work done (tiles near the end are cheaper).
    pub work_fraction: f64,
    /// Pairs found so far.
    pub pairs_found: usize,
}

/// How a sweep ended.
#[derive(Clone, Debug, PartialEq)]
pub enum SweepOutcome {
    /// All tiles done: pairs ranked by score, best first.
    Finished(Vec<DuplicatePair>),
    /// The progress callback asked to stop: resume with this checkpoint.
    Stopped(SweepCheckpoint),
}

/// Runs (or resumes) an exact duplicate sweep. `subject_of(id)` names the
/// subject of a row's id: pairs of one subject are not duplicates. `progress`
/// is called after each row tile with the checkpoint to persist; returning
/// `ControlFlow::Break(())` stops the sweep there.
pub fn sweep(
    index: &FlatIndex,
    cfg: &SweepConfig,
    subject_of: impl Fn(u64) -> u64 + Sync,
    resume: Option<SweepCheckpoint>,
    mut progress: impl FnMut(&SweepProgress, &SweepCheckpoint) -> ControlFlow<()>,
) -> Result<SweepOutcome> {
    if !cfg.threshold.is_finite() || cfg.tile_rows == 0 {
        return Err(IndexError::InvalidArgument(
            "sweep: threshold must be finite, tile_rows > 0".into(),
        ));
    }
    let n = index.rows();
    let tiles = n.div_ceil(cfg.tile_rows);
    let fingerprint = index.fingerprint();
    let mut ck = match resume {
        Some(ck) => {
            if ck.fingerprint != fingerprint {
                return Err(IndexError::CheckpointMismatch(
                    "gallery changed since the checkpoint".into(),
                ));
            }
            if ck.config != *cfg || ck.tiles != tiles {
                return Err(IndexError::CheckpointMismatch(
                    "different sweep configuration".into(),
                ));
            }
            ck
        }
        None => SweepCheckpoint {
            fingerprint,
            config: *cfg,
            next_tile: 0,
            tiles,
            pairs: Vec::new(),
        },
    };
    let params = SearchParams {
        rerank_margin: cfg.rerank_margin,
        ..Default::default()
    };
    let rerank = index.needs_rerank(&params);
    let scan_th = if rerank {
        cfg.threshold - cfg.rerank_margin.max(0.0)
    } else {
        cfg.threshold
    };
    let dim = index.dim();
    let col_tile = index.tile_rows();
    let total_work = (n as f64) * (n as f64 + 1.0) / 2.0;

    while ck.next_tile < tiles {
        let i0 = ck.next_tile * cfg.tile_rows;
        let i1 = (i0 + cfg.tile_rows).min(n);
        let mut qv = vec![0.0f32; (i1 - i0) * dim];
        index.decode_rows(i0..i1, &mut qv);
        let p = index.prepare_normalized(qv);
        let cols: Vec<usize> = (i0..n).step_by(col_tile).collect();
        let found: Vec<(usize, usize, f32)> = cols
            .par_iter()
            .map_init(
                || (vec![0.0f32; 64 * col_tile], Vec::new()),
                |(out, scratch), &c0| {
                    let rows = c0..(c0 + col_tile).min(n);
                    let nr = rows.len();
                    let mut hits = Vec::new();
                    let mut q0 = 0;
                    while q0 < p.nq {
                        let qs = q0..(q0 + 64).min(p.nq);
                        let o = &mut out[..qs.len() * nr];
                        index.score_tile(&p, qs.clone(), rows.clone(), o, scratch);
                        for (qi, q) in qs.enumerate() {
                            let gi = i0 + q;
                            for (j, &s) in o[qi * nr..(qi + 1) * nr].iter().enumerate() {
                                let gj = rows.start + j;
                                if s >= scan_th && gj > gi {
                                    hits.push((gi, gj, s));
                                }
                            }
                        }
                        q0 += 64;
                    }
                    hits
                },
            )
            .flatten()
            .collect();
        for (gi, gj, s) in found {
            if !index.passes(gi, cfg.filter) || !index.passes(gj, cfg.filter) {
                continue;
            }
            let (a, b) = (
                index.id_of_row(gi).unwrap_or_default(),
                index.id_of_row(gj).unwrap_or_default(),
            );
            if subject_of(a) == subject_of(b) {
                continue;
            }
            let score = if rerank {
                let mut c = vec![Scored {
                    score: s,
                    row: gj as u32,
                }];
                index.rerank(&p, gi - i0, &mut c);
                c[0].score
            } else {
                s
            };
            if score >= cfg.threshold {
                ck.pairs.push(DuplicatePair { a, b, score });
            }
        }
        ck.next_tile += 1;
        let done_rows = i1 as f64;
        let work = (done_rows * n as f64 - done_rows * (done_rows - 1.0) / 2.0) / total_work;
        let pr = SweepProgress {
            tiles_done: ck.next_tile,
            tiles,
            work_fraction: work.min(1.0),
            pairs_found: ck.pairs.len(),
        };
        tracing::debug!(
            tiles_done = pr.tiles_done,
            tiles,
            pairs = pr.pairs_found,
            "sweep progress"
        );
        if ck.next_tile < tiles && progress(&pr, &ck).is_break() {
            return Ok(SweepOutcome::Stopped(ck));
        }
    }
    let mut pairs = ck.pairs;
    pairs.sort_by(|x, y| {
        y.score
            .total_cmp(&x.score)
            .then(x.a.cmp(&y.a))
            .then(x.b.cmp(&y.b))
    });
    Ok(SweepOutcome::Finished(pairs))
}
