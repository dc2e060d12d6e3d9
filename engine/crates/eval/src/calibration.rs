//! Calibration files: target FMR → threshold, per model and modality.
//!
//! A calibration is built from impostor scores of one model
//! ([`Calibration::from_impostors`]): for every target FMR the impostor count
//! supports ([`SupportRule`]), the threshold is the smallest one with observed
//! FMR ≤ target ([`FmrThreshold`](crate::FmrThreshold)), stored with the
//! false-match count and a 95 % Wilson interval for the FMR at that threshold.
//!
//! **File format** (JSON, format version [`CALIBRATION_VERSION`]):
//!
//! ```json
//! {"format":"sinhtrac-calibration","format_version":1,
//!  "body":{ ...Calibration fields... },
//!  "sha256":"<hex>"}
//! ```
//!
//! `sha256` is computed over the **canonical serialisation** of `body`: compact
//! JSON (no whitespace) of the [`Calibration`] struct, fields in declaration
//! order, numbers in serde_json's shortest round-trip form. Loading checks the
//! format name, then the version, then the checksum (by re-serialising the
//! parsed body), then the content (finite thresholds, non-increasing in the
//! target, hex model hash).

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::bootstrap::wilson_interval;
use crate::error::{EvalError, Result};
use crate::scores::{check_target, ImpostorScores, SupportRule};

/// Format name stored in every calibration file.
pub const CALIBRATION_FORMAT: &str = "sinhtrac-calibration";
/// Calibration file format version this build writes and reads.
pub const CALIBRATION_VERSION: u32 = 1;
/// Confidence level of the stored FMR intervals.
pub const CALIBRATION_CONFIDENCE: f64 = 0.95;
/// The decision rule every calibrated threshold assumes.
pub const DECISION_RULE: &str = "accept iff score >= threshold";

/// Biometric modality a calibration belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Modality {
    /// Face (embedding similarity).
    Face,
    /// Fingerprint (minutiae matcher score).
    Fingerprint,
    /// Fused face + fingerprint score.
    Fusion,
}

impl std::fmt::Display for Modality {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Modality::Face => "face",
            Modality::Fingerprint => "fingerprint",
            Modality::Fusion => "fusion",
        })
    }
}

impl std::str::FromStr for Modality {
    type Err = EvalError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "face" => Ok(Modality::Face),
            "fingerprint" | "finger" => Ok(Modality::Fingerprint),
            "fusion" => Ok(Modality::Fusion),
            _ => Err(EvalError::InvalidParameter {
                name: "modality",
                reason: format!("unknown modality {s:?} (face, fingerprint, fusion)"),
            }),
        }
    }
}

/// One calibrated operating point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalibrationPoint {
    /// Target FMR.
    pub target_fmr: f64,
    /// Threshold: accept iff `score >= threshold`.
    pub threshold: f64,
    /// Observed FMR on the calibration impostors (≤ target).
    pub observed_fmr: f64,
    /// Calibration impostors accepted at the threshold.
    pub false_matches: u64,
    /// Lower bound of the 95 % Wilson interval of the FMR at the threshold.
    pub fmr_ci_lower: f64,
    /// Upper bound of that interval.
    pub fmr_ci_upper: f64,
}

/// A calibration of one model: target FMR → threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// Model identifier (e.g. the manifest name).
    pub model_id: String,
    /// SHA-256 of the model file, lowercase hex.
    pub model_sha256: String,
    /// Modality.
    pub modality: Modality,
    /// Name of the protocol that produced the impostor scores.
    pub protocol: String,
    /// Always [`DECISION_RULE`].
    pub decision_rule: String,
    /// Impostor comparisons used.
    pub n_impostor: u64,
    /// Rule deciding which targets the impostor count supports.
    pub support_rule: SupportRule,
    /// Lowest target FMR the impostor count supports.
    pub min_supported_fmr: f64,
    /// Confidence level of the FMR intervals.
    pub ci_confidence: f64,
    /// Calibrated points, by decreasing target FMR.
    pub points: Vec<CalibrationPoint>,
    /// Requested targets that the impostor count does not support.
    pub unsupported_targets: Vec<f64>,
    /// Software that wrote the calibration.
    pub created_by: String,
}

#[derive(Serialize, Deserialize)]
struct FileRepr {
    format: String,
    format_version: u32,
    body: Calibration,
    sha256: String,
}

fn check_sha256_hex(s: &str) -> Result<()> {
    if s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(EvalError::InvalidParameter {
            name: "model_sha256",
            reason: format!("{s:?} is not 64 lowercase hex digits"),
        })
    }
}

