//! Score-level fusion of two modalities (face + fingerprint): per-modality score
//! normalisation learned from genuine and impostor scores, then a weighted sum.
//!
//! The normalisation of one modality is a [`ScoreMap`]: a non-decreasing,
//! piecewise-linear map through knots, constant beyond the first and last knot.
//! Four ways to learn it are compared by [`Method`]:
//!
//! | method | map per modality | weights |
//! |---|---|---|
//! | [`Method::LlrPav`] | log-likelihood ratio by isotonic regression (PAV) | 1, 1 (sum of LLRs) |
//! | [`Method::LlrLogistic`] | log-likelihood ratio by logistic regression, linear in the score | 1, 1 |
//! | [`Method::ZScore`] | `(s − μ_imp) / σ_imp` over the impostor scores | grid-searched |
//! | [`Method::MinMax`] | `(s − min) / (max − min)` over the training scores | grid-searched |
//!
//! For the two LLR methods the output of a map is the natural-log likelihood
//! ratio `ln p(s | genuine) / p(s | impostor)`; when the modalities are
//! independent (true by construction in a chimeric set) the sum of the two
//! LLRs is the LLR of the pair, the Neyman–Pearson optimal score, and a
//! missing modality contributes 0 (no evidence either way).
//! Weights of the sum methods are chosen on the training data: the weight
//! `w ∈ {0, 0.05, …, 1}` (face `w`, finger `1 − w`) with the lowest FNMR at
//! FMR = 1e-3 (EER breaks ties).
//!
//! ```
//! use sinhtrac_eval::fusion::{Method, ModalityScores, fit};
//! // Face: genuine around 0.6, impostor around 0.1; finger: 0.3 vs 0.01.
//! let n = 400;
//! let g: Vec<ModalityScores> = (0..n)
//!     .map(|i| ModalityScores::new(Some(0.4 + 0.4 * (i % 7) as f64 / 7.0), Some(0.1 + 0.4 * (i % 5) as f64 / 5.0)))
//!     .collect();
//! let im: Vec<ModalityScores> = (0..10 * n)
//!     .map(|i| ModalityScores::new(Some(0.3 * (i % 11) as f64 / 11.0), Some(0.05 * (i % 13) as f64 / 13.0)))
//!     .collect();
//! let f = fit(Method::LlrPav, &g, &im)?;
//! assert!(f.fuse(Some(0.7), Some(0.4)) > f.fuse(Some(0.2), Some(0.02)));
//! // A missing modality contributes nothing.
//! assert_eq!(f.fuse(None, None), 0.0);
//! # Ok::<(), sinhtrac_eval::EvalError>(())
//! ```

use serde::{Deserialize, Serialize};

use crate::error::{EvalError, Result};
use crate::scores::{check_scores, ScoreSet};

/// A non-decreasing, piecewise-linear map from a raw score to a normalised
/// score: linear between knots, constant (clamped) beyond the first and last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreMap {
    /// `[score, value]` pairs, scores strictly increasing, values non-decreasing.
    pub knots: Vec<[f64; 2]>,
}

