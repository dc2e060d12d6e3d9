//! Face + fingerprint score fusion at a stated false-match rate.
//!
//! A [`FusionModel`] turns a face score (cosine of embeddings) and any number of fingerprint scores
//! (MCC, `[0, 1]`) into one fused score: each score goes through its modality's learned
//! normalisation ([`ScoreMap`], for the shipped model a log-likelihood ratio learned from genuine and
//! impostor scores, see [`sinhtrac_eval::fusion`]), and the results are added with the model's weights:
//!
//! `fused = w_face · face_map(face) + w_finger · Σ_k finger_map(finger_k)`
//!
//! With LLR maps this is the sum of log-likelihood ratios: a missing modality adds 0 (no evidence),
//! several fingers add their LLRs (Bayes under independent fingers). Weights are ≥ 0 and maps
//! non-decreasing, so the fused score never decreases when any input score increases.
//!
//! Thresholds are per input configuration ([`Inputs`]): the impostor distribution of a face-only
//! fused score is not that of face + finger, so each configuration has its own calibration (the
//! usual [`Calibration`] body, target FMR → threshold). The shipped models calibrate face + one finger,
//! face only, one finger only, and face + two fingers and two fingers only (pairs of independent finger
//! impostor comparisons: the independence the LLR sum assumes anyway). A configuration without
//! thresholds (three or more fingers) is refused with [`FusionError::NotCalibrated`] rather than given
//! a guessed threshold; its fused score is still usable for ranking in 1:N.
//!
//! **File format** (JSON, `format_version` [`FUSION_VERSION`]), as calibration files:
//! `{"format":"sinhtrac-fusion","format_version":1,"body":{…},"sha256":"<hex>"}`, the checksum over
//! the compact serialisation of `body`. Each embedded calibration names the fusion model id and, as
//! its model hash, the sha256 of the normalisation parameters ([`FusionModel::parameters_sha256`]),
//! so thresholds cannot be paired with other maps.
//!
//! ```no_run
//! use sinhtrac_engine::fusion::{FusionModel, Inputs};
//! let model = FusionModel::load(&FusionModel::default_path())?;
//! let d = model.decide(Some(0.31), &[0.12], 1e-3)?;
//! assert_eq!(d.inputs, Inputs { face: true, fingers: 1 });
//! println!("fused {:.2} vs {:.2}: {}", d.score, d.threshold, d.accept);
//! # Ok::<(), sinhtrac_engine::fusion::FusionError>(())
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use sinhtrac_eval::fusion::{FittedFusion, Method, ScoreMap};
use sinhtrac_eval::{Calibration, EvalError, Modality};

/// Format name stored in every fusion file.
pub const FUSION_FORMAT: &str = "sinhtrac-fusion";
/// Fusion file format version this build writes and reads.
pub const FUSION_VERSION: u32 = 1;
/// File name of the shipped model (in the calibration folder).
pub const DEFAULT_FILE: &str = "fusion-mobilefacenet-128-classical.json";
/// How several fingerprint scores combine (the only rule of format version 1).
pub const MULTI_FINGER_SUM: &str = "sum";

/// Why a fusion model could not be loaded or applied.
#[derive(Debug, thiserror::Error)]
pub enum FusionError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid JSON or does not have the expected fields.
    #[error("fusion file: JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Not a fusion file, or its content is invalid (non-monotone map, negative weight...).
    #[error("fusion file: {reason}")]
    Format {
        /// What is wrong.
        reason: String,
    },
    /// A format version this build does not read.
    #[error("fusion file format version {found} is not supported (this build reads {supported})")]
    Version {
        /// Version in the file.
        found: u64,
        /// Version this build reads.
        supported: u32,
    },
    /// The checksum does not match the content.
    #[error("fusion file checksum mismatch: stored {stored}, computed {computed}")]
    Checksum {
        /// Stored checksum.
        stored: String,
        /// Checksum of the content as read.
        computed: String,
    },
    /// Neither a face nor a fingerprint score was given.
    #[error("nothing to fuse: no face score and no fingerprint score")]
    NoInput,
    /// An input score is NaN or infinite.
    #[error("{which} score {value} is not finite")]
    NonFinite {
        /// "face" or "finger".
        which: &'static str,
        /// The value.
        value: f32,
    },
    /// No threshold for this input configuration or target FMR.
    #[error("fusion of {inputs} is not calibrated at FMR {target_fmr}: {detail}")]
    NotCalibrated {
        /// Input configuration asked for.
        inputs: Inputs,
        /// Target FMR asked for.
        target_fmr: f64,
        /// Why.
        detail: String,
    },
    /// A calibration could not be built (too few impostors...).
    #[error(transparent)]
    Eval(#[from] EvalError),
}

