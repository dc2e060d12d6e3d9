//! The crate's one error type.

use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = IndexError> = std::result::Result<T, E>;

/// Everything that can go wrong in the index, the sweep and the bench helpers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// A vector or query has the wrong number of dimensions.
    #[error("dimension mismatch: expected {expected}, received {received}")]
    DimensionMismatch {
        /// The index's dimension.
        expected: usize,
        /// The length received.
        received: usize,
    },
    /// A batch's value count is not `ids × dim`.
    #[error("batch length mismatch: {ids} ids × dim {dim} != {values} values")]
    BatchLength {
        /// Number of ids.
        ids: usize,
        /// Number of values.
        values: usize,
        /// The index's dimension.
        dim: usize,
    },
    /// A vector holds NaN or ±∞.
    #[error("vector {index} has a non-finite value at position {position}")]
    NonFinite {
        /// Position of the vector in its batch.
        index: usize,
        /// Position of the bad value in the vector.
        position: usize,
    },
    /// A vector is zero (or so small) that it has no direction.
    #[error("vector {index} has zero norm and cannot be normalised")]
    ZeroVector {
        /// Position of the vector in its batch.
        index: usize,
    },
    /// A vector is not L2-normalised within the configured tolerance.
    #[error("vector {index} has L2 norm {norm}, not within {tolerance} of 1")]
    NotNormalized {
        /// Position of the vector in its batch.
        index: usize,
        /// Its norm.
        norm: f32,
        /// The tolerance in force.
        tolerance: f32,
    },
    /// No live row has this id.
    #[error("unknown id {0}")]
    UnknownId(u64),
    /// The id is already present (live) in the index or twice in one batch.
    #[error("duplicate id {0}")]
    DuplicateId(u64),
    /// An argument is out of its valid range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A sweep checkpoint belongs to another sweep or another gallery.
    #[error("checkpoint does not match this sweep: {0}")]
    CheckpointMismatch(String),
    /// Reading or writing a file failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file is not in the expected format.
    #[error("bad format in {path}: {msg}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// An error reported by FAISS.
    #[error("faiss: {0}")]
    Faiss(String),
}
