//! Evaluation reports: headline numbers, curves and histograms, written as
//! JSON, a markdown summary and DET / ROC / score-histogram plots (PNG + SVG).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bootstrap::{wilson_interval, BootstrapConfig, ConfidenceInterval, SubjectBootstrap};
use crate::error::{EvalError, Result};
use crate::kfold::KFoldAccuracy;
use crate::liveness::{BpcerAtApcer, PadAtThreshold, PadScores};
use crate::openset::OpenSetResult;
use crate::scores::{check_finite, thin_curve, Eer, FnmrAtFmr, RatePoint, ScoreSet, SupportRule};

/// The FMR targets of issue 7's headline table.
pub const DEFAULT_FMR_TARGETS: [f64; 5] = [1e-2, 1e-3, 1e-4, 1e-5, 1e-6];
/// The APCER targets of ISO/IEC 30107-3's BPCER20 and BPCER100.
pub const DEFAULT_APCER_TARGETS: [f64; 2] = [0.05, 0.01];
/// The FPIR targets of issue 7's 1:N table.
pub const DEFAULT_FPIR_TARGETS: [f64; 2] = [1e-2, 1e-3];

/// What a verification report computes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportOptions {
    /// Target FMRs for FNMR @ FMR (unsupported ones are reported as such).
    pub fmr_targets: Vec<f64>,
    /// Which targets the impostor count supports.
    pub support_rule: SupportRule,
    /// Bootstrap settings; used when the score set carries subject labels.
    pub bootstrap: Option<BootstrapConfig>,
    /// Histogram bins.
    pub histogram_bins: usize,
    /// Curve points kept in the report ([`thin_curve`]).
    pub max_curve_points: usize,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            fmr_targets: DEFAULT_FMR_TARGETS.to_vec(),
            support_rule: SupportRule::default(),
            bootstrap: Some(BootstrapConfig::default()),
            histogram_bins: 50,
            max_curve_points: 400,
        }
    }
}

/// Equal-width histogram of scores over `[lo, hi]` (the last bin is closed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Lower edge of the first bin.
    pub lo: f64,
    /// Upper edge of the last bin.
    pub hi: f64,
    /// Count per bin.
    pub counts: Vec<u64>,
}

impl Histogram {
    /// Count `scores` into `bins` bins over `[lo, hi]`; values outside are clamped.
    pub fn new(scores: &[f64], lo: f64, hi: f64, bins: usize) -> Result<Self> {
        check_finite("histogram scores", scores)?;
        if bins == 0 || !(lo.is_finite() && hi.is_finite() && lo <= hi) {
            return Err(EvalError::InvalidParameter {
                name: "histogram",
                reason: format!("bins {bins}, range [{lo}, {hi}]"),
            });
        }
        let mut counts = vec![0u64; bins];
        let w = (hi - lo) / bins as f64;
        for &x in scores {
            let i = if w > 0.0 { ((x - lo) / w).floor() } else { 0.0 };
            let i = (i.max(0.0) as usize).min(bins - 1);
            counts[i] += 1;
        }
        Ok(Histogram { lo, hi, counts })
    }

    /// Total count.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

fn range_of(a: &[f64], b: &[f64]) -> (f64, f64) {
    let lo = a.iter().chain(b).copied().fold(f64::INFINITY, f64::min);
    let hi = a.iter().chain(b).copied().fold(f64::NEG_INFINITY, f64::max);
    if lo < hi {
        (lo, hi)
    } else {
        (lo - 0.5, hi + 0.5)
    }
}

/// FNMR at one target FMR, or why it is not reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatingPoint {
    /// Target FMR.
    pub target_fmr: f64,
    /// Impostor comparisons available.
    pub n_impostor: u64,
    /// Impostor comparisons the support rule needs for this target.
    pub required_impostors: u64,
    /// The result, `None` when the target is unsupported.
    pub result: Option<FnmrAtFmr>,
    /// Bootstrap interval of the FNMR, when computed.
    pub fnmr_ci: Option<ConfidenceInterval>,
}

