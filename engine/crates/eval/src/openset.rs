//! 1:N open-set identification metrics (NIST FRTE 1:N / NIST IR 8271 terms).
//!
//! A *mated* search is one whose probe subject is enrolled in the gallery; a
//! *non-mated* search's subject is not. With a threshold `T` and a rank `R`:
//!
//! * FPIR(T) (false positive identification rate) = share of non-mated
//!   searches that return at least one candidate with score `>= T`
//!   (i.e. whose top candidate scores `>= T`).
//! * FNIR(R, T) (false negative identification rate) = share of mated
//!   searches whose mate is not among the top `R` candidates with score `>= T`
//!   (including mates missing from the candidate list).
//! * CMC / rank-k identification rate = share of mated searches whose mate is
//!   at rank `<= k`, no threshold.
//!
//! FNIR at a target FPIR takes the smallest threshold with FPIR ≤ target,
//! chosen from the non-mated searches' top scores exactly as
//! [`FmrThreshold`](crate::FmrThreshold) is from impostor scores (same tie
//! rule and [`SupportRule`]). **Rank ties** are resolved pessimistically: a
//! mate tied in score with non-mate candidates ranks after them.

use serde::{Deserialize, Serialize};

use crate::error::{EvalError, Result};
use crate::scores::{check_target, sorted_asc, threshold_core, SubjectId, SupportRule, Unit};

/// One gallery candidate returned by a search.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// Enrolled subject.
    pub subject: SubjectId,
    /// Comparison score (higher = more similar).
    pub score: f64,
}

/// One 1:N search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Search {
    /// The probe's true subject.
    pub probe_subject: SubjectId,
    /// Whether the probe's subject is enrolled (a mated search).
    pub mated: bool,
    /// Returned candidates, any order (ranked here by descending score).
    pub candidates: Vec<Candidate>,
}

/// FNIR at a target FPIR.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FnirAtFpir {
    /// Target FPIR.
    pub target_fpir: f64,
    /// Threshold (a candidate is returned iff `score >= threshold`).
    pub threshold: f64,
    /// Observed FPIR over the non-mated searches at the threshold (≤ target).
    pub observed_fpir: f64,
    /// FNIR over the mated searches at the threshold and rank.
    pub fnir: f64,
    /// Rank limit `R` used for FNIR.
    pub rank: usize,
}

/// One point of the FNIR-against-FPIR curve (the open-set DET).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OpenSetPoint {
    /// Threshold.
    pub threshold: f64,
    /// FPIR at the threshold.
    pub fpir: f64,
    /// FNIR at the threshold (rank `R` of the summary).
    pub fnir: f64,
}

/// Points kept in [`OpenSetResult::curve`].
const MAX_CURVE_POINTS: usize = 400;

/// Open-set results over a list of searches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenSetResult {
    /// Mated searches.
    pub n_mated: usize,
    /// Non-mated searches.
    pub n_nonmated: usize,
    /// Rank-1 identification rate (closed-set over mated searches).
    pub rank1: f64,
    /// Rank-10 identification rate.
    pub rank10: f64,
    /// CMC: `cmc[k-1]` = rank-k identification rate, up to the longest candidate list.
    pub cmc: Vec<f64>,
    /// FNIR at each supported target FPIR (rank `R` as given).
    pub fnir_at_fpir: Vec<FnirAtFpir>,
    /// Targets the non-mated search count does not support.
    pub unsupported_fpir: Vec<f64>,
    /// FNIR against FPIR over every threshold (rank `R` as given), by decreasing threshold, thinned;
    /// empty without non-mated searches.
    #[serde(default)]
    pub curve: Vec<OpenSetPoint>,
}

/// Searches validated and reduced to (mate rank, mate score) and top non-mate scores.
#[derive(Debug, Clone)]
pub struct OpenSet {
    /// Per mated search: (pessimistic rank from 1, mate score); None if mate absent.
    mates: Vec<Option<(usize, f64)>>,
    /// Top candidate score per non-mated search, ascending; searches with no
    /// candidate count as never returning a candidate.
    nonmated_top_asc: Vec<f64>,
    n_nonmated: usize,
    max_len: usize,
    rule: SupportRule,
}

