//! Turning a request's `Biometric` (face image, fingerprint image or template) into a probe of the
//! gallery's face embedding space or finger space, with quality and, when asked, face liveness. Runs on
//! a worker thread; checks the deadline between stages.

use std::time::Instant;

use sinhtrac_engine::face::FaceQuality;
use sinhtrac_engine::template::{Modality, QualitySummary, Template};
use sinhtrac_finger::{FingerPosition, FingerTemplate};
use tonic::{Code, Status};

use super::errors::{self, status, Reason};
use super::handlers::Shared;
use super::limits::Cancel;
use crate::proto;

/// What a probe carries, by modality.
pub enum Captured {
    /// L2-normalised face embedding.
    Face(Vec<f32>),
    /// Fingerprint minutiae and the finger position the caller named (unknown for templates).
    Finger {
        /// Minutiae at 500 dpi.
        minutiae: FingerTemplate,
        /// ISO/IEC 19794-2 position.
        position: FingerPosition,
    },
}

/// A probe ready to compare.
pub struct Probe {
    /// The face vector or finger minutiae.
    pub captured: Captured,
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
        ..proto::Quality::default()
    }
}

/// The quality reported for a fingerprint: minutiae count and their mean quality.
fn finger_quality(m: &FingerTemplate, overall: f32) -> proto::Quality {
    proto::Quality {
        minutiae: m.minutiae.len() as u32,
        finger_quality: overall,
        ..proto::Quality::default()
    }
}

/// The quality recorded in a stored template of the served face or finger space (`None` for a row
/// that no longer decodes or belongs to another model).
pub fn stored_quality(s: &Shared, bytes: &[u8]) -> Option<proto::Quality> {
    let t = Template::decode(bytes).ok()?;
    match t.modality {
        Modality::Finger => {
            let minutiae = s.fingers.space().minutiae_of(&t).ok()?;
            Some(finger_quality(&minutiae, t.quality.overall))
        }
        Modality::Face => {
            s.gallery.space().check(&t).ok()?;
            Some(quality_of_summary(&t.quality))
        }
    }
}

/// Extract (or validate) a probe.
pub fn extract(
    s: &Shared,
    bio: Option<&proto::Biometric>,
    opts: ProbeOptions,
    cancel: &Cancel,
) -> Result<Probe, Status> {
    use proto::biometric::Source;
    let (engine, metrics) = (&s.engine, &s.metrics);
    let source = bio.and_then(|b| b.source.as_ref()).ok_or_else(|| {
        errors::invalid("a biometric (face image, fingerprint image or template) is required")
    })?;
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
                captured: Captured::Face(face.vector().to_vec()),
                template: face.template.encode(),
                quality: quality_of(&face.quality, face.faces_in_image),
                quality_score: face.quality.detection_score,
                liveness,
            })
        }
        Source::Template(bytes) => {
            let decoded = Template::decode(bytes).map_err(errors::template)?;
            if decoded.modality == Modality::Finger {
                if opts.liveness {
                    return Err(status(
                        Code::InvalidArgument,
                        Reason::ModalityUnsupported,
                        "liveness is checked on face images only",
                    ));
                }
                let position = bio
                    .and_then(|b| u8::try_from(b.finger_position).ok())
                    .and_then(|p| FingerPosition::new(p).ok())
                    .ok_or_else(|| errors::invalid("finger_position must be 0-10"))?;
                let minutiae = s
                    .fingers
                    .space()
                    .minutiae_of(&decoded)
                    .map_err(errors::template)?;
                return Ok(Probe {
                    quality: finger_quality(&minutiae, decoded.quality.overall),
                    captured: Captured::Finger { minutiae, position },
                    template: bytes.clone(),
                    quality_score: decoded.quality.overall,
                    liveness: None,
                });
            }
            s.gallery
                .space()
                .check(&decoded)
                .map_err(errors::template)?;
            let vector = decoded.vector().map(<[f32]>::to_vec).unwrap_or_default();
            Ok(Probe {
                captured: Captured::Face(vector),
                template: bytes.clone(),
                quality: quality_of_summary(&decoded.quality),
                quality_score: decoded.quality.detection_score,
                liveness: None,
            })
        }
        Source::FingerImage(img) => {
            if opts.liveness {
                return Err(status(
                    Code::InvalidArgument,
                    Reason::ModalityUnsupported,
                    "liveness is checked on face images only",
                ));
            }
            if img.data.is_empty() {
                return Err(status(
                    Code::InvalidArgument,
                    Reason::ImageEmpty,
                    "the fingerprint image is empty",
                ));
            }
            let t0 = Instant::now();
            let capture = s
                .fingers
                .extract_image(&img.data, img.dpi, img.position)
                .map_err(errors::fingerprint)?;
            metrics.stage("finger_extract", t0.elapsed().as_secs_f64());
            let overall = capture.template.quality.overall;
            Ok(Probe {
                quality: finger_quality(&capture.minutiae, overall),
                template: capture.template.encode(),
                captured: Captured::Finger {
                    minutiae: capture.minutiae,
                    position: capture.position,
                },
                quality_score: overall,
                liveness: None,
            })
        }
    }
}
