//! The face pipeline: detect → select → align → quality → embed → template, and passive liveness.
//!
//! Each stage is its own module and can be run (and timed) alone; [`FaceEngine`] holds the loaded models
//! and the policies (which face to use, quality gate, liveness threshold).

pub mod align;
pub mod detect;
pub mod embed;
pub mod liveness;
pub mod quality;

use image::RgbImage;
use rayon::prelude::*;

pub use detect::{Detection, Detector, FaceBox};
pub use embed::Embedder;
pub use liveness::{LivenessResult, LivenessScorer};
pub use quality::{FaceQuality, QualityThresholds};

use crate::decision::{Calibrations, Decision};
use crate::image::{decode, DecodeLimits, DecodedImage};
use crate::runtime::{Manifest, ModelError, Role, RuntimeConfig};
use crate::template::Template;
use crate::{Error, Result};

/// Why an image gave no usable face.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FaceError {
    /// No face above the detection threshold.
    #[error("no face found in the image")]
    NoFace,
    /// Several faces while the policy asks for exactly one.
    #[error("{count} faces found; exactly one is required")]
    MultipleFaces {
        /// Faces found.
        count: usize,
    },
    /// The selected face is smaller than allowed.
    #[error("face is {size_px:.0} px, smaller than the minimum of {min_px:.0} px")]
    TooSmall {
        /// Shorter side of the face box.
        size_px: f32,
        /// Configured minimum.
        min_px: f32,
    },
    /// A quality measure is outside the enrolment thresholds.
    #[error("face quality too low: {measure} = {value:.2} (limit {limit:.2})")]
    LowQuality {
        /// Which measure.
        measure: &'static str,
        /// Measured value.
        value: f32,
        /// Threshold it failed.
        limit: f32,
    },
    /// The landmarks could not be aligned (degenerate geometry).
    #[error("face landmarks are degenerate; cannot align")]
    AlignmentFailed,
}

impl FaceError {
    /// Stable reason code.
    pub fn reason(&self) -> &'static str {
        match self {
            FaceError::NoFace => "NO_FACE",
            FaceError::MultipleFaces { .. } => "MULTIPLE_FACES",
            FaceError::TooSmall { .. } => "FACE_TOO_SMALL",
            FaceError::LowQuality { .. } => "LOW_QUALITY",
            FaceError::AlignmentFailed => "ALIGNMENT_FAILED",
        }
    }
}

/// Which face to use when an image has several.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MultiFacePolicy {
    /// Use the largest face (a selfie with people behind, an ID card with a ghost image).
    #[default]
    Largest,
    /// Use the face whose box centre is nearest the image centre (a framed portrait: a kiosk camera
    /// that centres the claimant, or a dataset cropped around its subject, as LFW is). Not for a photo
    /// of a whole ID card, whose ghost image or text may lie nearer the centre than the portrait.
    Central,
    /// Refuse the image with [`FaceError::MultipleFaces`].
    Strict,
}

/// Face pipeline configuration.
#[derive(Debug, Clone)]
pub struct FaceConfig {
    /// Where models and the runtime library are.
    pub runtime: RuntimeConfig,
    /// Detector model id (default: the manifest's default detector).
    pub detector: Option<String>,
    /// Embedder model id (default: the manifest's default embedder).
    pub embedder: Option<String>,
    /// Liveness model ids (default: the manifest's default liveness models, scored as an ensemble).
    pub liveness: Option<Vec<String>>,
    /// Override the detector's score threshold.
    pub detection_threshold: Option<f32>,
    /// Several faces: use the largest, or refuse.
    pub multi_face: MultiFacePolicy,
    /// Smallest accepted face (shorter box side, pixels).
    pub min_face_px: f32,
    /// Embed each face and its mirror image and average them (test-time augmentation). Off by default:
    /// it doubles the embedding cost and measured no gain on LFW with the default detector settings.
    pub flip_tta: bool,
    /// Detector score above which a face counts as certain (preferred when choosing, counted in strict mode).
    pub confident_score: f32,
    /// Enrolment quality gate.
    pub quality: QualityThresholds,
    /// Liveness decision threshold on the [0, 1] score.
    pub liveness_threshold: f32,
    /// Image decoding limits.
    pub limits: DecodeLimits,
    /// Folder of calibration files.
    pub calibration_dir: std::path::PathBuf,
    /// The false-match rate decisions are made at, unless a call names another.
    pub target_fmr: f64,
}

impl Default for FaceConfig {
    fn default() -> Self {
        FaceConfig {
            runtime: RuntimeConfig::default(),
            detector: None,
            embedder: None,
            liveness: None,
            detection_threshold: None,
            multi_face: MultiFacePolicy::Largest,
            min_face_px: 32.0,
            confident_score: 0.85,
            flip_tta: false,
            quality: QualityThresholds::default(),
            liveness_threshold: 0.5,
            limits: DecodeLimits::default(),
            calibration_dir: crate::paths::calibration_dir(),
            target_fmr: 1e-4,
        }
    }
}

