//! 1:1 verification metrics (ISO/IEC 19795-1 terms): FMR, FNMR, DET/ROC
//! curves, EER and thresholds for a target FMR.
//!
//! **Decision rule** everywhere: a comparison is *accepted* (declared a match)
//! iff `score >= threshold`; higher scores mean more similar.
//!
//! * FMR(t) (false match rate) = share of impostor comparisons with score `>= t`.
//! * FNMR(t) (false non-match rate) = share of genuine comparisons with score `< t`.
//!
//! These are comparison-level rates (no failure-to-acquire is folded in, so
//! they equal ISO/IEC 19795-1 FMR/FNMR only when every sample was enrolled;
//! a pipeline that drops samples must report its failure-to-enrol rate beside them).

use serde::{Deserialize, Serialize};

use crate::error::{EvalError, Result};

/// Identifier of a data subject (a person or, for fingerprints, a finger).
pub type SubjectId = u32;

/// Genuine and impostor comparison scores of a 1:1 protocol.
///
/// Higher score = more similar. Optional subject labels (one per comparison)
/// enable the bootstrap by subject ([`crate::bootstrap`]): a genuine
/// comparison is labelled with its subject, an impostor comparison with the
/// subject it is attributed to (by convention the probe's subject).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScoreSet {
    /// Scores of mated (same subject) comparisons.
    pub genuine: Vec<f64>,
    /// Scores of non-mated (different subject) comparisons.
    pub impostor: Vec<f64>,
    /// Subject of each genuine comparison, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub genuine_subjects: Option<Vec<SubjectId>>,
    /// Subject each impostor comparison is attributed to, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impostor_subjects: Option<Vec<SubjectId>>,
}

impl ScoreSet {
    /// A score set without subject labels.
    pub fn new(genuine: Vec<f64>, impostor: Vec<f64>) -> Self {
        ScoreSet {
            genuine,
            impostor,
            genuine_subjects: None,
            impostor_subjects: None,
        }
    }

    /// A score set from `f32` scores (e.g. cosine similarities of embeddings).
    pub fn from_f32(genuine: &[f32], impostor: &[f32]) -> Self {
        Self::new(
            genuine.iter().map(|&x| f64::from(x)).collect(),
            impostor.iter().map(|&x| f64::from(x)).collect(),
        )
    }

    /// Attach subject labels (one per genuine and per impostor comparison).
    pub fn with_subjects(
        mut self,
        genuine_subjects: Vec<SubjectId>,
        impostor_subjects: Vec<SubjectId>,
    ) -> Result<Self> {
        check_labels(
            "genuine_subjects",
            genuine_subjects.len(),
            self.genuine.len(),
        )?;
        check_labels(
            "impostor_subjects",
            impostor_subjects.len(),
            self.impostor.len(),
        )?;
        self.genuine_subjects = Some(genuine_subjects);
        self.impostor_subjects = Some(impostor_subjects);
        Ok(self)
    }

    /// Check that both lists are non-empty, all scores finite and the label
    /// lists (if any) as long as the scores.
    pub fn validate(&self) -> Result<()> {
        check_scores("genuine scores", &self.genuine)?;
        check_scores("impostor scores", &self.impostor)?;
        if let Some(l) = &self.genuine_subjects {
            check_labels("genuine_subjects", l.len(), self.genuine.len())?;
        }
        if let Some(l) = &self.impostor_subjects {
            check_labels("impostor_subjects", l.len(), self.impostor.len())?;
        }
        Ok(())
    }

    /// Sort the scores once and return the error-rate view.
    pub fn rates(&self) -> Result<ErrorRates> {
        ErrorRates::new(self)
    }
}

pub(crate) fn check_labels(what: &'static str, labels: usize, scores: usize) -> Result<()> {
    if labels == scores {
        Ok(())
    } else {
        Err(EvalError::LabelMismatch {
            what,
            labels,
            scores,
        })
    }
}

/// Fails on an empty list or a non-finite score.
pub(crate) fn check_scores(what: &'static str, s: &[f64]) -> Result<()> {
    if s.is_empty() {
        return Err(EvalError::Empty { what });
    }
    check_finite(what, s)
}

pub(crate) fn check_finite(what: &'static str, s: &[f64]) -> Result<()> {
    match s.iter().position(|x| !x.is_finite()) {
        Some(index) => Err(EvalError::NonFinite {
            what,
            index,
            value: s[index],
        }),
        None => Ok(()),
    }
}

