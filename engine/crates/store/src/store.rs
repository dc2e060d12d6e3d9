//! The [`Store`]: connections, transactions and every gallery operation.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension, Row, Transaction, TransactionBehavior};

use crate::error::{Error, Result};
use crate::model::{
    decode_metadata, validate_subject, validate_subject_id, validate_tenant, Generation, Modality,
    NewSubject, NewTemplate, Page, SubjectKey, SubjectRecord, SubjectSummary, TemplateKey,
    TemplateRecord, TenantKey, TenantStats, WriteReceipt,
};
use crate::schema;

/// Largest page [`Store::list`] returns; larger requests are clamped.
pub const MAX_PAGE_SIZE: usize = 1000;

/// How a [`Store`] is opened.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// How long a statement waits for another connection's lock (another
    /// process, or a checkpoint) before failing with `SQLITE_BUSY`.
    pub busy_timeout: Duration,
    /// Idle read connections kept for reuse; more are opened on demand and
    /// closed when returned to a full pool.
    pub max_idle_readers: usize,
    /// Page cache per connection, in KiB.
    pub cache_size_kib: i64,
    /// Upper bound on the database file's size; a write that would pass it
    /// fails (`SQLITE_FULL`) and is rolled back, instead of filling the disk.
    pub max_size_bytes: Option<u64>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            busy_timeout: Duration::from_secs(5),
            max_idle_readers: 8,
            cache_size_kib: 16 * 1024,
            max_size_bytes: None,
        }
    }
}

/// Which templates a [`Store::scan`] or [`Store::changes_since`] visits.
#[derive(Clone, Copy, Debug)]
pub struct ScanFilter<'a> {
    /// One tenant's gallery, or all tenants when `None`.
    pub tenant: Option<&'a str>,
    /// Face or finger.
    pub modality: Modality,
    /// Only templates of this model: an index holds one embedding space.
    pub model_id: &'a str,
}

/// One live template as seen by a scan: borrowed from SQLite's row buffer,
/// valid only during the callback (copy what you keep).
#[derive(Clone, Copy, Debug)]
pub struct TemplateRef<'a> {
    /// Stable row key.
    pub key: TemplateKey,
    /// Tenant of the owning subject.
    pub tenant: &'a str,
    /// Numeric key of that tenant.
    pub tenant_key: TenantKey,
    /// Owning subject's external id.
    pub subject_id: &'a str,
    /// Numeric key of the owning subject.
    pub subject_key: SubjectKey,
    /// ISO 19794-2 finger position for fingers.
    pub finger_position: Option<u8>,
    /// Extractor quality.
    pub quality: f32,
    /// Generation that wrote the template.
    pub generation: Generation,
    /// Encoded template.
    pub data: &'a [u8],
}

/// One change reported by [`Store::changes_since`].
#[derive(Clone, Copy, Debug)]
pub enum Change<'a> {
    /// A template was added (templates are immutable: a key is added once).
    Added(TemplateRef<'a>),
    /// A template was removed. The key may be one the caller never saw, when
    /// it was added and removed after the caller's generation.
    Removed {
        /// Key of the removed template.
        key: TemplateKey,
        /// Generation of the removal.
        generation: Generation,
    },
}

/// Outcome of a scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanSummary {
    /// The generation the scan's read snapshot saw: an index built from the
    /// scan is current as of this generation and catches up from it.
    pub generation: Generation,
    /// Rows passed to the callback.
    pub rows: u64,
    /// Whether the callback stopped the scan early.
    pub stopped: bool,
}

/// Outcome of [`Store::compact`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompactReport {
    /// Subject tombstones purged.
    pub subjects_purged: u64,
    /// Template tombstones purged.
    pub templates_purged: u64,
    /// Whether the WAL was fully checkpointed and truncated. `false` when a
    /// long reader held an old snapshot: old page images may then remain in
    /// the WAL until the next checkpoint.
    pub wal_truncated: bool,
}

/// Outcome of [`Store::enroll_batch`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchSummary {
    /// Items committed (and acknowledged with `Ok`).
    pub committed: u64,
    /// Items rejected (and acknowledged with their error); nothing of them was written.
    pub rejected: u64,
}

/// Items per transaction in [`Store::enroll_batch`] unless told otherwise.
pub const DEFAULT_BATCH_GROUP: usize = 64;

