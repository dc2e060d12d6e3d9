//! Decisions at a stated false-match rate. A raw similarity means nothing to a bank's risk officer;
//! "accepted at FMR 1e-4 (threshold 0.43, calibrated on 29.6M impostor pairs)" does. Each model has a
//! calibration file (target FMR → threshold, versioned and checksummed, see `sinhtrac_eval::Calibration`)
//! produced by `sinhtrac calibrate`; a model without one cannot be used for decisions.

use std::collections::BTreeMap;
use std::path::Path;

pub use sinhtrac_eval::Calibration;

use crate::runtime::ModelError;

/// A decision with everything needed to audit it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Decision {
    /// The comparison score.
    pub score: f32,
    /// Threshold applied (accept iff score ≥ threshold).
    pub threshold: f32,
    /// The false-match rate the threshold was calibrated for.
    pub target_fmr: f64,
    /// Match or not.
    pub accept: bool,
    /// Model whose scores were calibrated.
    pub model_id: String,
    /// Protocol (data) the calibration came from.
    pub calibration: String,
}

/// Calibrations of every model we know, by model id.
#[derive(Debug, Clone, Default)]
pub struct Calibrations {
    by_model: BTreeMap<String, Calibration>,
}

impl Calibrations {
    /// Load every `*.json` calibration in `dir` (fusion model files excepted) (each verified: format, version, checksum). A missing
    /// folder gives an empty set (decisions then fail with a clear error); a bad file is an error.
    pub fn load_dir(dir: &Path) -> Result<Self, ModelError> {
        let mut by_model = BTreeMap::new();
        let Ok(entries) = std::fs::read_dir(dir) else {
            tracing::warn!(dir = %dir.display(), "no calibration folder: decisions will be refused");
            return Ok(Calibrations { by_model });
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            // Fusion models share the folder; they are loaded by `fusion::FusionModel`.
            if std::fs::read_to_string(&path).is_ok_and(|t| crate::fusion::is_fusion_file(&t)) {
                continue;
            }
            let cal = Calibration::load(&path).map_err(|e| ModelError::Uncalibrated {
                model: path.display().to_string(),
                detail: format!("invalid calibration file: {e}"),
            })?;
            by_model.insert(cal.model_id.clone(), cal);
        }
        Ok(Calibrations { by_model })
    }

    /// Add or replace a calibration.
    pub fn insert(&mut self, cal: Calibration) {
        self.by_model.insert(cal.model_id.clone(), cal);
    }

    /// The calibration of `model_id`, checked against the model file's sha256.
    pub fn get(&self, model_id: &str, model_sha256: &str) -> Result<&Calibration, ModelError> {
        let cal = self
            .by_model
            .get(model_id)
            .ok_or_else(|| ModelError::Uncalibrated {
                model: model_id.to_string(),
                detail: "no calibration file (run `sinhtrac calibrate`)".into(),
            })?;
        if cal.model_sha256 != model_sha256 {
            return Err(ModelError::Uncalibrated {
                model: model_id.to_string(),
                detail: format!(
                    "calibration is for model file {}, loaded file is {model_sha256}",
                    cal.model_sha256
                ),
            });
        }
        Ok(cal)
    }

    /// Decide on `score` at `target_fmr` for a model.
    pub fn decide(
        &self,
        model_id: &str,
        model_sha256: &str,
        score: f32,
        target_fmr: f64,
    ) -> Result<Decision, ModelError> {
        let cal = self.get(model_id, model_sha256)?;
        let threshold = cal
            .threshold_for(target_fmr)
            .map_err(|e| ModelError::Uncalibrated {
                model: model_id.to_string(),
                detail: e.to_string(),
            })? as f32;
        Ok(Decision {
            score,
            threshold,
            target_fmr,
            accept: score >= threshold,
            model_id: model_id.to_string(),
            calibration: format!("{} ({} impostor comparisons)", cal.protocol, cal.n_impostor),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cal() -> Calibration {
        let impostors: Vec<f64> = (0..100_000).map(|i| (i as f64 / 100_000.0) * 0.5).collect();
        Calibration::from_impostors(
            "m",
            &"ab".repeat(32),
            sinhtrac_eval::Modality::Face,
            &impostors,
            &[1e-2, 1e-3],
        )
        .unwrap()
        .with_protocol("synthetic")
    }

    #[test]
    fn a_stricter_fmr_raises_the_threshold_and_can_flip_the_decision() {
        let mut c = Calibrations::default();
        c.insert(cal());
        let sha = "ab".repeat(32);
        let loose = c.decide("m", &sha, 0.496, 1e-2).unwrap();
        let strict = c.decide("m", &sha, 0.496, 1e-3).unwrap();
        assert!(strict.threshold > loose.threshold);
        assert!(loose.accept && !strict.accept);
        assert_eq!(strict.target_fmr, 1e-3);
    }

    #[test]
    fn uncalibrated_models_and_targets_are_refused() {
        let mut c = Calibrations::default();
        assert!(matches!(
            c.decide("m", "x", 0.9, 1e-3),
            Err(ModelError::Uncalibrated { .. })
        ));
        c.insert(cal());
        assert!(matches!(
            c.decide("m", &"cd".repeat(32), 0.9, 1e-3),
            Err(ModelError::Uncalibrated { .. })
        ));
        assert!(matches!(
            c.decide("m", &"ab".repeat(32), 0.9, 1e-5),
            Err(ModelError::Uncalibrated { .. })
        ));
    }
}