pub(crate) fn sorted_asc(s: &[f64]) -> Vec<f64> {
    let mut v = s.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

/// The smallest `f64` greater than `x` (for finite `x`).
///
/// Thresholds chosen "just above" a score use it, so that `score >= threshold`
/// excludes exactly that score and nothing else.
pub fn next_up(x: f64) -> f64 {
    if x.is_nan() || x == f64::INFINITY {
        return x;
    }
    if x == 0.0 {
        return f64::from_bits(1);
    }
    let b = x.to_bits();
    if x > 0.0 {
        f64::from_bits(b + 1)
    } else {
        f64::from_bits(b - 1)
    }
}

/// When an error rate at a target can be estimated from `n` trials.
///
/// A target rate `p` is *supported* iff `n * p >= min_expected_errors`, i.e.
/// the trials are expected to contain at least that many errors at the
/// target. The default, 3, is the "rule of 3" of ISO/IEC 19795-1: with `n`
/// trials and no error observed, the 95 % upper confidence bound of the rate
/// is about `3 / n`, so rates below `3 / n` cannot be claimed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SupportRule {
    /// Expected number of errors at the target that the trial count must reach.
    pub min_expected_errors: f64,
}

impl Default for SupportRule {
    fn default() -> Self {
        SupportRule::RULE_OF_3
    }
}

impl SupportRule {
    /// `n * p >= 3` (ISO/IEC 19795-1 rule of 3); the default.
    pub const RULE_OF_3: SupportRule = SupportRule {
        min_expected_errors: 3.0,
    };
    /// `n * p >= 1`: at least one error expected at the target.
    pub const AT_LEAST_ONE: SupportRule = SupportRule {
        min_expected_errors: 1.0,
    };

    /// Smallest trial count that supports target `p`.
    pub fn required(&self, p: f64) -> u64 {
        let r = (self.min_expected_errors / p * (1.0 - 1e-9)).ceil();
        if r.is_finite() && r > 0.0 {
            r as u64
        } else {
            1
        }
    }

    /// Lowest target rate that `n` trials support.
    pub fn min_supported(&self, n: u64) -> f64 {
        if n == 0 {
            1.0
        } else {
            (self.min_expected_errors / n as f64).min(1.0)
        }
    }

    /// Fails with [`EvalError::Unsupported`] if `n` trials do not support `p`.
    pub(crate) fn check(&self, p: f64, n: u64, what: &'static str) -> Result<()> {
        check_target(p)?;
        let required = self.required(p);
        if n >= required {
            Ok(())
        } else {
            Err(EvalError::Unsupported {
                target: p,
                what,
                available: n,
                required,
            })
        }
    }
}

pub(crate) fn check_target(p: f64) -> Result<()> {
    if p > 0.0 && p < 1.0 {
        Ok(())
    } else {
        Err(EvalError::InvalidTarget { target: p })
    }
}

/// Largest `k` with `k / n <= p` (exact: compares as rationals).
pub(crate) fn max_errors(n: u64, p: f64) -> u64 {
    let mut k = (p * n as f64).floor().max(0.0) as u64;
    while k > 0 && k as f64 / n as f64 > p {
        k -= 1;
    }
    while k < n && (k + 1) as f64 / n as f64 <= p {
        k += 1;
    }
    k
}

/// One operating point: at `threshold`, the observed FMR and FNMR.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RatePoint {
    /// Decision threshold (accept iff `score >= threshold`).
    pub threshold: f64,
    /// False match rate at the threshold.
    pub fmr: f64,
    /// False non-match rate at the threshold.
    pub fnmr: f64,
}

impl RatePoint {
    /// True match rate (1 − FNMR), the y axis of a ROC curve.
    pub fn tmr(&self) -> f64 {
        1.0 - self.fnmr
    }
}

/// Equal error rate: where FMR = FNMR.
///
/// **Interpolation.** The operating points (one per distinct score, in
/// ascending threshold order, plus the reject-all point) are joined by
/// straight lines in (FMR, FNMR) space. `below` is the last point with
/// FMR > FNMR and `above` the first with FMR ≤ FNMR; the EER is where the
/// segment between them meets FMR = FNMR, i.e. with
/// `d = FMR − FNMR` and `a = d_below / (d_below − d_above)`,
/// `eer = FMR_below + a (FMR_above − FMR_below)`; the threshold is
/// interpolated with the same `a` (a nominal value: any threshold in
/// `(below.threshold, above.threshold]` makes the same decisions as
/// `above.threshold`). When some point has FMR = FNMR exactly, `a = 1` and
/// that point is the EER.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Eer {
    /// Equal error rate.
    pub eer: f64,
    /// Interpolated threshold at the EER.
    pub threshold: f64,
    /// Last operating point with FMR > FNMR.
    pub below: RatePoint,
    /// First operating point with FMR ≤ FNMR.
    pub above: RatePoint,
}

/// The threshold that meets a target FMR on a set of impostor scores.
///
/// It is the *smallest* threshold whose observed FMR is ≤ the target: with `n`
/// impostors, `k = max { k : k / n <= target }` false matches are allowed,
/// and the threshold is just above (`next_up`) the score of the `(k+1)`-th
/// highest impostor. Tied impostor scores are accepted or rejected together,
/// so with ties fewer than `k` may be accepted (`false_matches`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FmrThreshold {
    /// The target FMR asked for.
    pub target_fmr: f64,
    /// Accept iff `score >= threshold`.
    pub threshold: f64,
    /// Observed FMR on the impostor set at the threshold (≤ target).
    pub observed_fmr: f64,
    /// Impostor comparisons accepted at the threshold.
    pub false_matches: u64,
    /// Impostor comparisons used.
    pub n_impostor: u64,
}