impl ScoreMap {
    /// Check the knots: at least one, all finite, scores strictly increasing,
    /// values non-decreasing (so the map is monotone).
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: String| EvalError::InvalidParameter {
            name: "knots",
            reason,
        };
        if self.knots.is_empty() {
            return Err(bad("no knots".into()));
        }
        if let Some(k) = self
            .knots
            .iter()
            .find(|k| !(k[0].is_finite() && k[1].is_finite()))
        {
            return Err(bad(format!("non-finite knot {k:?}")));
        }
        if let Some(w) = self
            .knots
            .windows(2)
            .find(|w| !(w[0][0] < w[1][0] && w[0][1] <= w[1][1]))
        {
            return Err(bad(format!(
                "knots {:?} then {:?}: scores must increase and values must not decrease",
                w[0], w[1]
            )));
        }
        Ok(())
    }

    /// The map at `score` (a NaN score maps to the lowest value).
    pub fn apply(&self, score: f64) -> f64 {
        let (Some(first), Some(last)) = (self.knots.first(), self.knots.last()) else {
            return 0.0;
        };
        if score.is_nan() || score <= first[0] {
            return first[1];
        }
        if score >= last[0] {
            return last[1];
        }
        // First knot with knot score > score; 1 ≤ i < len here.
        let i = self.knots.partition_point(|k| k[0] <= score);
        let (a, b) = (self.knots[i - 1], self.knots[i]);
        let t = (score - a[0]) / (b[0] - a[0]);
        a[1] + t * (b[1] - a[1])
    }

    /// An affine map `(s − offset) · scale` (scale > 0), clamped to `[lo, hi]`.
    pub fn affine(offset: f64, scale: f64, lo: f64, hi: f64) -> Result<Self> {
        if !(scale > 0.0 && scale.is_finite() && lo < hi && offset.is_finite()) {
            return Err(EvalError::InvalidParameter {
                name: "affine map",
                reason: format!("offset {offset}, scale {scale}, range [{lo}, {hi}]"),
            });
        }
        let m = ScoreMap {
            knots: vec![[lo, (lo - offset) * scale], [hi, (hi - offset) * scale]],
        };
        m.validate()?;
        Ok(m)
    }

    /// Log-likelihood ratio by isotonic regression (pool-adjacent-violators).
    ///
    /// Genuine and impostor scores are weighted `1/n_g` and `1/n_i` (equal
    /// priors), so a block's genuine-to-impostor weight ratio is a likelihood
    /// ratio. One pseudo-impostor at the highest score and one pseudo-genuine
    /// at the lowest keep every LLR finite (bounded by about `ln n`). Each
    /// pooled block gives one knot at the middle of its score range.
    pub fn fit_pav_llr(genuine: &[f64], impostor: &[f64]) -> Result<Self> {
        check_scores("genuine scores", genuine)?;
        check_scores("impostor scores", impostor)?;
        let (wg, wi) = (1.0 / genuine.len() as f64, 1.0 / impostor.len() as f64);
        // (score, genuine weight, impostor weight), ties pooled.
        let mut pts: Vec<(f64, f64, f64)> = genuine
            .iter()
            .map(|&s| (s, wg, 0.0))
            .chain(impostor.iter().map(|&s| (s, 0.0, wi)))
            .collect();
        let lo = pts.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
        let hi = pts.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
        pts.push((lo, wg, 0.0));
        pts.push((hi, 0.0, wi));
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        // Blocks: (min score, max score, genuine weight, impostor weight).
        let mut blocks: Vec<(f64, f64, f64, f64)> = Vec::new();
        for (s, g, i) in pts {
            match blocks.last_mut() {
                Some(b) if b.1 == s => {
                    b.2 += g;
                    b.3 += i;
                }
                _ => blocks.push((s, s, g, i)),
            }
            // Pool while the genuine share decreases: g1/(g1+i1) > g2/(g2+i2).
            while blocks.len() >= 2 {
                let n = blocks.len();
                let (a, b) = (blocks[n - 2], blocks[n - 1]);
                if a.2 * (b.2 + b.3) > b.2 * (a.2 + a.3) {
                    blocks.pop();
                    blocks[n - 2] = (a.0, b.1, a.2 + b.2, a.3 + b.3);
                } else {
                    break;
                }
            }
        }
        let mut knots: Vec<[f64; 2]> = Vec::with_capacity(blocks.len());
        for (lo, hi, g, i) in blocks {
            let llr = (g / i).ln();
            if !llr.is_finite() {
                return Err(EvalError::InvalidParameter {
                    name: "pav",
                    reason: format!("block [{lo}, {hi}] has genuine {g}, impostor {i}"),
                });
            }
            // PAV makes the ratios non-decreasing in exact arithmetic; two
            // blocks of equal ratio can still round to logs a few ulps apart.
            // Anything larger is a bug, which validation below reports.
            let llr = match knots.last() {
                Some(k) if llr < k[1] && k[1] - llr <= 1e-12 * (1.0 + k[1].abs()) => k[1],
                _ => llr,
            };
            let x = 0.5 * (lo + hi);
            match knots.last_mut() {
                // Two blocks cannot share a midpoint unless one is a single tie; keep the higher LLR.
                Some(k) if k[0] >= x => k[1] = k[1].max(llr),
                _ => knots.push([x, llr]),
            }
        }
        // Blocks of equal LLR collapse to their end points.
        let mut out: Vec<[f64; 2]> = Vec::with_capacity(knots.len());
        for (j, k) in knots.iter().enumerate() {
            let same_prev = j > 0 && knots[j - 1][1] == k[1];
            let same_next = knots.get(j + 1).is_some_and(|n| n[1] == k[1]);
            if !(same_prev && same_next) {
                out.push(*k);
            }
        }
        let m = ScoreMap { knots: out };
        m.validate()?;
        Ok(m)
    }

    /// Log-likelihood ratio by logistic regression on the score (class-balanced
    /// weights, so the log-odds is the LLR): `a + b·s` with `b ≥ 0`, clamped to
    /// the training score range. Newton's method with a tiny ridge on `b`.
    pub fn fit_logistic_llr(genuine: &[f64], impostor: &[f64]) -> Result<Self> {
        check_scores("genuine scores", genuine)?;
        check_scores("impostor scores", impostor)?;
        let (wg, wi) = (0.5 / genuine.len() as f64, 0.5 / impostor.len() as f64);
        let all = || {
            genuine
                .iter()
                .map(move |&s| (s, 1.0, wg))
                .chain(impostor.iter().map(move |&s| (s, 0.0, wi)))
        };
        // Standardise the score for a well-conditioned Newton step.
        let mean = all().map(|(s, _, w)| w * s).sum::<f64>();
        let sd = all()
            .map(|(s, _, w)| w * (s - mean).powi(2))
            .sum::<f64>()
            .sqrt()
            .max(1e-12);
        let (mut a, mut b) = (0.0f64, 0.0f64);
        const RIDGE: f64 = 1e-6;
        for _ in 0..100 {
            let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, RIDGE * b, 0.0, 0.0, RIDGE);
            for (s, y, w) in all() {
                let x = (s - mean) / sd;
                let p = 1.0 / (1.0 + (-(a + b * x)).exp());
                let r = w * (p - y);
                ga += r;
                gb += r * x;
                let h = w * p * (1.0 - p);
                haa += h;
                hab += h * x;
                hbb += h * x * x;
            }
            let det = haa * hbb - hab * hab;
            if det.abs() < 1e-300 {
                break;
            }
            let da = (hbb * ga - hab * gb) / det;
            let db = (haa * gb - hab * ga) / det;
            a -= da;
            b -= db;
            if da.abs() + db.abs() < 1e-10 {
                break;
            }
        }
        let lo = all().map(|t| t.0).fold(f64::INFINITY, f64::min);
        let hi = all().map(|t| t.0).fold(f64::NEG_INFINITY, f64::max);
        let slope = b / sd;
        if !(slope > 0.0 && slope.is_finite() && a.is_finite() && lo < hi) {
            return Err(EvalError::InvalidParameter {
                name: "logistic",
                reason: format!("no increasing fit (slope {slope}, range [{lo}, {hi}])"),
            });
        }
        // a + b (s − mean)/sd = (s − (mean − a sd / b)) · b/sd
        ScoreMap::affine(mean - a * sd / b, slope, lo, hi)
    }
}