/// Which scores a fused comparison has: the configuration a threshold is calibrated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inputs {
    /// A face score is present.
    pub face: bool,
    /// Number of fingerprint scores.
    pub fingers: u32,
}

impl Inputs {
    /// The configurations a one-finger chimeric set calibrates: face + one finger, face only, one
    /// finger only.
    pub const ONE_FINGER_CONFIGURATIONS: [Inputs; 3] = [
        Inputs {
            face: true,
            fingers: 1,
        },
        Inputs {
            face: true,
            fingers: 0,
        },
        Inputs {
            face: false,
            fingers: 1,
        },
    ];

    /// The two-finger configurations, calibrated from pairs of independent finger impostor
    /// comparisons: face + two fingers, two fingers only.
    pub const TWO_FINGER_CONFIGURATIONS: [Inputs; 2] = [
        Inputs {
            face: true,
            fingers: 2,
        },
        Inputs {
            face: false,
            fingers: 2,
        },
    ];

    /// The configuration of a call.
    pub fn of(face: Option<f32>, fingers: &[f32]) -> Self {
        Inputs {
            face: face.is_some(),
            fingers: u32::try_from(fingers.len()).unwrap_or(u32::MAX),
        }
    }
}

impl std::fmt::Display for Inputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.face, self.fingers) {
            (true, 0) => f.write_str("face only"),
            (false, n) => write!(f, "{n} finger(s) only"),
            (true, n) => write!(f, "face + {n} finger(s)"),
        }
    }
}

/// The thresholds of one input configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputsCalibration {
    /// Configuration.
    pub inputs: Inputs,
    /// Target FMR → fused-score threshold (modality "fusion").
    pub calibration: Calibration,
}

/// Where the model came from: models, data and counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// Face embedder model id whose cosine scores the face map takes.
    pub face_model_id: String,
    /// SHA-256 of that model file.
    pub face_model_sha256: String,
    /// Fingerprint extractor whose templates were matched.
    pub finger_extractor: String,
    /// Fingerprint matcher whose scores the finger map takes.
    pub finger_matcher: String,
    /// sha256 (hex) of the finger space the finger scores came from: extractor version and settings
    /// (LEADER's detection threshold) and matcher. The service uses the model only for that space.
    /// Absent in models written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finger_space_sha256: Option<String>,
    /// Data and protocol the maps and thresholds were learned on.
    pub protocol: String,
    /// Chimeric subjects.
    pub subjects: u64,
    /// Genuine comparisons the maps were learned from.
    pub n_genuine: u64,
    /// Impostor comparisons the maps were learned from.
    pub n_impostor: u64,
}

/// A fusion model: normalisation maps, weights, provenance and thresholds ([module docs](self)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FusionModel {
    /// Identifier (e.g. "fusion-mobilefacenet-128-classical").
    pub model_id: String,
    /// How the maps were learned.
    pub method: Method,
    /// Face score → normalised (LLR) score.
    pub face: ScoreMap,
    /// Fingerprint score → normalised (LLR) score.
    pub finger: ScoreMap,
    /// Face weight (≥ 0).
    pub face_weight: f64,
    /// Fingerprint weight (≥ 0).
    pub finger_weight: f64,
    /// How several fingers combine: always [`MULTI_FINGER_SUM`].
    pub multi_finger: String,
    /// Models, data, counts.
    pub provenance: Provenance,
    /// Thresholds per input configuration.
    pub calibrations: Vec<InputsCalibration>,
    /// Software that wrote the model.
    pub created_by: String,
}

