//! Crash-safe gallery store for sinhtrac: subjects and their biometric
//! templates, one gallery per tenant, in one SQLite file (WAL mode).
//!
//! Roles:
//! - [`Store`] owns the connections (one writer, a pool of readers) and
//!   offers enrol / replace / add / delete / get / list / stats, a
//!   streaming [`Store::scan`] to load an in-memory index at start-up, and
//!   [`Store::changes_since`] to bring an index snapshot up to date.
//! - Template bytes are opaque here; the engine's versioned template codec
//!   produces and validates them. Each template row has a stable
//!   [`TemplateKey`] that an index maps its rows to.
//! - Every committed write takes a new [`Generation`]; deletes leave
//!   tombstones (with the biometric bytes wiped at once) until
//!   [`Store::compact`] purges them.
//! - The schema is versioned (`PRAGMA user_version`) and migrated forward on
//!   open, one transaction per step.
//!
//! Durability: `synchronous=FULL` in WAL mode. A write method returns `Ok`
//! only after its transaction is durable; a crash (even `kill -9` during a
//! batch) keeps every acknowledged write and never leaves a half-written
//! subject. [`Store::enroll_batch`] commits groups of items per transaction
//! and calls its acknowledgement callback for an item only after that
//! item's group has committed.
//!
//! Deleted data: [`Store::delete`] wipes template bytes and metadata in the
//! same transaction (with `secure_delete` on, freed space is zeroed);
//! [`Store::compact`] then purges the tombstones and truncates the WAL, so
//! nothing of a deleted subject stays readable in the files. SQLite does not
//! checksum page contents: the template codec's own checks are what catch a
//! flipped bit inside a template.
//!
//! Concurrency: one write connection behind a mutex (writes are serialised),
//! a pool of read-only connections (reads run in parallel on committed
//! snapshots). `Store` is `Send + Sync`; share it with an `Arc`.
//!
//! ```
//! use std::ops::ControlFlow;
//! use sinhtrac_store::{Error, Modality, NewSubject, NewTemplate, ScanFilter, Store};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(dir.path().join("gallery.db"))?;
//!
//! let subject = NewSubject {
//!     subject_id: "079203001234".into(),
//!     templates: vec![NewTemplate::face("mobilefacenet-128", vec![1, 2, 3, 4], 0.9)],
//!     ..Default::default()
//! };
//! let receipt = store.enroll("bank-a", &subject)?;
//! assert_eq!(receipt.added.len(), 1);
//! assert!(matches!(store.enroll("bank-a", &subject), Err(Error::AlreadyExists { .. })));
//!
//! // Load an index: stream all live face templates of one model.
//! let mut loaded = Vec::new();
//! let filter = ScanFilter { tenant: Some("bank-a"), modality: Modality::Face, model_id: "mobilefacenet-128" };
//! let scan = store.scan(&filter, |t| {
//!     loaded.push((t.key, t.subject_id.to_owned()));
//!     ControlFlow::Continue(())
//! })?;
//! assert_eq!(loaded.len(), 1);
//!
//! // Later, catch up on what changed since the scan.
//! store.delete("bank-a", "079203001234")?;
//! let mut removed = 0;
//! store.changes_since(&filter, scan.generation, |_change| {
//!     removed += 1;
//!     ControlFlow::Continue(())
//! })?;
//! assert_eq!(removed, 1);
//! store.integrity_check()?;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod error;
mod model;
mod schema;
mod store;

pub use error::{Error, Result};
pub use model::{
    validate_subject_id, validate_tenant, Generation, Modality, NewSubject, NewTemplate, Page,
    SubjectKey, SubjectRecord, SubjectSummary, TemplateKey, TemplateRecord, TenantKey, TenantStats,
    WriteReceipt, MAX_FINGER_POSITION, MAX_METADATA_BYTES, MAX_MODEL_ID_LEN, MAX_SUBJECT_ID_LEN,
    MAX_TEMPLATE_BYTES, MAX_TENANT_LEN,
};
pub use schema::{APPLICATION_ID, CURRENT_VERSION, MIGRATIONS};
pub use store::{
    BatchSummary, Change, CompactReport, ScanFilter, ScanSummary, Store, StoreOptions, TemplateRef,
    DEFAULT_BATCH_GROUP, MAX_PAGE_SIZE,
};