/// A comparison's scores in the two modalities (`None`: not available, e.g.
/// a failure to enrol).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ModalityScores {
    /// Face score.
    pub face: Option<f64>,
    /// Fingerprint score.
    pub finger: Option<f64>,
}

impl ModalityScores {
    /// Both scores.
    pub fn new(face: Option<f64>, finger: Option<f64>) -> Self {
        ModalityScores { face, finger }
    }
}

/// How the per-modality normalisation is learned ([module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Sum of per-modality LLRs, each by isotonic regression.
    LlrPav,
    /// Sum of per-modality LLRs, each by logistic regression.
    LlrLogistic,
    /// Impostor z-score, weighted sum.
    ZScore,
    /// Min-max to [0, 1], weighted sum.
    MinMax,
}

impl Method {
    /// Every method, in report order.
    pub const ALL: [Method; 4] = [
        Method::LlrPav,
        Method::LlrLogistic,
        Method::ZScore,
        Method::MinMax,
    ];

    /// Stable name (as serialised).
    pub fn name(&self) -> &'static str {
        match self {
            Method::LlrPav => "llr-pav",
            Method::LlrLogistic => "llr-logistic",
            Method::ZScore => "z-score",
            Method::MinMax => "min-max",
        }
    }

    /// One-line description for reports.
    pub fn describe(&self) -> &'static str {
        match self {
            Method::LlrPav => "sum of LLRs, isotonic (PAV) per modality",
            Method::LlrLogistic => "sum of LLRs, logistic per modality",
            Method::ZScore => "impostor z-score, weighted sum",
            Method::MinMax => "min-max, weighted sum",
        }
    }

    /// Whether a map's output is a log-likelihood ratio (then a missing
    /// modality's 0 means "no evidence").
    pub fn is_llr(&self) -> bool {
        matches!(self, Method::LlrPav | Method::LlrLogistic)
    }
}

/// A learned fusion: `w_face · face(s_face) + w_finger · finger(s_finger)`, a
/// missing modality contributing 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedFusion {
    /// How it was learned.
    pub method: Method,
    /// Face normalisation.
    pub face: ScoreMap,
    /// Fingerprint normalisation.
    pub finger: ScoreMap,
    /// Face weight (≥ 0).
    pub face_weight: f64,
    /// Fingerprint weight (≥ 0).
    pub finger_weight: f64,
}