/// The gallery store: one SQLite file in WAL mode, shared by all tenants.
///
/// # Concurrency
/// `Store` is `Send + Sync`; share it with an `Arc`. There is exactly one
/// write connection behind a mutex, so writes from all threads are
/// serialised in this process (SQLite allows one writer anyway; queueing in
/// the mutex is cheaper than `SQLITE_BUSY` retries). Reads use a small pool
/// of read-only connections and run in parallel with each other and with
/// the writer, each seeing a committed snapshot (WAL). Other processes may
/// open the same file; they then contend through SQLite's locks and the busy
/// timeout.
///
/// # Durability
/// `synchronous=FULL` in WAL mode: a write method returns `Ok` only after its
/// transaction is committed and the WAL is fsynced, so an acknowledged write
/// survives a process kill and a power cut. Every write is one transaction:
/// it is all there or not at all.
pub struct Store {
    path: PathBuf,
    options: StoreOptions,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave a half-done transaction:
    // rusqlite's Transaction rolls back on drop during unwinding. So a
    // poisoned lock still guards a consistent connection.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn configure(conn: &Connection, options: &StoreOptions) -> Result<()> {
    conn.busy_timeout(options.busy_timeout)?;
    // FULL: fsync the WAL at every commit, so acknowledged means durable.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    // Overwrite deleted content with zeros instead of leaving it in free
    // pages: deleted biometric data must not stay readable in the file.
    conn.pragma_update(None, "secure_delete", true)?;
    // VACUUM and large sorts would otherwise spill copies of rows into temp
    // files that outlive nothing but are still plaintext on disk.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "cache_size", -options.cache_size_kib)?;
    // After a big batch the WAL may have grown large; cap what is kept of it
    // once checkpointed so disk space (and stale page images) are returned.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    Ok(())
}

