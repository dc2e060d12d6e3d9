//! k-fold verification accuracy, as in the LFW "unrestricted" protocol.
//!
//! For each fold `i`, the threshold is chosen on the other `k − 1` folds
//! pooled, to maximise accuracy = (genuine accepted + impostors rejected) /
//! comparisons; fold `i` is then scored at that threshold. Candidate
//! thresholds are the distinct training scores and the reject-all point; of
//! equally accurate candidates the lowest wins, and the threshold reported is
//! the midpoint between that candidate and the next lower training score
//! (same training decisions, a margin on both sides).

use serde::{Deserialize, Serialize};

use crate::error::{EvalError, Result};
use crate::scores::{check_scores, sorted_asc, sweep, ScoreSet, Unit};

/// One fold's result.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FoldResult {
    /// Threshold chosen on the other folds (accept iff `score >= threshold`).
    pub threshold: f64,
    /// Accuracy on the other folds at that threshold.
    pub train_accuracy: f64,
    /// Accuracy on this fold at that threshold.
    pub test_accuracy: f64,
    /// Comparisons in this fold.
    pub n: usize,
}

/// k-fold verification accuracy (LFW protocol).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KFoldAccuracy {
    /// Mean of the per-fold test accuracies.
    pub mean: f64,
    /// Sample standard deviation (n − 1) of the per-fold accuracies.
    pub std: f64,
    /// Standard error of the mean, `std / sqrt(k)` (what the LFW results page calls SE).
    pub std_error: f64,
    /// Per-fold results, in input order.
    pub folds: Vec<FoldResult>,
}

/// k-fold accuracy over `folds` (k ≥ 2, each with genuine and impostor scores).
pub fn kfold_accuracy(folds: &[ScoreSet]) -> Result<KFoldAccuracy> {
    if folds.len() < 2 {
        return Err(EvalError::InvalidParameter {
            name: "folds",
            reason: format!("need at least 2 folds, got {}", folds.len()),
        });
    }
    for f in folds {
        check_scores("fold genuine scores", &f.genuine)?;
        check_scores("fold impostor scores", &f.impostor)?;
    }
    let mut out = Vec::with_capacity(folds.len());
    for (i, test) in folds.iter().enumerate() {
        let mut g = Vec::new();
        let mut im = Vec::new();
        for (j, f) in folds.iter().enumerate() {
            if j != i {
                g.extend_from_slice(&f.genuine);
                im.extend_from_slice(&f.impostor);
            }
        }
        let (threshold, train_accuracy) = best_threshold(&sorted_asc(&g), &sorted_asc(&im));
        out.push(FoldResult {
            threshold,
            train_accuracy,
            test_accuracy: accuracy(test, threshold),
            n: test.genuine.len() + test.impostor.len(),
        });
    }
    let k = out.len() as f64;
    let mean = out.iter().map(|f| f.test_accuracy).sum::<f64>() / k;
    let var = out
        .iter()
        .map(|f| (f.test_accuracy - mean).powi(2))
        .sum::<f64>()
        / (k - 1.0);
    Ok(KFoldAccuracy {
        mean,
        std: var.sqrt(),
        std_error: var.sqrt() / k.sqrt(),
        folds: out,
    })
}

/// Accuracy of the decisions `score >= threshold` on one score set.
pub fn accuracy(s: &ScoreSet, threshold: f64) -> f64 {
    let ta = s.genuine.iter().filter(|&&x| x >= threshold).count();
    let tr = s.impostor.iter().filter(|&&x| x < threshold).count();
    (ta + tr) as f64 / (s.genuine.len() + s.impostor.len()) as f64
}

/// (threshold, accuracy) maximising accuracy on sorted training scores.
fn best_threshold(gen_asc: &[f64], imp_asc: &[f64]) -> (f64, f64) {
    let n = (gen_asc.len() + imp_asc.len()) as u64;
    let mut best: Option<(u64, f64, f64)> = None; // (correct, candidate, previous score)
    let mut prev = f64::NAN;
    sweep(gen_asc, &Unit, imp_asc, &Unit, |p, (gr, gt, ia, it)| {
        let correct = (gt - gr) + (it - ia);
        if best.is_none_or(|b| correct > b.0) {
            best = Some((correct, p.threshold, prev));
        }
        prev = p.threshold;
        true
    });
    match best {
        Some((c, t, lower)) => {
            let mid = lower + (t - lower) / 2.0;
            let th = if mid.is_finite() && mid > lower && mid <= t {
                mid
            } else {
                t
            };
            (th, c as f64 / n as f64)
        }
        None => (f64::NAN, 0.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_folds_hand_computed() {
        let a = ScoreSet::new(vec![0.9, 0.8], vec![0.1, 0.2]);
        let b = ScoreSet::new(vec![0.7, 0.4], vec![0.5, 0.3]);
        let r = kfold_accuracy(&[a, b]).unwrap();
        // Test A, train B: candidates 0.3:2, 0.4:3, 0.5:2, 0.7:3 → first best 0.4,
        // threshold (0.3+0.4)/2 = 0.35, A is perfectly separated at 0.35.
        assert!((r.folds[0].threshold - 0.35).abs() < 1e-12);
        assert_eq!(r.folds[0].train_accuracy, 0.75);
        assert_eq!(r.folds[0].test_accuracy, 1.0);
        // Test B, train A: best 0.8 (all 4 right), threshold (0.2+0.8)/2 = 0.5;
        // B at 0.5: 0.7 accepted, 0.4 rejected, 0.5 accepted, 0.3 rejected → 2/4.
        assert!((r.folds[1].threshold - 0.5).abs() < 1e-12);
        assert_eq!(r.folds[1].train_accuracy, 1.0);
        assert_eq!(r.folds[1].test_accuracy, 0.5);
        assert!((r.mean - 0.75).abs() < 1e-12);
        assert!((r.std - 0.125f64.sqrt()).abs() < 1e-12);
        assert!((r.std_error - 0.125f64.sqrt() / 2f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn perfect_separation_ten_folds() {
        let folds: Vec<ScoreSet> = (0..10)
            .map(|i| {
                let o = f64::from(i) * 0.001;
                ScoreSet::new(vec![0.8 + o, 0.9 + o], vec![0.1 + o, 0.2 + o])
            })
            .collect();
        let r = kfold_accuracy(&folds).unwrap();
        assert_eq!(r.mean, 1.0);
        assert_eq!(r.std, 0.0);
        assert_eq!(r.folds.len(), 10);
    }

    #[test]
    fn errors() {
        assert!(matches!(
            kfold_accuracy(&[ScoreSet::new(vec![1.0], vec![0.0])]),
            Err(EvalError::InvalidParameter { .. })
        ));
        let a = ScoreSet::new(vec![1.0], vec![0.0]);
        let b = ScoreSet::new(vec![], vec![0.0]);
        assert!(matches!(
            kfold_accuracy(&[a, b]),
            Err(EvalError::Empty { .. })
        ));
    }
}