/// 1:1 verification section of a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerificationReport {
    /// Genuine comparisons.
    pub n_genuine: usize,
    /// Impostor comparisons.
    pub n_impostor: usize,
    /// Distinct subjects, when labelled.
    pub n_subjects: Option<usize>,
    /// Support rule for the targets.
    pub support_rule: SupportRule,
    /// Lowest FMR the impostor count supports.
    pub min_supported_fmr: f64,
    /// Equal error rate.
    pub eer: Eer,
    /// Bootstrap interval of the EER, when computed.
    pub eer_ci: Option<ConfidenceInterval>,
    /// FNMR at each target FMR.
    pub fnmr_at_fmr: Vec<OperatingPoint>,
    /// k-fold accuracy (LFW protocol), when given.
    pub kfold: Option<KFoldAccuracy>,
    /// DET/ROC curve, thinned.
    pub curve: Vec<RatePoint>,
    /// Genuine score histogram.
    pub genuine_histogram: Histogram,
    /// Impostor score histogram (same bins).
    pub impostor_histogram: Histogram,
}

impl VerificationReport {
    /// Compute every 1:1 number for `scores`. Bootstrap intervals are
    /// computed when `opts.bootstrap` is set and the scores carry subject labels.
    pub fn compute(scores: &ScoreSet, opts: &ReportOptions) -> Result<Self> {
        let rates = scores.rates()?.with_support_rule(opts.support_rule);
        let labelled = scores.genuine_subjects.is_some() && scores.impostor_subjects.is_some();
        let boot = match opts.bootstrap.filter(|_| labelled) {
            Some(cfg) => Some((SubjectBootstrap::new(scores)?, cfg)),
            None => None,
        };
        let n_imp = rates.n_impostor() as u64;
        let mut ops = Vec::new();
        for &t in &opts.fmr_targets {
            let required = opts.support_rule.required(t);
            let (result, ci) = match rates.fnmr_at_fmr(t) {
                Ok(r) => {
                    let ci = match &boot {
                        Some((b, cfg)) => Some(b.fnmr_at_fmr(t, opts.support_rule, cfg)?),
                        None => None,
                    };
                    (Some(r), ci)
                }
                Err(EvalError::Unsupported { .. }) => (None, None),
                Err(e) => return Err(e),
            };
            ops.push(OperatingPoint {
                target_fmr: t,
                n_impostor: n_imp,
                required_impostors: required,
                result,
                fnmr_ci: ci,
            });
        }
        let eer_ci = match &boot {
            Some((b, cfg)) => Some(b.eer(cfg)?),
            None => None,
        };
        let n_subjects = if labelled {
            let mut s: Vec<u32> = scores
                .genuine_subjects
                .iter()
                .chain(&scores.impostor_subjects)
                .flatten()
                .copied()
                .collect();
            s.sort_unstable();
            s.dedup();
            Some(s.len())
        } else {
            None
        };
        let (lo, hi) = range_of(&scores.genuine, &scores.impostor);
        Ok(VerificationReport {
            n_genuine: rates.n_genuine(),
            n_impostor: rates.n_impostor(),
            n_subjects,
            support_rule: opts.support_rule,
            min_supported_fmr: rates.impostors().min_supported_fmr(),
            eer: rates.eer(),
            eer_ci,
            fnmr_at_fmr: ops,
            kfold: None,
            curve: thin_curve(&rates.curve(), opts.max_curve_points),
            genuine_histogram: Histogram::new(&scores.genuine, lo, hi, opts.histogram_bins)?,
            impostor_histogram: Histogram::new(&scores.impostor, lo, hi, opts.histogram_bins)?,
        })
    }

    /// Attach a k-fold accuracy result.
    pub fn with_kfold(mut self, k: KFoldAccuracy) -> Self {
        self.kfold = Some(k);
        self
    }
}