#[derive(Serialize, Deserialize)]
struct FileRepr {
    format: String,
    format_version: u32,
    body: FusionModel,
    sha256: String,
}

/// A fused decision with what is needed to audit it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FusedDecision {
    /// Fused score.
    pub score: f64,
    /// Threshold applied (accept iff score ≥ threshold).
    pub threshold: f64,
    /// Target FMR of the threshold.
    pub target_fmr: f64,
    /// Match or not.
    pub accept: bool,
    /// Input configuration.
    pub inputs: Inputs,
    /// Fusion model id.
    pub model_id: String,
    /// Where the threshold came from.
    pub calibration: String,
}

fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

fn format_err(reason: impl Into<String>) -> FusionError {
    FusionError::Format {
        reason: reason.into(),
    }
}

impl FusionModel {
    /// The shipped model's path: `<calibration dir>/fusion-mobilefacenet-128-classical.json`.
    pub fn default_path() -> PathBuf {
        crate::paths::calibration_dir().join(DEFAULT_FILE)
    }

    /// Where the model for a face model and a fingerprint extractor lives:
    /// `<calibration dir>/fusion-<face model id>-<extractor>.json` (what `sinhtrac eval fusion
    /// --write-model` is told to write, and what the service looks for).
    pub fn path_for(face_model_id: &str, finger_extractor: &str) -> PathBuf {
        crate::paths::calibration_dir().join(format!(
            "{}.json",
            Self::id_for(face_model_id, finger_extractor)
        ))
    }

    /// The model id for a face model and a fingerprint extractor, e.g.
    /// `fusion-mobilefacenet-128-classical`.
    pub fn id_for(face_model_id: &str, finger_extractor: &str) -> String {
        format!("fusion-{face_model_id}-{finger_extractor}")
    }

    /// A model from a learned fusion; thresholds are added with [`FusionModel::calibrate`].
    pub fn new(model_id: &str, fitted: &FittedFusion, provenance: Provenance) -> Self {
        FusionModel {
            model_id: model_id.into(),
            method: fitted.method,
            face: fitted.face.clone(),
            finger: fitted.finger.clone(),
            face_weight: fitted.face_weight,
            finger_weight: fitted.finger_weight,
            multi_finger: MULTI_FINGER_SUM.into(),
            provenance,
            calibrations: Vec::new(),
            created_by: concat!("sinhtrac-engine ", env!("CARGO_PKG_VERSION")).into(),
        }
    }

    /// SHA-256 of the normalisation parameters (method, maps, weights, multi-finger rule): the
    /// "model hash" every embedded calibration must carry.
    pub fn parameters_sha256(&self) -> Result<String, FusionError> {
        let params = (
            &self.method,
            &self.face,
            &self.finger,
            self.face_weight,
            self.finger_weight,
            &self.multi_finger,
        );
        Ok(sha256_hex(&serde_json::to_vec(&params)?))
    }

    /// Add (or replace) the thresholds of `inputs` from fused impostor scores of that configuration.
    /// Targets the impostor count does not support are listed in the calibration as unsupported.
    pub fn calibrate(
        &mut self,
        inputs: Inputs,
        fused_impostors: &[f64],
        targets: &[f64],
        protocol: &str,
    ) -> Result<(), FusionError> {
        let cal = Calibration::from_impostors(
            &self.model_id,
            &self.parameters_sha256()?,
            Modality::Fusion,
            fused_impostors,
            targets,
        )?
        .with_protocol(protocol);
        self.calibrations.retain(|c| c.inputs != inputs);
        self.calibrations.push(InputsCalibration {
            inputs,
            calibration: cal,
        });
        Ok(())
    }

