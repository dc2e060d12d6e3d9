//! Behaviour of the gallery store against a real database file.

mod common;

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::sync::Arc;

use common::*;
use sinhtrac_store::{
    Change, Error, Generation, Modality, NewSubject, NewTemplate, ScanFilter, Store, TemplateKey,
};

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path().join("g.db")).expect("open");
    (dir, store)
}

#[test]
fn enroll_then_get_returns_everything_written() {
    let (_dir, store) = open();
    let s = subject("079203001234", 1, 3);
    let receipt = store.enroll("bank-a", &s).unwrap();
    assert_eq!(receipt.added.len(), 3);
    assert!(receipt.removed.is_empty());
    assert!(receipt.added.windows(2).all(|w| w[0] < w[1]));

    let got = store.get("bank-a", "079203001234").unwrap();
    assert_eq!(got.subject_id, s.subject_id);
    assert_eq!(got.metadata, s.metadata);
    assert!(got.created_at_ms > 1_600_000_000_000, "UTC epoch ms");
    assert_eq!(got.templates.len(), 3);
    for (rec, new) in got.templates.iter().zip(&s.templates) {
        assert_eq!(rec.modality, new.modality);
        assert_eq!(rec.finger_position, new.finger_position);
        assert_eq!(rec.model_id, new.model_id);
        assert_eq!(rec.data, new.data);
        assert_eq!(rec.quality, new.quality);
    }
    assert_eq!(
        got.templates.iter().map(|t| t.key).collect::<Vec<_>>(),
        receipt.added
    );
    assert_eq!(store.generation().unwrap(), receipt.generation);
}

#[test]
fn duplicate_enrolment_is_already_exists_and_changes_nothing() {
    let (_dir, store) = open();
    store.enroll("t", &subject("A1", 1, 1)).unwrap();
    let gen = store.generation().unwrap();
    let err = store.enroll("t", &subject("A1", 2, 2)).unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { ref subject_id, .. } if subject_id == "A1"));
    // The error message must not leak the (personal) subject id into logs.
    assert!(!err.to_string().contains("A1"));
    assert_eq!(store.generation().unwrap(), gen, "rolled back");
    assert_eq!(store.get("t", "A1").unwrap().templates.len(), 1);
    assert_eq!(store.stats("t").unwrap().face_templates, 1);
}

#[test]
fn bad_input_is_a_typed_error_and_writes_nothing() {
    let (_dir, store) = open();
    let gen = store.generation().unwrap();
    let bad_id = subject("12 34", 1, 1);
    assert!(matches!(
        store.enroll("t", &bad_id),
        Err(Error::InvalidSubjectId { .. })
    ));
    assert!(matches!(
        store.enroll("t", &subject(&"9".repeat(65), 1, 1)),
        Err(Error::InvalidSubjectId { .. })
    ));
    assert!(matches!(
        store.enroll("bad tenant", &subject("A", 1, 1)),
        Err(Error::InvalidTenant { .. })
    ));
    assert!(matches!(
        store.enroll("", &subject("A", 1, 1)),
        Err(Error::InvalidTenant { .. })
    ));
    let empty = NewSubject {
        subject_id: "A".into(),
        ..Default::default()
    };
    assert!(matches!(store.enroll("t", &empty), Err(Error::NoTemplates)));
    let mut nan = subject("A", 1, 2);
    nan.templates[1].quality = f32::NAN;
    assert!(matches!(
        store.enroll("t", &nan),
        Err(Error::InvalidTemplate { index: 1, .. })
    ));
    let mut finger = subject("A", 1, 1);
    finger
        .templates
        .push(NewTemplate::finger(11, FINGER_MODEL, vec![1], 1.0));
    assert!(matches!(
        store.enroll("t", &finger),
        Err(Error::InvalidTemplate { index: 1, .. })
    ));
    assert!(matches!(
        store.get("t", "x y"),
        Err(Error::InvalidSubjectId { .. })
    ));
    assert!(matches!(
        store.delete("t", ""),
        Err(Error::InvalidSubjectId { .. })
    ));
    assert_eq!(store.generation().unwrap(), gen);
    assert_eq!(store.stats("t").unwrap().subjects, 0);
}