impl Store {
    /// Opens (creating if needed) the store at `path` with default options,
    /// migrating an older schema to the current one.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        Store::open_with(path, StoreOptions::default())
    }

    /// Opens the store with explicit options.
    pub fn open_with(path: impl AsRef<Path>, options: StoreOptions) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        let mut writer = Connection::open(&path)?;
        writer.busy_timeout(options.busy_timeout)?;
        // Refuse foreign or newer files before changing anything in them.
        schema::check(&writer)?;
        let mode: String = writer.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Corrupt(format!(
                "cannot use WAL journal mode here (got {mode})"
            )));
        }
        // Configure first: migrations must run with synchronous=FULL too.
        configure(&writer, &options)?;
        schema::migrate(&mut writer, schema::CURRENT_VERSION)?;
        if let Some(bytes) = options.max_size_bytes {
            let page_size: i64 = writer.query_row("PRAGMA page_size", [], |r| r.get(0))?;
            let pages = i64::try_from(bytes).unwrap_or(i64::MAX) / page_size.max(512);
            writer.pragma_update(None, "max_page_count", pages.max(1))?;
        }
        tracing::debug!(path = %path.display(), "gallery store open");
        Ok(Store {
            path,
            options,
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
        })
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with_reader<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let pooled = lock(&self.readers).pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => {
                let c = Connection::open(&self.path)?;
                configure(&c, &self.options)?;
                // The pool never writes; make SQLite enforce it.
                c.pragma_update(None, "query_only", true)?;
                c
            }
        };
        let result = f(&mut conn);
        // A connection left inside a transaction (only possible after an
        // error mid-read) is closed rather than reused.
        if conn.is_autocommit() {
            let mut pool = lock(&self.readers);
            if pool.len() < self.options.max_idle_readers {
                pool.push(conn);
            }
        }
        result
    }

    /// Runs `f` in one write transaction with a fresh generation and commits.
    /// An error from `f` drops the transaction, which rolls it back.
    fn with_writer<T>(
        &self,
        f: impl FnOnce(&mut Transaction<'_>, Generation) -> Result<T>,
    ) -> Result<T> {
        let mut conn = lock(&self.writer);
        // IMMEDIATE takes the write lock up front, so a read-then-write
        // transaction can never fail half-way with SQLITE_BUSY.
        let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let gen = next_generation(&tx)?;
        let out = f(&mut tx, gen)?;
        tx.commit()?;
        Ok(out)
    }

    /// Random id of this store, drawn when it was created: an index snapshot
    /// records it to notice being loaded against a different store.
    pub fn store_id(&self) -> Result<u64> {
        self.with_reader(|c| read_meta(c, "store_id").map(|g| g.0))
    }

    /// Current generation (of the last committed write).
    pub fn generation(&self) -> Result<Generation> {
        self.with_reader(|c| read_generation(c))
    }

    /// Enrols a new subject with its templates in one transaction.
    ///
    /// Fails with [`Error::AlreadyExists`] when a live subject with the same
    /// id exists in the tenant (a deleted one may be enrolled again).
    pub fn enroll(&self, tenant: &str, subject: &NewSubject) -> Result<WriteReceipt> {
        validate_tenant(tenant)?;
        let metadata = validate_subject(subject)?;
        self.with_writer(|tx, gen| enroll_in(tx, gen, tenant, subject, metadata.as_deref()))
    }

    /// Enrols many subjects, acknowledging each one only after it is durable.
    ///
    /// Items are written in groups of `group_size` per transaction (one fsync
    /// per group instead of per item). Each item runs inside its own
    /// savepoint, so a rejected item (invalid, already exists) is rolled back
    /// alone and the rest of its group still commits. After a group's commit
    /// has returned, `ack(index, result)` is called for each of its items in
    /// order: `Ok` means the subject and all its templates are on disk.
    ///
    /// If the commit or a storage operation fails (I/O, disk full), the
    /// error is returned and no item of that group or later is acknowledged: an unacknowledged item may or may not
    /// be stored, but never partially (re-submitting it yields either `Ok` or
    /// `AlreadyExists`). A process crash behaves the same way.
    pub fn enroll_batch<F>(
        &self,
        tenant: &str,
        subjects: &[NewSubject],
        group_size: usize,
        mut ack: F,
    ) -> Result<BatchSummary>
    where
        F: FnMut(usize, Result<WriteReceipt>),
    {
        validate_tenant(tenant)?;
        let group_size = group_size.max(1);
        let mut summary = BatchSummary::default();
        for (g, group) in subjects.chunks(group_size).enumerate() {
            let results = self.with_writer(|tx, gen| {
                let mut results = Vec::with_capacity(group.len());
                for subject in group {
                    let r = validate_subject(subject).and_then(|metadata| {
                        let sp = tx.savepoint()?;
                        let receipt = enroll_in(&sp, gen, tenant, subject, metadata.as_deref())?;
                        sp.commit()?;
                        Ok(receipt)
                    });
                    // Savepoint dropped without commit rolls the item back.
                    match r {
                        // The caller's fault: reject this item, keep the group.
                        Ok(_)
                        | Err(Error::AlreadyExists { .. })
                        | Err(Error::InvalidSubjectId { .. })
                        | Err(Error::InvalidTemplate { .. })
                        | Err(Error::InvalidMetadata { .. })
                        | Err(Error::NoTemplates) => results.push(r),
                        // I/O, disk full, corruption: SQLite may already have
                        // rolled the whole transaction back, and going on
                        // would run the next items in autocommit mode, a
                        // statement at a time. Abort the group instead.
                        Err(e) => return Err(e),
                    }
                }
                Ok(results)
            })?;
            // Acknowledge only now that the group's commit has returned, and
            // outside the writer lock so a slow callback blocks nobody.
            for (i, r) in results.into_iter().enumerate() {
                if r.is_ok() {
                    summary.committed += 1;
                } else {
                    summary.rejected += 1;
                }
                ack(g * group_size + i, r);
            }
        }
        Ok(summary)
    }

    /// Replaces a live subject's metadata and all its templates (old
    /// templates are tombstoned, new ones get new keys).
    pub fn replace(&self, tenant: &str, subject: &NewSubject) -> Result<WriteReceipt> {
        validate_tenant(tenant)?;
        let metadata = validate_subject(subject)?;
        self.with_writer(|tx, gen| {
            let now = now_ms();
            let key = live_subject_key(tx, tenant, &subject.subject_id)?;
            let (removed, gone) = tombstone_templates(tx, gen, now, key)?;
            tx.execute(
                "UPDATE subjects SET metadata = ?1, updated_at = ?2 WHERE id = ?3",
                params![metadata, now, key],
            )?;
            let added = insert_templates(tx, gen, now, key, &subject.templates)?;
            apply_counts(tx, tenant, &gone.plus(&Counts::added(&subject.templates)))?;
            Ok(WriteReceipt {
                generation: gen,
                added,
                removed,
            })
        })
    }

    /// Adds templates to a live subject.
    pub fn add_templates(
        &self,
        tenant: &str,
        subject_id: &str,
        templates: &[NewTemplate],
    ) -> Result<WriteReceipt> {
        validate_tenant(tenant)?;
        validate_subject_id(subject_id)?;
        if templates.is_empty() {
            return Err(Error::NoTemplates);
        }
        for (i, t) in templates.iter().enumerate() {
            t.validate(i)?;
        }
        self.with_writer(|tx, gen| {
            let now = now_ms();
            let key = live_subject_key(tx, tenant, subject_id)?;
            tx.execute(
                "UPDATE subjects SET updated_at = ?1 WHERE id = ?2",
                params![now, key],
            )?;
            let added = insert_templates(tx, gen, now, key, templates)?;
            apply_counts(tx, tenant, &Counts::added(templates))?;
            Ok(WriteReceipt {
                generation: gen,
                added,
                removed: Vec::new(),
            })
        })
    }

    /// Deletes a live subject: its row and templates become tombstones (so
    /// index snapshots can catch up on the delete) and the template bytes and
    /// metadata are wiped at once. [`Store::compact`] purges the tombstones.
    pub fn delete(&self, tenant: &str, subject_id: &str) -> Result<WriteReceipt> {
        validate_tenant(tenant)?;
        validate_subject_id(subject_id)?;
        self.with_writer(|tx, gen| {
            let now = now_ms();
            let key = live_subject_key(tx, tenant, subject_id)?;
            let (removed, mut delta) = tombstone_templates(tx, gen, now, key)?;
            tx.execute(
                "UPDATE subjects SET deleted_at = ?1, updated_at = ?1, metadata = NULL WHERE id = ?2",
                params![now, key],
            )?;
            delta.subjects = -1;
            delta.tomb_subjects = 1;
            apply_counts(tx, tenant, &delta)?;
            Ok(WriteReceipt {
                generation: gen,
                added: Vec::new(),
                removed,
            })
        })
    }

    /// Reads a live subject with all its live templates.
    pub fn get(&self, tenant: &str, subject_id: &str) -> Result<SubjectRecord> {
        validate_tenant(tenant)?;
        validate_subject_id(subject_id)?;
        self.with_reader(|conn| {
            // One read transaction: subject and templates from one snapshot.
            let tx = conn.transaction()?;
            let row = tx
                .query_row(
                    "SELECT id, metadata, created_at, updated_at FROM subjects
                     WHERE tenant = ?1 AND subject_id = ?2 AND deleted_at IS NULL",
                    params![tenant, subject_id],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, Option<String>>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, i64>(3)?,
                        ))
                    },
                )
                .optional()?;
            let Some((key, metadata, created_at_ms, updated_at_ms)) = row else {
                return Err(not_found(tenant, subject_id));
            };
            let mut stmt = tx.prepare_cached(
                "SELECT id, modality, finger_position, model_id, data, quality, created_at, updated_at
                 FROM templates WHERE subject_key = ?1 AND deleted_at IS NULL ORDER BY id",
            )?;
            let mut rows = stmt.query([key])?;
            let mut templates = Vec::new();
            while let Some(r) = rows.next()? {
                templates.push(TemplateRecord {
                    key: TemplateKey(r.get(0)?),
                    modality: Modality::from_code(r.get(1)?)?,
                    finger_position: finger_position(r, 2)?,
                    model_id: r.get(3)?,
                    data: r.get(4)?,
                    quality: r.get::<_, f64>(5)? as f32,
                    created_at_ms: r.get(6)?,
                    updated_at_ms: r.get(7)?,
                });
            }
            Ok(SubjectRecord {
                subject_id: subject_id.to_owned(),
                metadata: decode_metadata(metadata.as_deref())?,
                created_at_ms,
                updated_at_ms,
                templates,
            })
        })
    }

    /// Lists a tenant's live subjects in ascending subject-id order, `limit`
    /// per page (clamped to 1..=[`MAX_PAGE_SIZE`]). Pass the previous page's
    /// `next_cursor` to continue. The order is stable: subjects enrolled or
    /// deleted between pages do not shift the others.
    pub fn list(&self, tenant: &str, limit: usize, cursor: Option<&str>) -> Result<Page> {
        validate_tenant(tenant)?;
        let after = match cursor {
            None => String::new(), // sorts before every valid (non-empty) id
            Some(c) => decode_cursor(c)?,
        };
        let limit = limit.clamp(1, MAX_PAGE_SIZE);
        self.with_reader(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT s.subject_id, s.metadata, s.created_at, s.updated_at,
                        (SELECT count(*) FROM templates t
                          WHERE t.subject_key = s.id AND t.deleted_at IS NULL)
                 FROM subjects s
                 WHERE s.tenant = ?1 AND s.deleted_at IS NULL AND s.subject_id > ?2
                 ORDER BY s.subject_id LIMIT ?3",
            )?;
            // One extra row tells whether another page exists.
            let fetch = i64::try_from(limit + 1).unwrap_or(i64::MAX);
            let mut rows = stmt.query(params![tenant, after, fetch])?;
            let mut subjects = Vec::with_capacity(limit);
            let mut more = false;
            while let Some(r) = rows.next()? {
                if subjects.len() == limit {
                    more = true;
                    break;
                }
                subjects.push(SubjectSummary {
                    subject_id: r.get(0)?,
                    metadata: decode_metadata(r.get_ref(1)?.as_str_or_null()?)?,
                    created_at_ms: r.get(2)?,
                    updated_at_ms: r.get(3)?,
                    template_count: r.get::<_, i64>(4)?.try_into().unwrap_or(0),
                });
            }
            let next_cursor = match (more, subjects.last()) {
                (true, Some(last)) => Some(encode_cursor(&last.subject_id)),
                _ => None,
            };
            Ok(Page {
                subjects,
                next_cursor,
            })
        })
    }

    /// Counts for one tenant, from counters kept by every write (O(1)).
    pub fn stats(&self, tenant: &str) -> Result<TenantStats> {
        validate_tenant(tenant)?;
        self.with_reader(|conn| {
            let tx = conn.transaction()?;
            let counts = stored_counts(&tx, tenant)?;
            let count = |n: i64| u64::try_from(n).unwrap_or(0);
            Ok(TenantStats {
                subjects: count(counts.subjects),
                face_templates: count(counts.face),
                finger_templates: count(counts.finger),
                tombstoned_subjects: count(counts.tomb_subjects),
                tombstoned_templates: count(counts.tomb_templates),
                generation: read_generation(&tx)?,
            })
        })
    }

    /// Every tenant that has ever written, with its stable numeric key, in
    /// key order.
    pub fn tenants(&self) -> Result<Vec<(TenantKey, String)>> {
        self.with_reader(|conn| {
            let mut stmt = conn.prepare_cached("SELECT id, name FROM tenants ORDER BY id")?;
            let rows = stmt.query_map([], |r| Ok((TenantKey(r.get(0)?), r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Maps template keys (e.g. an index's search results) to their live
    /// owners, in the order given; `None` for a key that is unknown, deleted,
    /// or belongs to another tenant. This is also the final check that a
    /// candidate from a possibly stale index is still enrolled.
    pub fn owners(&self, tenant: &str, keys: &[TemplateKey]) -> Result<Vec<Option<String>>> {
        validate_tenant(tenant)?;
        self.with_reader(|conn| {
            let tx = conn.transaction()?;
            let mut stmt = tx.prepare_cached(
                "SELECT s.subject_id FROM templates t JOIN subjects s ON s.id = t.subject_key
                 WHERE t.id = ?1 AND t.deleted_at IS NULL AND s.tenant = ?2",
            )?;
            let mut out = Vec::with_capacity(keys.len());
            for key in keys {
                out.push(
                    stmt.query_row(params![key.0, tenant], |r| r.get::<_, String>(0))
                        .optional()?,
                );
            }
            Ok(out)
        })
    }

    /// Streams every live template matching `filter` to `f`, in key order,
    /// from one consistent snapshot: the way to load an in-memory index at
    /// start-up. Rows are borrowed, not collected, so memory stays flat
    /// whatever the gallery size. Return `ControlFlow::Break(())` to stop.
    ///
    /// The returned generation is the snapshot's: catch up from it with
    /// [`Store::changes_since`].
    pub fn scan<F>(&self, filter: &ScanFilter<'_>, mut f: F) -> Result<ScanSummary>
    where
        F: FnMut(TemplateRef<'_>) -> ControlFlow<()>,
    {
        check_filter(filter)?;
        self.with_reader(|conn| {
            let tx = conn.transaction()?;
            let generation = read_generation(&tx)?;
            let tenants = tenant_keys(&tx)?;
            let mut stmt = tx.prepare_cached(
                "SELECT t.id, s.tenant, s.subject_id, t.finger_position, t.quality, t.gen, t.data,
                        t.subject_key
                 FROM templates t JOIN subjects s ON s.id = t.subject_key
                 WHERE t.deleted_at IS NULL AND t.modality = ?1 AND t.model_id = ?2
                   AND (?3 IS NULL OR s.tenant = ?3)
                 ORDER BY t.id",
            )?;
            let mut rows = stmt.query(params![
                filter.modality.code(),
                filter.model_id,
                filter.tenant
            ])?;
            let mut summary = ScanSummary {
                generation,
                rows: 0,
                stopped: false,
            };
            while let Some(r) = rows.next()? {
                summary.rows += 1;
                if f(template_ref(r, &tenants)?).is_break() {
                    summary.stopped = true;
                    break;
                }
            }
            Ok(summary)
        })
    }

    /// Streams every change to templates matching `filter` made after
    /// generation `since`, in generation order, from one snapshot: how an
    /// index snapshot taken at `since` catches up. Returns the snapshot's
    /// generation, the caller's new `since`.
    ///
    /// Fails with [`Error::GenerationPurged`] when [`Store::compact`] has
    /// purged tombstones newer than `since`: deletes would be missed, so the
    /// caller must rebuild with [`Store::scan`]. Fails with
    /// [`Error::GenerationAhead`] when `since` is newer than the store (the
    /// snapshot belongs to another store, or the file was restored from a
    /// backup): rebuild as well. Check [`Store::store_id`] too; after
    /// restoring a backup that then took new writes, generations alone cannot
    /// tell, so rebuild indexes after any restore.
    pub fn changes_since<F>(
        &self,
        filter: &ScanFilter<'_>,
        since: Generation,
        mut f: F,
    ) -> Result<ScanSummary>
    where
        F: FnMut(Change<'_>) -> ControlFlow<()>,
    {
        check_filter(filter)?;
        let since_i = i64::try_from(since.0).unwrap_or(i64::MAX);
        self.with_reader(|conn| {
            let tx = conn.transaction()?;
            let generation = read_generation(&tx)?;
            let horizon = read_meta(&tx, "purge_horizon")?;
            let tenants = tenant_keys(&tx)?;
            if since < horizon {
                return Err(Error::GenerationPurged {
                    requested: since.0,
                    horizon: horizon.0,
                });
            }
            if since > generation {
                // The snapshot saw writes this file does not have: it comes
                // from another store, or the file was restored from a backup.
                return Err(Error::GenerationAhead {
                    requested: since.0,
                    current: generation.0,
                });
            }
            let mut stmt = tx.prepare_cached(
                "SELECT t.id, s.tenant, s.subject_id, t.finger_position, t.quality, t.gen, t.data,
                        t.subject_key, t.deleted_at IS NOT NULL
                 FROM templates t JOIN subjects s ON s.id = t.subject_key
                 WHERE t.gen > ?4 AND t.modality = ?1 AND t.model_id = ?2
                   AND (?3 IS NULL OR s.tenant = ?3)
                 ORDER BY t.gen, t.id",
            )?;
            let mut rows = stmt.query(params![
                filter.modality.code(),
                filter.model_id,
                filter.tenant,
                since_i
            ])?;
            let mut summary = ScanSummary {
                generation,
                rows: 0,
                stopped: false,
            };
            while let Some(r) = rows.next()? {
                summary.rows += 1;
                let change = if r.get::<_, bool>(8)? {
                    Change::Removed {
                        key: TemplateKey(r.get(0)?),
                        generation: Generation(u64::try_from(r.get::<_, i64>(5)?).unwrap_or(0)),
                    }
                } else {
                    Change::Added(template_ref(r, &tenants)?)
                };
                if f(change).is_break() {
                    summary.stopped = true;
                    break;
                }
            }
            Ok(summary)
        })
    }

    /// Purges all tombstones, then checkpoints and truncates the WAL and
    /// VACUUMs the file, so that deleted rows leave no readable trace in the
    /// database or WAL files. Snapshots older than the purged tombstones can
    /// no longer catch up (see [`Error::GenerationPurged`]).
    ///
    /// Holds the write lock throughout: writes wait (VACUUM rewrites the
    /// whole file, seconds per GB), reads go on. Run it off-peak.
    pub fn compact(&self) -> Result<CompactReport> {
        let mut conn = lock(&self.writer);
        let (subjects_purged, templates_purged) = {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let newest_tombstone: i64 = tx.query_row(
                "SELECT coalesce(max(gen), 0) FROM templates WHERE deleted_at IS NOT NULL",
                [],
                |r| r.get(0),
            )?;
            // Delete templates first: subjects' foreign key would otherwise
            // cascade, which is correct but hides what was purged.
            let t = tx.execute("DELETE FROM templates WHERE deleted_at IS NOT NULL", [])?;
            let s = tx.execute("DELETE FROM subjects WHERE deleted_at IS NOT NULL", [])?;
            tx.execute(
                "UPDATE tenants SET tombstoned_subjects = 0, tombstoned_templates = 0",
                [],
            )?;
            tx.execute(
                "UPDATE meta SET value = max(value, ?1) WHERE key = 'purge_horizon'",
                [newest_tombstone],
            )?;
            tx.commit()?;
            (s as u64, t as u64)
        };
        // Copy the WAL into the main file and truncate it: until then the
        // WAL still holds old page images with the deleted rows.
        checkpoint_truncate(&conn)?;
        // VACUUM rewrites the file without free pages and shrinks it; it
        // writes through the WAL, hence the second checkpoint.
        conn.execute_batch("VACUUM")?;
        let wal_truncated = checkpoint_truncate(&conn)?;
        tracing::info!(
            subjects_purged,
            templates_purged,
            wal_truncated,
            "gallery store compacted"
        );
        Ok(CompactReport {
            subjects_purged,
            templates_purged,
            wal_truncated,
        })
    }

    /// Runs SQLite's `integrity_check` and `foreign_key_check`; any problem
    /// is returned as [`Error::Corrupt`].
    pub fn integrity_check(&self) -> Result<()> {
        self.with_reader(|conn| {
            // One snapshot, so counters and rows are compared consistently
            // even while writers run.
            let tx = conn.transaction()?;
            let conn: &Connection = &tx;
            let mut problems = Vec::new();
            let mut stmt = conn.prepare("PRAGMA integrity_check")?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let line: String = r.get(0)?;
                if line != "ok" {
                    problems.push(line);
                }
            }
            let fk: i64 =
                conn.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                    r.get(0)
                })?;
            if fk > 0 {
                problems.push(format!("{fk} foreign key violations"));
            }
            let orphans: i64 = conn.query_row(
                "SELECT count(*) FROM templates t JOIN subjects s ON s.id = t.subject_key
                 WHERE s.deleted_at IS NOT NULL AND t.deleted_at IS NULL",
                [],
                |r| r.get(0),
            )?;
            if orphans > 0 {
                problems.push(format!("{orphans} live templates of deleted subjects"));
            }
            let tenants: Vec<String> = conn
                .prepare("SELECT tenant FROM subjects UNION SELECT name FROM tenants")?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            for tenant in &tenants {
                let (stored, actual) = (stored_counts(conn, tenant)?, recount(conn, tenant)?);
                if stored != actual {
                    problems.push(format!(
                        "tenant counters {stored:?} differ from rows {actual:?}"
                    ));
                }
            }
            if problems.is_empty() {
                Ok(())
            } else {
                Err(Error::Corrupt(problems.join("; ")))
            }
        })
    }

    /// Checkpoints the WAL into the database file and closes all connections.
    /// Dropping a `Store` also closes it; this reports errors and leaves no
    /// WAL content behind.
    pub fn close(self) -> Result<()> {
        drop(lock(&self.readers).drain(..));
        let conn = self.writer.into_inner().unwrap_or_else(|e| e.into_inner());
        checkpoint_truncate(&conn)?;
        conn.close().map_err(|(_, e)| Error::from(e))
    }
}

fn checkpoint_truncate(conn: &Connection) -> Result<bool> {
    let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
    Ok(busy == 0)
}

fn not_found(tenant: &str, subject_id: &str) -> Error {
    Error::NotFound {
        tenant: tenant.to_owned(),
        subject_id: subject_id.to_owned(),
    }
}

fn check_filter(filter: &ScanFilter<'_>) -> Result<()> {
    if let Some(t) = filter.tenant {
        validate_tenant(t).map_err(|_| Error::InvalidFilter {
            reason: "invalid tenant id",
        })?;
    }
    crate::model::check_model_id(filter.model_id).map_err(|reason| Error::InvalidFilter { reason })
}

fn read_meta(conn: &Connection, key: &str) -> Result<Generation> {
    let v: Option<i64> = conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?;
    match v.map(u64::try_from) {
        Some(Ok(v)) => Ok(Generation(v)),
        _ => Err(Error::Corrupt(format!(
            "meta entry {key} missing or negative"
        ))),
    }
}

fn read_generation(conn: &Connection) -> Result<Generation> {
    read_meta(conn, "generation")
}

fn next_generation(tx: &Transaction<'_>) -> Result<Generation> {
    let v: Option<i64> = tx
        .query_row(
            "UPDATE meta SET value = value + 1 WHERE key = 'generation' RETURNING value",
            [],
            |r| r.get(0),
        )
        .optional()?;
    match v.map(u64::try_from) {
        Some(Ok(v)) => Ok(Generation(v)),
        _ => Err(Error::Corrupt("generation counter missing".to_owned())),
    }
}

fn gen_param(gen: Generation) -> i64 {
    i64::try_from(gen.0).unwrap_or(i64::MAX)
}

fn live_subject_key(tx: &Transaction<'_>, tenant: &str, subject_id: &str) -> Result<i64> {
    tx.query_row(
        "SELECT id FROM subjects WHERE tenant = ?1 AND subject_id = ?2 AND deleted_at IS NULL",
        params![tenant, subject_id],
        |r| r.get(0),
    )
    .optional()?
    .ok_or_else(|| not_found(tenant, subject_id))
}

fn enroll_in(
    tx: &Connection,
    gen: Generation,
    tenant: &str,
    subject: &NewSubject,
    metadata: Option<&str>,
) -> Result<WriteReceipt> {
    let now = now_ms();
    let exists: Option<i64> = tx
        .query_row(
            "SELECT 1 FROM subjects WHERE tenant = ?1 AND subject_id = ?2 AND deleted_at IS NULL",
            params![tenant, subject.subject_id],
            |r| r.get(0),
        )
        .optional()?;
    if exists.is_some() {
        return Err(Error::AlreadyExists {
            tenant: tenant.to_owned(),
            subject_id: subject.subject_id.clone(),
        });
    }
    tx.execute(
        "INSERT INTO subjects (tenant, subject_id, metadata, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?4)",
        params![tenant, subject.subject_id, metadata, now],
    )?;
    let key = tx.last_insert_rowid();
    let added = insert_templates(tx, gen, now, key, &subject.templates)?;
    let mut delta = Counts::added(&subject.templates);
    delta.subjects = 1;
    apply_counts(tx, tenant, &delta)?;
    Ok(WriteReceipt {
        generation: gen,
        added,
        removed: Vec::new(),
    })
}

fn insert_templates(
    tx: &Connection,
    gen: Generation,
    now: i64,
    subject_key: i64,
    templates: &[NewTemplate],
) -> Result<Vec<TemplateKey>> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO templates
           (subject_key, modality, finger_position, model_id, data, quality, created_at, updated_at, gen)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8)",
    )?;
    let mut keys = Vec::with_capacity(templates.len());
    for t in templates {
        stmt.execute(params![
            subject_key,
            t.modality.code(),
            t.finger_position,
            t.model_id,
            t.data,
            f64::from(t.quality),
            now,
            gen_param(gen),
        ])?;
        keys.push(TemplateKey(tx.last_insert_rowid()));
    }
    Ok(keys)
}

/// Tombstones a subject's live templates; returns their keys and the
/// change to the tenant's counters.
fn tombstone_templates(
    tx: &Transaction<'_>,
    gen: Generation,
    now: i64,
    subject_key: i64,
) -> Result<(Vec<TemplateKey>, Counts)> {
    // The bytes are wiped now, not at compaction: a deleted person's
    // biometric data must not be readable from the moment delete returns.
    // secure_delete zeroes the freed space the old blob occupied.
    let mut stmt = tx.prepare_cached(
        "UPDATE templates SET deleted_at = ?1, updated_at = ?1, gen = ?2, data = x''
         WHERE subject_key = ?3 AND deleted_at IS NULL RETURNING id, modality",
    )?;
    let mut rows = stmt.query(params![now, gen_param(gen), subject_key])?;
    let mut keys = Vec::new();
    let mut delta = Counts::default();
    while let Some(r) = rows.next()? {
        keys.push(TemplateKey(r.get(0)?));
        match Modality::from_code(r.get(1)?)? {
            Modality::Face => delta.face -= 1,
            Modality::Finger => delta.finger -= 1,
        }
        delta.tomb_templates += 1;
    }
    keys.sort_unstable();
    Ok((keys, delta))
}

/// One tenant's counters, or a change to them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counts {
    subjects: i64,
    face: i64,
    finger: i64,
    tomb_subjects: i64,
    tomb_templates: i64,
}

impl Counts {
    fn added(templates: &[NewTemplate]) -> Counts {
        let mut c = Counts::default();
        for t in templates {
            match t.modality {
                Modality::Face => c.face += 1,
                Modality::Finger => c.finger += 1,
            }
        }
        c
    }

    fn plus(&self, o: &Counts) -> Counts {
        Counts {
            subjects: self.subjects + o.subjects,
            face: self.face + o.face,
            finger: self.finger + o.finger,
            tomb_subjects: self.tomb_subjects + o.tomb_subjects,
            tomb_templates: self.tomb_templates + o.tomb_templates,
        }
    }
}

fn apply_counts(tx: &Connection, tenant: &str, d: &Counts) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO tenants (name, subjects, face_templates, finger_templates,
                              tombstoned_subjects, tombstoned_templates)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (name) DO UPDATE SET
            subjects = subjects + excluded.subjects,
            face_templates = face_templates + excluded.face_templates,
            finger_templates = finger_templates + excluded.finger_templates,
            tombstoned_subjects = tombstoned_subjects + excluded.tombstoned_subjects,
            tombstoned_templates = tombstoned_templates + excluded.tombstoned_templates",
    )?
    .execute(params![
        tenant,
        d.subjects,
        d.face,
        d.finger,
        d.tomb_subjects,
        d.tomb_templates
    ])?;
    Ok(())
}