/// FNMR at a target FMR (e.g. "FNMR @ FMR = 1e-3"), threshold from the
/// impostor scores as in [`FmrThreshold`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FnmrAtFmr {
    /// Threshold meeting the target on the impostor set.
    pub at: FmrThreshold,
    /// False non-match rate at that threshold.
    pub fnmr: f64,
    /// Genuine comparisons used.
    pub n_genuine: u64,
}

// ---------------------------------------------------------------------------
// Weighted core. Weights are integer multiplicities (1 for plain scores, the
// number of times a subject was drawn in a bootstrap replicate), so rates stay
// exact ratios of integers.

pub(crate) trait Weights {
    fn w(&self, i: usize) -> u64;
    /// Sum of the weights of items `0..n`.
    fn total(&self, n: usize) -> u64 {
        (0..n).map(|i| self.w(i)).sum()
    }
}

/// Every comparison counts once.
pub(crate) struct Unit;

impl Weights for Unit {
    #[inline]
    fn w(&self, _: usize) -> u64 {
        1
    }
    fn total(&self, n: usize) -> u64 {
        n as u64
    }
}

/// Comparison `i` counts `counts[subject[i]]` times. `per_subject[s]`, if
/// given, is the number of comparisons of subject `s` (for an O(subjects)
/// total over the whole list).
pub(crate) struct BySubject<'a> {
    pub subject: &'a [u32],
    pub counts: &'a [u32],
    pub per_subject: Option<&'a [u64]>,
}

impl Weights for BySubject<'_> {
    #[inline]
    fn w(&self, i: usize) -> u64 {
        u64::from(self.counts[self.subject[i] as usize])
    }
    fn total(&self, n: usize) -> u64 {
        match self.per_subject {
            Some(ps) if n == self.subject.len() => ps
                .iter()
                .zip(self.counts)
                .map(|(&m, &c)| m * u64::from(c))
                .sum(),
            _ => (0..n).map(|i| self.w(i)).sum(),
        }
    }
}

pub(crate) fn total<W: Weights>(n: usize, w: &W) -> u64 {
    w.total(n)
}

/// Calls `f` with every operating point in ascending threshold order: one per
/// distinct score, then the reject-all point at `next_up(max)`. Stops when `f`
/// returns false. Totals must be non-zero.
pub(crate) fn sweep<G: Weights, I: Weights>(
    gen_asc: &[f64],
    gw: &G,
    imp_asc: &[f64],
    iw: &I,
    mut f: impl FnMut(RatePoint, (u64, u64, u64, u64)) -> bool,
) {
    let g_total = total(gen_asc.len(), gw);
    let i_total = total(imp_asc.len(), iw);
    let (mut gi, mut ii) = (0usize, 0usize);
    let (mut g_below, mut i_below) = (0u64, 0u64);
    let mut max = f64::NEG_INFINITY;
    loop {
        let t = match (gen_asc.get(gi), imp_asc.get(ii)) {
            (Some(&a), Some(&b)) => a.min(b),
            (Some(&a), None) => a,
            (None, Some(&b)) => b,
            (None, None) => break,
        };
        max = t;
        // counts: (genuine rejected, genuine total, impostor accepted, impostor total)
        let p = RatePoint {
            threshold: t,
            fmr: (i_total - i_below) as f64 / i_total as f64,
            fnmr: g_below as f64 / g_total as f64,
        };
        if !f(p, (g_below, g_total, i_total - i_below, i_total)) {
            return;
        }
        while gi < gen_asc.len() && gen_asc[gi] == t {
            g_below += gw.w(gi);
            gi += 1;
        }
        while ii < imp_asc.len() && imp_asc[ii] == t {
            i_below += iw.w(ii);
            ii += 1;
        }
    }
    let p = RatePoint {
        threshold: next_up(max),
        fmr: 0.0,
        fnmr: 1.0,
    };
    f(p, (g_total, g_total, 0, i_total));
}