impl FittedFusion {
    /// The fused score (non-decreasing in each input).
    pub fn fuse(&self, face: Option<f64>, finger: Option<f64>) -> f64 {
        face.map_or(0.0, |s| self.face_weight * self.face.apply(s))
            + finger.map_or(0.0, |s| self.finger_weight * self.finger.apply(s))
    }

    /// Fuse every comparison of a labelled set.
    pub fn fuse_set(&self, genuine: &[ModalityScores], impostor: &[ModalityScores]) -> ScoreSet {
        let f = |v: &[ModalityScores]| v.iter().map(|m| self.fuse(m.face, m.finger)).collect();
        ScoreSet::new(f(genuine), f(impostor))
    }
}

/// The target FMR the weight search of the sum methods optimises.
pub const WEIGHT_SEARCH_FMR: f64 = 1e-3;

fn present(v: &[ModalityScores], face: bool) -> Vec<f64> {
    v.iter()
        .filter_map(|m| if face { m.face } else { m.finger })
        .collect()
}

/// Learn a fusion from training comparisons (each side needs at least one
/// score of each modality).
pub fn fit(
    method: Method,
    genuine: &[ModalityScores],
    impostor: &[ModalityScores],
) -> Result<FittedFusion> {
    let (gf, gp) = (present(genuine, true), present(genuine, false));
    let (if_, ip) = (present(impostor, true), present(impostor, false));
    let (face, finger) = match method {
        Method::LlrPav => (
            ScoreMap::fit_pav_llr(&gf, &if_)?,
            ScoreMap::fit_pav_llr(&gp, &ip)?,
        ),
        Method::LlrLogistic => (
            ScoreMap::fit_logistic_llr(&gf, &if_)?,
            ScoreMap::fit_logistic_llr(&gp, &ip)?,
        ),
        Method::ZScore => (z_map(&gf, &if_)?, z_map(&gp, &ip)?),
        Method::MinMax => (minmax_map(&gf, &if_)?, minmax_map(&gp, &ip)?),
    };
    let mut fitted = FittedFusion {
        method,
        face,
        finger,
        face_weight: 1.0,
        finger_weight: 1.0,
    };
    if !method.is_llr() {
        let mut best: Option<(f64, f64, f64)> = None; // (fnmr, eer, w)
        for k in 0..=20 {
            let w = f64::from(k) / 20.0;
            fitted.face_weight = w;
            fitted.finger_weight = 1.0 - w;
            let rates = fitted.fuse_set(genuine, impostor).rates()?;
            let fnmr = rates.fnmr_at_fmr(WEIGHT_SEARCH_FMR)?.fnmr;
            let eer = rates.eer().eer;
            if best.is_none_or(|b| (fnmr, eer) < (b.0, b.1)) {
                best = Some((fnmr, eer, w));
            }
        }
        let w = best.map_or(0.5, |b| b.2);
        fitted.face_weight = w;
        fitted.finger_weight = 1.0 - w;
    }
    Ok(fitted)
}

