//! Confidence intervals by the bootstrap over subjects, and binomial intervals.
//!
//! **Method (subjects bootstrap, Bolle, Ratha & Pankanti 2004; ISO/IEC 19795-1
//! recommends resampling at the level of the sampling unit, the subject).**
//! Comparisons of one subject are correlated, so resampling comparisons
//! independently understates the uncertainty. Let `S` be the distinct subjects
//! labelling the genuine and impostor comparisons (an impostor comparison is
//! labelled with the subject it is attributed to, by convention the probe's).
//! Each replicate draws `|S|` subjects uniformly *with replacement*; every
//! comparison of a subject drawn `c` times enters the replicate with weight
//! `c` (so a subject drawn twice counts twice). The statistic (EER, FNMR at a
//! target FMR) is recomputed on the weighted replicate exactly as on the
//! original data. The interval is the percentile interval: the
//! `(1 − confidence)/2` and `(1 + confidence)/2` quantiles of the replicate
//! values (linear interpolation between order statistics, "type 7").
//! Replicates where the statistic is undefined (no genuine comparisons drawn,
//! or too few impostors for the target FMR) are counted in
//! `failed_replicates` and left out.
//!
//! The random numbers come from SplitMix64 seeded with `seed`, so intervals
//! are reproducible bit for bit across runs and platforms.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{EvalError, Result};
use crate::scores::{
    count_below, eer_core, threshold_core, total, BySubject, ScoreSet, SupportRule, Unit,
};

/// Bootstrap settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BootstrapConfig {
    /// Number of replicates (e.g. 1000).
    pub replicates: u32,
    /// Two-sided confidence level in (0, 1), e.g. 0.95.
    pub confidence: f64,
    /// RNG seed.
    pub seed: u64,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        BootstrapConfig {
            replicates: 1000,
            confidence: 0.95,
            seed: 0x5EED_7EC5,
        }
    }
}

/// A point estimate with a two-sided confidence interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfidenceInterval {
    /// The statistic on the original data.
    pub estimate: f64,
    /// Lower bound.
    pub lower: f64,
    /// Upper bound.
    pub upper: f64,
    /// Confidence level.
    pub confidence: f64,
    /// How the interval was computed (e.g. "subject bootstrap, percentile").
    pub method: String,
    /// Replicates that produced a value.
    pub replicates: u32,
    /// Replicates where the statistic was undefined.
    pub failed_replicates: u32,
    /// Subjects resampled (0 for binomial intervals).
    pub n_subjects: usize,
}

