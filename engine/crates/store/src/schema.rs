//! Schema versions and forward-only migrations.
//!
//! The version lives in `PRAGMA user_version`; `PRAGMA application_id` marks
//! the file as a sinhtrac store so that opening some other SQLite database
//! fails instead of "migrating" it. Each migration runs in its own
//! `BEGIN IMMEDIATE` transaction together with the version bump, so a crash
//! leaves the file at the old or the new version, never between.

use rusqlite::{Connection, TransactionBehavior};

use crate::error::{Error, Result};

/// `application_id` of a sinhtrac gallery store ("STRC").
pub const APPLICATION_ID: i64 = 0x5354_5243;

/// Migration `i` (0-based) takes the schema from version `i` to `i + 1`.
/// Forward-only: released entries are never edited, only appended to.
pub const MIGRATIONS: &[&str] = &[
    // v1: first shipped schema. Hard deletes, one UNIQUE (tenant, subject_id).
    r#"
    CREATE TABLE subjects (
        id          INTEGER PRIMARY KEY,
        tenant      TEXT    NOT NULL,
        subject_id  TEXT    NOT NULL,
        metadata    TEXT,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL,
        UNIQUE (tenant, subject_id)
    );
    -- AUTOINCREMENT: template keys are handed to in-memory indexes and must
    -- never be reused after a delete.
    CREATE TABLE templates (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        subject_key     INTEGER NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,
        modality        INTEGER NOT NULL,
        finger_position INTEGER,
        model_id        TEXT    NOT NULL,
        data            BLOB    NOT NULL,
        quality         REAL    NOT NULL,
        created_at      INTEGER NOT NULL,
        updated_at      INTEGER NOT NULL
    );
    CREATE INDEX templates_subject ON templates(subject_key);
    "#,
    // v2: tombstones and the change generation.
    // SQLite cannot drop a UNIQUE constraint, so `subjects` is rebuilt (the
    // documented create/copy/drop/rename procedure, with foreign keys off: see
    // `migrate`) and uniqueness becomes a partial index over live rows, which
    // lets a deleted subject id be enrolled again.
    r#"
    -- AUTOINCREMENT: subject keys are also handed out (scan), never reused.
    CREATE TABLE subjects_new (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant      TEXT    NOT NULL,
        subject_id  TEXT    NOT NULL,
        metadata    TEXT,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL,
        deleted_at  INTEGER
    );
    INSERT INTO subjects_new (id, tenant, subject_id, metadata, created_at, updated_at)
        SELECT id, tenant, subject_id, metadata, created_at, updated_at FROM subjects;
    DROP TABLE subjects;
    ALTER TABLE subjects_new RENAME TO subjects;
    CREATE UNIQUE INDEX subjects_live ON subjects(tenant, subject_id) WHERE deleted_at IS NULL;

    -- DEFAULT 1 rather than an UPDATE: existing rows are stamped with
    -- generation 1 without rewriting every template blob.
    ALTER TABLE templates ADD COLUMN gen INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE templates ADD COLUMN deleted_at INTEGER;
    CREATE INDEX templates_gen ON templates(gen);
    -- Tombstones only (partial): compaction finds them without a full scan.
    CREATE INDEX templates_tombstones ON templates(gen) WHERE deleted_at IS NOT NULL;
    CREATE INDEX subjects_tombstones ON subjects(id) WHERE deleted_at IS NOT NULL;

    CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
    -- store_id: random, so index snapshots can tell stores apart.
    INSERT INTO meta (key, value)
        VALUES ('generation', 1), ('purge_horizon', 0), ('store_id', abs(random() >> 1));
    "#,
    // v3: a row per tenant with a stable numeric key (for index tags) and
    // counters kept in step by every write transaction, so that stats is
    // O(1) instead of a pass over the gallery (2 s at 1M templates).
    // `Store::integrity_check` recounts and compares.
    r#"
    CREATE TABLE tenants (
        id                   INTEGER PRIMARY KEY AUTOINCREMENT,
        name                 TEXT    NOT NULL UNIQUE,
        subjects             INTEGER NOT NULL,
        face_templates       INTEGER NOT NULL,
        finger_templates     INTEGER NOT NULL,
        tombstoned_subjects  INTEGER NOT NULL,
        tombstoned_templates INTEGER NOT NULL
    );
    INSERT INTO tenants (name, subjects, face_templates, finger_templates,
                         tombstoned_subjects, tombstoned_templates)
        SELECT tenant, count(*) FILTER (WHERE deleted_at IS NULL), 0, 0,
               count(*) FILTER (WHERE deleted_at IS NOT NULL), 0
        FROM subjects GROUP BY tenant ORDER BY tenant;
    UPDATE tenants SET
        face_templates = (SELECT count(*) FROM templates t JOIN subjects s ON s.id = t.subject_key
            WHERE s.tenant = tenants.name AND t.deleted_at IS NULL AND t.modality = 1),
        finger_templates = (SELECT count(*) FROM templates t JOIN subjects s ON s.id = t.subject_key
            WHERE s.tenant = tenants.name AND t.deleted_at IS NULL AND t.modality = 2),
        tombstoned_templates = (SELECT count(*) FROM templates t JOIN subjects s ON s.id = t.subject_key
            WHERE s.tenant = tenants.name AND t.deleted_at IS NOT NULL);
    "#,
];

