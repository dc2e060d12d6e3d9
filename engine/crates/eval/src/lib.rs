//! Evaluation of biometric comparison scores (sinhtrac issue 7): the numbers
//! that turn a matcher into decisions at a stated error rate.
//!
//! Pure computation over scores; the only I/O is writing reports
//! ([`write_report`]) and reading/writing calibration files ([`Calibration`]).
//!
//! | module | what | standard vocabulary |
//! |---|---|---|
//! | [`scores`] | FMR, FNMR, DET/ROC, EER, threshold and FNMR at a target FMR | ISO/IEC 19795-1 |
//! | [`kfold`] | k-fold verification accuracy | LFW protocol |
//! | [`openset`] | FNIR @ FPIR, rank-k identification rate (CMC) | NIST FRTE 1:N (NIST IR 8271) |
//! | [`liveness`] | APCER, BPCER, BPCER @ APCER | ISO/IEC 30107-3 |
//! | [`bootstrap`] | subject-bootstrap and Wilson confidence intervals | ISO/IEC 19795-1 |
//! | [`calibration`] | versioned, checksummed target FMR → threshold files | |
//! | [`fusion`] | face + fingerprint score fusion: LLR (PAV, logistic), z-score, min-max | |
//! | [`report`] | JSON + markdown + DET/ROC/histogram plots (PNG, SVG) | |
//!
//! **Conventions.** Higher score = more similar (or, for liveness, more
//! likely bona fide). A comparison is accepted iff `score >= threshold`.
//! A target rate `p` is only estimated when the trial count `n` supports it,
//! `n · p >= 3` by default ([`SupportRule`], the rule of 3); otherwise the
//! result is the typed error [`EvalError::Unsupported`], stating the counts.
//!
//! ```
//! use sinhtrac_eval::{Calibration, Modality, ScoreSet, SupportRule};
//!
//! // 4 genuine and 400 impostor scores.
//! let genuine = vec![0.71, 0.64, 0.58, 0.12];
//! let impostor: Vec<f64> = (0..400).map(|i| i as f64 / 1000.0).collect();
//! let rates = ScoreSet::new(genuine, impostor).rates()?;
//!
//! // EER: the only error at the crossing is the genuine 0.12.
//! let eer = rates.eer();
//! assert!(eer.eer < 0.3);
//!
//! // FNMR at FMR = 1e-2: 400 impostors support it (400 · 0.01 >= 3);
//! // 4 of them may be accepted, so the threshold is just above 0.395.
//! let op = rates.fnmr_at_fmr(1e-2)?;
//! assert_eq!(op.at.false_matches, 4);
//! assert_eq!(op.fnmr, 0.25);
//! // FMR = 1e-3 would need 3000 impostors: a typed error, not a guess.
//! assert!(rates.fnmr_at_fmr(1e-3).is_err());
//!
//! // A calibration file for the service: target FMR -> threshold.
//! let impostors: Vec<f64> = (0..4000).map(|i| i as f64 / 4000.0).collect();
//! let cal = Calibration::from_impostors(
//!     "mobilefacenet_128d",
//!     "6c1585d1bbf45b0712ea4a21b705c5fcb4ba04ff2e30f1fbf81a49faf658638f",
//!     Modality::Face,
//!     &impostors,
//!     &[1e-2, 1e-3],
//! )?
//! .with_protocol("synthetic");
//! let t = cal.threshold_for(1e-3)?;
//! assert!(t > 0.99);
//! let reloaded = Calibration::from_json_str(&cal.to_json_string()?)?;
//! assert_eq!(reloaded.threshold_for(1e-3)?, t);
//! # Ok::<(), sinhtrac_eval::EvalError>(())
//! ```
#![deny(missing_docs)]

pub mod bootstrap;
pub mod calibration;
mod error;
pub mod fusion;
pub mod kfold;
pub mod liveness;
pub mod openset;
mod plot;
pub mod report;
pub mod scores;

pub use bootstrap::{
    bootstrap_eer, bootstrap_fnmr_at_fmr, wilson_interval, BootstrapConfig, ConfidenceInterval,
    SplitMix64, SubjectBootstrap,
};
pub use calibration::{Calibration, CalibrationPoint, Modality, CALIBRATION_VERSION};
pub use error::{EvalError, Result};
pub use kfold::{kfold_accuracy, FoldResult, KFoldAccuracy};
pub use liveness::{BpcerAtApcer, PadAtThreshold, PadRates, PadScores, SpeciesApcer};
pub use openset::{Candidate, FnirAtFpir, OpenSet, OpenSetPoint, OpenSetResult, Search};
pub use report::{
    markdown_summary, write_report, Histogram, LivenessReport, OperatingPoint, Report,
    ReportOptions, VerificationReport,
};
pub use scores::{
    next_up, thin_curve, Eer, ErrorRates, FmrThreshold, FnmrAtFmr, ImpostorScores, RatePoint,
    ScoreSet, SubjectId, SupportRule,
};
