//! 1:N identification over a gallery of finger templates, with a cheap
//! pre-selection pass, exact MCC re-scoring and multi-finger fusion.
//!
//! ```
//! use sinhtrac_finger::{FingerPosition, FingerTemplate, Gallery, Matcher, Minutia,
//!     MinutiaKind, SearchOptions};
//! let finger = |seed: u16| FingerTemplate { width: 300, height: 300, dpi: 500,
//!     minutiae: (0..30u16).map(|i| Minutia { x: 30 + (i * 37 + seed * 11) % 240,
//!         y: 30 + (i * 53 + seed * 7) % 240, angle: f32::from((i + seed) % 62) / 10.0,
//!         kind: MinutiaKind::Ending, quality: 50 }).collect(), flow: vec![] };
//! let mut gallery = Gallery::new();
//! for subject in 0..20u64 {
//!     gallery.insert(subject, FingerPosition::RIGHT_INDEX, &finger(subject as u16));
//! }
//! let probe = Matcher::new(&finger(7));
//! let hits = gallery.search(&probe, FingerPosition::RIGHT_INDEX, &SearchOptions::default());
//! assert_eq!(hits[0].subject, 7);
//! ```

use crate::coarse::{CoarseCode, CoarseTable};
use crate::mcc::{Matcher, SearchTemplate};
use crate::params::{
    FIRST_PASS_CODES, FIRST_PASS_FRACTION, PRESELECT_FRACTION, PRESELECT_MIN, REFINE_CYLINDERS,
    REFINE_FRACTION,
};
use crate::standard::FingerPosition;
use crate::template::FingerTemplate;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// One enrolled finger.
#[derive(Debug, Clone)]
pub struct GalleryEntry {
    /// Subject (person) id.
    pub subject: u64,
    /// Finger position.
    pub position: FingerPosition,
    /// Search form.
    pub template: SearchTemplate,
}

/// In-memory 1:N gallery.
#[derive(Debug, Clone, Default)]
pub struct Gallery {
    entries: Vec<GalleryEntry>,
    /// Every entry's coarse codes back to back, with each entry's range:
    /// the pre-selection pass streams through this array instead of
    /// chasing one small allocation per entry (3× faster at 20k entries).
    coarse: CoarseTable,
    coarse_range: Vec<(u32, u32)>,
    /// Tombstones: a removed entry keeps its index (callers hold entry
    /// indices) but is never searched again.
    removed: Vec<bool>,
    live: usize,
}

/// How a search trades speed for recall.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SearchOptions {
    /// Pre-selection keeps this fraction of the (position-filtered) gallery
    /// for the refine stage and the exact score; `1.0` disables pre-selection.
    pub preselect_fraction: f32,
    /// ... but at least this many candidates (also the floor of what the
    /// refine stage passes on to the full score).
    pub preselect_min: usize,
    /// A first, cheaper pre-selection pass: only this many of the probe's
    /// coarse codes (its best-quality minutiae) score the whole gallery, and
    /// the best `first_pass_fraction` of it go on to the full coarse score.
    /// `0` disables the first pass.
    pub first_pass_codes: usize,
    /// Fraction of the gallery the first pass keeps.
    pub first_pass_fraction: f32,
    /// A cheaper exact stage after the coarse shortlist: MCC over only
    /// this many best-quality minutiae of each side ranks the shortlist,
    /// and the best `refine_fraction` of the gallery (at least
    /// `preselect_min`) go on to the full score. `0` disables it.
    pub refine_cylinders: usize,
    /// Fraction of the gallery the refine stage keeps for the full score.
    pub refine_fraction: f32,
    /// Hits returned.
    pub top_k: usize,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions {
            preselect_fraction: PRESELECT_FRACTION,
            preselect_min: PRESELECT_MIN,
            first_pass_codes: FIRST_PASS_CODES,
            first_pass_fraction: FIRST_PASS_FRACTION,
            refine_cylinders: REFINE_CYLINDERS,
            refine_fraction: REFINE_FRACTION,
            top_k: 10,
        }
    }
}