/// The same operating points as [`sweep`], in *descending* threshold order
/// (reject-all point first). Work is proportional to the scores above the
/// point where `f` stops, which for the EER is a small share of the
/// impostors. Totals must be non-zero.
pub(crate) fn sweep_desc<G: Weights, I: Weights>(
    gen_asc: &[f64],
    gw: &G,
    imp_asc: &[f64],
    iw: &I,
    mut f: impl FnMut(RatePoint, (u64, u64, u64, u64)) -> bool,
) {
    let g_total = total(gen_asc.len(), gw);
    let i_total = total(imp_asc.len(), iw);
    let max = match (gen_asc.last(), imp_asc.last()) {
        (Some(&a), Some(&b)) => a.max(b),
        (Some(&a), None) => a,
        (None, Some(&b)) => b,
        (None, None) => return,
    };
    let p = RatePoint {
        threshold: next_up(max),
        fmr: 0.0,
        fnmr: 1.0,
    };
    if !f(p, (g_total, g_total, 0, i_total)) {
        return;
    }
    let (mut gi, mut ii) = (gen_asc.len(), imp_asc.len());
    let (mut g_ge, mut i_ge) = (0u64, 0u64);
    loop {
        let t = match (
            gi.checked_sub(1).map(|k| gen_asc[k]),
            ii.checked_sub(1).map(|k| imp_asc[k]),
        ) {
            (Some(a), Some(b)) => a.max(b),
            (Some(a), None) => a,
            (None, Some(b)) => b,
            (None, None) => return,
        };
        while gi > 0 && gen_asc[gi - 1] == t {
            g_ge += gw.w(gi - 1);
            gi -= 1;
        }
        while ii > 0 && imp_asc[ii - 1] == t {
            i_ge += iw.w(ii - 1);
            ii -= 1;
        }
        let p = RatePoint {
            threshold: t,
            fmr: i_ge as f64 / i_total as f64,
            fnmr: (g_total - g_ge) as f64 / g_total as f64,
        };
        if !f(p, (g_total - g_ge, g_total, i_ge, i_total)) {
            return;
        }
    }
}

/// EER by the interpolation documented on [`Eer`]. Totals must be non-zero.
///
/// Walks the operating points from the top (descending threshold): `above`
/// is the last point seen with FMR ≤ FNMR before the first with FMR > FNMR
/// (`below`); FMR − FNMR is monotone in the threshold, so this is the same
/// pair an ascending walk finds.
pub(crate) fn eer_core<G: Weights, I: Weights>(
    gen_asc: &[f64],
    gw: &G,
    imp_asc: &[f64],
    iw: &I,
) -> Eer {
    let mut above: Option<(RatePoint, bool)> = None; // (point, FMR == FNMR exactly)
    let mut out: Option<Eer> = None;
    sweep_desc(gen_asc, gw, imp_asc, iw, |p, (gr, gt, ia, it)| {
        // sign of FMR − FNMR, exactly: ia/it − gr/gt.
        let lhs = u128::from(ia) * u128::from(gt);
        let rhs = u128::from(gr) * u128::from(it);
        if lhs <= rhs {
            above = Some((p, lhs == rhs));
            return true;
        }
        let b = p;
        let db = b.fmr - b.fnmr;
        let e = match above {
            // The reject-all point (FMR 0, FNMR 1) comes first, so `above`
            // is always set here; fall back to the point itself.
            None => Eer {
                eer: b.fmr,
                threshold: b.threshold,
                below: b,
                above: b,
            },
            Some((a_pt, exact)) => {
                let d_above = if exact { 0.0 } else { a_pt.fmr - a_pt.fnmr };
                let a = if db - d_above > 0.0 {
                    db / (db - d_above)
                } else {
                    1.0
                };
                Eer {
                    eer: b.fmr + a * (a_pt.fmr - b.fmr),
                    threshold: b.threshold + a * (a_pt.threshold - b.threshold),
                    below: b,
                    above: a_pt,
                }
            }
        };
        out = Some(e);
        false
    });
    // The lowest point (threshold = min score) has FMR = 1 > FNMR = 0, so
    // `out` is set whenever both totals are non-zero.
    out.unwrap_or(Eer {
        eer: 0.5,
        threshold: f64::NAN,
        below: RatePoint {
            threshold: f64::NAN,
            fmr: 1.0,
            fnmr: 0.0,
        },
        above: RatePoint {
            threshold: f64::NAN,
            fmr: 0.0,
            fnmr: 1.0,
        },
    })
}

/// Threshold for a target rate from negatives sorted ascending (see
/// [`FmrThreshold`]). Checks support on the weighted count.
pub(crate) fn threshold_core<I: Weights>(
    imp_asc: &[f64],
    iw: &I,
    target: f64,
    rule: &SupportRule,
    what: &'static str,
) -> Result<FmrThreshold> {
    check_target(target)?;
    let n = total(imp_asc.len(), iw);
    if n == 0 {
        return Err(EvalError::Empty { what });
    }
    rule.check(target, n, what)?;
    let k = max_errors(n, target);
    let mut acc = 0u64;
    let mut idx = imp_asc.len();
    while idx > 0 {
        let v = imp_asc[idx - 1];
        let mut j = idx;
        let mut gw = 0u64;
        while j > 0 && imp_asc[j - 1] == v {
            gw += iw.w(j - 1);
            j -= 1;
        }
        if acc + gw > k {
            return Ok(FmrThreshold {
                target_fmr: target,
                threshold: next_up(v),
                observed_fmr: acc as f64 / n as f64,
                false_matches: acc,
                n_impostor: n,
            });
        }
        acc += gw;
        idx = j;
    }
    // k < n because target < 1, so the loop always returns; keep a safe answer.
    Err(EvalError::InvalidTarget { target })
}

