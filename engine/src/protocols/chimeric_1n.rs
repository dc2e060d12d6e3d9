//! Fused identification (1:N) on the chimeric set: does a face + finger search find the person more
//! often, and falsely less often, than either modality alone, with the service's decision rule?
//!
//! **Folds.** As in [`chimeric::evaluate`]: for each pairing seed the 50 chimeric subjects are split in
//! two halves, both ways. The fusion model (maps and the per-configuration thresholds at the target
//! FMR) is learned on the comparisons within the training half only ([`chimeric::fit_model_on`]).
//!
//! **Gallery.** The test half's subjects enrolled with their first sample (face image 1 and
//! impression 1), plus `fillers` face-only subjects: LFW identities with too few images to be paired
//! with a finger (so never a chimeric subject), first image each, sorted by name. Fillers make the
//! face search compete as a real gallery's would; the finger gallery holds only the chimeric subjects
//! (the shared FVC sets have 50 fingers).
//!
//! **Searches.** Mated: every other sample of every test subject (face image *i* with impression *i*).
//! Non-mated: every sample of every training-half subject, none of whom is enrolled.
//!
//! **Decision rules**, each at the target FMR per comparison (thresholds from the fold's model, whose
//! single-modality thresholds are monotone maps of the raw score, so "face alone" is a face-cosine
//! threshold): *face alone*, the best face; *finger alone*, the best finger; *fused* exactly as the
//! service's fused `Identify`: the best `shortlist` subjects by face and by finger are pooled, each is
//! decided on the fused score of the modalities it has (a filler on its face, against the face-only
//! threshold) and the best accepted one is the answer; *fused, exhaustive*: the same over every gallery
//! subject (what the shortlist costs). A mated search succeeds when the best accepted candidate is the
//! right subject (TPIR at rank 1); a non-mated search fails when any candidate is accepted (FPIR).

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::Serialize;
use sinhtrac_eval::fusion::Method;

use super::chimeric::{
    self, sample_face, sorted_names, ChimericProtocol, ChimericScores, Entries, Summary,
};
use super::extract::Extracted;
use super::RunError;
use crate::fusion::{FusionModel, Inputs};

/// Subjects each modality shortlists in the service's fused `Identify` (its `fusion::SHORTLIST`).
pub const SERVICE_SHORTLIST: usize = 50;

/// One gallery subject.
struct Enrolled<'a> {
    /// Chimeric subject index (`None` for a face-only filler).
    subject: Option<usize>,
    face: Option<&'a [f32]>,
    /// Finger sample index, when the subject has a finger.
    finger: Option<usize>,
}

/// One search.
struct Search<'a> {
    /// The enrolled subject sought (`None`: non-mated).
    truth: Option<usize>,
    face: Option<&'a [f32]>,
    finger: usize,
}

/// How often a decision rule found the right subject, and how often it accepted a stranger.
#[derive(Debug, Clone, Serialize)]
pub struct IdentifyRow {
    /// Short name.
    pub name: String,
    /// What the rule is.
    pub description: String,
    /// Per fold: mated searches whose best accepted candidate is the right subject.
    pub tpir: Vec<f64>,
    /// Per fold: non-mated searches with an accepted candidate.
    pub fpir: Vec<f64>,
    /// TPIR (rank 1, at the threshold) over the folds.
    pub tpir_summary: Summary,
    /// FPIR over the folds.
    pub fpir_summary: Summary,
    /// TPIR at each FPIR of [`FPIR_POINTS`], every threshold of the rule moved by one offset chosen on
    /// the non-mated searches of all folds pooled.
    pub tpir_at_fpir: Vec<f64>,
}

/// One candidate of a search: fused score, margin over its threshold, whether it is the subject sought.
type Scored = (f64, f64, bool);

/// One rule's searches pooled over the folds: every candidate of each mated search, the largest margin
/// of each non-mated one.
type Margins = (Vec<Vec<Scored>>, Vec<f64>);