impl SearchOptions {
    /// Exhaustive exact search (no pre-selection).
    pub fn exhaustive(top_k: usize) -> Self {
        SearchOptions {
            preselect_fraction: 1.0,
            preselect_min: usize::MAX,
            first_pass_codes: 0,
            first_pass_fraction: 1.0,
            refine_cylinders: 0,
            refine_fraction: 1.0,
            top_k,
        }
    }
}

/// A per-finger search result.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    /// Index of the gallery entry.
    pub entry: usize,
    /// Subject id.
    pub subject: u64,
    /// Finger position.
    pub position: FingerPosition,
    /// MCC score in `[0, 1]`.
    pub score: f32,
}

/// A fused per-subject result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubjectHit {
    /// Subject id.
    pub subject: u64,
    /// Fused score in `[0, 1]` (see [`fuse_scores`]).
    pub score: f32,
    /// Best score per probe finger (0 when the finger did not come back).
    pub per_finger: Vec<(FingerPosition, f32)>,
}

/// Multi-finger fusion: the mean of per-finger scores, missing fingers
/// counting 0. The mean keeps the `[0, 1]` range, and because impostor
/// scores of different fingers are nearly independent it lowers the
/// impostor spread faster than the genuine mean, so one threshold still
/// maps to an FMR (calibrate it per number of fingers).
pub fn fuse_scores(scores: &[f32]) -> f32 {
    if scores.is_empty() {
        0.0
    } else {
        scores.iter().sum::<f32>() / scores.len() as f32
    }
}

impl Gallery {
    /// Empty gallery.
    pub fn new() -> Self {
        Self::default()
    }

    /// Enrols one finger; returns its entry index.
    pub fn insert(&mut self, subject: u64, position: FingerPosition, t: &FingerTemplate) -> usize {
        self.push(subject, position, SearchTemplate::new(t))
    }

    /// Enrols an already built search template.
    pub fn push(
        &mut self,
        subject: u64,
        position: FingerPosition,
        template: SearchTemplate,
    ) -> usize {
        let range = self.coarse.push(template.coarse_codes());
        self.coarse_range.push(range);
        self.entries.push(GalleryEntry {
            subject,
            position,
            template,
        });
        self.removed.push(false);
        self.live += 1;
        self.entries.len() - 1
    }

    /// Removes an entry from every later search (a tombstone: indices of
    /// other entries do not change). Returns false when it was not live.
    pub fn remove(&mut self, entry: usize) -> bool {
        match self.removed.get_mut(entry) {
            Some(r) if !*r => {
                *r = true;
                self.live -= 1;
                true
            }
            _ => false,
        }
    }

    /// Is `entry` enrolled and not removed?
    pub fn is_live(&self, entry: usize) -> bool {
        self.removed.get(entry).is_some_and(|r| !r)
    }

    /// Removed entries whose memory is still held (until [`Gallery::compact`]).
    pub fn removed(&self) -> usize {
        self.entries.len() - self.live
    }

    /// Drops the removed entries, keeping the live ones in order, and returns where each old entry
    /// went (`None` for a removed one): the only operation that moves entry indices. Templates are
    /// moved, not copied.
    pub fn compact(&mut self) -> Vec<Option<usize>> {
        let old = std::mem::take(self);
        old.entries
            .into_iter()
            .zip(old.removed)
            .map(|(e, removed)| (!removed).then(|| self.push(e.subject, e.position, e.template)))
            .collect()
    }

    /// Number of live (searchable) fingers.
    pub fn len(&self) -> usize {
        self.live
    }

    /// True when no finger is searchable.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Entries, removed ones included (see [`Gallery::is_live`]).
    pub fn entries(&self) -> &[GalleryEntry] {
        &self.entries
    }