/// SplitMix64 (Steele, Lea & Flood 2014): small, fast, fully specified.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator with this seed.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform integer in `0..n` (multiply-shift; bias below 2^-32 for n < 2^32).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform `f64` in `[0, 1)` (53 random bits).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal deviate (Box–Muller, one value per two uniforms), for
    /// synthetic score sets.
    pub fn next_normal(&mut self) -> f64 {
        let u = 1.0 - self.next_f64();
        let v = self.next_f64();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// Scores sorted with their subject indices, ready for weighted replicates.
struct Prepared {
    gen: Vec<f64>,
    gen_subj: Vec<u32>,
    gen_per_subject: Vec<u64>,
    imp: Vec<f64>,
    imp_subj: Vec<u32>,
    imp_per_subject: Vec<u64>,
    n_subjects: usize,
}

fn prepare(s: &ScoreSet) -> Result<Prepared> {
    s.validate()?;
    let (Some(gs), Some(is)) = (&s.genuine_subjects, &s.impostor_subjects) else {
        return Err(EvalError::MissingSubjects);
    };
    let mut index: BTreeMap<u32, u32> = BTreeMap::new();
    for &id in gs.iter().chain(is) {
        let next = index.len() as u32;
        index.entry(id).or_insert(next);
    }
    let n_subjects = index.len();
    let sort = |scores: &[f64], subj: &[u32]| {
        let mut v: Vec<(f64, u32)> = scores
            .iter()
            .zip(subj)
            .map(|(&x, id)| (x, index.get(id).copied().unwrap_or(0)))
            .collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (x, sj): (Vec<f64>, Vec<u32>) = v.into_iter().unzip();
        let mut per = vec![0u64; n_subjects];
        for &k in &sj {
            per[k as usize] += 1;
        }
        (x, sj, per)
    };
    let (gen, gen_subj, gen_per_subject) = sort(&s.genuine, gs);
    let (imp, imp_subj, imp_per_subject) = sort(&s.impostor, is);
    Ok(Prepared {
        gen,
        gen_subj,
        gen_per_subject,
        imp,
        imp_subj,
        imp_per_subject,
        n_subjects,
    })
}

fn check_config(c: &BootstrapConfig) -> Result<()> {
    if !(c.confidence > 0.0 && c.confidence < 1.0) {
        return Err(EvalError::InvalidParameter {
            name: "confidence",
            reason: format!("{} is not in (0, 1)", c.confidence),
        });
    }
    if c.replicates < 2 {
        return Err(EvalError::InvalidParameter {
            name: "replicates",
            reason: format!("need at least 2, got {}", c.replicates),
        });
    }
    Ok(())
}

/// Type-7 quantile of sorted values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// Run replicates of `stat(gen_weights, imp_weights)`; None = undefined.
fn run(
    p: &Prepared,
    cfg: &BootstrapConfig,
    estimate: f64,
    stat: impl Fn(&BySubject, &BySubject) -> Option<f64>,
) -> Result<ConfidenceInterval> {
    check_config(cfg)?;
    let mut rng = SplitMix64::new(cfg.seed);
    let mut counts = vec![0u32; p.n_subjects];
    let mut values = Vec::with_capacity(cfg.replicates as usize);
    let mut failed = 0;
    for _ in 0..cfg.replicates {
        counts.iter_mut().for_each(|c| *c = 0);
        for _ in 0..p.n_subjects {
            counts[rng.below(p.n_subjects as u64) as usize] += 1;
        }
        let gw = BySubject {
            subject: &p.gen_subj,
            counts: &counts,
            per_subject: Some(&p.gen_per_subject),
        };
        let iw = BySubject {
            subject: &p.imp_subj,
            counts: &counts,
            per_subject: Some(&p.imp_per_subject),
        };
        match stat(&gw, &iw) {
            Some(v) if v.is_finite() => values.push(v),
            _ => failed += 1,
        }
    }
    if values.is_empty() {
        return Err(EvalError::InvalidParameter {
            name: "replicates",
            reason: "the statistic was undefined in every bootstrap replicate".into(),
        });
    }
    values.sort_by(f64::total_cmp);
    let a = (1.0 - cfg.confidence) / 2.0;
    Ok(ConfidenceInterval {
        estimate,
        lower: quantile(&values, a),
        upper: quantile(&values, 1.0 - a),
        confidence: cfg.confidence,
        method: "subject bootstrap, percentile interval".into(),
        replicates: values.len() as u32,
        failed_replicates: failed,
        n_subjects: p.n_subjects,
    })
}

/// A labelled score set prepared once (sorted, subjects indexed) for any
/// number of bootstrap intervals. Each replicate costs O(subjects) plus the
/// scores above the statistic's operating point (the EER and FNMR at FMR are
/// found by walking from the highest scores down), so tens of millions of
/// impostor comparisons are fine.
pub struct SubjectBootstrap {
    p: Prepared,
}

impl SubjectBootstrap {
    /// Validate and prepare; [`EvalError::MissingSubjects`] without labels.
    pub fn new(scores: &ScoreSet) -> Result<Self> {
        Ok(SubjectBootstrap {
            p: prepare(scores)?,
        })
    }

    /// Distinct subjects resampled.
    pub fn n_subjects(&self) -> usize {
        self.p.n_subjects
    }

    /// Interval for the EER ([`crate::Eer`]).
    pub fn eer(&self, cfg: &BootstrapConfig) -> Result<ConfidenceInterval> {
        let p = &self.p;
        let estimate = eer_core(&p.gen, &Unit, &p.imp, &Unit).eer;
        run(p, cfg, estimate, |gw, iw| {
            if total(p.gen.len(), gw) == 0 || total(p.imp.len(), iw) == 0 {
                return None;
            }
            Some(eer_core(&p.gen, gw, &p.imp, iw).eer)
        })
    }

    /// Interval for FNMR at `target_fmr`; each replicate re-chooses its
    /// threshold from its own impostors. The point estimate must be
    /// supported under `rule` ([`EvalError::Unsupported`]); replicates whose
    /// weighted impostor count falls short count as failed.
    pub fn fnmr_at_fmr(
        &self,
        target_fmr: f64,
        rule: SupportRule,
        cfg: &BootstrapConfig,
    ) -> Result<ConfidenceInterval> {
        let p = &self.p;
        let what = "impostor comparisons";
        let t = threshold_core(&p.imp, &Unit, target_fmr, &rule, what)?;
        let estimate = count_below(&p.gen, &Unit, t.threshold) as f64 / p.gen.len() as f64;
        run(p, cfg, estimate, |gw, iw| {
            let g = total(p.gen.len(), gw);
            if g == 0 {
                return None;
            }
            let t = threshold_core(&p.imp, iw, target_fmr, &rule, what).ok()?;
            Some(count_below(&p.gen, gw, t.threshold) as f64 / g as f64)
        })
    }
}

/// Bootstrap-by-subject interval for the EER ([`SubjectBootstrap::eer`]).
/// Needs subject labels ([`EvalError::MissingSubjects`]).
pub fn bootstrap_eer(scores: &ScoreSet, cfg: &BootstrapConfig) -> Result<ConfidenceInterval> {
    SubjectBootstrap::new(scores)?.eer(cfg)
}

/// Bootstrap-by-subject interval for FNMR at `target_fmr`
/// ([`SubjectBootstrap::fnmr_at_fmr`]).
pub fn bootstrap_fnmr_at_fmr(
    scores: &ScoreSet,
    target_fmr: f64,
    rule: SupportRule,
    cfg: &BootstrapConfig,
) -> Result<ConfidenceInterval> {
    SubjectBootstrap::new(scores)?.fnmr_at_fmr(target_fmr, rule, cfg)
}

/// Wilson score interval for a binomial proportion `k / n` at `confidence`
/// (e.g. the FMR observed at a calibrated threshold). Two-sided; the
/// normal quantile is computed by [`normal_quantile`].
pub fn wilson_interval(k: u64, n: u64, confidence: f64) -> Result<ConfidenceInterval> {
    if n == 0 {
        return Err(EvalError::Empty { what: "trials" });
    }
    if !(confidence > 0.0 && confidence < 1.0) || k > n {
        return Err(EvalError::InvalidParameter {
            name: "confidence",
            reason: format!("confidence {confidence}, k {k}, n {n}"),
        });
    }
    let z = normal_quantile(0.5 + confidence / 2.0);
    let nf = n as f64;
    let p = k as f64 / nf;
    let z2 = z * z;
    let den = 1.0 + z2 / nf;
    let centre = (p + z2 / (2.0 * nf)) / den;
    let half = z / den * (p * (1.0 - p) / nf + z2 / (4.0 * nf * nf)).sqrt();
    Ok(ConfidenceInterval {
        estimate: p,
        lower: (centre - half).max(0.0),
        upper: (centre + half).min(1.0),
        confidence,
        method: "Wilson score interval".into(),
        replicates: 0,
        failed_replicates: 0,
        n_subjects: 0,
    })
}

/// Quantile function of the standard normal distribution (Acklam's rational
/// approximation, relative error < 1.2e-9), for `p` in (0, 1).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Synthetic labelled set: per subject, `g` genuine ~ N(mu_g + subject
    /// effect, 1) and `i` impostor ~ N(0, 1) scores.
    fn synthetic(subjects: u32, g: usize, i: usize, mu: f64, seed: u64) -> ScoreSet {
        let mut rng = SplitMix64::new(seed);
        let (mut gs, mut gl, mut is, mut il) = (vec![], vec![], vec![], vec![]);
        for s in 0..subjects {
            let effect = 0.5 * rng.next_normal();
            for _ in 0..g {
                gs.push(mu + effect + rng.next_normal());
                gl.push(s);
            }
            for _ in 0..i {
                is.push(rng.next_normal());
                il.push(s);
            }
        }
        ScoreSet::new(gs, is).with_subjects(gl, il).unwrap()
    }

    #[test]
    fn splitmix_reference_values() {
        // Reference outputs of SplitMix64 seeded with 0 (published test vector).
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn normal_quantile_known_values() {
        assert!((normal_quantile(0.975) - 1.959_963_984_540_054).abs() < 1e-8);
        assert!((normal_quantile(0.5)).abs() < 1e-12);
        assert!((normal_quantile(0.001) + 3.090_232_306_167_813_5).abs() < 1e-7);
    }

    #[test]
    fn wilson_hand_computed() {
        // k = 0, n = 100, 95 %: upper = z²/(n+z²) = 3.8415/103.8415 = 0.036994.
        let w = wilson_interval(0, 100, 0.95).unwrap();
        assert_eq!(w.lower, 0.0);
        assert!((w.upper - 0.036_994).abs() < 1e-5, "{w:?}");
        // k = 50, n = 100: centre 0.5, half = z/(1+z²/n)·sqrt(0.0025+z²/40000)
        let w = wilson_interval(50, 100, 0.95).unwrap();
        assert!((w.lower - 0.403_831).abs() < 1e-5, "{w:?}");
        assert!((w.upper - 0.596_169).abs() < 1e-5, "{w:?}");
        assert!(matches!(
            wilson_interval(0, 0, 0.95),
            Err(EvalError::Empty { .. })
        ));
    }

    #[test]
    fn bootstrap_needs_labels_and_is_deterministic() {
        let plain = ScoreSet::new(vec![0.9, 0.8], vec![0.1, 0.2]);
        assert!(matches!(
            bootstrap_eer(&plain, &BootstrapConfig::default()),
            Err(EvalError::MissingSubjects)
        ));
        let s = synthetic(60, 3, 20, 2.0, 7);
        let cfg = BootstrapConfig {
            replicates: 200,
            ..Default::default()
        };
        let a = bootstrap_eer(&s, &cfg).unwrap();
        let b = bootstrap_eer(&s, &cfg).unwrap();
        assert_eq!(a, b);
        assert!(a.lower <= a.estimate && a.estimate <= a.upper, "{a:?}");
        assert!(a.upper - a.lower > 0.0);
        assert_eq!(a.n_subjects, 60);
        let c = bootstrap_eer(&s, &BootstrapConfig { seed: 1, ..cfg }).unwrap();
        assert_ne!(a.lower, c.lower);
    }

    #[test]
    fn bootstrap_perfect_separation_is_degenerate() {
        let s = ScoreSet::new(vec![0.9, 0.8, 0.95], vec![0.1, 0.2, 0.3])
            .with_subjects(vec![1, 2, 3], vec![1, 2, 3])
            .unwrap();
        let ci = bootstrap_eer(
            &s,
            &BootstrapConfig {
                replicates: 100,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!((ci.estimate, ci.lower, ci.upper), (0.0, 0.0, 0.0));
    }

    #[test]
    fn bootstrap_weights_match_duplication() {
        // With every subject drawn exactly once the replicate equals the
        // original: check the weighted EER path against the plain one.
        let s = synthetic(30, 2, 10, 1.5, 3);
        let p = prepare(&s).unwrap();
        let ones = vec![1u32; p.n_subjects];
        let gw = BySubject {
            subject: &p.gen_subj,
            counts: &ones,
            per_subject: None,
        };
        let iw = BySubject {
            subject: &p.imp_subj,
            counts: &ones,
            per_subject: None,
        };
        let weighted = eer_core(&p.gen, &gw, &p.imp, &iw);
        assert_eq!(weighted, s.rates().unwrap().eer());
        // Weight 2 on subject 0 equals duplicating its comparisons.
        let mut twos = ones.clone();
        let sid = s.genuine_subjects.as_ref().unwrap()[0];
        twos[0] = 2;
        let gw = BySubject {
            subject: &p.gen_subj,
            counts: &twos,
            per_subject: Some(&p.gen_per_subject),
        };
        let iw = BySubject {
            subject: &p.imp_subj,
            counts: &twos,
            per_subject: Some(&p.imp_per_subject),
        };
        let weighted = eer_core(&p.gen, &gw, &p.imp, &iw);
        let mut dup = s.clone();
        for (x, &l) in s.genuine.iter().zip(s.genuine_subjects.as_ref().unwrap()) {
            if l == sid {
                dup.genuine.push(*x);
            }
        }
        for (x, &l) in s.impostor.iter().zip(s.impostor_subjects.as_ref().unwrap()) {
            if l == sid {
                dup.impostor.push(*x);
            }
        }
        let plain = ScoreSet::new(dup.genuine, dup.impostor)
            .rates()
            .unwrap()
            .eer();
        assert!((weighted.eer - plain.eer).abs() < 1e-12);
    }

    #[test]
    fn bootstrap_fnmr_interval_covers_truth() {
        // Genuine = 2 + 0.5·effect + noise ~ N(2, 1.25), impostor ~ N(0, 1):
        // the population FNMR at FMR 1e-2 is Φ((2.3263 − 2) / √1.25) ≈ 0.615.
        let s = synthetic(200, 5, 50, 2.0, 11);
        let ci = bootstrap_fnmr_at_fmr(
            &s,
            1e-2,
            SupportRule::RULE_OF_3,
            &BootstrapConfig {
                replicates: 300,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(ci.lower <= ci.estimate && ci.estimate <= ci.upper, "{ci:?}");
        assert!(ci.lower < 0.615 && 0.615 < ci.upper, "{ci:?}");
        assert_eq!(ci.failed_replicates, 0);
        // Unsupported target at the point estimate is a typed error.
        assert!(matches!(
            bootstrap_fnmr_at_fmr(
                &s,
                1e-4,
                SupportRule::RULE_OF_3,
                &BootstrapConfig::default()
            ),
            Err(EvalError::Unsupported { .. })
        ));
    }
}

#[cfg(test)]
mod scale {
    use super::*;

    /// `cargo test -p sinhtrac-eval --release -- --ignored --nocapture scale`
    /// times a 1000-replicate bootstrap over 4 M impostor comparisons.
    #[test]
    #[ignore]
    fn bootstrap_scale() {
        let mut r = SplitMix64::new(1);
        let subjects = 4000u32;
        let (mut g, mut gl, mut i, mut il) = (vec![], vec![], vec![], vec![]);
        for s in 0..subjects {
            for _ in 0..5 {
                g.push(2.5 + r.next_normal());
                gl.push(s);
            }
            for _ in 0..1000 {
                i.push(r.next_normal());
                il.push(s);
            }
        }
        let set = ScoreSet::new(g, i).with_subjects(gl, il).unwrap();
        let t0 = std::time::Instant::now();
        let b = SubjectBootstrap::new(&set).unwrap();
        let t1 = std::time::Instant::now();
        let cfg = BootstrapConfig::default();
        let e = b.eer(&cfg).unwrap();
        let t2 = std::time::Instant::now();
        let f = b.fnmr_at_fmr(1e-4, SupportRule::RULE_OF_3, &cfg).unwrap();
        let t3 = std::time::Instant::now();
        println!(
            "prepare {:?}, EER CI {:?} ({:?}), FNMR@1e-4 CI {:?} ({:?})",
            t1 - t0,
            (e.lower, e.upper),
            t2 - t1,
            (f.lower, f.upper),
            t3 - t2
        );
    }
}