/// FPIRs the report states TPIR at.
pub const FPIR_POINTS: [f64; 2] = [0.01, 0.05];

/// TPIR at FPIR `x` with every threshold of the rule moved by one offset: the offset passes at most `x`
/// of the non-mated searches (a search passes when any candidate does), and a mated search is a hit
/// when, among its candidates that pass, the best by score (the service's answer) is the one sought.
fn tpir_at_fpir(mated: &[Vec<Scored>], non_mated: &[f64], x: f64) -> f64 {
    let mut nm: Vec<f64> = non_mated.to_vec();
    nm.sort_by(|a, b| b.total_cmp(a));
    let allowed = (x * nm.len() as f64).floor() as usize;
    // Pass strictly more than the (allowed + 1)-th highest non-mated margin.
    let passes = |m: f64| nm.get(allowed).is_none_or(|&t| m > t);
    let hits = mated
        .iter()
        .filter(|cands| {
            cands
                .iter()
                .filter(|c| passes(c.1))
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .is_some_and(|c| c.2)
        })
        .count();
    hits as f64 / mated.len().max(1) as f64
}

/// The report of [`evaluate_identification`].
#[derive(Debug, Clone, Serialize)]
pub struct IdentifyReport {
    /// Target FMR per comparison of every threshold.
    pub target_fmr: f64,
    /// Fusion method of the folds' models.
    pub method: Method,
    /// Face-only filler subjects in each gallery.
    pub fillers: usize,
    /// Fillers without a face template (left out).
    pub filler_failures: usize,
    /// Chimeric subjects enrolled per fold (the test half).
    pub enrolled_subjects: usize,
    /// Mated and non-mated searches per fold (first fold).
    pub searches: (usize, usize),
    /// Shortlist per modality of the fused rule.
    pub shortlist: usize,
    /// Folds (2 per seed).
    pub folds: usize,
    /// Rows: face alone, finger alone, fused, fused exhaustive.
    pub rows: Vec<IdentifyRow>,
    /// Seconds of the evaluation (fits and searches).
    pub seconds: f64,
}

/// Face-only fillers: the first image (sorted) of each LFW identity with fewer than the protocol's
/// impressions, sorted by identity, at most `max` (relative to the images folder).
pub fn filler_images(protocol: &ChimericProtocol, max: usize) -> Result<Vec<String>, RunError> {
    let dir = &protocol.images_dir;
    let mut out = Vec::new();
    for name in sorted_names(dir, Entries::Folders)? {
        if out.len() >= max {
            break;
        }
        let files = sorted_names(&dir.join(&name), Entries::Files)?;
        if let Some(first) = files.first().filter(|_| files.len() < protocol.impressions) {
            out.push(format!("{name}/{first}"));
        }
    }
    Ok(out)
}

/// What one decision rule answered for one search.
#[derive(Clone)]
struct Answer {
    /// The best accepted candidate by score (gallery index), if any: the service's answer.
    best: Option<usize>,
    /// Every candidate decided: (gallery index, fused score, margin over its threshold), so that
    /// moving every threshold by one offset traces the rule's TPIR against FPIR.
    decided: Vec<(usize, f64, f64)>,
}

struct Rule<'m> {
    model: &'m FusionModel,
    fmr: f64,
}