fn stored_counts(conn: &Connection, tenant: &str) -> Result<Counts> {
    Ok(conn
        .query_row(
            "SELECT subjects, face_templates, finger_templates, tombstoned_subjects,
                    tombstoned_templates
             FROM tenants WHERE name = ?1",
            [tenant],
            |r| {
                Ok(Counts {
                    subjects: r.get(0)?,
                    face: r.get(1)?,
                    finger: r.get(2)?,
                    tomb_subjects: r.get(3)?,
                    tomb_templates: r.get(4)?,
                })
            },
        )
        .optional()?
        .unwrap_or_default())
}

/// Counts a tenant's rows from scratch (slow: reads the whole gallery).
fn recount(conn: &Connection, tenant: &str) -> Result<Counts> {
    let (subjects, tomb_subjects) = conn.query_row(
        "SELECT count(*) FILTER (WHERE deleted_at IS NULL),
                count(*) FILTER (WHERE deleted_at IS NOT NULL)
         FROM subjects WHERE tenant = ?1",
        [tenant],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let (face, finger, tomb_templates) = conn.query_row(
        "SELECT count(*) FILTER (WHERE t.deleted_at IS NULL AND t.modality = ?2),
                count(*) FILTER (WHERE t.deleted_at IS NULL AND t.modality = ?3),
                count(*) FILTER (WHERE t.deleted_at IS NOT NULL)
         FROM templates t JOIN subjects s ON s.id = t.subject_key
         WHERE s.tenant = ?1",
        params![tenant, Modality::Face.code(), Modality::Finger.code()],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    Ok(Counts {
        subjects,
        face,
        finger,
        tomb_subjects,
        tomb_templates,
    })
}

fn finger_position(r: &Row<'_>, idx: usize) -> Result<Option<u8>> {
    match r.get::<_, Option<i64>>(idx)? {
        None => Ok(None),
        Some(p) => u8::try_from(p)
            .ok()
            .filter(|p| *p <= crate::model::MAX_FINGER_POSITION)
            .map(Some)
            .ok_or_else(|| Error::Corrupt(format!("finger position {p} out of range"))),
    }
}

/// Tenant name → key, read once per scan: the table is tiny, and a map
/// lookup per row is cheaper than one more join.
fn tenant_keys(conn: &Connection) -> Result<HashMap<String, TenantKey>> {
    let mut stmt = conn.prepare_cached("SELECT name, id FROM tenants")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, TenantKey(r.get(1)?))))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Columns: id, tenant, subject_id, finger_position, quality, gen, data, subject_key.