    /// The normalised face score.
    pub fn face_score(&self, face: f32) -> f64 {
        self.face_weight * self.face.apply(f64::from(face))
    }

    /// The normalised score of one finger.
    pub fn finger_score(&self, finger: f32) -> f64 {
        self.finger_weight * self.finger.apply(f64::from(finger))
    }

    /// The fused score of a comparison: face cosine (if any) and the fingerprint matcher scores of the
    /// fingers compared (any number). Non-decreasing in each input. Errors: no input at all, or a
    /// non-finite score.
    pub fn fused_score(&self, face: Option<f32>, fingers: &[f32]) -> Result<f64, FusionError> {
        if face.is_none() && fingers.is_empty() {
            return Err(FusionError::NoInput);
        }
        if let Some(v) = face.filter(|v| !v.is_finite()) {
            return Err(FusionError::NonFinite {
                which: "face",
                value: v,
            });
        }
        if let Some(&v) = fingers.iter().find(|v| !v.is_finite()) {
            return Err(FusionError::NonFinite {
                which: "finger",
                value: v,
            });
        }
        Ok(face.map_or(0.0, |s| self.face_score(s))
            + fingers.iter().map(|&s| self.finger_score(s)).sum::<f64>())
    }

    /// The calibration of an input configuration.
    pub fn calibration(&self, inputs: Inputs) -> Option<&Calibration> {
        self.calibrations
            .iter()
            .find(|c| c.inputs == inputs)
            .map(|c| &c.calibration)
    }

