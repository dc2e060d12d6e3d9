//! The store's one error type.

use rusqlite::ErrorCode;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything the gallery store can fail with.
///
/// Subject ids are personal data (national ID numbers, claim references), so
/// the `Display` messages never contain them: errors end up in logs. The ids
/// are still available in the variants' fields for a caller that needs them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No live subject with this id exists in the tenant's gallery.
    #[error("subject not found")]
    NotFound {
        /// Tenant that was searched.
        tenant: String,
        /// Subject id that was looked up.
        subject_id: String,
    },
    /// A live subject with this id already exists in the tenant's gallery.
    #[error("subject already exists")]
    AlreadyExists {
        /// Tenant of the existing subject.
        tenant: String,
        /// Subject id that collided.
        subject_id: String,
    },
    /// The subject id is empty, too long, or has characters outside the allowed set.
    #[error("invalid subject id: {reason}")]
    InvalidSubjectId {
        /// What is wrong with it (never the id itself).
        reason: &'static str,
    },
    /// The tenant id is empty, too long, or has characters outside the allowed set.
    #[error("invalid tenant id: {reason}")]
    InvalidTenant {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A template failed validation (model id, size, quality, finger position).
    #[error("invalid template #{index}: {reason}")]
    InvalidTemplate {
        /// Position of the template in the request.
        index: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A subject must be enrolled (or replaced) with at least one template.
    #[error("a subject needs at least one template")]
    NoTemplates,
    /// Display metadata failed validation (too large, bad key).
    #[error("invalid metadata: {reason}")]
    InvalidMetadata {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A scan filter is malformed (bad tenant or model id).
    #[error("invalid scan filter: {reason}")]
    InvalidFilter {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The page cursor was not produced by [`crate::Store::list`].
    #[error("invalid page cursor")]
    InvalidCursor,
    /// Tombstones newer than the requested generation were purged by
    /// [`crate::Store::compact`]: the caller must rebuild from a full scan.
    #[error("generation {requested} is older than the compaction horizon {horizon}: rebuild from a full scan")]
    GenerationPurged {
        /// Generation the caller wanted to catch up from.
        requested: u64,
        /// Highest generation whose tombstones were purged.
        horizon: u64,
    },
    /// The requested generation is newer than the store's: the snapshot is
    /// from another store or from before a restore. Rebuild from a full scan.
    #[error("generation {requested} is ahead of the store ({current}): rebuild from a full scan")]
    GenerationAhead {
        /// Generation the caller wanted to catch up from.
        requested: u64,
        /// The store's current generation.
        current: u64,
    },
    /// The database was written by a newer version of this crate.
    #[error("database schema version {found} is newer than the supported version {supported}")]
    SchemaTooNew {
        /// `user_version` found in the file.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
    /// The file is an SQLite database, but not a sinhtrac gallery store.
    #[error("not a sinhtrac gallery store (application_id {found:#x})")]
    NotAStore {
        /// `application_id` found in the file.
        found: i64,
    },
    /// The file is damaged, or holds values this crate never writes.
    #[error("store is corrupt: {0}")]
    Corrupt(String),
    /// Any other SQLite failure (I/O, disk full, busy past the timeout).
    #[error("sqlite: {0}")]
    Sqlite(#[source] rusqlite::Error),
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        // Corruption is its own variant because the caller's reaction differs:
        // stop writing and restore, rather than retry.
        if let rusqlite::Error::SqliteFailure(f, _) = &e {
            if matches!(f.code, ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) {
                return Error::Corrupt(e.to_string());
            }
        }
        Error::Sqlite(e)
    }
}

impl From<rusqlite::types::FromSqlError> for Error {
    fn from(e: rusqlite::types::FromSqlError) -> Self {
        // A column of the wrong type is something this crate never writes.
        Error::Corrupt(format!("unexpected column type: {e}"))
    }
}