#[test]
fn tenants_are_isolated() {
    let (_dir, store) = open();
    store.enroll("bank-a", &subject("S1", 1, 1)).unwrap();
    store.enroll("bank-b", &subject("S1", 2, 1)).unwrap();
    store.enroll("bank-b", &subject("S2", 2, 1)).unwrap();
    assert!(matches!(
        store.get("bank-a", "S2"),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        store.delete("bank-a", "S2"),
        Err(Error::NotFound { .. })
    ));
    assert_eq!(
        store.get("bank-a", "S1").unwrap().templates[0].data,
        template_bytes("S1", 1, 0, 512)
    );
    assert_eq!(
        store.get("bank-b", "S1").unwrap().templates[0].data,
        template_bytes("S1", 2, 0, 512)
    );
    store.delete("bank-a", "S1").unwrap();
    assert!(store.get("bank-b", "S1").is_ok());
    assert_eq!(list_all(&store, "bank-a", 10), Vec::<String>::new());
    assert_eq!(list_all(&store, "bank-b", 10), vec!["S1", "S2"]);
    assert_eq!(scan_all(&store, Some("bank-a")).len(), 0);
    assert_eq!(scan_all(&store, Some("bank-b")).len(), 2);
    assert_eq!(scan_all(&store, None).len(), 2);
}

#[test]
fn replace_and_add_templates_swap_keys() {
    let (_dir, store) = open();
    let first = store.enroll("t", &subject("S", 1, 2)).unwrap();
    let rep = store.replace("t", &subject("S", 2, 3)).unwrap();
    assert_eq!(rep.removed, first.added);
    assert_eq!(rep.added.len(), 3);
    assert!(
        rep.added[0] > *first.added.last().unwrap(),
        "keys are never reused"
    );
    let got = store.get("t", "S").unwrap();
    assert_eq!(got.metadata["version"], "2");
    assert_eq!(
        got.templates.iter().map(|t| t.key).collect::<Vec<_>>(),
        rep.added
    );
    assert!(got.templates.iter().all(|t| t.data
        == template_bytes(
            "S",
            2,
            got.templates.iter().position(|x| x.key == t.key).unwrap(),
            512
        )));

    let add = store
        .add_templates(
            "t",
            "S",
            &[NewTemplate::finger(3, FINGER_MODEL, vec![7; 16], 55.0)],
        )
        .unwrap();
    assert_eq!(add.added.len(), 1);
    let got = store.get("t", "S").unwrap();
    assert_eq!(got.templates.len(), 4);
    assert_eq!(got.templates[3].finger_position, Some(3));

    assert!(matches!(
        store.replace("t", &subject("missing", 1, 1)),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        store.add_templates(
            "t",
            "missing",
            &[NewTemplate::face(FACE_MODEL, vec![1], 1.0)]
        ),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        store.add_templates("t", "S", &[]),
        Err(Error::NoTemplates)
    ));
    let keys: BTreeSet<TemplateKey> = scan_all(&store, None).into_keys().collect();
    let expected: BTreeSet<TemplateKey> = [rep.added[0], rep.added[2]].into();
    assert_eq!(keys, expected, "scan sees only live face templates");
}

#[test]
fn delete_hides_subject_and_allows_reenrolment() {
    let (_dir, store) = open();
    let a = store.enroll("t", &subject("S", 1, 2)).unwrap();
    let d = store.delete("t", "S").unwrap();
    assert_eq!(d.removed, a.added);
    assert!(matches!(store.get("t", "S"), Err(Error::NotFound { .. })));
    assert!(matches!(
        store.delete("t", "S"),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        store.replace("t", &subject("S", 2, 1)),
        Err(Error::NotFound { .. })
    ));
    let stats = store.stats("t").unwrap();
    assert_eq!(
        (
            stats.subjects,
            stats.tombstoned_subjects,
            stats.tombstoned_templates
        ),
        (0, 1, 2)
    );
    let again = store.enroll("t", &subject("S", 3, 1)).unwrap();
    assert!(again.added[0] > a.added[1]);
    assert_eq!(store.get("t", "S").unwrap().metadata["version"], "3");
    store.integrity_check().unwrap();
}

