//! Decisions over several probes (a face and fingerprints) with the server's fusion model: the fused
//! Verify, and the scoring stage of a fused Identify. Both score a probe against a subject the same
//! way, so a subject's fused score in an identification equals its fused verification score.

use sinhtrac_engine::fusion::{FusionError, FusionModel, Inputs};
use sinhtrac_engine::gallery::SubjectTemplates;
use sinhtrac_finger::{FingerPosition, Matcher};
use tonic::{Code, Status};

use super::errors::{self, status, Reason};
use super::handlers::{dot, finger_score_at, require_position, target_fmr, Scorer, Shared};
use super::limits::Cancel;
use super::probe::{Captured, Probe};
use crate::proto;

/// Most probes (the primary and the additional ones) one request may fuse.
pub const MAX_PROBES: usize = 8;

/// Subjects each modality's search shortlists for a fused identification (at least `top_k`).
pub const SHORTLIST: usize = 50;

/// One probe's score against a subject: the probe's index in the request, its modality, the score.
pub type Scored = (usize, Scorer, f32);

/// A probe ready to search with and to score against many subjects: a finger's cylinders are built
/// once, not once per search or subject.
pub enum Prepared {
    /// A face embedding.
    Face(Vec<f32>),
    /// A finger's matcher and its (known) position.
    Finger(Matcher, FingerPosition),
}

impl Prepared {
    /// Prepare `p`; a finger needs its position (`what` names the operation in the error).
    pub fn new(p: &Probe, what: &str) -> Result<Self, Status> {
        Ok(match &p.captured {
            Captured::Face(v) => Prepared::Face(v.clone()),
            Captured::Finger { minutiae, position } => {
                require_position(*position, what)?;
                Prepared::Finger(Matcher::new(minutiae), *position)
            }
        })
    }

    /// The pipeline whose scores this probe gives.
    pub fn scorer(&self) -> Scorer {
        match self {
            Prepared::Face(_) => Scorer::Face,
            Prepared::Finger(..) => Scorer::Finger,
        }
    }

    /// The score against the subject's templates of this modality (best face; the finger at the
    /// probe's position), or `None` when the subject has none to compare with.
    pub fn score(&self, enrolled: &SubjectTemplates) -> Option<f32> {
        match self {
            Prepared::Face(v) => enrolled.faces.iter().map(|e| dot(e, v)).reduce(f32::max),
            Prepared::Finger(m, position) => finger_score_at(m, *position, &enrolled.fingers),
        }
    }
}

/// The subject has nothing to compare `p` with (a 1:1 verification's error).
pub fn no_template(p: &Probe) -> Status {
    let what = match p.captured {
        Captured::Face(_) => "face",
        Captured::Finger { .. } => "fingerprint (at this position)",
    };
    status(
        Code::FailedPrecondition,
        Reason::TemplateModelMismatch,
        format!("the subject has no {what} template of the served model"),
    )
}

/// Refuse more than one face, and two captures of one finger position: the best of several faces
/// against a one-comparison threshold would let through more impostors than the stated FMR (and
/// several captures are a way around liveness); two impressions of one finger are not the
/// independent fingers the fused score adds up.
pub fn one_capture_per_face_and_finger(probes: &[Probe], what: &str) -> Result<(), Status> {
    let faces = probes
        .iter()
        .filter(|p| matches!(p.captured, Captured::Face(_)))
        .count();
    if faces > 1 {
        return Err(errors::invalid(format!(
            "at most one face probe per {what}"
        )));
    }
    let mut positions: Vec<FingerPosition> = probes
        .iter()
        .filter_map(|p| match &p.captured {
            Captured::Finger { position, .. } if *position != FingerPosition::UNKNOWN => {
                Some(*position)
            }
            _ => None,
        })
        .collect();
    let n = positions.len();
    positions.sort_unstable();
    positions.dedup();
    if positions.len() < n {
        return Err(errors::invalid(format!(
            "two fingerprints of the same finger position in one {what}"
        )));
    }
    Ok(())
}

/// Refuse more than [`MAX_PROBES`] probes.
pub fn check_probe_count(additional: usize, what: &str) -> Result<(), Status> {
    if 1 + additional > MAX_PROBES {
        return Err(errors::invalid(format!(
            "at most {MAX_PROBES} probes per {what}"
        )));
    }
    Ok(())
}

fn model(s: &Shared) -> Result<&FusionModel, Status> {
    s.fusion.as_ref().ok_or_else(|| {
        status(
            Code::FailedPrecondition,
            Reason::ModelUncalibrated,
            "no fusion model for the served face and fingerprint pipelines is installed",
        )
    })
}