/// Weighted count of `sorted_asc` entries strictly below `t`.
pub(crate) fn count_below<W: Weights>(sorted_asc: &[f64], w: &W, t: f64) -> u64 {
    let end = sorted_asc.partition_point(|&x| x < t);
    (0..end).map(|i| w.w(i)).sum()
}

// ---------------------------------------------------------------------------

/// Impostor scores sorted once, for thresholds at target FMRs.
#[derive(Debug, Clone)]
pub struct ImpostorScores {
    asc: Vec<f64>,
    rule: SupportRule,
}

impl ImpostorScores {
    /// Sort `scores` (non-empty, finite). Uses the default [`SupportRule`].
    pub fn new(scores: &[f64]) -> Result<Self> {
        check_scores("impostor scores", scores)?;
        Ok(ImpostorScores {
            asc: sorted_asc(scores),
            rule: SupportRule::default(),
        })
    }

    /// Replace the support rule.
    pub fn with_support_rule(mut self, rule: SupportRule) -> Self {
        self.rule = rule;
        self
    }

    /// The support rule in force.
    pub fn support_rule(&self) -> SupportRule {
        self.rule
    }

    /// Number of impostor comparisons.
    pub fn len(&self) -> usize {
        self.asc.len()
    }

    /// Always false (construction rejects empty sets).
    pub fn is_empty(&self) -> bool {
        self.asc.is_empty()
    }

    /// Lowest target FMR the impostor count supports.
    pub fn min_supported_fmr(&self) -> f64 {
        self.rule.min_supported(self.asc.len() as u64)
    }

    /// Observed FMR at `threshold`: share of impostors with score `>= threshold`.
    pub fn fmr_at(&self, threshold: f64) -> f64 {
        let below = self.asc.partition_point(|&x| x < threshold);
        (self.asc.len() - below) as f64 / self.asc.len() as f64
    }

    /// Smallest threshold with observed FMR ≤ `target` ([`FmrThreshold`]).
    /// [`EvalError::Unsupported`] if the impostor count does not support it.
    pub fn threshold_for_fmr(&self, target: f64) -> Result<FmrThreshold> {
        threshold_core(&self.asc, &Unit, target, &self.rule, "impostor comparisons")
    }

    pub(crate) fn sorted(&self) -> &[f64] {
        &self.asc
    }
}

/// Genuine and impostor scores sorted once: FMR/FNMR, curves, EER and
/// FNMR at a target FMR.
#[derive(Debug, Clone)]
pub struct ErrorRates {
    genuine: Vec<f64>,
    impostor: ImpostorScores,
}

impl ErrorRates {
    /// Validate and sort `scores` ([`ScoreSet::validate`]).
    pub fn new(scores: &ScoreSet) -> Result<Self> {
        scores.validate()?;
        Ok(ErrorRates {
            genuine: sorted_asc(&scores.genuine),
            impostor: ImpostorScores::new(&scores.impostor)?,
        })
    }

    /// Replace the support rule used for FNMR at a target FMR.
    pub fn with_support_rule(mut self, rule: SupportRule) -> Self {
        self.impostor = self.impostor.with_support_rule(rule);
        self
    }

    /// Number of genuine comparisons.
    pub fn n_genuine(&self) -> usize {
        self.genuine.len()
    }

    /// Number of impostor comparisons.
    pub fn n_impostor(&self) -> usize {
        self.impostor.len()
    }

    /// The impostor side.
    pub fn impostors(&self) -> &ImpostorScores {
        &self.impostor
    }

    /// FMR and FNMR at `threshold`.
    pub fn at(&self, threshold: f64) -> RatePoint {
        let below = self.genuine.partition_point(|&x| x < threshold);
        RatePoint {
            threshold,
            fmr: self.impostor.fmr_at(threshold),
            fnmr: below as f64 / self.genuine.len() as f64,
        }
    }

    /// The full DET/ROC curve: one operating point per distinct score (in
    /// ascending threshold order, starting at FMR = 1, FNMR = 0) and the
    /// reject-all point (`next_up(max score)`, FMR = 0, FNMR = 1).
    /// A DET plot draws FNMR against FMR, a ROC plot TMR = 1 − FNMR against FMR.
    pub fn curve(&self) -> Vec<RatePoint> {
        let mut v = Vec::new();
        sweep(
            &self.genuine,
            &Unit,
            self.impostor.sorted(),
            &Unit,
            |p, _| {
                v.push(p);
                true
            },
        );
        v
    }