fn range(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

fn z_map(genuine: &[f64], impostor: &[f64]) -> Result<ScoreMap> {
    check_scores("genuine scores", genuine)?;
    check_scores("impostor scores", impostor)?;
    let n = impostor.len() as f64;
    let mean = impostor.iter().sum::<f64>() / n;
    let sd = (impostor.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n)
        .sqrt()
        .max(1e-12);
    let (lo, hi) = range(
        &[range(genuine), range(impostor)]
            .map(|r| [r.0, r.1])
            .concat(),
    );
    ScoreMap::affine(mean, 1.0 / sd, lo, hi.max(lo + 1e-12))
}

fn minmax_map(genuine: &[f64], impostor: &[f64]) -> Result<ScoreMap> {
    check_scores("genuine scores", genuine)?;
    check_scores("impostor scores", impostor)?;
    let (lo, hi) = range(
        &[range(genuine), range(impostor)]
            .map(|r| [r.0, r.1])
            .concat(),
    );
    let hi = hi.max(lo + 1e-12);
    ScoreMap::affine(lo, 1.0 / (hi - lo), lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bootstrap::SplitMix64;

    fn normals(n: usize, mu: f64, sd: f64, seed: u64) -> Vec<f64> {
        let mut r = SplitMix64::new(seed);
        (0..n).map(|_| mu + sd * r.next_normal()).collect()
    }

    #[test]
    fn pav_llr_is_monotone_finite_and_near_the_true_llr() {
        // N(1,1) vs N(0,1): true LLR = s − 0.5.
        let g = normals(20_000, 1.0, 1.0, 1);
        let i = normals(20_000, 0.0, 1.0, 2);
        let m = ScoreMap::fit_pav_llr(&g, &i).unwrap();
        m.validate().unwrap();
        for s in [-1.0, 0.0, 0.5, 1.0, 2.0] {
            let llr = m.apply(s);
            assert!((llr - (s - 0.5)).abs() < 0.35, "LLR({s}) = {llr}");
        }
        // Bounded beyond the data.
        assert!(m.apply(1e9).is_finite() && m.apply(-1e9).is_finite());
        assert!(m.apply(1e9) <= (20_000f64 * 2.0).ln());
    }

    #[test]
    fn pav_llr_fits_tied_scores_whose_block_ratios_are_equal() {
        // Coarse scores give many pooled blocks whose genuine/impostor
        // ratios are equal in exact arithmetic; their logs must still give
        // a valid (non-decreasing) map, not fail validation by a few ulps.
        let mut r = SplitMix64::new(7);
        for _ in 0..3_000 {
            let n_g = 2 + (r.next_normal().abs() * 20.0) as usize;
            let n_i = 2 + (r.next_normal().abs() * 200.0) as usize;
            let draw = |r: &mut SplitMix64, mu: f64| (mu + r.next_normal()).round() * 0.01;
            let g: Vec<f64> = (0..n_g).map(|_| draw(&mut r, 1.0)).collect();
            let i: Vec<f64> = (0..n_i).map(|_| draw(&mut r, 0.0)).collect();
            let m = ScoreMap::fit_pav_llr(&g, &i).unwrap();
            m.validate().unwrap();
        }
    }

    #[test]
    fn logistic_llr_recovers_a_gaussian_llr() {
        let g = normals(20_000, 1.0, 1.0, 3);
        let i = normals(20_000, 0.0, 1.0, 4);
        let m = ScoreMap::fit_logistic_llr(&g, &i).unwrap();
        for s in [-1.0, 0.5, 2.0] {
            assert!((m.apply(s) - (s - 0.5)).abs() < 0.1, "{s}: {}", m.apply(s));
        }
        // Reversed labels cannot give an increasing map: a typed error.
        assert!(ScoreMap::fit_logistic_llr(&i, &g).is_err());
    }

    #[test]
    fn map_validation_and_interpolation() {
        let m = ScoreMap {
            knots: vec![[0.0, -1.0], [1.0, 1.0], [2.0, 1.0]],
        };
        m.validate().unwrap();
        assert_eq!(m.apply(-5.0), -1.0);
        assert_eq!(m.apply(0.5), 0.0);
        assert_eq!(m.apply(1.5), 1.0);
        assert_eq!(m.apply(f64::NAN), -1.0);
        for bad in [
            vec![],
            vec![[0.0, 1.0], [1.0, 0.5]],
            vec![[1.0, 0.0], [1.0, 1.0]],
            vec![[0.0, f64::NAN]],
        ] {
            assert!(ScoreMap { knots: bad }.validate().is_err());
        }
    }

    #[test]
    fn fused_llr_beats_each_modality_on_independent_gaussians() {
        let n_g = 2_000;
        let n_i = 40_000;
        let mk = |n, mf, mp, seed| -> Vec<ModalityScores> {
            let f = normals(n, mf, 1.0, seed);
            let p = normals(n, mp, 1.0, seed + 100);
            f.into_iter()
                .zip(p)
                .map(|(f, p)| ModalityScores::new(Some(f), Some(p)))
                .collect()
        };
        let (g, i) = (mk(n_g, 2.5, 2.0, 10), mk(n_i, 0.0, 0.0, 20));
        let single = |face: bool| {
            let pick = |v: &[ModalityScores]| present(v, face);
            ScoreSet::new(pick(&g), pick(&i))
                .rates()
                .unwrap()
                .fnmr_at_fmr(1e-3)
                .unwrap()
                .fnmr
        };
        for method in Method::ALL {
            let f = fit(method, &g, &i).unwrap();
            let fused = f
                .fuse_set(&g, &i)
                .rates()
                .unwrap()
                .fnmr_at_fmr(1e-3)
                .unwrap()
                .fnmr;
            assert!(
                fused < single(true) && fused < single(false),
                "{method:?}: fused {fused}, face {}, finger {}",
                single(true),
                single(false)
            );
        }
    }
}
