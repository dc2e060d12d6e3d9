//! Evaluation protocols over datasets on disk: which comparisons to make and how to score them.
//! Metrics themselves (EER, FNMR at FMR, k-fold accuracy...) are in the `sinhtrac-eval` crate.
//!
//! - [`lfw`]: LFW View-2 1:1 verification (10 folds) and the all-pairs impostor set for calibration.
//! - [`lfw_1n`]: an open-set 1:N identification protocol built from the LFW folder.
//! - [`liveness`]: passive liveness (PAD) in ISO/IEC 30107-3 terms.
//! - [`chimeric`]: face + fingerprint chimeric subjects (FVC fingers × LFW identities) for score fusion.
//! - [`extract`] and [`cache`]: batch extraction over files, through an on-disk cache keyed by image,
//!   model and pipeline settings.

pub mod cache;
pub mod chimeric;
pub mod chimeric_1n;
pub mod extract;
pub mod lfw;
pub mod lfw_1n;
pub mod liveness;

/// Why an evaluation run could not produce a report.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The protocol could not be read or built.
    #[error(transparent)]
    Protocol(#[from] lfw::ProtocolError),
    /// A metric could not be computed (e.g. no mated searches, no attack presentation scored).
    #[error(transparent)]
    Eval(#[from] sinhtrac_eval::EvalError),
    /// The 1:N index refused an operation.
    #[error(transparent)]
    Index(#[from] sinhtrac_index::IndexError),
    /// An invariant of the protocol code does not hold (a bug, reported instead of a panic).
    #[error("internal error: {0}")]
    Internal(String),
}