/// A face found, aligned and measured (everything short of the embedding).
#[derive(Debug, Clone)]
pub struct AlignedFace {
    /// The detection used.
    pub detection: Detection,
    /// Number of faces in the image.
    pub faces_in_image: usize,
    /// Aligned crop at the embedder's input size.
    pub crop: RgbImage,
    /// Quality measures.
    pub quality: FaceQuality,
}

/// A face template with how it was made.
#[derive(Debug, Clone)]
pub struct FaceTemplate {
    /// The versioned template.
    pub template: Template,
    /// The detection it came from.
    pub detection: Detection,
    /// Number of faces in the image.
    pub faces_in_image: usize,
    /// Quality measures.
    pub quality: FaceQuality,
}

impl FaceTemplate {
    /// The L2-normalised feature vector.
    pub fn vector(&self) -> &[f32] {
        self.template.vector().unwrap_or(&[])
    }
}

/// Loaded face models plus policies. Thread-safe: share one behind an `Arc`.
#[derive(Debug)]
pub struct FaceEngine {
    /// The detector.
    pub detector: Detector,
    /// The embedder.
    pub embedder: Embedder,
    /// The liveness scorer.
    pub liveness: LivenessScorer,
    /// Calibrated thresholds.
    pub calibrations: Calibrations,
    config: FaceConfig,
}