/// Liveness (PAD) section of a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LivenessReport {
    /// Bona fide presentations.
    pub n_bona_fide: usize,
    /// Attack presentations.
    pub n_attacks: usize,
    /// APCER/BPCER at the operating threshold, when given.
    pub at_threshold: Option<PadAtThreshold>,
    /// Wilson interval of the APCER at the threshold (of the species with the highest APCER).
    #[serde(default)]
    pub apcer_ci: Option<ConfidenceInterval>,
    /// Wilson interval of the BPCER at the threshold.
    #[serde(default)]
    pub bpcer_ci: Option<ConfidenceInterval>,
    /// Which target APCERs the attack counts support.
    #[serde(default)]
    pub support_rule: SupportRule,
    /// Attack presentations of the smallest PAI species (what limits BPCER @ APCER).
    #[serde(default)]
    pub min_species_attacks: usize,
    /// BPCER at each supported target APCER.
    pub bpcer_at_apcer: Vec<BpcerAtApcer>,
    /// Target APCERs the attack counts do not support.
    pub unsupported_apcer: Vec<f64>,
    /// Bona fide score histogram.
    pub bona_fide_histogram: Histogram,
    /// Attack score histogram (same bins).
    pub attack_histogram: Histogram,
}

impl LivenessReport {
    /// APCER/BPCER at `threshold` (if any) and BPCER at each target APCER.
    pub fn compute(
        scores: &PadScores,
        threshold: Option<f64>,
        apcer_targets: &[f64],
        rule: SupportRule,
        bins: usize,
    ) -> Result<Self> {
        let r = scores.rates()?.with_support_rule(rule);
        let mut at = Vec::new();
        let mut unsupported = Vec::new();
        for &t in apcer_targets {
            match r.bpcer_at_apcer(t) {
                Ok(b) => at.push(b),
                Err(EvalError::Unsupported { .. }) => unsupported.push(t),
                Err(e) => return Err(e),
            }
        }
        let (lo, hi) = range_of(&scores.bona_fide, &scores.attacks);
        let at_threshold = threshold.map(|t| r.at(t));
        let (mut apcer_ci, mut bpcer_ci) = (None, None);
        if let Some(a) = &at_threshold {
            // The worst species decides the APCER; its own count decides the interval.
            if let Some(worst) = a
                .per_species
                .iter()
                .max_by(|x, y| x.apcer.total_cmp(&y.apcer).then(y.n.cmp(&x.n)))
            {
                let k = (worst.apcer * worst.n as f64).round() as u64;
                apcer_ci = Some(wilson_interval(k, worst.n as u64, 0.95)?);
            }
            let n = r.n_bona_fide() as u64;
            let k = (a.bpcer * n as f64).round() as u64;
            bpcer_ci = Some(wilson_interval(k, n, 0.95)?);
        }
        // Species sizes do not depend on the threshold.
        let min_species_attacks = r.at(0.0).per_species.iter().map(|s| s.n).min().unwrap_or(0);
        Ok(LivenessReport {
            n_bona_fide: r.n_bona_fide(),
            n_attacks: r.n_attacks(),
            at_threshold,
            apcer_ci,
            bpcer_ci,
            support_rule: rule,
            min_species_attacks,
            bpcer_at_apcer: at,
            unsupported_apcer: unsupported,
            bona_fide_histogram: Histogram::new(&scores.bona_fide, lo, hi, bins)?,
            attack_histogram: Histogram::new(&scores.attacks, lo, hi, bins)?,
        })
    }
}

/// A full evaluation report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Title (e.g. "LFW 1:1, mobilefacenet_128d").
    pub title: String,
    /// Protocol name and description.
    pub protocol: String,
    /// Software that produced the report.
    pub created_by: String,
    /// 1:1 section.
    pub verification: Option<VerificationReport>,
    /// 1:N open-set section.
    pub open_set: Option<OpenSetResult>,
    /// Liveness section.
    pub liveness: Option<LivenessReport>,
    /// Free-form notes (data, models, machine).
    pub notes: Vec<String>,
}