impl OpenSet {
    /// Validate searches: finite scores; a non-mated search must not return
    /// its own subject (the subject is not enrolled).
    pub fn new(searches: &[Search]) -> Result<Self> {
        let mut mates = Vec::new();
        let mut top = Vec::new();
        let mut n_nonmated = 0;
        let mut max_len = 0;
        for (index, s) in searches.iter().enumerate() {
            if let Some(c) = s.candidates.iter().find(|c| !c.score.is_finite()) {
                return Err(EvalError::InconsistentSearch {
                    index,
                    reason: format!("non-finite score {}", c.score),
                });
            }
            max_len = max_len.max(s.candidates.len());
            if s.mated {
                let mate = s
                    .candidates
                    .iter()
                    .filter(|c| c.subject == s.probe_subject)
                    .map(|c| c.score)
                    .reduce(f64::max);
                mates.push(mate.map(|m| {
                    let ahead = s
                        .candidates
                        .iter()
                        .filter(|c| c.subject != s.probe_subject && c.score >= m)
                        .count();
                    (ahead + 1, m)
                }));
            } else {
                if s.candidates.iter().any(|c| c.subject == s.probe_subject) {
                    return Err(EvalError::InconsistentSearch {
                        index,
                        reason: format!(
                            "non-mated search returned its own subject {}",
                            s.probe_subject
                        ),
                    });
                }
                n_nonmated += 1;
                if let Some(t) = s.candidates.iter().map(|c| c.score).reduce(f64::max) {
                    top.push(t);
                }
            }
        }
        if mates.is_empty() {
            return Err(EvalError::Empty {
                what: "mated searches",
            });
        }
        Ok(OpenSet {
            mates,
            nonmated_top_asc: sorted_asc(&top),
            n_nonmated,
            max_len,
            rule: SupportRule::default(),
        })
    }

    /// Replace the support rule for FNIR at a target FPIR.
    pub fn with_support_rule(mut self, rule: SupportRule) -> Self {
        self.rule = rule;
        self
    }

    /// Rank-`k` identification rate (CMC at `k`, no threshold).
    pub fn rank_rate(&self, k: usize) -> f64 {
        let hit = self
            .mates
            .iter()
            .filter(|m| m.is_some_and(|(r, _)| r <= k))
            .count();
        hit as f64 / self.mates.len() as f64
    }

    /// FPIR at `threshold`. [`EvalError::Empty`] without non-mated searches.
    pub fn fpir_at(&self, threshold: f64) -> Result<f64> {
        if self.n_nonmated == 0 {
            return Err(EvalError::Empty {
                what: "non-mated searches",
            });
        }
        let below = self.nonmated_top_asc.partition_point(|&x| x < threshold);
        Ok((self.nonmated_top_asc.len() - below) as f64 / self.n_nonmated as f64)
    }

    /// FNIR(R = `rank`, T = `threshold`).
    pub fn fnir_at(&self, threshold: f64, rank: usize) -> f64 {
        let hit = self
            .mates
            .iter()
            .filter(|m| m.is_some_and(|(r, s)| r <= rank && s >= threshold))
            .count();
        1.0 - hit as f64 / self.mates.len() as f64
    }

    /// FNIR at the smallest threshold with FPIR ≤ `target`.
    pub fn fnir_at_fpir(&self, target: f64, rank: usize) -> Result<FnirAtFpir> {
        check_target(target)?;
        if self.n_nonmated == 0 {
            return Err(EvalError::Empty {
                what: "non-mated searches",
            });
        }
        if rank == 0 {
            return Err(EvalError::InvalidParameter {
                name: "rank",
                reason: "rank starts at 1".into(),
            });
        }
        self.rule
            .check(target, self.n_nonmated as u64, "non-mated searches")?;
        // Searches without candidates never produce a false positive: they
        // are negatives "below every threshold". Pad with -inf so the count
        // is right; threshold_core then never picks next_up(-inf) unless
        // nothing may be accepted... which cannot happen: pads are the lowest.
        let mut all = vec![f64::NEG_INFINITY; self.n_nonmated - self.nonmated_top_asc.len()];
        all.extend_from_slice(&self.nonmated_top_asc);
        let t = threshold_core(&all, &Unit, target, &self.rule, "non-mated searches")?;
        Ok(FnirAtFpir {
            target_fpir: target,
            threshold: t.threshold,
            observed_fpir: t.observed_fmr,
            fnir: self.fnir_at(t.threshold, rank),
            rank,
        })
    }

