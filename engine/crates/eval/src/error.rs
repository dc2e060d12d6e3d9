//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in `sinhtrac-eval`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// A score list that a metric needs is empty (e.g. no genuine comparisons).
    #[error("{what} is empty")]
    Empty {
        /// Which list was empty.
        what: &'static str,
    },
    /// A score is NaN or infinite.
    #[error("{what}[{index}] is not a finite score ({value})")]
    NonFinite {
        /// Which list holds the score.
        what: &'static str,
        /// Position in that list.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// A label list has a different length from the scores it labels.
    #[error("{what}: {labels} labels for {scores} scores")]
    LabelMismatch {
        /// Which label list.
        what: &'static str,
        /// Number of labels.
        labels: usize,
        /// Number of scores.
        scores: usize,
    },
    /// A target error rate outside the open interval (0, 1).
    #[error("target rate {target} is not in (0, 1)")]
    InvalidTarget {
        /// The rejected target.
        target: f64,
    },
    /// The number of comparisons is too small to estimate the target rate
    /// under the [`SupportRule`](crate::SupportRule) in force.
    #[error("target rate {target} needs at least {required} {what}, only {available} available")]
    Unsupported {
        /// The target rate asked for.
        target: f64,
        /// What is counted (e.g. "impostor comparisons").
        what: &'static str,
        /// How many there are.
        available: u64,
        /// How many the support rule needs for this target.
        required: u64,
    },
    /// A calibration file has no threshold for this target FMR.
    #[error("target FMR {target} is not calibrated (calibrated: {calibrated:?})")]
    NotCalibrated {
        /// The target asked for.
        target: f64,
        /// The targets the file holds.
        calibrated: Vec<f64>,
    },
    /// A bootstrap was asked for but the score set carries no subject labels.
    #[error("bootstrap by subject needs subject labels on both genuine and impostor scores")]
    MissingSubjects,
    /// A parameter is out of its range (fold count, confidence level, ...).
    #[error("invalid parameter {name}: {reason}")]
    InvalidParameter {
        /// Parameter name.
        name: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// A 1:N search record contradicts itself.
    #[error("search {index}: {reason}")]
    InconsistentSearch {
        /// Position of the search in the input.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// A calibration file is structurally wrong (bad magic, invalid values).
    #[error("calibration file: {reason}")]
    CalibrationFormat {
        /// What is wrong.
        reason: String,
    },
    /// A calibration file has a format version this build does not read.
    #[error(
        "calibration file format version {found} is not supported (this build reads {supported})"
    )]
    CalibrationVersion {
        /// Version found in the file.
        found: u64,
        /// Version this build reads.
        supported: u32,
    },
    /// A calibration file's checksum does not match its content.
    #[error("calibration file checksum mismatch: stored {stored}, computed {computed}")]
    ChecksumMismatch {
        /// The checksum stored in the file.
        stored: String,
        /// The checksum of the content as read.
        computed: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// JSON (de)serialisation failed.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Drawing a plot failed.
    #[error("plot {what}: {reason}")]
    Plot {
        /// Which plot.
        what: String,
        /// The backend's message.
        reason: String,
    },
}

/// `Result` with [`EvalError`].
pub type Result<T, E = EvalError> = std::result::Result<T, E>;

impl EvalError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EvalError::Io {
            path: path.into(),
            source,
        }
    }
}