impl Report {
    /// An empty report.
    pub fn new(title: &str, protocol: &str) -> Self {
        Report {
            title: title.into(),
            protocol: protocol.into(),
            created_by: concat!("sinhtrac-eval ", env!("CARGO_PKG_VERSION")).into(),
            verification: None,
            open_set: None,
            liveness: None,
            notes: Vec::new(),
        }
    }
}

fn pct(x: f64) -> String {
    format!("{:.3}%", 100.0 * x)
}

fn ci_cell(ci: &Option<ConfidenceInterval>) -> String {
    match ci {
        Some(c) => format!(
            "[{}, {}] ({:.0}%, {} subjects)",
            pct(c.lower),
            pct(c.upper),
            100.0 * c.confidence,
            c.n_subjects
        ),
        None => "–".into(),
    }
}

/// The markdown summary written as `summary.md`.
pub fn markdown_summary(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# {}\n\nProtocol: {}\n", r.title, r.protocol);
    if let Some(v) = &r.verification {
        let _ = writeln!(s, "## Verification (1:1)\n");
        let _ = writeln!(
            s,
            "Decision rule: accept iff score ≥ threshold. FMR/FNMR as in ISO/IEC 19795-1. \
             Targets below {:.1e} are not reported: {} impostor comparisons support only \
             FMR ≥ {:.0}/n (rule n·FMR ≥ {}).\n",
            v.min_supported_fmr,
            v.n_impostor,
            v.support_rule.min_expected_errors,
            v.support_rule.min_expected_errors
        );
        let _ = writeln!(s, "| metric | value | threshold | confidence interval |");
        let _ = writeln!(s, "|---|---|---|---|");
        let subj = v
            .n_subjects
            .map(|n| format!(", {n} subjects"))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "| comparisons | {} genuine, {} impostor{} | | |",
            v.n_genuine, v.n_impostor, subj
        );
        let _ = writeln!(
            s,
            "| EER | {} | {:.6} | {} |",
            pct(v.eer.eer),
            v.eer.threshold,
            ci_cell(&v.eer_ci)
        );
        for op in &v.fnmr_at_fmr {
            match &op.result {
                Some(r) => {
                    let _ = writeln!(
                        s,
                        "| FNMR @ FMR={:.0e} | {} (TMR {}) | {:.6} (observed FMR {:.2e}) | {} |",
                        op.target_fmr,
                        pct(r.fnmr),
                        pct(1.0 - r.fnmr),
                        r.at.threshold,
                        r.at.observed_fmr,
                        ci_cell(&op.fnmr_ci)
                    );
                }
                None => {
                    let _ = writeln!(
                        s,
                        "| FNMR @ FMR={:.0e} | not supported: needs {} impostor comparisons, have {} | | |",
                        op.target_fmr, op.required_impostors, op.n_impostor
                    );
                }
            }
        }
        if let Some(k) = &v.kfold {
            let _ = writeln!(
                s,
                "| {}-fold accuracy | {} ± {} (std), SE {} | per fold | |",
                k.folds.len(),
                pct(k.mean),
                pct(k.std),
                pct(k.std_error)
            );
        }
        let _ = writeln!(
            s,
            "\n![DET](det.png)\n\n![ROC](roc.png)\n\n![scores](scores.png)\n"
        );
    }
    if let Some(o) = &r.open_set {
        let _ = writeln!(s, "## Identification (1:N, open set)\n");
        let _ = writeln!(
            s,
            "FPIR = share of non-mated searches with a candidate ≥ T; FNIR = share of mated \
             searches whose mate is not returned at rank ≤ R with score ≥ T (NIST FRTE 1:N).\n"
        );
        let _ = writeln!(s, "| metric | value | threshold |\n|---|---|---|");
        let _ = writeln!(
            s,
            "| searches | {} mated, {} non-mated | |",
            o.n_mated, o.n_nonmated
        );
        let _ = writeln!(s, "| rank-1 identification rate | {} | |", pct(o.rank1));
        let _ = writeln!(s, "| rank-10 identification rate | {} | |", pct(o.rank10));
        for f in &o.fnir_at_fpir {
            let _ = writeln!(
                s,
                "| FNIR @ FPIR={:.0e} (R={}) | {} | {:.6} (observed FPIR {:.2e}) |",
                f.target_fpir,
                f.rank,
                pct(f.fnir),
                f.threshold,
                f.observed_fpir
            );
        }
        for t in &o.unsupported_fpir {
            let _ = writeln!(
                s,
                "| FNIR @ FPIR={t:.0e} | not supported by {} non-mated searches | |",
                o.n_nonmated
            );
        }
        let _ = writeln!(s, "\n![CMC](cmc.png)\n");
        if o.curve.iter().any(|p| p.fpir > 0.0) {
            let _ = writeln!(s, "![FNIR vs FPIR](fnir_fpir.png)\n");
        }
    }
    if let Some(l) = &r.liveness {
        let _ = writeln!(s, "## Liveness (ISO/IEC 30107-3)\n");
        let _ = writeln!(
            s,
            "Bona fide iff score ≥ threshold. APCER is the maximum over attack species.\n"
        );
        let _ = writeln!(s, "| metric | value | threshold |\n|---|---|---|");
        let _ = writeln!(
            s,
            "| presentations | {} bona fide, {} attack | |",
            l.n_bona_fide, l.n_attacks
        );
        if let Some(a) = &l.at_threshold {
            let interval = |ci: &Option<ConfidenceInterval>| match ci {
                Some(c) => format!(
                    ", {:.0}% Wilson interval [{}, {}]",
                    100.0 * c.confidence,
                    pct(c.lower),
                    pct(c.upper)
                ),
                None => String::new(),
            };
            let worst_n = a
                .per_species
                .iter()
                .max_by(|x, y| x.apcer.total_cmp(&y.apcer).then(y.n.cmp(&x.n)))
                .map_or(0, |w| w.n);
            let _ = writeln!(
                s,
                "| APCER (worst species) | {} ({} of {}{}) | {:.4} |",
                pct(a.apcer),
                (a.apcer * worst_n as f64).round(),
                worst_n,
                interval(&l.apcer_ci),
                a.threshold
            );
            let _ = writeln!(
                s,
                "| BPCER | {} ({} of {}{}) | {:.4} |",
                pct(a.bpcer),
                (a.bpcer * l.n_bona_fide as f64).round(),
                l.n_bona_fide,
                interval(&l.bpcer_ci),
                a.threshold
            );
            for sp in &a.per_species {
                let _ = writeln!(
                    s,
                    "| APCER {} ({} attacks) | {} | {:.4} |",
                    sp.species,
                    sp.n,
                    pct(sp.apcer),
                    a.threshold
                );
            }
        }
        for b in &l.bpcer_at_apcer {
            let _ = writeln!(
                s,
                "| BPCER @ APCER={}% | {} | {:.6} |",
                100.0 * b.target_apcer,
                pct(b.at.bpcer),
                b.at.threshold
            );
        }
        for t in &l.unsupported_apcer {
            let _ = writeln!(
                s,
                "| BPCER @ APCER={}% | not supported: needs {} attack presentations per species \
                 (n·APCER ≥ {}), the smallest species has {} | |",
                100.0 * t,
                l.support_rule.required(*t),
                l.support_rule.min_expected_errors,
                l.min_species_attacks
            );
        }
        let needed = l.support_rule.required(DEFAULT_APCER_TARGETS[0]);
        if l.min_species_attacks < needed as usize {
            let _ = writeln!(
                s,
                "\n**Too few attack presentations.** The smallest PAI species has {} attack \
                 presentations; an APCER of 5% needs at least {} to be stated (n·APCER ≥ {}). \
                 The APCER above is an observation on these samples, not an error rate of the \
                 system; read it with its interval.",
                l.min_species_attacks, needed, l.support_rule.min_expected_errors
            );
        }
        let _ = writeln!(s, "\n![liveness scores](liveness_scores.png)\n");
    }
    for n in &r.notes {
        let _ = writeln!(s, "- {n}");
    }
    s
}