/// A fusion error as a status: a point the caller asked for is their error, the configured one
/// missing is the server's.
fn fusion_status(e: FusionError, requested: f64) -> Status {
    match e {
        FusionError::NotCalibrated { .. } if requested != 0.0 => {
            errors::invalid(format!("target_fmr {requested}: {e}"))
        }
        FusionError::NotCalibrated { .. } => status(
            Code::FailedPrecondition,
            Reason::ModelUncalibrated,
            e.to_string(),
        ),
        other => errors::internal(&other),
    }
}

fn split(scored: &[Scored]) -> (Option<f32>, Vec<f32>) {
    let face = scored
        .iter()
        .find(|(_, k, _)| *k == Scorer::Face)
        .map(|(_, _, v)| *v);
    let fingers = scored
        .iter()
        .filter(|(_, k, _)| *k == Scorer::Finger)
        .map(|(_, _, v)| *v)
        .collect();
    (face, fingers)
}

/// The fused decision over several probes' scores (at most one face; each finger counts).
pub fn fused_decision(
    s: &Shared,
    scored: &[Scored],
    requested: f64,
) -> Result<proto::Decision, Status> {
    let fmr = target_fmr(requested, s.config.target_fmr)?;
    let (face, fingers) = split(scored);
    let d = model(s)?
        .decide(face, &fingers, fmr)
        .map_err(|e| fusion_status(e, requested))?;
    Ok(proto::Decision {
        score: d.score as f32,
        threshold: d.threshold as f32,
        target_fmr: d.target_fmr,
        r#match: d.accept,
        model_id: d.model_id,
        calibration: d.calibration,
    })
}

/// The fused threshold and FMR for a subject compared with every probe; fails before any search when
/// the fusion model has no threshold at the FMR for this set of probes or any part of it (a
/// shortlisted subject without a template for some probe is decided on the others).
pub fn fused_threshold(
    s: &Shared,
    probes: &[Prepared],
    requested: f64,
) -> Result<(f32, f64, String), Status> {
    let fmr = target_fmr(requested, s.config.target_fmr)?;
    let fingers = probes
        .iter()
        .filter(|p| p.scorer() == Scorer::Finger)
        .count();
    let all = Inputs {
        face: probes.len() > fingers,
        fingers: u32::try_from(fingers).unwrap_or(u32::MAX),
    };
    let model = model(s)?;
    let mut full = None;
    let faces: &[bool] = if all.face { &[false, true] } else { &[false] };
    for &face in faces {
        for fingers in 0..=all.fingers {
            let inputs = Inputs { face, fingers };
            if !face && fingers == 0 {
                continue;
            }
            let t = model
                .threshold_for_fmr(inputs, fmr)
                .map_err(|e| fusion_status(e, requested))?;
            if inputs == all {
                full = Some(t);
            }
        }
    }
    let t = full.ok_or_else(|| errors::invalid("a fused decision needs at least one probe"))?;
    Ok((t as f32, fmr, model.model_id.clone()))
}

/// The API's per-probe scores.
pub fn probe_scores(s: &Shared, scored: &[Scored]) -> Vec<proto::ProbeScore> {
    scored
        .iter()
        .map(|(i, k, v)| proto::ProbeScore {
            modality: k.modality() as i32,
            score: *v,
            model_id: k.model_id(s),
            probe_index: *i as u32,
        })
        .collect()
}

/// The fused identification's decision stage: score every shortlisted subject with every probe it has
/// a template for, fuse, keep those at or above their fused threshold, best first, at most `k`.
pub fn rank_shortlist(
    s: &Shared,
    tenant: &str,
    shortlist: &[String],
    probes: &[Prepared],
    requested: f64,
    k: usize,
    cancel: &Cancel,
) -> Result<Vec<proto::Candidate>, Status> {
    let t0 = std::time::Instant::now();
    let mut accepted = Vec::new();
    for subject_id in shortlist {
        cancel.check()?;
        let enrolled = match s.gallery.subject_templates(tenant, subject_id) {
            Ok(e) => e,
            // Deleted since the search: no longer a candidate.
            Err(e) if e.reason() == "SUBJECT_NOT_FOUND" => continue,
            Err(e) => return Err(errors::gallery(e)),
        };
        let scored: Vec<Scored> = probes
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.score(&enrolled).map(|v| (i, p.scorer(), v)))
            .collect();
        if scored.is_empty() {
            continue;
        }
        let d = fused_decision(s, &scored, requested)?;
        if d.r#match {
            accepted.push(proto::Candidate {
                subject_id: subject_id.clone(),
                score: d.score,
                rank: 0,
                modality: proto::Modality::Fused as i32,
                probe_scores: probe_scores(s, &scored),
                threshold: d.threshold,
            });
        }
    }
    accepted.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.subject_id.cmp(&b.subject_id))
    });
    accepted.truncate(k);
    s.metrics.stage("fused_rescore", t0.elapsed().as_secs_f64());
    for (i, c) in accepted.iter_mut().enumerate() {
        c.rank = i as u32 + 1;
    }
    Ok(accepted)
}
