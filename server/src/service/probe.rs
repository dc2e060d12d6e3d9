//! Turning a request's `Biometric` (image or template) into a vector of the gallery's embedding space,
//! with quality and, when asked, liveness. Runs on a worker thread; checks the deadline between stages.

use std::time::Instant;

use sinhtrac_engine::face::{FaceEngine, FaceQuality};
use sinhtrac_engine::gallery::EmbeddingSpace;
use sinhtrac_engine::template::QualitySummary;
use tonic::{Code, Status};

use super::errors::{self, status, Reason};
use super::limits::Cancel;
use super::metrics::Metrics;
use crate::proto;

/// A probe ready to compare.
pub struct Probe {
    /// L2-normalised embedding.
    pub vector: Vec<f32>,
    /// Encoded template (returned to callers for caching, stored on enrolment).
    pub template: Vec<u8>,
    /// Quality of the face (image probes), or the template's quality summary.
    pub quality: proto::Quality,
    /// Quality score stored with an enrolled template.
    pub quality_score: f32,
    /// Liveness when asked (image probes only).
    pub liveness: Option<proto::Liveness>,
}

/// Options for one extraction.
#[derive(Clone, Copy, Default)]
pub struct ProbeOptions {
    /// Apply the enrolment quality gate.
    pub enrolment: bool,
    /// Score liveness (image probes).
    pub liveness: bool,
}

fn quality_of(q: &FaceQuality, faces: usize) -> proto::Quality {
    proto::Quality {
        faces_in_image: faces as u32,
        ..quality_of_summary(&q.summary())
    }
}

/// The quality a template carries (faces in the image unknown: 0).
pub fn quality_of_summary(q: &QualitySummary) -> proto::Quality {
    proto::Quality {
        detection_score: q.detection_score,
        inter_eye_px: q.inter_eye_px,
        sharpness: q.sharpness,
        brightness: q.brightness,
        yaw_deg: q.yaw_deg,
        pitch_deg: q.pitch_deg,
        roll_deg: q.roll_deg,
        faces_in_image: 0,
    }
}

/// Extract (or validate) a probe.
pub fn extract(
    engine: &FaceEngine,
    space: &EmbeddingSpace,
    bio: Option<&proto::Biometric>,
    opts: ProbeOptions,
    cancel: &Cancel,
    metrics: &Metrics,
) -> Result<Probe, Status> {
    use proto::biometric::Source;
    let source = bio
        .and_then(|b| b.source.as_ref())
        .ok_or_else(|| errors::invalid("a biometric (face image or template) is required"))?;
    match source {
        Source::FaceImage(img) => {
            if img.data.is_empty() {
                return Err(status(
                    Code::InvalidArgument,
                    Reason::ImageEmpty,
                    "the image is empty",
                ));
            }
            let t0 = Instant::now();
            let decoded = engine.decode(&img.data).map_err(errors::engine)?;
            metrics.stage("decode", t0.elapsed().as_secs_f64());
            cancel.check()?;
            let t1 = Instant::now();
            let face = if opts.enrolment {
                engine.extract_for_enrolment(&decoded.rgb)
            } else {
                engine.extract(&decoded.rgb)
            }
            .map_err(errors::engine)?;
            metrics.stage("extract", t1.elapsed().as_secs_f64());
            let liveness = if opts.liveness {
                cancel.check()?;
                let t2 = Instant::now();
                let l = engine
                    .liveness
                    .score(&decoded.rgb, &face.detection.bbox)
                    .map_err(errors::model)?;
                metrics.stage("liveness", t2.elapsed().as_secs_f64());
                Some(proto::Liveness {
                    score: l.score,
                    threshold: l.threshold,
                    live: l.live,
                    model_ids: l.models.iter().map(|m| m.model.clone()).collect(),
                })
            } else {
                None
            };
            Ok(Probe {
                vector: face.vector().to_vec(),
                template: face.template.encode(),
                quality: quality_of(&face.quality, face.faces_in_image),
                quality_score: face.quality.detection_score,
                liveness,
            })
        }
        Source::Template(bytes) => {
            let t = space.accept(bytes).map_err(errors::template)?;
            let vector = t.vector().map(<[f32]>::to_vec).unwrap_or_default();
            Ok(Probe {
                vector,
                template: bytes.clone(),
                quality: quality_of_summary(&t.quality),
                quality_score: t.quality.detection_score,
                liveness: None,
            })
        }
        Source::FingerImage(_) => Err(status(
            Code::InvalidArgument,
            Reason::ModalityUnsupported,
            "fingerprint probes are not served yet",
        )),
    }
}