#[test]
fn list_pages_cover_every_subject_once_in_order() {
    let (_dir, store) = open();
    let mut ids: Vec<String> = (0..53).map(|i| format!("ID{:03}", (i * 37) % 53)).collect();
    for id in &ids {
        store.enroll("t", &subject(id, 1, 1)).unwrap();
    }
    store.enroll("other", &subject("ID000", 1, 1)).unwrap();
    ids.sort();
    assert_eq!(list_all(&store, "t", 10), ids);
    assert_eq!(list_all(&store, "t", 53), ids);
    assert_eq!(list_all(&store, "t", 1).len(), 53);

    // Writes between pages do not shift or repeat what is left.
    let p1 = store.list("t", 10, None).unwrap();
    assert_eq!(p1.subjects.len(), 10);
    assert_eq!(p1.subjects[0].template_count, 1);
    store.enroll("t", &subject("ID000a", 1, 1)).unwrap(); // before the cursor
    store.delete("t", "ID020").unwrap(); // after it
    let mut rest = Vec::new();
    let mut cursor = p1.next_cursor.clone();
    while let Some(c) = cursor {
        let p = store.list("t", 10, Some(&c)).unwrap();
        rest.extend(p.subjects.into_iter().map(|s| s.subject_id));
        cursor = p.next_cursor;
    }
    let expected: Vec<String> = ids[10..]
        .iter()
        .filter(|i| *i != "ID020")
        .cloned()
        .collect();
    assert_eq!(rest, expected);

    let last = store.list("t", 1000, None).unwrap();
    assert_eq!(last.next_cursor, None);
    assert!(matches!(
        store.list("t", 10, Some("garbage")),
        Err(Error::InvalidCursor)
    ));
    assert!(matches!(
        store.list("t", 10, Some("c1.2027")),
        Err(Error::InvalidCursor)
    ));
}

#[test]
fn stats_count_live_and_tombstoned() {
    let (_dir, store) = open();
    store.enroll("t", &subject("A", 1, 3)).unwrap(); // face, finger, face
    store.enroll("t", &subject("B", 1, 2)).unwrap(); // face, finger
    store.enroll("u", &subject("C", 1, 1)).unwrap();
    store.delete("t", "B").unwrap();
    let s = store.stats("t").unwrap();
    assert_eq!(s.subjects, 1);
    assert_eq!(s.face_templates, 2);
    assert_eq!(s.finger_templates, 1);
    assert_eq!(s.tombstoned_subjects, 1);
    assert_eq!(s.tombstoned_templates, 2);
    assert_eq!(s.generation, store.generation().unwrap());
    assert_eq!(store.stats("nobody").unwrap().subjects, 0);
}