    /// Searches one finger: entries at `position` (all entries when either
    /// side is [`FingerPosition::UNKNOWN`]) are ranked by the coarse score
    /// in parallel (a first pass with a few probe codes, then all of them),
    /// the shortlist by MCC over the best-quality minutiae, the best of
    /// those are re-scored exactly, and the top `top_k` are returned best
    /// first.
    pub fn search(
        &self,
        probe: &Matcher,
        position: FingerPosition,
        opts: &SearchOptions,
    ) -> Vec<Hit> {
        let eligible = |e: &GalleryEntry| {
            position == FingerPosition::UNKNOWN
                || e.position == FingerPosition::UNKNOWN
                || e.position == position
        };
        let pool: Vec<usize> = (0..self.entries.len())
            .filter(|&i| !self.removed[i] && eligible(&self.entries[i]))
            .collect();
        let eligible_count = pool.len();
        let fraction = |f: f32| (eligible_count as f32 * f).ceil() as usize;
        let keep = fraction(opts.preselect_fraction)
            .max(opts.preselect_min)
            .min(pool.len());
        let codes = probe.probe().coarse_codes();
        let first_keep = fraction(opts.first_pass_fraction).max(keep);
        let pool = if opts.first_pass_codes > 0 && first_keep < pool.len() {
            let first = &codes[..opts.first_pass_codes.min(codes.len())];
            let mut kept = self.best_by_coarse(pool, first, first_keep);
            // Back in gallery order, so the second pass reads the table forwards.
            kept.sort_unstable();
            kept
        } else {
            pool
        };
        let mut shortlist = self.best_by_coarse(pool, codes, keep);
        let exact_keep = fraction(opts.refine_fraction).max(opts.preselect_min);
        if opts.refine_cylinders > 0 && exact_keep < shortlist.len() {
            shortlist =
                self.best_by_partial_score(probe, &shortlist, opts.refine_cylinders, exact_keep);
        }
        let mut hits: Vec<Hit> = shortlist
            .par_iter()
            .map(|&i| {
                let e = &self.entries[i];
                Hit {
                    entry: i,
                    subject: e.subject,
                    position: e.position,
                    score: probe.score(&e.template),
                }
            })
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.entry.cmp(&b.entry)));
        hits.truncate(opts.top_k);
        hits
    }

    /// The `keep` entries of `pool` with the best coarse score against
    /// `codes` (all of `pool` when it is no larger), in no particular order.
    fn best_by_coarse(&self, pool: Vec<usize>, codes: &[CoarseCode], keep: usize) -> Vec<usize> {
        if keep >= pool.len() {
            return pool;
        }
        let coarse: Vec<(u32, usize)> = pool
            .par_chunks(2048)
            .flat_map_iter(|chunk| {
                let ranges: Vec<(u32, u32)> = chunk.iter().map(|&i| self.coarse_range[i]).collect();
                let mut scores = Vec::new();
                self.coarse.similarities(codes, &ranges, &mut scores);
                scores.into_iter().zip(chunk.iter().copied())
            })
            .collect();
        best_entries(coarse, keep, |a, b| b.0.cmp(&a.0))
    }

    /// The `keep` entries of `shortlist` with the best MCC score over
    /// their and the probe's first `cylinders` minutiae.
    fn best_by_partial_score(
        &self,
        probe: &Matcher,
        shortlist: &[usize],
        cylinders: usize,
        keep: usize,
    ) -> Vec<usize> {
        let scored: Vec<(f32, usize)> = shortlist
            .par_iter()
            .map(|&i| (probe.score_best(&self.entries[i].template, cylinders), i))
            .collect();
        best_entries(scored, keep, |a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)))
    }

    /// Multi-finger identification: searches each probe finger, keeps each
    /// subject's best score per finger, fuses with [`fuse_scores`] and
    /// returns the `top_k` subjects best first.
    pub fn identify(
        &self,
        probes: &[(FingerPosition, &Matcher)],
        opts: &SearchOptions,
    ) -> Vec<SubjectHit> {
        let per_finger_opts = SearchOptions {
            top_k: opts.top_k.saturating_mul(4).max(opts.top_k),
            ..*opts
        };
        let mut by_subject: HashMap<u64, Vec<f32>> = HashMap::new();
        for (f, (pos, m)) in probes.iter().enumerate() {
            for h in self.search(m, *pos, &per_finger_opts) {
                let s = by_subject
                    .entry(h.subject)
                    .or_insert_with(|| vec![0.0; probes.len()]);
                s[f] = s[f].max(h.score);
            }
        }
        let mut out: Vec<SubjectHit> = by_subject
            .into_iter()
            .map(|(subject, scores)| SubjectHit {
                subject,
                score: fuse_scores(&scores),
                per_finger: probes.iter().map(|p| p.0).zip(scores).collect(),
            })
            .collect();
        out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.subject.cmp(&b.subject)));
        out.truncate(opts.top_k);
        out
    }
}