/// Schema version this build writes and reads.
pub const CURRENT_VERSION: i64 = MIGRATIONS.len() as i64;

fn user_version(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

fn application_id(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("PRAGMA application_id", [], |r| r.get(0))?)
}

/// Checks the file's identity and version, without writing.
pub(crate) fn check(conn: &Connection) -> Result<i64> {
    let app = application_id(conn)?;
    let version = user_version(conn)?;
    if app == 0 && version == 0 {
        // Empty file, or a foreign database that never set either pragma.
        let tables: i64 = conn.query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'",
            [],
            |r| r.get(0),
        )?;
        if tables > 0 {
            return Err(Error::NotAStore { found: app });
        }
    } else if app != APPLICATION_ID {
        return Err(Error::NotAStore { found: app });
    }
    if version > CURRENT_VERSION {
        return Err(Error::SchemaTooNew {
            found: version,
            supported: CURRENT_VERSION,
        });
    }
    Ok(version)
}

/// Brings the schema up to `target` (normally [`CURRENT_VERSION`]).
pub(crate) fn migrate(conn: &mut Connection, target: i64) -> Result<()> {
    check(conn)?;
    // Foreign keys must be off while tables are rebuilt: with them on,
    // `DROP TABLE subjects` would cascade and delete every template. The
    // pragma is a no-op inside a transaction, hence set here, and every
    // migration ends with `foreign_key_check` instead.
    conn.pragma_update(None, "foreign_keys", false)?;
    let result = migrate_steps(conn, target);
    conn.pragma_update(None, "foreign_keys", true)?;
    result
}

fn migrate_steps(conn: &mut Connection, target: i64) -> Result<()> {
    let target = target.clamp(0, CURRENT_VERSION);
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Re-read under the write lock: another process may have migrated
        // between our check and now.
        let version = check(&tx)?;
        if version >= target {
            return Ok(());
        }
        let Some(sql) = usize::try_from(version)
            .ok()
            .and_then(|v| MIGRATIONS.get(v))
        else {
            return Err(Error::Corrupt(format!(
                "no migration from version {version}"
            )));
        };
        tracing::info!(
            from = version,
            to = version + 1,
            "migrating gallery store schema"
        );
        tx.execute_batch(sql)?;
        let violations: i64 =
            tx.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })?;
        if violations > 0 {
            // Dropping `tx` rolls the migration back.
            return Err(Error::Corrupt(format!(
                "{violations} foreign key violations after migrating to version {}",
                version + 1
            )));
        }
        tx.pragma_update(None, "application_id", APPLICATION_ID)?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
    }
}