impl Rule<'_> {
    fn threshold(&self, face: bool, fingers: u32) -> Result<f64, RunError> {
        self.model
            .threshold_for_fmr(Inputs { face, fingers }, self.fmr)
            .map_err(|e| RunError::Internal(format!("fold model: {e}")))
    }

    /// Decide `candidates` (gallery index, face score, finger score) on the fused score of what each
    /// has; the best accepted one.
    fn fused(
        &self,
        candidates: impl Iterator<Item = (usize, Option<f32>, Option<f32>)>,
    ) -> Result<Answer, RunError> {
        let mut best: Option<(f64, usize)> = None;
        let mut decided = Vec::new();
        for (g, face, finger) in candidates {
            let fingers: Vec<f32> = finger.into_iter().collect();
            if face.is_none() && fingers.is_empty() {
                continue;
            }
            let score = self
                .model
                .fused_score(face, &fingers)
                .map_err(|e| RunError::Internal(e.to_string()))?;
            let t = self.threshold(face.is_some(), fingers.len() as u32)?;
            if score >= t && best.is_none_or(|(s, _)| score > s) {
                best = Some((score, g));
            }
            decided.push((g, score, score - t));
        }
        Ok(Answer {
            best: best.map(|b| b.1),
            decided,
        })
    }
}

/// Indices of the `n` highest scores (ties by index).
fn top(scores: &[(usize, f32)], n: usize) -> Vec<usize> {
    let mut v = scores.to_vec();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(n);
    v.into_iter().map(|x| x.0).collect()
}

