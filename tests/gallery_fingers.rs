//! The gallery's fingerprint index over a real database file and real FVC templates: deleted fingers
//! are never found again, and once they outnumber the live ones the index reclaims their memory
//! (compaction) without changing a search or a 1:1 result.

use std::path::PathBuf;

use sinhtrac_engine::finger::FingerEngine;
use sinhtrac_engine::gallery::{EmbeddingSpace, Gallery, GalleryOptions};
use sinhtrac_finger::{FingerPosition, Matcher};
use sinhtrac_store::{NewSubject, NewTemplate};
use sinhtrac_tests::{fvc, read};

const TENANT: &str = "insurance";
const RIGHT_INDEX: u8 = 2;
const DB: &str = "fvc2002/DB1_B";

struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        for ext in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{ext}", self.0.display()));
        }
    }
}

/// Subject `k` enrols FVC2002 DB1_B finger 101 + k % 10, impression 1 + k / 10: thirty different
/// templates, three impressions of each of ten fingers.
fn subject_id(k: usize) -> String {
    format!("CLAIM-{k:03}")
}

#[test]
fn deleted_fingers_are_reclaimed_and_searches_do_not_change() {
    let fingers = FingerEngine::classical();
    let encode = |finger: u32, impression: u32| {
        let c = fingers
            .extract_image(
                &read(&fvc(DB, finger, impression)),
                500,
                u32::from(RIGHT_INDEX),
            )
            .unwrap();
        (c.template.encode(), c.minutiae)
    };
    let enrolled: Vec<Vec<u8>> = (0..30u32)
        .map(|k| encode(101 + k % 10, 1 + k / 10).0)
        .collect();
    let file = TempFile(std::env::temp_dir().join(format!(
        "sinhtrac-gallery-fingers-{}.db",
        std::process::id()
    )));
    let space = EmbeddingSpace {
        model_id: "unused-face-model".into(),
        model_sha256: [0; 32],
        dim: 128,
    };
    let options = GalleryOptions {
        approximate_tier: false,
        fingers: Some(fingers.space().clone()),
        finger_compact_after: 8,
        ..GalleryOptions::default()
    };
    let gallery = Gallery::open(&file.0, space.clone(), options.clone()).unwrap();
    let model_id = fingers.space().model_id.clone();
    for (k, template) in enrolled.iter().enumerate() {
        let subject = NewSubject {
            subject_id: subject_id(k),
            metadata: Default::default(),
            templates: vec![NewTemplate::finger(
                RIGHT_INDEX,
                model_id.clone(),
                template.clone(),
                0.5,
            )],
        };
        gallery.enroll(TENANT, &subject).unwrap();
    }
    assert_eq!(gallery.indexed_fingers_for(TENANT), 30);

    // A fresh impression of finger 104 (subjects 3, 13, 23) as the probe; every answer is recorded.
    // (Every subject's template differs, so a key map pointing at the wrong entry changes a score.)
    let (_, probe) = encode(104, 4);
    let matcher = Matcher::new(&probe);
    let position = FingerPosition::new(RIGHT_INDEX).unwrap();
    let search = |g: &Gallery| {
        let mut found: Vec<(String, f32)> = g
            .identify_finger(TENANT, &matcher, position, 30, 0.0)
            .unwrap()
            .into_iter()
            .map(|c| (c.subject_id, c.score))
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found
    };
    let verify = |g: &Gallery, k: usize| {
        let t = g.subject_templates(TENANT, &subject_id(k)).unwrap();
        t.fingers
            .iter()
            .map(|(_, f)| matcher.score(f))
            .fold(f32::MIN, f32::max)
    };
    let before = search(&gallery);
    let top = |v: &[(String, f32)]| {
        v.iter()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|x| x.0.clone())
    };
    assert!(["CLAIM-003", "CLAIM-013", "CLAIM-023"].contains(&top(&before).unwrap().as_str()));

    // Deleting 15 of 30 leaves 15 tombstones: not yet more than the live ones.
    for k in (0..30).filter(|k| k % 2 == 0) {
        gallery.delete(TENANT, &subject_id(k)).unwrap();
    }
    assert_eq!(gallery.indexed_fingers_for(TENANT), 15);
    assert_eq!(gallery.removed_fingers_for(TENANT), 15);
    let expected: Vec<(String, f32)> = before
        .iter()
        .filter(|(id, _)| id[6..].parse::<usize>().unwrap() % 2 == 1)
        .cloned()
        .collect();
    assert_eq!(search(&gallery), expected);
    // One more: 16 removed > 14 live (and > 8), so the index compacts.
    gallery.delete(TENANT, &subject_id(1)).unwrap();
    assert_eq!(gallery.indexed_fingers_for(TENANT), 14);
    assert_eq!(gallery.removed_fingers_for(TENANT), 0, "compacted");
    let without = |v: Vec<(String, f32)>, id: &str| -> Vec<(String, f32)> {
        v.into_iter().filter(|(x, _)| x != id).collect()
    };
    let after = without(expected, "CLAIM-001");
    assert_eq!(search(&gallery), after);
    // Deletion after compaction finds the moved entries through the rewritten key maps.
    gallery.delete(TENANT, &subject_id(3)).unwrap();
    assert_eq!(gallery.removed_fingers_for(TENANT), 1);
    assert_eq!(search(&gallery), without(after, "CLAIM-003"));
    // A 1:1 read takes each finger's prepared form from the index: the score of the stored template.
    for k in [5, 13, 23, 29] {
        assert_eq!(verify(&gallery, k), mate_score_of(&gallery, &matcher, k));
    }

    // Enrolment after compaction lands in the index and is found; a reopened gallery agrees.
    let again = NewSubject {
        subject_id: "CLAIM-NEW".into(),
        metadata: Default::default(),
        templates: vec![NewTemplate::finger(
            RIGHT_INDEX,
            model_id.clone(),
            enrolled[2].clone(),
            0.5,
        )],
    };
    gallery.enroll(TENANT, &again).unwrap();
    let with_new = search(&gallery);
    assert!(with_new.iter().any(|(id, _)| id == "CLAIM-NEW"));
    drop(gallery);
    let reopened = Gallery::open(&file.0, space, options).unwrap();
    assert_eq!(reopened.removed_fingers_for(TENANT), 0);
    assert_eq!(search(&reopened), with_new);
}

/// The score of subject `k`'s finger from its stored template, built afresh (not from the index).
fn mate_score_of(g: &Gallery, matcher: &Matcher, k: usize) -> f32 {
    let record = g.get(TENANT, &subject_id(k)).unwrap();
    let space = g.finger_space().unwrap();
    record
        .templates
        .iter()
        .map(|t| matcher.score_template(&space.accept(&t.data).unwrap()))
        .fold(f32::MIN, f32::max)
}