    /// The fused-score threshold meeting `target_fmr` for `inputs` (accept iff fused ≥ threshold).
    pub fn threshold_for_fmr(&self, inputs: Inputs, target_fmr: f64) -> Result<f64, FusionError> {
        let not = |detail: String| FusionError::NotCalibrated {
            inputs,
            target_fmr,
            detail,
        };
        let cal = self.calibration(inputs).ok_or_else(|| {
            not(format!(
                "no thresholds for this configuration (calibrated: {})",
                self.calibrations
                    .iter()
                    .map(|c| c.inputs.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        cal.threshold_for(target_fmr)
            .map_err(|e| not(e.to_string()))
    }

    /// Fuse and decide at `target_fmr`.
    pub fn decide(
        &self,
        face: Option<f32>,
        fingers: &[f32],
        target_fmr: f64,
    ) -> Result<FusedDecision, FusionError> {
        let score = self.fused_score(face, fingers)?;
        let inputs = Inputs::of(face, fingers);
        let threshold = self.threshold_for_fmr(inputs, target_fmr)?;
        let n_impostor = self.calibration(inputs).map_or(0, |c| c.n_impostor);
        Ok(FusedDecision {
            score,
            threshold,
            target_fmr,
            accept: score >= threshold,
            inputs,
            model_id: self.model_id.clone(),
            calibration: format!(
                "{} ({n_impostor} impostor comparisons)",
                self.provenance.protocol
            ),
        })
    }

    /// Content checks: maps monotone, weights finite and ≥ 0 (not both 0), known multi-finger rule,
    /// every calibration valid, of modality "fusion", for this model id and these parameters.
    pub fn validate(&self) -> Result<(), FusionError> {
        for (name, map) in [("face", &self.face), ("finger", &self.finger)] {
            map.validate()
                .map_err(|e| format_err(format!("{name} map: {e}")))?;
        }
        let ok_weight = |w: f64| w.is_finite() && w >= 0.0;
        if !(ok_weight(self.face_weight)
            && ok_weight(self.finger_weight)
            && self.face_weight + self.finger_weight > 0.0)
        {
            return Err(format_err(format!(
                "weights must be finite, ≥ 0 and not both 0: face {}, finger {}",
                self.face_weight, self.finger_weight
            )));
        }
        if self.multi_finger != MULTI_FINGER_SUM {
            return Err(format_err(format!(
                "unknown multi-finger rule {:?}",
                self.multi_finger
            )));
        }
        let params = self.parameters_sha256()?;
        for (i, c) in self.calibrations.iter().enumerate() {
            let cal = &c.calibration;
            cal.validate()
                .map_err(|e| format_err(format!("calibration of {}: {e}", c.inputs)))?;
            if cal.modality != Modality::Fusion
                || cal.model_id != self.model_id
                || cal.model_sha256 != params
            {
                return Err(format_err(format!(
                    "calibration of {} is for {} {} ({}), not this model's parameters {params}",
                    c.inputs, cal.modality, cal.model_id, cal.model_sha256
                )));
            }
            if self.calibrations[..i].iter().any(|o| o.inputs == c.inputs) {
                return Err(format_err(format!("two calibrations of {}", c.inputs)));
            }
        }
        Ok(())
    }

    /// The file content (pretty JSON with format, version and checksum).
    pub fn to_json_string(&self) -> Result<String, FusionError> {
        self.validate()?;
        let f = FileRepr {
            format: FUSION_FORMAT.into(),
            format_version: FUSION_VERSION,
            sha256: sha256_hex(&serde_json::to_vec(self)?),
            body: self.clone(),
        };
        Ok(serde_json::to_string_pretty(&f)?)
    }

    /// Parse and verify file content: format, version, checksum, then content ([`FusionModel::validate`]).
    pub fn from_json_str(s: &str) -> Result<Self, FusionError> {
        let v: serde_json::Value = serde_json::from_str(s)?;
        if v.get("format").and_then(|f| f.as_str()) != Some(FUSION_FORMAT) {
            return Err(format_err("not a sinhtrac fusion file (format field)"));
        }
        let found = v
            .get("format_version")
            .and_then(|x| x.as_u64())
            .ok_or_else(|| format_err("missing format_version"))?;
        if found != u64::from(FUSION_VERSION) {
            return Err(FusionError::Version {
                found,
                supported: FUSION_VERSION,
            });
        }
        let f: FileRepr = serde_json::from_value(v)?;
        let computed = sha256_hex(&serde_json::to_vec(&f.body)?);
        if computed != f.sha256 {
            return Err(FusionError::Checksum {
                stored: f.sha256,
                computed,
            });
        }
        f.body.validate()?;
        Ok(f.body)
    }

    /// Read and verify `path`.
    pub fn load(path: &Path) -> Result<Self, FusionError> {
        let s = std::fs::read_to_string(path).map_err(|source| FusionError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json_str(&s)
    }

    /// Write to `path` (via a temporary file and a rename).
    pub fn save(&self, path: &Path) -> Result<(), FusionError> {
        let s = self.to_json_string()? + "\n";
        let tmp = path.with_extension("json.tmp");
        let io = |p: &Path| {
            let p = p.to_path_buf();
            move |source| FusionError::Io { path: p, source }
        };
        std::fs::write(&tmp, s).map_err(io(&tmp))?;
        std::fs::rename(&tmp, path).map_err(io(path))
    }
}

/// Whether a JSON file in the calibration folder is a fusion model (the folder holds both kinds;
/// [`crate::decision::Calibrations::load_dir`] leaves these to [`FusionModel::load`]).
pub fn is_fusion_file(text: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("format")?.as_str().map(|f| f == FUSION_FORMAT))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> FusionModel {
        let fitted = FittedFusion {
            method: Method::LlrPav,
            face: ScoreMap {
                knots: vec![[0.0, -4.0], [0.3, 0.0], [0.6, 6.0]],
            },
            finger: ScoreMap {
                knots: vec![[0.0, -2.0], [0.03, 0.0], [0.2, 8.0]],
            },
            face_weight: 1.0,
            finger_weight: 1.0,
        };
        let mut m = FusionModel::new(
            "fusion-test",
            &fitted,
            Provenance {
                face_model_id: "face".into(),
                face_model_sha256: "ab".repeat(32),
                finger_extractor: "classical".into(),
                finger_matcher: "mcc".into(),
                finger_space_sha256: None,
                protocol: "synthetic".into(),
                subjects: 2,
                n_genuine: 1,
                n_impostor: 1,
            },
        );
        let imp: Vec<f64> = (0..10_000)
            .map(|i| -6.0 + 12.0 * f64::from(i) / 1e4)
            .collect();
        for inputs in Inputs::ONE_FINGER_CONFIGURATIONS {
            m.calibrate(inputs, &imp, &[1e-2, 1e-3], "synthetic")
                .unwrap();
        }
        m
    }

    #[test]
    fn fused_score_is_monotone_and_handles_missing_modalities() {
        let m = model();
        let both = m.fused_score(Some(0.3), &[0.03]).unwrap();
        let near = |a: f64, b: f64| (a - b).abs() < 1e-5;
        assert!(near(both, 0.0));
        assert!(m.fused_score(Some(0.45), &[0.03]).unwrap() > both);
        assert!(m.fused_score(Some(0.3), &[0.1]).unwrap() > both);
        assert!(near(m.fused_score(Some(0.45), &[]).unwrap(), 3.0));
        assert!(near(m.fused_score(None, &[0.2]).unwrap(), 8.0));
        // Several fingers add their LLRs.
        assert!(near(m.fused_score(None, &[0.2, 0.2]).unwrap(), 16.0));
        assert!(matches!(
            m.fused_score(None, &[]),
            Err(FusionError::NoInput)
        ));
        assert!(matches!(
            m.fused_score(Some(f32::NAN), &[]),
            Err(FusionError::NonFinite { which: "face", .. })
        ));
        // Thresholds per configuration; two fingers were not calibrated.
        let d = m.decide(Some(0.6), &[0.2], 1e-3).unwrap();
        assert!(d.accept);
        assert!(matches!(
            m.decide(Some(0.6), &[0.2, 0.2], 1e-3),
            Err(FusionError::NotCalibrated { .. })
        ));
        assert!(matches!(
            m.threshold_for_fmr(
                Inputs {
                    face: true,
                    fingers: 0
                },
                1e-5
            ),
            Err(FusionError::NotCalibrated { .. })
        ));
    }

    #[test]
    fn file_round_trip_and_typed_errors() {
        let m = model();
        let text = m.to_json_string().unwrap();
        assert!(is_fusion_file(&text));
        let back = FusionModel::from_json_str(&text).unwrap();
        assert_eq!(back, m);
        assert!(matches!(
            FusionModel::from_json_str("{\"format\":\"sinhtrac-calibration\"}"),
            Err(FusionError::Format { .. })
        ));
        assert!(matches!(
            FusionModel::from_json_str("not json"),
            Err(FusionError::Json(_))
        ));
        let v2 = text.replacen("\"format_version\": 1", "\"format_version\": 2", 1);
        assert!(matches!(
            FusionModel::from_json_str(&v2),
            Err(FusionError::Version { found: 2, .. })
        ));
        let forged = text.replacen("\"face_weight\": 1.0", "\"face_weight\": 2.0", 1);
        assert_ne!(forged, text);
        assert!(matches!(
            FusionModel::from_json_str(&forged),
            Err(FusionError::Checksum { .. })
        ));
        // A non-monotone map with a valid checksum is still refused.
        let mut bad = m.clone();
        bad.face.knots[2][1] = -10.0;
        let f = FileRepr {
            format: FUSION_FORMAT.into(),
            format_version: FUSION_VERSION,
            sha256: sha256_hex(&serde_json::to_vec(&bad).unwrap()),
            body: bad,
        };
        assert!(matches!(
            FusionModel::from_json_str(&serde_json::to_string(&f).unwrap()),
            Err(FusionError::Format { .. })
        ));
        // Thresholds of other parameters are refused.
        let mut other = m.clone();
        other.finger_weight = 0.5;
        assert!(matches!(other.validate(), Err(FusionError::Format { .. })));
        assert!(matches!(
            FusionModel::load(Path::new("/nonexistent/fusion.json")),
            Err(FusionError::Io { .. })
        ));
    }
}