/// The entry indices of the first `keep` of `scored` in `best_first` order (in no particular order
/// themselves): a partial selection, not a sort.
fn best_entries<S>(
    mut scored: Vec<(S, usize)>,
    keep: usize,
    best_first: impl FnMut(&(S, usize), &(S, usize)) -> std::cmp::Ordering,
) -> Vec<usize> {
    scored.select_nth_unstable_by(keep.max(1) - 1, best_first);
    scored.truncate(keep);
    scored.into_iter().map(|(_, i)| i).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::{Minutia, MinutiaKind};

    fn finger(seed: u16) -> FingerTemplate {
        FingerTemplate {
            width: 300,
            height: 300,
            dpi: 500,
            minutiae: (0..30u16)
                .map(|i| Minutia {
                    x: 30 + (i * 37 + seed * 11) % 240,
                    y: 30 + (i * 53 + seed * 7) % 240,
                    angle: f32::from((i + seed) % 62) / 10.0,
                    kind: MinutiaKind::Ending,
                    quality: 50,
                })
                .collect(),
            flow: Vec::new(),
        }
    }

    #[test]
    fn a_removed_entry_is_never_found_again_and_other_indices_hold() {
        let mut g = Gallery::new();
        let entries: Vec<usize> = (0..10u64)
            .map(|s| g.insert(s, FingerPosition::RIGHT_INDEX, &finger(s as u16)))
            .collect();
        let probe = Matcher::new(&finger(4));
        let opts = SearchOptions::exhaustive(10);
        assert_eq!(
            g.search(&probe, FingerPosition::UNKNOWN, &opts)[0].subject,
            4
        );
        assert!(g.remove(entries[4]));
        assert!(!g.remove(entries[4]), "second removal is a no-op");
        assert!(!g.remove(99));
        assert_eq!(g.len(), 9);
        assert!(!g.is_live(entries[4]) && g.is_live(entries[5]));
        let hits = g.search(&probe, FingerPosition::UNKNOWN, &opts);
        assert!(hits.iter().all(|h| h.subject != 4));
        let five = Matcher::new(&finger(5));
        let h = g.search(&five, FingerPosition::UNKNOWN, &opts);
        assert_eq!((h[0].subject, h[0].entry), (5, entries[5]));
    }

    #[test]
    fn compaction_drops_removed_entries_and_keeps_every_search_result() {
        let mut g = Gallery::new();
        for s in 0..12u64 {
            g.insert(s, FingerPosition::RIGHT_INDEX, &finger(s as u16));
        }
        for e in [0, 3, 4, 11] {
            g.remove(e);
        }
        let opts = SearchOptions::exhaustive(12);
        let probes: Vec<Matcher> = (0..12u16).map(|s| Matcher::new(&finger(s))).collect();
        let before: Vec<Vec<Hit>> = probes
            .iter()
            .map(|p| g.search(p, FingerPosition::UNKNOWN, &opts))
            .collect();
        let moved = g.compact();
        assert_eq!((g.len(), g.removed(), g.entries().len()), (8, 0, 8));
        let expected: Vec<Option<usize>> = vec![
            None,
            Some(0),
            Some(1),
            None,
            None,
            Some(2),
            Some(3),
            Some(4),
            Some(5),
            Some(6),
            Some(7),
            None,
        ];
        assert_eq!(moved, expected);
        for (p, was) in probes.iter().zip(&before) {
            let now = g.search(p, FingerPosition::UNKNOWN, &opts);
            let renumbered: Vec<(u64, Option<usize>, f32)> = was
                .iter()
                .map(|h| (h.subject, moved[h.entry], h.score))
                .collect();
            let got: Vec<(u64, Option<usize>, f32)> = now
                .iter()
                .map(|h| (h.subject, Some(h.entry), h.score))
                .collect();
            assert_eq!(got, renumbered);
        }
        // New entries go after the compacted ones.
        assert_eq!(g.insert(99, FingerPosition::RIGHT_INDEX, &finger(99)), 8);
    }
}