fn template_ref<'r>(
    r: &'r Row<'_>,
    tenants: &HashMap<String, TenantKey>,
) -> Result<TemplateRef<'r>> {
    let tenant = r.get_ref(1)?.as_str()?;
    let Some(&tenant_key) = tenants.get(tenant) else {
        return Err(Error::Corrupt(
            "subject of a tenant without a tenants row".to_owned(),
        ));
    };
    Ok(TemplateRef {
        key: TemplateKey(r.get(0)?),
        tenant,
        tenant_key,
        subject_key: SubjectKey(r.get(7)?),
        subject_id: r.get_ref(2)?.as_str()?,
        finger_position: finger_position(r, 3)?,
        quality: r.get::<_, f64>(4)? as f32,
        generation: Generation(u64::try_from(r.get::<_, i64>(5)?).unwrap_or(0)),
        data: r.get_ref(6)?.as_blob()?,
    })
}

const CURSOR_PREFIX: &str = "c1.";

/// Cursors are the hex of the last subject id returned: opaque to callers
/// (and versioned by the prefix), stable across writes, and without any
/// server-side state to expire.
fn encode_cursor(last: &str) -> String {
    let mut s = String::with_capacity(CURSOR_PREFIX.len() + 2 * last.len());
    s.push_str(CURSOR_PREFIX);
    for b in last.bytes() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn decode_cursor(cursor: &str) -> Result<String> {
    let hex = cursor
        .strip_prefix(CURSOR_PREFIX)
        .ok_or(Error::InvalidCursor)?;
    if hex.len() % 2 != 0 {
        return Err(Error::InvalidCursor);
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or(Error::InvalidCursor)?;
    let id = String::from_utf8(bytes).map_err(|_| Error::InvalidCursor)?;
    validate_subject_id(&id).map_err(|_| Error::InvalidCursor)?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_roundtrip_and_rejects() {
        let c = encode_cursor("BHXH-2024/1");
        assert_eq!(decode_cursor(&c).unwrap(), "BHXH-2024/1");
        for bad in ["", "c1.", "c1.4", "c1.zz", "c2.41", "41", "c1.20"] {
            assert!(
                matches!(decode_cursor(bad), Err(Error::InvalidCursor)),
                "{bad}"
            );
        }
    }
}
