//! Schema versions: old files open, newer and foreign files are refused.

mod common;

use common::*;
use rusqlite::{params, Connection};
use sinhtrac_store::{Error, Store, TenantKey, APPLICATION_ID, CURRENT_VERSION, MIGRATIONS};

/// A store written by the v1 schema (hard deletes, no generation) opens with
/// the current code, is migrated, and reads back exactly what v1 wrote.
#[test]
fn a_v1_store_opens_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        // Written the way a v1 build wrote it: only the v1 SQL, raw inserts.
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "wal").unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "application_id", APPLICATION_ID)
            .unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        for (i, id) in ["079203001234", "BHXH-2024/7"].iter().enumerate() {
            conn.execute(
                "INSERT INTO subjects (tenant, subject_id, metadata, created_at, updated_at)
                 VALUES ('ins', ?1, '{\"name\":\"Trần Thị B\"}', 1700000000000, 1700000000001)",
                [id],
            )
            .unwrap();
            let key = conn.last_insert_rowid();
            for j in 0..2 {
                conn.execute(
                    "INSERT INTO templates (subject_key, modality, finger_position, model_id, data,
                        quality, created_at, updated_at)
                     VALUES (?1, 1, NULL, ?2, ?3, 0.75, 1700000000000, 1700000000000)",
                    params![key, FACE_MODEL, template_bytes(id, 1, j + i, 512)],
                )
                .unwrap();
            }
        }
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, 1);
    }

    let store = Store::open(&path).unwrap();
    let got = store.get("ins", "079203001234").unwrap();
    assert_eq!(got.metadata["name"], "Trần Thị B");
    assert_eq!(
        (got.created_at_ms, got.updated_at_ms),
        (1_700_000_000_000, 1_700_000_000_001)
    );
    assert_eq!(got.templates.len(), 2);
    assert_eq!(
        got.templates[1].data,
        template_bytes("079203001234", 1, 1, 512)
    );
    assert_eq!(got.templates[0].quality, 0.75);
    assert_eq!(
        list_all(&store, "ins", 1),
        vec!["079203001234", "BHXH-2024/7"]
    );
    let rows = scan_all(&store, Some("ins"));
    assert_eq!(rows.len(), 4);
    assert!(rows
        .values()
        .all(|(id, data)| data.len() == 512 && !id.is_empty()));

    // The migrated store behaves like a new one.
    assert!(matches!(
        store.enroll("ins", &subject("BHXH-2024/7", 2, 1)),
        Err(Error::AlreadyExists { .. })
    ));
    let before = store.generation().unwrap();
    let d = store.delete("ins", "BHXH-2024/7").unwrap();
    assert!(d.generation > before);
    assert_eq!(d.removed.len(), 2);
    let again = store.enroll("ins", &subject("BHXH-2024/7", 2, 1)).unwrap();
    assert!(again.added[0].0 > 4, "keys continue after the v1 rows");
    assert_eq!(
        store.tenants().unwrap(),
        vec![(TenantKey(1), "ins".to_owned())]
    );
    let mut subject_keys = Vec::new();
    store
        .scan(&face_filter(Some("ins")), |t| {
            subject_keys.push(t.subject_key.0);
            std::ops::ControlFlow::Continue(())
        })
        .unwrap();
    // v1 rows keep their keys; the new subject's key continues after them.
    assert_eq!(subject_keys, vec![1, 1, 3]);
    store.integrity_check().unwrap();
    drop(store);

    let conn = Connection::open(&path).unwrap();
    let v: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, CURRENT_VERSION);
}

#[test]
fn a_newer_schema_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    Store::open(&path).unwrap().close().unwrap();
    let conn = Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", CURRENT_VERSION + 1)
        .unwrap();
    drop(conn);
    match Store::open(&path) {
        Err(Error::SchemaTooNew { found, supported }) => {
            assert_eq!((found, supported), (CURRENT_VERSION + 1, CURRENT_VERSION));
        }
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("opened a newer schema"),
    }
}

#[test]
fn a_foreign_database_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT)")
        .unwrap();
    drop(conn);
    assert!(matches!(
        Store::open(&path),
        Err(Error::NotAStore { found: 0 })
    ));
    let conn = Connection::open(&path).unwrap();
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tables, 1, "nothing was created in the foreign file");
}

#[test]
fn a_garbage_file_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.db");
    std::fs::write(&path, vec![0x5a; 8192]).unwrap();
    assert!(matches!(Store::open(&path), Err(Error::Corrupt(_))));
}

/// The counters behind `stats` are checked against the rows.
#[test]
fn integrity_check_catches_counter_drift() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.db");
    let store = Store::open(&path).unwrap();
    store.enroll("t", &subject("A", 1, 2)).unwrap();
    store.integrity_check().unwrap();
    let conn = Connection::open(&path).unwrap();
    conn.execute("UPDATE tenants SET face_templates = 7", [])
        .unwrap();
    assert!(matches!(store.integrity_check(), Err(Error::Corrupt(_))));
}

/// A migration that fails (here: the v1 file holds a template whose subject
/// is missing, which the post-migration foreign key check rejects) is rolled
/// back whole: the file stays at v1 with its data, and opening says Corrupt.
#[test]
fn a_failed_migration_leaves_the_old_version_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad-v1.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "wal").unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "application_id", APPLICATION_ID)
            .unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.pragma_update(None, "foreign_keys", false).unwrap();
        conn.execute(
            "INSERT INTO templates (subject_key, modality, model_id, data, quality, created_at, updated_at)
             VALUES (42, 1, 'm', x'01', 0.5, 0, 0)",
            [],
        )
        .unwrap();
    }
    assert!(matches!(Store::open(&path), Err(Error::Corrupt(_))));
    let conn = Connection::open(&path).unwrap();
    let v: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, 1, "version unchanged");
    let has_meta: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'meta'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(has_meta, 0, "no trace of the v2 migration");
    let n: i64 = conn
        .query_row("SELECT count(*) FROM templates", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1, "old data kept");
}