#[test]
fn scan_filters_by_tenant_modality_and_model_and_can_stop() {
    let (_dir, store) = open();
    store.enroll("t", &subject("A", 1, 2)).unwrap();
    store.enroll("u", &subject("B", 1, 1)).unwrap();
    store
        .enroll(
            "t",
            &NewSubject {
                subject_id: "C".into(),
                templates: vec![NewTemplate::face("other-model", vec![1, 2], 0.1)],
                ..Default::default()
            },
        )
        .unwrap();
    let faces = scan_all(&store, None);
    assert_eq!(
        faces.values().map(|(s, _)| s.as_str()).collect::<Vec<_>>(),
        vec!["A", "B"]
    );
    assert_eq!(
        faces.values().next().unwrap().1,
        template_bytes("A", 1, 0, 512)
    );
    let mut fingers = Vec::new();
    let f = ScanFilter {
        tenant: Some("t"),
        modality: Modality::Finger,
        model_id: FINGER_MODEL,
    };
    store
        .scan(&f, |t| {
            fingers.push((t.subject_id.to_owned(), t.finger_position));
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(fingers, vec![("A".to_owned(), Some(1))]);
    let mut seen = 0;
    let summary = store
        .scan(&face_filter(None), |_| {
            seen += 1;
            ControlFlow::Break(())
        })
        .unwrap();
    assert!(summary.stopped);
    assert_eq!((seen, summary.rows), (1, 1));
}

/// An index snapshot taken at some generation, brought up to date with
/// `changes_since`, equals a fresh scan.
#[test]
fn changes_since_brings_a_snapshot_up_to_date() {
    let (_dir, store) = open();
    for i in 0..20 {
        store
            .enroll("t", &subject(&format!("S{i:02}"), 1, 2))
            .unwrap();
    }
    let mut index = scan_all(&store, None);
    let snap_gen = store
        .scan(&face_filter(None), |_| ControlFlow::Break(()))
        .unwrap()
        .generation;
    assert_eq!(snap_gen, store.generation().unwrap());

    store.delete("t", "S03").unwrap();
    store.replace("t", &subject("S04", 2, 3)).unwrap();
    store.enroll("t", &subject("S99", 1, 1)).unwrap();
    store.enroll("t", &subject("TMP", 1, 1)).unwrap();
    store.delete("t", "TMP").unwrap(); // added and removed after the snapshot
    store
        .add_templates(
            "t",
            "S05",
            &[NewTemplate::face(FACE_MODEL, vec![5; 8], 0.3)],
        )
        .unwrap();

    let mut last_gen = Generation(0);
    let summary = store
        .changes_since(&face_filter(None), snap_gen, |c| {
            match c {
                Change::Added(t) => {
                    assert!(t.generation >= last_gen, "generation order");
                    last_gen = t.generation;
                    index.insert(t.key, (t.subject_id.to_owned(), t.data.to_vec()));
                }
                Change::Removed { key, generation } => {
                    assert!(generation >= last_gen, "generation order");
                    last_gen = generation;
                    index.remove(&key);
                }
            }
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(summary.generation, store.generation().unwrap());
    assert_eq!(index, scan_all(&store, None));
    // Nothing more to catch up on.
    let again = store
        .changes_since(&face_filter(None), summary.generation, |_| {
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(again.rows, 0);

    // A snapshot from the future (another store, a restored backup) is refused.
    assert!(matches!(
        store.changes_since(
            &face_filter(None),
            Generation(summary.generation.0 + 1),
            |_| { ControlFlow::Continue(()) }
        ),
        Err(Error::GenerationAhead { .. })
    ));
    let (_other_dir, other) = open();
    assert_ne!(store.store_id().unwrap(), other.store_id().unwrap());

    // Compaction purges tombstones: an old snapshot must rebuild instead.
    store.compact().unwrap();
    assert!(matches!(
        store.changes_since(&face_filter(None), snap_gen, |_| ControlFlow::Continue(())),
        Err(Error::GenerationPurged { .. })
    ));
    assert!(store
        .changes_since(&face_filter(None), summary.generation, |_| {
            ControlFlow::Continue(())
        })
        .is_ok());
}

fn count_occurrences(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

fn file_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        all.extend(std::fs::read(&p).unwrap());
    }
    all
}

/// A deleted person's template and metadata are unreadable in every file of
/// the store once compaction has run.
#[test]
fn compact_leaves_no_trace_of_deleted_data() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("g.db")).unwrap();
    let marker = template_bytes("secret", 9, 0, 64);
    let mut s = subject("VICTIM", 1, 1);
    s.templates[0].data = marker.repeat(8);
    s.metadata.insert("name".into(), "Zyxwvut Qponml".into());
    store.enroll("t", &s).unwrap();
    for i in 0..50 {
        store.enroll("t", &subject(&format!("K{i}"), 1, 2)).unwrap();
    }
    // Positive control: the marker is on disk while the subject is live.
    assert!(count_occurrences(&file_bytes(dir.path()), &marker) > 0);

    store.delete("t", "VICTIM").unwrap();
    let report = store.compact().unwrap();
    assert_eq!((report.subjects_purged, report.templates_purged), (1, 1));
    assert!(report.wal_truncated);
    let bytes = file_bytes(dir.path());
    assert_eq!(
        count_occurrences(&bytes, &marker),
        0,
        "template bytes linger"
    );
    assert_eq!(count_occurrences(&bytes, b"Zyxwvut"), 0, "metadata lingers");
    assert_eq!(
        count_occurrences(&bytes, b"VICTIM"),
        0,
        "subject id lingers"
    );
    // The others are untouched.
    assert_eq!(
        store.get("t", "K7").unwrap().templates[1].data,
        template_bytes("K7", 1, 1, 512)
    );
    assert_eq!(store.stats("t").unwrap().tombstoned_templates, 0);
    store.integrity_check().unwrap();
}

#[test]
fn keys_are_never_reused_after_compaction() {
    let (_dir, store) = open();
    let a = store.enroll("t", &subject("A", 1, 3)).unwrap();
    store.delete("t", "A").unwrap();
    store.compact().unwrap();
    let b = store.enroll("t", &subject("B", 1, 1)).unwrap();
    assert!(b.added[0] > *a.added.last().unwrap());
}

#[test]
fn batch_acknowledges_each_item_and_isolates_rejects() {
    let (_dir, store) = open();
    store.enroll("t", &subject("B003", 1, 1)).unwrap();
    let mut items: Vec<NewSubject> = (0..10)
        .map(|i| subject(&format!("B{i:03}"), 2, 2))
        .collect();
    items[5].subject_id = "bad id".into();
    items[8].subject_id = "B001".into(); // duplicate within the batch
    let mut acks = Vec::new();
    let summary = store
        .enroll_batch("t", &items, 4, |i, r| {
            acks.push((i, r.map(|rc| rc.added.len())))
        })
        .unwrap();
    assert_eq!((summary.committed, summary.rejected), (7, 3));
    assert_eq!(
        acks.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        (0..10).collect::<Vec<_>>()
    );
    for (i, r) in &acks {
        match i {
            3 | 8 => assert!(matches!(r, Err(Error::AlreadyExists { .. })), "{i}"),
            5 => assert!(matches!(r, Err(Error::InvalidSubjectId { .. })), "{i}"),
            _ => assert_eq!(r.as_ref().ok(), Some(&2), "{i}"),
        }
    }
    // The pre-existing B003 kept its version, everything accepted is whole.
    assert_eq!(store.get("t", "B003").unwrap().metadata["version"], "1");
    for i in [0, 1, 2, 4, 6, 7, 9] {
        let got = store.get("t", &format!("B{i:03}")).unwrap();
        assert_eq!(got.templates.len(), 2);
    }
    assert_eq!(store.stats("t").unwrap().subjects, 8);
}

#[test]
fn concurrent_writers_and_readers() {
    let (_dir, store) = open();
    let store = Arc::new(store);
    let mut handles = Vec::new();
    for w in 0..4 {
        let store = Arc::clone(&store);
        handles.push(std::thread::spawn(move || {
            for i in 0..40 {
                store
                    .enroll("t", &subject(&format!("W{w}-{i:02}"), 1, 2))
                    .unwrap();
            }
        }));
    }
    for _ in 0..2 {
        let store = Arc::clone(&store);
        handles.push(std::thread::spawn(move || {
            for _ in 0..20 {
                // Every snapshot shows whole subjects only.
                let rows = scan_all(&store, Some("t"));
                for (subject_id, data) in rows.values() {
                    assert_eq!(*data, template_bytes(subject_id, 1, 0, 512));
                }
                store.list("t", 50, None).unwrap();
            }
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(list_all(&store, "t", 100).len(), 160);
    assert_eq!(store.stats("t").unwrap().face_templates, 160);
    store.integrity_check().unwrap();
}

#[test]
fn reopen_keeps_everything_and_close_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.db");
    let store = Store::open(&path).unwrap();
    store.enroll("t", &subject("A", 1, 2)).unwrap();
    let gen = store.generation().unwrap();
    store.close().unwrap();
    let wal = dir.path().join("g.db-wal");
    assert!(!wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.generation().unwrap(), gen);
    assert_eq!(store.get("t", "A").unwrap().templates.len(), 2);
}

#[test]
fn owners_resolve_live_keys_of_the_tenant_only() {
    let (_dir, store) = open();
    let a = store.enroll("t", &subject("A", 1, 2)).unwrap();
    let b = store.enroll("u", &subject("B", 1, 1)).unwrap();
    let c = store.enroll("t", &subject("C", 1, 1)).unwrap();
    store.delete("t", "C").unwrap();
    let keys = [
        a.added[1],
        b.added[0],
        c.added[0],
        TemplateKey(9999),
        a.added[0],
    ];
    assert_eq!(
        store.owners("t", &keys).unwrap(),
        vec![Some("A".to_owned()), None, None, None, Some("A".to_owned())]
    );
    let bad = ScanFilter {
        tenant: Some("t"),
        modality: Modality::Face,
        model_id: "has space",
    };
    assert!(matches!(
        store.scan(&bad, |_| ControlFlow::Continue(())),
        Err(Error::InvalidFilter { .. })
    ));
}

#[test]
fn store_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Store>();
}

#[test]
fn scan_reports_stable_numeric_tenant_and_subject_keys() {
    let (_dir, store) = open();
    store.enroll("bank-b", &subject("S1", 1, 3)).unwrap(); // two faces
    store.enroll("bank-a", &subject("S2", 1, 1)).unwrap();
    let tenants = store.tenants().unwrap();
    let names: Vec<&str> = tenants.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(names, vec!["bank-b", "bank-a"], "keys in first-write order");
    let mut rows = Vec::new();
    store
        .scan(&face_filter(None), |t| {
            rows.push((
                t.tenant_key,
                t.tenant.to_owned(),
                t.subject_key,
                t.subject_id.to_owned(),
            ));
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(rows.len(), 3);
    for (tk, tn, _, _) in &rows {
        assert!(tenants.contains(&(*tk, tn.clone())));
    }
    assert_eq!(rows[0].2, rows[1].2, "one subject, one key");
    assert_ne!(rows[0].2, rows[2].2);
    // Re-enrolling after delete gives the subject a new key.
    store.delete("bank-a", "S2").unwrap();
    store.compact().unwrap();
    store.enroll("bank-a", &subject("S2", 2, 1)).unwrap();
    let mut again = None;
    store
        .scan(&face_filter(Some("bank-a")), |t| {
            again = Some(t.subject_key);
            ControlFlow::Continue(())
        })
        .unwrap();
    assert!(again.unwrap() > rows[2].2, "subject keys are never reused");
}

/// A storage failure in the middle of a batch (here: the size cap, as a
/// full disk would) aborts the group: nothing of it is acknowledged or
/// written, earlier groups stay, and the store remains usable.
#[test]
fn disk_full_mid_batch_acknowledges_only_whole_committed_groups() {
    let dir = tempfile::tempdir().unwrap();
    let options = sinhtrac_store::StoreOptions {
        max_size_bytes: Some(2 << 20),
        ..Default::default()
    };
    let store = Store::open_with(dir.path().join("g.db"), options).unwrap();
    let items: Vec<NewSubject> = (0..400)
        .map(|i| {
            let mut s = subject(&format!("F{i:04}"), 1, 1);
            s.templates[0].data = template_bytes(&s.subject_id, 1, 0, 16 * 1024);
            s
        })
        .collect();
    let mut acked = Vec::new();
    let err = store
        .enroll_batch("t", &items, 10, |i, r| {
            r.expect("no item-level rejects here");
            acked.push(i);
        })
        .unwrap_err();
    assert!(matches!(err, Error::Sqlite(_)), "{err}");
    assert!(!acked.is_empty() && acked.len() < items.len());
    assert_eq!(acked.len() % 10, 0, "whole groups only");
    let listed = list_all(&store, "t", 1000);
    let expected: Vec<String> = acked.iter().map(|i| items[*i].subject_id.clone()).collect();
    assert_eq!(
        listed, expected,
        "exactly the acknowledged items are stored"
    );
    store.integrity_check().unwrap();
    // Still usable: deleting frees room for a new enrolment.
    store.delete("t", &expected[0]).unwrap();
    store.compact().unwrap();
    store.enroll("t", &subject("AFTER", 1, 1)).unwrap();
    store.integrity_check().unwrap();
}