    /// Equal error rate ([`Eer`] documents the interpolation).
    pub fn eer(&self) -> Eer {
        eer_core(&self.genuine, &Unit, self.impostor.sorted(), &Unit)
    }

    /// Threshold for a target FMR ([`ImpostorScores::threshold_for_fmr`]).
    pub fn threshold_for_fmr(&self, target: f64) -> Result<FmrThreshold> {
        self.impostor.threshold_for_fmr(target)
    }

    /// FNMR at the threshold meeting `target` FMR. [`EvalError::Unsupported`]
    /// if the impostor count does not support the target.
    pub fn fnmr_at_fmr(&self, target: f64) -> Result<FnmrAtFmr> {
        let at = self.threshold_for_fmr(target)?;
        let below = count_below(&self.genuine, &Unit, at.threshold);
        Ok(FnmrAtFmr {
            at,
            fnmr: below as f64 / self.genuine.len() as f64,
            n_genuine: self.genuine.len() as u64,
        })
    }
}

/// Thin a curve for plotting and reports: keeps the first and last points and
/// any point at least `1 / max_points` of the plot span away (in log10 FMR
/// and log10 FNMR, both clamped at 1e-9) from the last kept one.
pub fn thin_curve(points: &[RatePoint], max_points: usize) -> Vec<RatePoint> {
    if points.len() <= max_points.max(2) {
        return points.to_vec();
    }
    let lg = |x: f64| x.max(1e-9).log10();
    let step = 9.0 / max_points.max(2) as f64;
    let mut out: Vec<RatePoint> = Vec::with_capacity(max_points * 2);
    let last = points.len() - 1;
    for (i, p) in points.iter().enumerate() {
        let keep = match out.last() {
            None => true,
            Some(q) => {
                i == last
                    || (lg(p.fmr) - lg(q.fmr)).abs() >= step
                    || (lg(p.fnmr) - lg(q.fnmr)).abs() >= step
            }
        };
        if keep {
            out.push(*p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPS: f64 = 1e-12;

    fn rates(g: &[f64], i: &[f64]) -> ErrorRates {
        ScoreSet::new(g.to_vec(), i.to_vec())
            .rates()
            .expect("valid scores")
    }

    #[test]
    fn empty_sets_are_typed_errors() {
        let e = ScoreSet::new(vec![], vec![0.1]).rates().unwrap_err();
        assert!(matches!(e, EvalError::Empty { what } if what.contains("genuine")));
        let e = ScoreSet::new(vec![0.1], vec![]).rates().unwrap_err();
        assert!(matches!(e, EvalError::Empty { what } if what.contains("impostor")));
        assert!(matches!(
            ImpostorScores::new(&[]),
            Err(EvalError::Empty { .. })
        ));
    }

    #[test]
    fn non_finite_and_label_mismatch_rejected() {
        let e = ScoreSet::new(vec![0.1, f64::NAN], vec![0.1])
            .rates()
            .unwrap_err();
        assert!(matches!(e, EvalError::NonFinite { index: 1, .. }));
        let e = ScoreSet::new(vec![0.1], vec![0.1])
            .with_subjects(vec![1, 2], vec![1])
            .unwrap_err();
        assert!(matches!(
            e,
            EvalError::LabelMismatch {
                labels: 2,
                scores: 1,
                ..
            }
        ));
    }

    #[test]
    fn curve_hand_computed() {
        // genuine 0.6 0.8 0.9; impostor 0.1 0.3 0.7
        let r = rates(&[0.9, 0.6, 0.8], &[0.7, 0.1, 0.3]);
        let c = r.curve();
        let want = [
            (0.1, 1.0, 0.0),
            (0.3, 2.0 / 3.0, 0.0),
            (0.6, 1.0 / 3.0, 0.0),
            (0.7, 1.0 / 3.0, 1.0 / 3.0),
            (0.8, 0.0, 1.0 / 3.0),
            (0.9, 0.0, 2.0 / 3.0),
            (next_up(0.9), 0.0, 1.0),
        ];
        assert_eq!(c.len(), want.len());
        for (p, w) in c.iter().zip(want) {
            assert_eq!(p.threshold, w.0);
            assert!((p.fmr - w.1).abs() < EPS, "{p:?} vs {w:?}");
            assert!((p.fnmr - w.2).abs() < EPS, "{p:?} vs {w:?}");
        }
        // Exact crossing at t = 0.7.
        let e = r.eer();
        assert!((e.eer - 1.0 / 3.0).abs() < EPS);
        assert_eq!(e.threshold, 0.7);
        // at() agrees with the curve.
        let p = r.at(0.65);
        assert!((p.fmr - 1.0 / 3.0).abs() < EPS && (p.fnmr - 1.0 / 3.0).abs() < EPS);
    }

    #[test]
    fn eer_interpolates_between_points() {
        // Points: 0.7 → (1/3, 1/4), 0.8 → (1/3, 1/2); d = 1/12 then -1/6,
        // a = (1/12)/(1/4) = 1/3: EER = 1/4 + (1/3)(1/4) = 1/3, t = 0.7 + 0.1/3.
        let r = rates(&[0.5, 0.7, 0.9, 0.95], &[0.1, 0.6, 0.8]);
        let e = r.eer();
        assert!((e.eer - 1.0 / 3.0).abs() < EPS, "{e:?}");
        assert!((e.threshold - (0.7 + 0.1 / 3.0)).abs() < 1e-12, "{e:?}");
        assert_eq!(e.below.threshold, 0.7);
        assert_eq!(e.above.threshold, 0.8);
    }

    #[test]
    fn descending_sweep_matches_curve() {
        let mut r = crate::SplitMix64::new(4);
        let g: Vec<f64> = (0..300)
            .map(|_| (1.0 + r.next_normal() * 10.0).round() / 10.0)
            .collect();
        let i: Vec<f64> = (0..900)
            .map(|_| (r.next_normal() * 10.0).round() / 10.0)
            .collect();
        let rates = rates(&g, &i);
        let mut desc = Vec::new();
        sweep_desc(
            &rates.genuine,
            &Unit,
            rates.impostor.sorted(),
            &Unit,
            |p, _| {
                desc.push(p);
                true
            },
        );
        desc.reverse();
        let asc = rates.curve();
        assert_eq!(asc.len(), desc.len());
        for (a, d) in asc.iter().zip(&desc) {
            assert_eq!(a.threshold, d.threshold);
            assert!((a.fmr - d.fmr).abs() < 1e-12 && (a.fnmr - d.fnmr).abs() < 1e-12);
        }
        // The EER's bracketing points are adjacent on the curve, with FMR−FNMR
        // changing sign between them.
        let e = rates.eer();
        let k = asc.iter().position(|p| *p == e.above).unwrap();
        assert!(k > 0 && asc[k - 1] == e.below);
        assert!(e.below.fmr > e.below.fnmr && e.above.fmr <= e.above.fnmr);
        assert!(e.eer >= e.above.fmr.min(e.below.fmr) && e.eer <= e.above.fnmr.max(e.below.fnmr));
    }

    #[test]
    fn eer_perfect_separation_is_zero() {
        let r = rates(&[0.8, 0.9], &[0.1, 0.2]);
        let e = r.eer();
        assert_eq!(e.eer, 0.0);
        assert_eq!(e.threshold, 0.8);
        assert_eq!(r.at(0.8).fmr, 0.0);
        assert_eq!(r.at(0.8).fnmr, 0.0);
    }

    #[test]
    fn eer_all_equal_scores_is_half() {
        let r = rates(&[0.5, 0.5], &[0.5, 0.5, 0.5]);
        let c = r.curve();
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].fmr, c[0].fnmr), (1.0, 0.0));
        assert_eq!((c[1].fmr, c[1].fnmr), (0.0, 1.0));
        let e = r.eer();
        assert!((e.eer - 0.5).abs() < EPS);
        assert!(e.threshold >= 0.5 && e.threshold <= next_up(0.5));
    }

    #[test]
    fn eer_inverted_scores_is_one() {
        // Every impostor above every genuine: FMR > FNMR until all rejected.
        let r = rates(&[0.1, 0.2], &[0.8, 0.9]);
        let e = r.eer();
        // Points: 0.1 (1,0) 0.2 (1,.5) 0.8 (1,1)=cross at d=0 → EER 1.
        assert_eq!(e.eer, 1.0);
        assert_eq!(e.threshold, 0.8);
    }

    #[test]
    fn threshold_for_fmr_hand_computed() {
        let imp: Vec<f64> = (1..=10).map(|i| f64::from(i) / 10.0).collect();
        let s = ImpostorScores::new(&imp)
            .unwrap()
            .with_support_rule(SupportRule::AT_LEAST_ONE);
        // n = 10, target 0.1: one false match allowed: accept only 1.0.
        let t = s.threshold_for_fmr(0.1).unwrap();
        assert_eq!(t.threshold, next_up(0.9));
        assert_eq!(t.false_matches, 1);
        assert_eq!(t.observed_fmr, 0.1);
        assert_eq!(s.fmr_at(t.threshold), 0.1);
        // target 0.25: k = 2, accept 0.9 and 1.0.
        let t = s.threshold_for_fmr(0.25).unwrap();
        assert_eq!(t.threshold, next_up(0.8));
        assert_eq!(t.false_matches, 2);
        // target 0.3 exactly: k = 3 (3/10 <= 0.3).
        assert_eq!(s.threshold_for_fmr(0.3).unwrap().false_matches, 3);
        // Under the rule of 3, 10 impostors support 0.3 but not 0.25.
        let s3 = s.clone().with_support_rule(SupportRule::RULE_OF_3);
        assert!(s3.threshold_for_fmr(0.3).is_ok());
        let e = s3.threshold_for_fmr(0.25).unwrap_err();
        assert!(matches!(
            e,
            EvalError::Unsupported {
                available: 10,
                required: 12,
                ..
            }
        ));
    }

    #[test]
    fn threshold_for_fmr_with_ties_keeps_fmr_below_target() {
        // Two impostors tie at the top: accepting either accepts both (2/10 >
        // 0.1), so none may be accepted.
        let imp = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.9];
        let s = ImpostorScores::new(&imp)
            .unwrap()
            .with_support_rule(SupportRule::AT_LEAST_ONE);
        let t = s.threshold_for_fmr(0.1).unwrap();
        assert_eq!(t.threshold, next_up(0.9));
        assert_eq!(t.false_matches, 0);
        assert_eq!(s.fmr_at(t.threshold), 0.0);
        // 0.2 allows both.
        let t = s.threshold_for_fmr(0.2).unwrap();
        assert_eq!(t.threshold, next_up(0.8));
        assert_eq!(s.fmr_at(t.threshold), 0.2);
        // All equal: nothing can be accepted at any target < 1.
        let s = ImpostorScores::new(&[0.5; 10])
            .unwrap()
            .with_support_rule(SupportRule::AT_LEAST_ONE);
        let t = s.threshold_for_fmr(0.5).unwrap();
        assert_eq!((t.threshold, t.false_matches), (next_up(0.5), 0));
    }

    #[test]
    fn invalid_targets() {
        let s = ImpostorScores::new(&[0.1, 0.2]).unwrap();
        for t in [0.0, 1.0, -0.1, f64::NAN, 2.0] {
            assert!(matches!(
                s.threshold_for_fmr(t),
                Err(EvalError::InvalidTarget { .. })
            ));
        }
    }

    #[test]
    fn fnmr_at_fmr_hand_computed_and_support() {
        // 100 impostors 0.00..0.99, genuine 0.95 0.975 0.985 0.5.
        let imp: Vec<f64> = (0..100).map(|i| f64::from(i) / 100.0).collect();
        let r =
            rates(&[0.95, 0.975, 0.985, 0.5], &imp).with_support_rule(SupportRule::AT_LEAST_ONE);
        // FMR 1e-2: k = 1, threshold next_up(0.98): genuine 0.95, 0.975, 0.5 rejected.
        let f = r.fnmr_at_fmr(1e-2).unwrap();
        assert_eq!(f.at.threshold, next_up(0.98));
        assert_eq!(f.fnmr, 0.75);
        assert_eq!(f.n_genuine, 4);
        // 1e-3 needs 1000 impostors under AT_LEAST_ONE, 3000 under rule of 3.
        assert!(matches!(
            r.fnmr_at_fmr(1e-3),
            Err(EvalError::Unsupported {
                available: 100,
                required: 1000,
                ..
            })
        ));
        let r3 = r.clone().with_support_rule(SupportRule::RULE_OF_3);
        assert!(matches!(
            r3.fnmr_at_fmr(1e-2),
            Err(EvalError::Unsupported { required: 300, .. })
        ));
        // Perfect separation: FNMR 0 at every supported target.
        let r = rates(&[2.0, 3.0], &imp).with_support_rule(SupportRule::AT_LEAST_ONE);
        assert_eq!(r.fnmr_at_fmr(0.05).unwrap().fnmr, 0.0);
    }

    #[test]
    fn support_rule_counts() {
        assert_eq!(SupportRule::RULE_OF_3.required(1e-3), 3000);
        assert_eq!(SupportRule::RULE_OF_3.required(1e-4), 30000);
        assert_eq!(SupportRule::AT_LEAST_ONE.required(1e-2), 100);
        assert_eq!(SupportRule::RULE_OF_3.min_supported(3000), 1e-3);
        assert_eq!(max_errors(1000, 1e-3), 1);
        assert_eq!(max_errors(10, 0.3), 3);
        assert_eq!(max_errors(7, 0.1), 0);
    }

    #[test]
    fn next_up_is_adjacent() {
        for x in [0.0, -0.0, 0.5, -0.5, 1e-300, -1e-300, 123.0] {
            let y = next_up(x);
            assert!(y > x);
            // No f64 lies strictly between x and next_up(x).
            let mid = x + (y - x) / 2.0;
            assert!(mid == x || mid == y, "{x} {y} {mid}");
        }
    }

    #[test]
    fn thin_curve_keeps_ends_and_bounds_size() {
        let imp: Vec<f64> = (0..100_000).map(|i| f64::from(i) / 1e5).collect();
        let gen: Vec<f64> = (0..1000).map(|i| 0.5 + f64::from(i) / 1e3).collect();
        let r = rates(&gen, &imp);
        let c = r.curve();
        let t = thin_curve(&c, 200);
        assert!(t.len() < 2 * 200 + 2, "{}", t.len());
        assert_eq!(t.first(), c.first());
        assert_eq!(t.last(), c.last());
    }
}