fn same_target(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

impl Calibration {
    /// Calibrate from impostor scores with the default [`SupportRule`] (rule
    /// of 3). Targets the count does not support are listed in
    /// `unsupported_targets`; if none is supported, [`EvalError::Unsupported`].
    /// The protocol name defaults to "unspecified": set it with
    /// [`Calibration::with_protocol`].
    pub fn from_impostors(
        model_id: &str,
        model_sha256: &str,
        modality: Modality,
        impostor_scores: &[f64],
        targets: &[f64],
    ) -> Result<Self> {
        let imp = ImpostorScores::new(impostor_scores)?;
        Self::from_impostor_scores(model_id, model_sha256, modality, &imp, targets)
    }

    /// As [`Calibration::from_impostors`], from sorted impostors with their own support rule.
    pub fn from_impostor_scores(
        model_id: &str,
        model_sha256: &str,
        modality: Modality,
        imp: &ImpostorScores,
        targets: &[f64],
    ) -> Result<Self> {
        check_sha256_hex(model_sha256)?;
        if model_id.is_empty() {
            return Err(EvalError::InvalidParameter {
                name: "model_id",
                reason: "empty".into(),
            });
        }
        let mut ts = targets.to_vec();
        for &t in &ts {
            check_target(t)?;
        }
        ts.sort_by(|a, b| b.total_cmp(a));
        ts.dedup_by(|a, b| same_target(*a, *b));
        let mut points = Vec::new();
        let mut unsupported = Vec::new();
        let mut first_err = None;
        for t in ts {
            match imp.threshold_for_fmr(t) {
                Ok(th) => {
                    let ci =
                        wilson_interval(th.false_matches, th.n_impostor, CALIBRATION_CONFIDENCE)?;
                    points.push(CalibrationPoint {
                        target_fmr: t,
                        threshold: th.threshold,
                        observed_fmr: th.observed_fmr,
                        false_matches: th.false_matches,
                        fmr_ci_lower: ci.lower,
                        fmr_ci_upper: ci.upper,
                    });
                }
                Err(e @ EvalError::Unsupported { .. }) => {
                    unsupported.push(t);
                    first_err.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        if points.is_empty() {
            return Err(first_err.unwrap_or(EvalError::Empty { what: "targets" }));
        }
        Ok(Calibration {
            model_id: model_id.into(),
            model_sha256: model_sha256.into(),
            modality,
            protocol: "unspecified".into(),
            decision_rule: DECISION_RULE.into(),
            n_impostor: imp.len() as u64,
            support_rule: imp.support_rule(),
            min_supported_fmr: imp.min_supported_fmr(),
            ci_confidence: CALIBRATION_CONFIDENCE,
            points,
            unsupported_targets: unsupported,
            created_by: concat!("sinhtrac-eval ", env!("CARGO_PKG_VERSION")).into(),
        })
    }

    /// Set the protocol name (e.g. "lfw-all-cross-identity-pairs").
    pub fn with_protocol(mut self, protocol: &str) -> Self {
        self.protocol = protocol.into();
        self
    }

    /// The calibrated point for `target_fmr` (matched to a relative 1e-9).
    /// [`EvalError::Unsupported`] if the target is below what the impostor
    /// count supports, [`EvalError::NotCalibrated`] if it was not calibrated.
    pub fn point_for(&self, target_fmr: f64) -> Result<&CalibrationPoint> {
        check_target(target_fmr)?;
        if let Some(p) = self
            .points
            .iter()
            .find(|p| same_target(p.target_fmr, target_fmr))
        {
            return Ok(p);
        }
        let required = self.support_rule.required(target_fmr);
        if self.n_impostor < required {
            return Err(EvalError::Unsupported {
                target: target_fmr,
                what: "impostor comparisons",
                available: self.n_impostor,
                required,
            });
        }
        Err(EvalError::NotCalibrated {
            target: target_fmr,
            calibrated: self.points.iter().map(|p| p.target_fmr).collect(),
        })
    }

    /// Threshold for `target_fmr` ([`Calibration::point_for`]).
    pub fn threshold_for(&self, target_fmr: f64) -> Result<f64> {
        self.point_for(target_fmr).map(|p| p.threshold)
    }

    /// SHA-256 (lowercase hex) of the canonical serialisation of `self`.
    pub fn checksum(&self) -> Result<String> {
        let bytes = serde_json::to_vec(self)?;
        Ok(format!("{:x}", Sha256::digest(&bytes)))
    }

    /// The file content (pretty JSON with format, version and checksum).
    pub fn to_json_string(&self) -> Result<String> {
        self.validate()?;
        let f = FileRepr {
            format: CALIBRATION_FORMAT.into(),
            format_version: CALIBRATION_VERSION,
            sha256: self.checksum()?,
            body: self.clone(),
        };
        Ok(serde_json::to_string_pretty(&f)?)
    }

    /// Parse and verify file content (format, version, checksum, content).
    pub fn from_json_str(s: &str) -> Result<Self> {
        let v: serde_json::Value = serde_json::from_str(s)?;
        let bad = |reason: &str| EvalError::CalibrationFormat {
            reason: reason.into(),
        };
        if v.get("format").and_then(|f| f.as_str()) != Some(CALIBRATION_FORMAT) {
            return Err(bad("not a sinhtrac calibration file (format field)"));
        }
        let version = v
            .get("format_version")
            .and_then(|x| x.as_u64())
            .ok_or_else(|| bad("missing format_version"))?;
        if version != u64::from(CALIBRATION_VERSION) {
            return Err(EvalError::CalibrationVersion {
                found: version,
                supported: CALIBRATION_VERSION,
            });
        }
        let f: FileRepr = serde_json::from_value(v)?;
        let computed = f.body.checksum()?;
        if computed != f.sha256 {
            return Err(EvalError::ChecksumMismatch {
                stored: f.sha256,
                computed,
            });
        }
        f.body.validate()?;
        Ok(f.body)
    }

    /// Write to `path` (via a temporary file and a rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let s = self.to_json_string()?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, s).map_err(|e| EvalError::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| EvalError::io(path, e))
    }

    /// Read and verify `path` ([`Calibration::from_json_str`]).
    pub fn load(path: &Path) -> Result<Self> {
        let s = std::fs::read_to_string(path).map_err(|e| EvalError::io(path, e))?;
        Self::from_json_str(&s)
    }

    /// Content checks: hash format, decision rule, finite values,
    /// thresholds non-increasing in the target.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: String| EvalError::CalibrationFormat { reason };
        check_sha256_hex(&self.model_sha256).map_err(|e| bad(e.to_string()))?;
        if self.decision_rule != DECISION_RULE {
            return Err(bad(format!(
                "unknown decision rule {:?}",
                self.decision_rule
            )));
        }
        if self.points.is_empty() {
            return Err(bad("no calibrated points".into()));
        }
        for w in self.points.windows(2) {
            if !(w[0].target_fmr > w[1].target_fmr && w[0].threshold <= w[1].threshold) {
                return Err(bad(format!(
                    "points out of order: {:?} then {:?}",
                    w[0], w[1]
                )));
            }
        }
        for p in &self.points {
            if !(p.threshold.is_finite()
                && p.target_fmr > 0.0
                && p.target_fmr < 1.0
                && p.observed_fmr <= p.target_fmr)
            {
                return Err(bad(format!("invalid point {p:?}")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bootstrap::SplitMix64;
    use crate::next_up;

    const SHA: &str = "6c1585d1bbf45b0712ea4a21b705c5fcb4ba04ff2e30f1fbf81a49faf658638f";

    fn normals(n: usize, shift: f64, seed: u64) -> Vec<f64> {
        let mut r = SplitMix64::new(seed);
        (0..n).map(|_| shift + r.next_normal()).collect()
    }

    fn observed_fmr(scores: &[f64], t: f64) -> f64 {
        scores.iter().filter(|&&x| x >= t).count() as f64 / scores.len() as f64
    }

    #[test]
    fn build_and_lookup() {
        let imp: Vec<f64> = (0..10_000).map(|i| f64::from(i) / 10_000.0).collect();
        let c = Calibration::from_impostors(SHA_ID, SHA, Modality::Face, &imp, &[1e-3, 1e-2, 1e-4])
            .unwrap()
            .with_protocol("synthetic");
        // 10 000 impostors support 1e-2 and 1e-3 under the rule of 3, not 1e-4.
        assert_eq!(c.points.len(), 2);
        assert_eq!(c.unsupported_targets, vec![1e-4]);
        assert_eq!(c.n_impostor, 10_000);
        assert_eq!(c.protocol, "synthetic");
        assert_eq!(c.threshold_for(1e-2).unwrap(), next_up(0.9899));
        assert_eq!(c.threshold_for(1e-3).unwrap(), next_up(0.9989));
        assert!(matches!(
            c.threshold_for(1e-4),
            Err(EvalError::Unsupported {
                available: 10_000,
                required: 30_000,
                ..
            })
        ));
        assert!(matches!(
            c.threshold_for(5e-3),
            Err(EvalError::NotCalibrated { .. })
        ));
        // Nothing supported → error; bad hash → error.
        assert!(matches!(
            Calibration::from_impostors(SHA_ID, SHA, Modality::Face, &imp, &[1e-5]),
            Err(EvalError::Unsupported { .. })
        ));
        assert!(matches!(
            Calibration::from_impostors(SHA_ID, "abc", Modality::Face, &imp, &[1e-2]),
            Err(EvalError::InvalidParameter { .. })
        ));
        assert!(matches!(
            Calibration::from_impostors(SHA_ID, SHA, Modality::Face, &[], &[1e-2]),
            Err(EvalError::Empty { .. })
        ));
    }

    const SHA_ID: &str = "mobilefacenet_128d";

    #[test]
    fn save_load_round_trip_and_tamper_detection() {
        let imp = normals(50_000, 0.0, 5);
        let c = Calibration::from_impostors(SHA_ID, SHA, Modality::Face, &imp, &[1e-2, 1e-3])
            .unwrap()
            .with_protocol("synthetic-normal");
        let dir = std::env::temp_dir().join(format!("sinhtrac-eval-cal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("face.calibration.json");
        c.save(&path).unwrap();
        let back = Calibration::load(&path).unwrap();
        assert_eq!(back, c);
        // Thresholds survive bit for bit.
        for (a, b) in back.points.iter().zip(&c.points) {
            assert_eq!(a.threshold.to_bits(), b.threshold.to_bits());
        }
        let text = std::fs::read_to_string(&path).unwrap();
        // Tamper with a threshold digit → checksum mismatch.
        let t = format!("{}", c.points[0].threshold);
        let forged = text.replacen(&t, &format!("{}", c.points[0].threshold - 0.01), 1);
        assert_ne!(forged, text);
        assert!(matches!(
            Calibration::from_json_str(&forged),
            Err(EvalError::ChecksumMismatch { .. })
        ));
        // Newer version → version error (before the checksum).
        let v2 = text.replacen("\"format_version\": 1", "\"format_version\": 2", 1);
        assert!(matches!(
            Calibration::from_json_str(&v2),
            Err(EvalError::CalibrationVersion { found: 2, .. })
        ));
        // Not a calibration file at all.
        assert!(matches!(
            Calibration::from_json_str("{\"format\":\"other\"}"),
            Err(EvalError::CalibrationFormat { .. })
        ));
        assert!(matches!(
            Calibration::load(&dir.join("missing.json")),
            Err(EvalError::Io { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn threshold_bits_round_trip_through_json() {
        let mut r = SplitMix64::new(99);
        for _ in 0..2000 {
            let x = next_up(r.next_normal() * 10f64.powi((r.below(20) as i32) - 10));
            let s = serde_json::to_string(&x).unwrap();
            let y: f64 = serde_json::from_str(&s).unwrap();
            assert_eq!(x.to_bits(), y.to_bits(), "{x} -> {s} -> {y}");
        }
    }

    /// Issue 7: a threshold chosen for FMR = 1e-3 on one impostor set, applied
    /// to a held-out set from the same distribution, gives an observed FMR
    /// within the stated (95 % Wilson) interval.
    #[test]
    fn calibration_round_trip_on_held_out_impostors() {
        let cal = normals(100_000, 0.0, 1);
        let c = Calibration::from_impostors(SHA_ID, SHA, Modality::Face, &cal, &[1e-3]).unwrap();
        let p = c.point_for(1e-3).unwrap();
        assert_eq!(p.false_matches, 100);
        let held_out = normals(1_000_000, 0.0, 2);
        let fmr = observed_fmr(&held_out, p.threshold);
        assert!(
            p.fmr_ci_lower <= fmr && fmr <= p.fmr_ci_upper,
            "held-out FMR {fmr} outside [{}, {}]",
            p.fmr_ci_lower,
            p.fmr_ci_upper
        );
        // The check can fail: impostors of a drifted model (shifted by 0.3σ)
        // exceed the interval.
        let drifted = normals(1_000_000, 0.3, 3);
        let fmr = observed_fmr(&drifted, p.threshold);
        assert!(
            fmr > p.fmr_ci_upper,
            "drifted FMR {fmr} inside the interval"
        );
    }

    /// Coverage of the stated interval over many independent calibrations:
    /// nominally 95 %; require at least 80 % of 40 (a broken interval or
    /// threshold rule, e.g. an off-by-one in k, drops far below).
    #[test]
    fn calibration_interval_coverage() {
        let mut covered = 0;
        for trial in 0..40u64 {
            let cal = normals(20_000, 0.0, 1000 + 2 * trial);
            let c =
                Calibration::from_impostors(SHA_ID, SHA, Modality::Face, &cal, &[1e-3]).unwrap();
            let p = c.point_for(1e-3).unwrap();
            let fmr = observed_fmr(&normals(400_000, 0.0, 1001 + 2 * trial), p.threshold);
            if p.fmr_ci_lower <= fmr && fmr <= p.fmr_ci_upper {
                covered += 1;
            }
        }
        assert!(covered >= 32, "coverage {covered}/40");
    }

    #[test]
    fn modality_parse() {
        assert_eq!("face".parse::<Modality>().unwrap(), Modality::Face);
        assert_eq!(Modality::Fingerprint.to_string(), "fingerprint");
        assert!("iris".parse::<Modality>().is_err());
    }
}