    /// FNIR(R = `rank`) against FPIR at every threshold where either changes, by decreasing threshold,
    /// thinned to at most `max_points` (first and last kept). Empty without non-mated searches.
    pub fn curve(&self, rank: usize, max_points: usize) -> Vec<OpenSetPoint> {
        if self.n_nonmated == 0 {
            return Vec::new();
        }
        let mut mates: Vec<f64> = self
            .mates
            .iter()
            .filter_map(|m| m.filter(|(r, _)| *r <= rank).map(|(_, s)| s))
            .collect();
        mates.sort_by(f64::total_cmp);
        let mut thresholds: Vec<f64> = mates
            .iter()
            .chain(&self.nonmated_top_asc)
            .copied()
            .collect();
        thresholds.sort_by(|a, b| b.total_cmp(a));
        thresholds.dedup();
        let (n_m, n_n) = (self.mates.len() as f64, self.n_nonmated as f64);
        let top = &self.nonmated_top_asc;
        let all: Vec<OpenSetPoint> = thresholds
            .iter()
            .map(|&t| OpenSetPoint {
                threshold: t,
                fpir: (top.len() - top.partition_point(|&x| x < t)) as f64 / n_n,
                fnir: 1.0 - (mates.len() - mates.partition_point(|&x| x < t)) as f64 / n_m,
            })
            .collect();
        if all.len() <= max_points.max(2) {
            return all;
        }
        let step = (all.len() - 1) as f64 / (max_points.max(2) - 1) as f64;
        (0..max_points.max(2))
            .map(|i| all[((i as f64 * step).round() as usize).min(all.len() - 1)])
            .collect()
    }