/// Write `report.json`, `summary.md` and the plots (`det`, `roc`, `scores`, `cmc`, `fnir_fpir`,
/// `liveness_scores`, each `.png` and `.svg`, for the sections present) into
/// `dir` (created if missing). Returns the files written.
pub fn write_report(dir: &Path, report: &Report) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| EvalError::io(dir, e))?;
    let mut files = Vec::new();
    let mut put = |name: &str, bytes: &[u8]| -> Result<()> {
        let p = dir.join(name);
        std::fs::write(&p, bytes).map_err(|e| EvalError::io(&p, e))?;
        files.push(p);
        Ok(())
    };
    put(
        "report.json",
        serde_json::to_string_pretty(report)?.as_bytes(),
    )?;
    put("summary.md", markdown_summary(report).as_bytes())?;
    if let Some(v) = &report.verification {
        for (name, kind) in [
            ("det", crate::plot::Plot::Det),
            ("roc", crate::plot::Plot::Roc),
            ("scores", crate::plot::Plot::Scores),
        ] {
            let (png, svg) = crate::plot::render(kind, v, &report.title)?;
            put(&format!("{name}.png"), &png)?;
            put(&format!("{name}.svg"), svg.as_bytes())?;
        }
    }
    if let Some(o) = &report.open_set {
        for (name, png, svg) in crate::plot::render_open_set(o, &report.title)? {
            put(&format!("{name}.png"), &png)?;
            put(&format!("{name}.svg"), svg.as_bytes())?;
        }
    }
    if let Some(l) = &report.liveness {
        let (png, svg) = crate::plot::render_liveness(l, &report.title)?;
        put("liveness_scores.png", &png)?;
        put("liveness_scores.svg", svg.as_bytes())?;
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bootstrap::SplitMix64;
    use crate::kfold::kfold_accuracy;
    use crate::openset::{Candidate, OpenSet, Search};

    /// A labelled synthetic 1:1 set: `subjects` subjects, genuine ~ N(3, 1),
    /// impostor ~ N(0, 1).
    fn synthetic(subjects: u32, g: usize, i: usize) -> ScoreSet {
        let mut r = SplitMix64::new(42);
        let (mut gs, mut gl, mut is, mut il) = (vec![], vec![], vec![], vec![]);
        for s in 0..subjects {
            for _ in 0..g {
                gs.push(0.3 + 0.1 * r.next_normal());
                gl.push(s);
            }
            for _ in 0..i {
                is.push(0.1 * r.next_normal());
                il.push(s);
            }
        }
        ScoreSet::new(gs, is).with_subjects(gl, il).unwrap()
    }

    #[test]
    fn histogram_hand_computed() {
        let h = Histogram::new(&[0.0, 0.1, 0.5, 0.99, 1.0, 2.0, -1.0], 0.0, 1.0, 4).unwrap();
        // bins [0,.25) [.25,.5) [.5,.75) [.75,1]; outside values clamped.
        assert_eq!(h.counts, vec![3, 0, 1, 3]);
        assert!(Histogram::new(&[0.1], 0.0, 1.0, 0).is_err());
    }

    #[test]
    fn verification_report_marks_unsupported_targets() {
        let s = synthetic(100, 2, 40); // 4000 impostors
        let opts = ReportOptions {
            bootstrap: Some(BootstrapConfig {
                replicates: 50,
                ..Default::default()
            }),
            ..Default::default()
        };
        let v = VerificationReport::compute(&s, &opts).unwrap();
        assert_eq!(
            (v.n_genuine, v.n_impostor, v.n_subjects),
            (200, 4000, Some(100))
        );
        // 4000 impostors: 1e-2 and 1e-3 supported (rule of 3), 1e-4.. not.
        let supported: Vec<bool> = v.fnmr_at_fmr.iter().map(|o| o.result.is_some()).collect();
        assert_eq!(supported, vec![true, true, false, false, false]);
        assert_eq!(v.fnmr_at_fmr[2].required_impostors, 30_000);
        assert!(v.fnmr_at_fmr[0].fnmr_ci.is_some());
        assert!(v.eer_ci.is_some());
        let md = markdown_summary(&Report {
            verification: Some(v),
            ..Report::new("t", "p")
        });
        assert!(md.contains("not supported: needs 30000 impostor comparisons, have 4000"));
    }

    #[test]
    fn write_report_writes_all_files() {
        let s = synthetic(300, 3, 100);
        let folds: Vec<ScoreSet> = (0..10)
            .map(|k| {
                ScoreSet::new(
                    s.genuine.iter().skip(k).step_by(10).copied().collect(),
                    s.impostor.iter().skip(k).step_by(10).copied().collect(),
                )
            })
            .collect();
        let opts = ReportOptions {
            bootstrap: Some(BootstrapConfig {
                replicates: 100,
                ..Default::default()
            }),
            ..Default::default()
        };
        let v = VerificationReport::compute(&s, &opts)
            .unwrap()
            .with_kfold(kfold_accuracy(&folds).unwrap());
        let searches: Vec<Search> = (0..40)
            .map(|i| Search {
                probe_subject: i,
                mated: i < 30,
                candidates: vec![
                    Candidate {
                        subject: if i % 7 == 0 || i >= 30 { 1000 + i } else { i },
                        score: 0.5 + f64::from(i) / 100.0,
                    },
                    Candidate {
                        subject: 2000,
                        score: 0.4,
                    },
                ],
            })
            .collect();
        let o = OpenSet::new(&searches)
            .unwrap()
            .summary(&DEFAULT_FPIR_TARGETS, 1)
            .unwrap();
        let pad = PadScores {
            bona_fide: (0..200).map(|i| 0.5 + f64::from(i) / 400.0).collect(),
            attacks: (0..100).map(|i| f64::from(i) / 160.0).collect(),
            attack_species: Some(
                (0..100)
                    .map(|i| if i % 2 == 0 { "print" } else { "replay" }.to_string())
                    .collect(),
            ),
        };
        let l = LivenessReport::compute(
            &pad,
            Some(0.6),
            &DEFAULT_APCER_TARGETS,
            SupportRule::AT_LEAST_ONE,
            30,
        )
        .unwrap();
        let mut r = Report::new("synthetic", "synthetic normal scores, 300 subjects");
        r.verification = Some(v);
        r.open_set = Some(o);
        r.liveness = Some(l);
        r.notes.push("unit test".into());
        let dir = match std::env::var_os("SINHTRAC_EVAL_KEEP_REPORT") {
            Some(d) => std::path::PathBuf::from(d),
            None => {
                std::env::temp_dir().join(format!("sinhtrac-eval-report-{}", std::process::id()))
            }
        };
        let files = write_report(&dir, &r).unwrap();
        let names: Vec<String> = files
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        for want in [
            "report.json",
            "summary.md",
            "det.png",
            "det.svg",
            "roc.png",
            "roc.svg",
            "scores.png",
            "scores.svg",
            "liveness_scores.png",
            "liveness_scores.svg",
            "cmc.png",
            "cmc.svg",
            "fnir_fpir.png",
            "fnir_fpir.svg",
        ] {
            assert!(
                names.iter().any(|n| n == want),
                "{want} missing from {names:?}"
            );
        }
        let png = std::fs::read(dir.join("det.png")).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let svg = std::fs::read_to_string(dir.join("det.svg")).unwrap();
        assert!(svg.contains("<svg") && svg.contains("FNMR"));
        // The PNG is not blank: more than two distinct colours in the image data.
        assert!(png.len() > 10_000, "{}", png.len());
        // The JSON report parses back to the same report.
        let back: Report =
            serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap())
                .unwrap();
        assert_eq!(back.title, r.title);
        assert_eq!(back.verification.as_ref().map(|v| v.n_genuine), Some(900));
        let md = std::fs::read_to_string(dir.join("summary.md")).unwrap();
        assert!(md.contains("| EER |") && md.contains("10-fold accuracy") && md.contains("rank-1"));
        if std::env::var_os("SINHTRAC_EVAL_KEEP_REPORT").is_none() {
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }
}