/// Answers of the four rules for one search.
fn search(
    rule: &Rule<'_>,
    scores: &ChimericScores,
    gallery: &[Enrolled<'_>],
    s: &Search<'_>,
    shortlist: usize,
) -> Result<[Answer; 4], RunError> {
    // Each gallery subject's face and finger score, computed once for all four rules.
    let face_score: Vec<Option<f32>> = gallery
        .iter()
        .map(|e| match (s.face, e.face) {
            (Some(p), Some(g)) => crate::template::cosine(p, g).ok(),
            _ => None,
        })
        .collect();
    let finger_score: Vec<Option<f32>> = gallery
        .iter()
        .map(|e| {
            e.finger
                .and_then(|g| scores.finger_score(g, s.finger))
                .map(|v| v as f32)
        })
        .collect();
    let present = |v: &[Option<f32>]| -> Vec<(usize, f32)> {
        v.iter()
            .enumerate()
            .filter_map(|(g, x)| x.map(|x| (g, x)))
            .collect()
    };
    let (faces, fingers) = (present(&face_score), present(&finger_score));
    // A single modality: its best candidate, decided on that score alone.
    let best_face = top(&faces, 1).into_iter().map(|g| (g, face_score[g], None));
    let best_finger = top(&fingers, 1)
        .into_iter()
        .map(|g| (g, None, finger_score[g]));
    let both = |g: usize| (g, face_score[g], finger_score[g]);
    let mut pooled = top(&faces, shortlist);
    pooled.extend(top(&fingers, shortlist));
    pooled.sort_unstable();
    pooled.dedup();
    Ok([
        rule.fused(best_face)?,
        rule.fused(best_finger)?,
        rule.fused(pooled.into_iter().map(both))?,
        rule.fused((0..gallery.len()).map(both))?,
    ])
}

/// Cross-validated identification of the four rules ([module docs](self)).
pub fn evaluate_identification(
    protocol: &ChimericProtocol,
    scores: &ChimericScores,
    fillers: &BTreeMap<String, Extracted>,
    seeds: &[u64],
    method: Method,
    target_fmr: f64,
    shortlist: usize,
) -> Result<IdentifyReport, RunError> {
    if seeds.is_empty() {
        return Err(RunError::Internal("no pairing seeds".into()));
    }
    let t0 = std::time::Instant::now();
    let m = protocol.impressions;
    let filler_faces: Vec<&[f32]> = fillers.values().filter_map(Extracted::vector).collect();
    let mut per_rule: [(Vec<f64>, Vec<f64>); 4] = Default::default();
    let mut margins: [Margins; 4] = Default::default();
    let mut searches = (0, 0);
    let mut enrolled_subjects = 0;
    for &seed in seeds {
        let pairing = protocol.pairing(seed);
        let halves = protocol.halves(seed);
        for (train, test) in [(&halves[0], &halves[1]), (&halves[1], &halves[0])] {
            let model = chimeric::fit_model_on(protocol, scores, method, seed, train, "fold")?;
            let rule = Rule {
                model: &model,
                fmr: target_fmr,
            };
            let face =
                |s: usize, i: usize| scores.face_vector(sample_face(protocol, &pairing, s, i));
            let gallery: Vec<Enrolled<'_>> = test
                .iter()
                .map(|&s| Enrolled {
                    subject: Some(s),
                    face: face(s, 0),
                    finger: Some(s * m),
                })
                .chain(filler_faces.iter().map(|&f| Enrolled {
                    subject: None,
                    face: Some(f),
                    finger: None,
                }))
                .collect();
            let mated = test
                .iter()
                .flat_map(|&s| (1..m).map(move |i| (s, i, Some(s))));
            let non_mated = train
                .iter()
                .flat_map(|&s| (0..m).map(move |i| (s, i, None)));
            let probes: Vec<Search<'_>> = mated
                .chain(non_mated)
                .map(|(s, i, truth)| Search {
                    truth,
                    face: face(s, i),
                    finger: s * m + i,
                })
                .collect();
            let answers: Vec<[Answer; 4]> = probes
                .par_iter()
                .map(|p| search(&rule, scores, &gallery, p, shortlist))
                .collect::<Result<_, _>>()?;
            let n_mated = probes.iter().filter(|p| p.truth.is_some()).count();
            let n_non = probes.len() - n_mated;
            if searches == (0, 0) {
                searches = (n_mated, n_non);
                enrolled_subjects = test.len();
            }
            for (r, (tpir, fpir)) in per_rule.iter_mut().enumerate() {
                let hits = probes
                    .iter()
                    .zip(&answers)
                    .filter(|(p, a)| {
                        p.truth.is_some() && a[r].best.and_then(|g| gallery[g].subject) == p.truth
                    })
                    .count();
                let false_pos = probes
                    .iter()
                    .zip(&answers)
                    .filter(|(p, a)| p.truth.is_none() && a[r].best.is_some())
                    .count();
                tpir.push(hits as f64 / n_mated.max(1) as f64);
                fpir.push(false_pos as f64 / n_non.max(1) as f64);
                for (p, a) in probes.iter().zip(&answers) {
                    let decided = &a[r].decided;
                    match p.truth {
                        Some(t) => margins[r].0.push(
                            decided
                                .iter()
                                .map(|&(g, score, margin)| {
                                    (score, margin, gallery[g].subject == Some(t))
                                })
                                .collect(),
                        ),
                        None => margins[r].1.push(
                            decided
                                .iter()
                                .map(|d| d.2)
                                .fold(f64::NEG_INFINITY, f64::max),
                        ),
                    }
                }
            }
        }
    }
    let names = [
        ("face", "face alone (best cosine)".to_string()),
        ("finger", "finger alone (best MCC)".to_string()),
        (
            "fused",
            format!("fused, service rule (each modality's best {shortlist} pooled)"),
        ),
        (
            "fused-exhaustive",
            "fused over every gallery subject".to_string(),
        ),
    ];
    let rows = names
        .into_iter()
        .zip(per_rule)
        .zip(margins)
        .map(
            |(((name, description), (tpir, fpir)), (mated, non_mated))| IdentifyRow {
                name: name.into(),
                description,
                tpir_summary: Summary::of(&tpir),
                fpir_summary: Summary::of(&fpir),
                tpir_at_fpir: FPIR_POINTS
                    .iter()
                    .map(|&x| tpir_at_fpir(&mated, &non_mated, x))
                    .collect(),
                tpir,
                fpir,
            },
        )
        .collect();
    Ok(IdentifyReport {
        target_fmr,
        method,
        fillers: filler_faces.len(),
        filler_failures: fillers.len() - filler_faces.len(),
        enrolled_subjects,
        searches,
        shortlist,
        folds: 2 * seeds.len(),
        rows,
        seconds: t0.elapsed().as_secs_f64(),
    })
}