    /// Headline results: rank-1, rank-10, CMC, and FNIR at each target FPIR
    /// (rank `R = rank`; 1 for identification mode). Unsupported targets are
    /// listed, not errors.
    pub fn summary(&self, fpir_targets: &[f64], rank: usize) -> Result<OpenSetResult> {
        let mut fnir = Vec::new();
        let mut unsupported = Vec::new();
        if self.n_nonmated > 0 {
            for &t in fpir_targets {
                match self.fnir_at_fpir(t, rank) {
                    Ok(r) => fnir.push(r),
                    Err(EvalError::Unsupported { .. }) => unsupported.push(t),
                    Err(e) => return Err(e),
                }
            }
        } else {
            unsupported.extend_from_slice(fpir_targets);
        }
        Ok(OpenSetResult {
            n_mated: self.mates.len(),
            n_nonmated: self.n_nonmated,
            rank1: self.rank_rate(1),
            rank10: self.rank_rate(10),
            cmc: (1..=self.max_len.max(1))
                .map(|k| self.rank_rate(k))
                .collect(),
            fnir_at_fpir: fnir,
            unsupported_fpir: unsupported,
            curve: self.curve(rank, MAX_CURVE_POINTS),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(probe: u32, mated: bool, c: &[(u32, f64)]) -> Search {
        Search {
            probe_subject: probe,
            mated,
            candidates: c
                .iter()
                .map(|&(subject, score)| Candidate { subject, score })
                .collect(),
        }
    }

    fn searches() -> Vec<Search> {
        vec![
            // mated, mate at rank 1 score 0.9
            s(1, true, &[(1, 0.9), (2, 0.3)]),
            // mated, mate at rank 2 score 0.6
            s(2, true, &[(3, 0.7), (2, 0.6)]),
            // mated, mate tied with a non-mate: pessimistic rank 2
            s(3, true, &[(3, 0.5), (4, 0.5)]),
            // mated, mate absent
            s(4, true, &[(5, 0.4)]),
            // non-mated, top 0.8
            s(10, false, &[(1, 0.8), (2, 0.2)]),
            // non-mated, top 0.35
            s(11, false, &[(3, 0.35)]),
            // non-mated, no candidates
            s(12, false, &[]),
            // non-mated, top 0.1
            s(13, false, &[(4, 0.1)]),
        ]
    }

    #[test]
    fn cmc_and_ranks_hand_computed() {
        let o = OpenSet::new(&searches()).unwrap();
        assert_eq!(o.rank_rate(1), 0.25);
        assert_eq!(o.rank_rate(2), 0.75);
        assert_eq!(o.rank_rate(10), 0.75);
        let r = o.summary(&[], 1).unwrap();
        assert_eq!(r.cmc, vec![0.25, 0.75]);
        assert_eq!((r.n_mated, r.n_nonmated), (4, 4));
    }

    #[test]
    fn fpir_fnir_hand_computed() {
        let o = OpenSet::new(&searches())
            .unwrap()
            .with_support_rule(SupportRule::AT_LEAST_ONE);
        assert_eq!(o.fpir_at(0.3).unwrap(), 0.5); // 0.8 and 0.35
        assert_eq!(o.fpir_at(0.9).unwrap(), 0.0);
        // FNIR(R=1, T=0.5): only search 1 (0.9 at rank 1) is a hit.
        assert_eq!(o.fnir_at(0.5, 1), 0.75);
        // FNIR(R=2, T=0.5): searches 1, 2 (0.6 rank 2), 3 (0.5 rank 2) hit.
        assert_eq!(o.fnir_at(0.5, 2), 0.25);
        // FPIR target 0.25 of 4 non-mated: one false positive allowed: the
        // threshold is just above 0.35, so only the 0.8 search alarms.
        let f = o.fnir_at_fpir(0.25, 2).unwrap();
        assert_eq!(f.threshold, crate::next_up(0.35));
        assert_eq!(f.observed_fpir, 0.25);
        assert_eq!(f.fnir, 0.25);
        // Target 0.2 allows none (4 · 0.2 < 1): threshold above 0.8 → only
        // 0.9 survives. (Needs a rule weaker than AT_LEAST_ONE to be supported.)
        let weak = o.clone().with_support_rule(SupportRule {
            min_expected_errors: 0.5,
        });
        let f = weak.fnir_at_fpir(0.2, 2).unwrap();
        assert_eq!(f.threshold, crate::next_up(0.8));
        assert_eq!(f.fnir, 0.75);
        // Unsupported under rule of 3 (4 non-mated searches < 3/0.25 = 12).
        let o3 = o.clone().with_support_rule(SupportRule::RULE_OF_3);
        let r = o3.summary(&[0.25, 1e-2, 1e-3], 1).unwrap();
        assert!(r.fnir_at_fpir.is_empty());
        assert_eq!(r.unsupported_fpir, vec![0.25, 1e-2, 1e-3]);
    }

    #[test]
    fn curve_hand_computed() {
        let o = OpenSet::new(&searches()).unwrap();
        // R = 1: only search 1's mate (0.9) counts; non-mated tops 0.8, 0.35, 0.1 (and one empty).
        let c = o.curve(1, 100);
        let pts: Vec<(f64, f64, f64)> = c.iter().map(|p| (p.threshold, p.fpir, p.fnir)).collect();
        assert_eq!(
            pts,
            vec![
                (0.9, 0.0, 0.75),
                (0.8, 0.25, 0.75),
                (0.35, 0.5, 0.75),
                (0.1, 0.75, 0.75)
            ]
        );
        // Thinning keeps the ends.
        let t = o.curve(1, 2);
        assert_eq!((t[0].threshold, t[1].threshold), (0.9, 0.1));
        let r = o.summary(&[], 1).unwrap();
        assert_eq!(r.curve, c);
    }

    #[test]
    fn inconsistent_and_empty() {
        let bad = vec![s(1, true, &[(1, 0.9)]), s(5, false, &[(5, 0.9)])];
        assert!(matches!(
            OpenSet::new(&bad),
            Err(EvalError::InconsistentSearch { index: 1, .. })
        ));
        assert!(matches!(
            OpenSet::new(&[s(5, false, &[(1, 0.1)])]),
            Err(EvalError::Empty { .. })
        ));
        let nan = vec![s(1, true, &[(1, f64::NAN)])];
        assert!(matches!(
            OpenSet::new(&nan),
            Err(EvalError::InconsistentSearch { index: 0, .. })
        ));
    }
}