impl FaceEngine {
    /// Load every model the configuration names (verifying checksums).
    pub fn load(config: FaceConfig) -> Result<Self> {
        let manifest = Manifest::embedded();
        let pick = |id: &Option<String>, role: Role| -> Result<_, ModelError> {
            match id {
                Some(id) => manifest.get(id),
                None => manifest.default_for(role),
            }
        };
        let det_entry = pick(&config.detector, Role::Detector)?;
        let emb_entry = pick(&config.embedder, Role::Embedder)?;
        let live_entries = match &config.liveness {
            Some(ids) => ids
                .iter()
                .map(|id| manifest.get(id))
                .collect::<Result<Vec<_>, _>>()?,
            None => manifest.defaults(Role::Liveness).collect(),
        };
        let mut detector = Detector::load(det_entry, &config.runtime)?;
        if let Some(t) = config.detection_threshold {
            detector.score_threshold = t;
        }
        let embedder = Embedder::load(emb_entry, &config.runtime)?;
        let liveness =
            LivenessScorer::load(&live_entries, config.liveness_threshold, &config.runtime)?;
        let calibrations = Calibrations::load_dir(&config.calibration_dir)?;
        Ok(FaceEngine {
            detector,
            embedder,
            liveness,
            calibrations,
            config,
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &FaceConfig {
        &self.config
    }

    /// Decode image bytes under the configured limits.
    pub fn decode(&self, bytes: &[u8]) -> Result<DecodedImage> {
        Ok(decode(bytes, &self.config.limits)?)
    }

    /// Apply the face policy to detections (best first) in an image of `width` × `height` pixels: pick
    /// one face or say why not.
    ///
    /// Faces detected with high confidence (≥ [`FaceConfig::confident_score`]) are preferred: a large,
    /// low-confidence box (a face in a poster, a partial face at the frame edge) must not displace the
    /// clear face of the person in front of the camera. Without confident faces, every face counts.
    pub fn select(
        &self,
        detections: &[Detection],
        (width, height): (u32, u32),
    ) -> Result<Detection, FaceError> {
        let confident: Vec<&Detection> = detections
            .iter()
            .filter(|d| d.score >= self.config.confident_score)
            .collect();
        let candidates: Vec<&Detection> = if confident.is_empty() {
            detections.iter().collect()
        } else {
            confident
        };
        let chosen = if self.config.multi_face == MultiFacePolicy::Central {
            let (cx, cy) = (width as f32 / 2.0, height as f32 / 2.0);
            let off_centre = |d: &Detection| {
                let b = &d.bbox;
                (b.x + b.width / 2.0 - cx).hypot(b.y + b.height / 2.0 - cy)
            };
            candidates
                .iter()
                .min_by(|a, b| off_centre(a).total_cmp(&off_centre(b)))
        } else {
            candidates
                .iter()
                .max_by(|a, b| a.bbox.area().total_cmp(&b.bbox.area()))
        }
        .ok_or(FaceError::NoFace)?;
        if self.config.multi_face == MultiFacePolicy::Strict && candidates.len() > 1 {
            return Err(FaceError::MultipleFaces {
                count: candidates.len(),
            });
        }
        let size = chosen.bbox.width.min(chosen.bbox.height);
        if size < self.config.min_face_px {
            return Err(FaceError::TooSmall {
                size_px: size,
                min_px: self.config.min_face_px,
            });
        }
        Ok((*chosen).clone())
    }

    /// Detect, select, align and measure the face of an image.
    pub fn align(&self, img: &RgbImage) -> Result<AlignedFace> {
        let detections = self.detector.detect(img)?;
        let detection = self.select(&detections, img.dimensions())?;
        let crop = align::align_face(img, &detection.landmarks, self.embedder.input_size())
            .ok_or(FaceError::AlignmentFailed)?;
        let quality = quality::measure(&detection, &crop);
        Ok(AlignedFace {
            detection,
            faces_in_image: detections.len(),
            crop,
            quality,
        })
    }

    fn template_of(&self, face: AlignedFace, vector: &[f32]) -> Result<FaceTemplate> {
        let q = face.quality;
        let summary = q.summary();
        let template = Template::face_vector(
            self.embedder.model_id(),
            self.embedder.model_sha256(),
            vector,
            summary,
        )?;
        Ok(FaceTemplate {
            template,
            detection: face.detection,
            faces_in_image: face.faces_in_image,
            quality: q,
        })
    }

    /// Embed aligned crops (with the mirror-image average when configured).
    pub fn embed(&self, crops: &[&RgbImage]) -> Result<Vec<Vec<f32>>, ModelError> {
        let plain = self.embedder.embed(crops)?;
        if !self.config.flip_tta {
            return Ok(plain);
        }
        let mirrored: Vec<RgbImage> = crops
            .iter()
            .map(|c| image::imageops::flip_horizontal(*c))
            .collect();
        let mirrored = self.embedder.embed(&mirrored.iter().collect::<Vec<_>>())?;
        plain
            .iter()
            .zip(&mirrored)
            .map(|(a, b)| {
                let sum: Vec<f32> = a.iter().zip(b).map(|(x, y)| x + y).collect();
                embed::l2_normalised(&sum).ok_or_else(|| {
                    ModelError::inference(self.embedder.model_id(), "zero embedding")
                })
            })
            .collect()
    }

    /// The full pipeline on a decoded image: a template of its face.
    pub fn extract(&self, img: &RgbImage) -> Result<FaceTemplate> {
        let face = self.align(img)?;
        let vector = self
            .embed(&[&face.crop])?
            .into_iter()
            .next()
            .ok_or_else(|| {
                Error::Model(ModelError::inference(
                    self.embedder.model_id(),
                    "no embedding returned",
                ))
            })?;
        self.template_of(face, &vector)
    }

    /// Like [`extract`](Self::extract), and refuse faces below the enrolment quality thresholds.
    pub fn extract_for_enrolment(&self, img: &RgbImage) -> Result<FaceTemplate> {
        let t = self.extract(img)?;
        self.config.quality.check(&t.quality)?;
        Ok(t)
    }

    /// Many images at once (enrolment, evaluation): detection and alignment in parallel with rayon,
    /// embeddings in batches. Results keep the input order; each image succeeds or fails on its own.
    pub fn extract_many(&self, images: &[RgbImage]) -> Vec<Result<FaceTemplate>> {
        let aligned: Vec<Result<AlignedFace>> =
            images.par_iter().map(|img| self.align(img)).collect();
        let crops: Vec<&RgbImage> = aligned
            .iter()
            .filter_map(|a| a.as_ref().ok().map(|f| &f.crop))
            .collect();
        let batch = self.embedder.max_batch().max(8);
        let vectors: Vec<Result<Vec<Vec<f32>>, ModelError>> = crops
            .par_chunks(batch)
            .map(|chunk| self.embed(chunk))
            .collect();
        let mut flat = Vec::with_capacity(crops.len());
        for v in vectors {
            match v {
                Ok(vs) => flat.extend(vs.into_iter().map(Ok)),
                Err(e) => {
                    return aligned
                        .iter()
                        .map(|_| {
                            Err(Error::Model(ModelError::inference(
                                self.embedder.model_id(),
                                &e,
                            )))
                        })
                        .collect()
                }
            }
        }
        let mut vectors = flat.into_iter();
        aligned
            .into_iter()
            .map(|a| {
                let face = a?;
                let v: Result<Vec<f32>, Error> = vectors.next().unwrap_or_else(|| {
                    Err(Error::Model(ModelError::inference(
                        self.embedder.model_id(),
                        "missing embedding",
                    )))
                });
                self.template_of(face, &v?)
            })
            .collect()
    }

    /// Decide whether a face similarity is a match at `target_fmr` (default: the configured one), with
    /// the embedder's calibration. An uncalibrated embedder cannot decide.
    pub fn decide(&self, similarity: f32, target_fmr: Option<f64>) -> Result<Decision> {
        let fmr = target_fmr.unwrap_or(self.config.target_fmr);
        let (id, sha) = (self.embedder.model_id(), self.embedder.model_sha256_hex());
        Ok(self.calibrations.decide(id, sha, similarity, fmr)?)
    }

    /// Passive liveness of the selected face of an image.
    pub fn liveness(&self, img: &RgbImage) -> Result<(Detection, LivenessResult)> {
        let detections = self.detector.detect(img)?;
        let detection = self.select(&detections, img.dimensions())?;
        let result = self.liveness.score(img, &detection.bbox)?;
        Ok((detection, result))
    }
}
