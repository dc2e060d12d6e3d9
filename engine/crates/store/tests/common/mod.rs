//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use sinhtrac_store::{Modality, NewSubject, NewTemplate, ScanFilter, Store, TemplateKey};

pub const FACE_MODEL: &str = "mobilefacenet-128";
pub const FINGER_MODEL: &str = "mcc-v1";

/// Deterministic pseudo-random bytes for (subject, version, index): a reader
/// can recompute exactly what a writer stored.
pub fn template_bytes(subject: &str, version: u32, j: usize, len: usize) -> Vec<u8> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in subject
        .bytes()
        .chain(version.to_le_bytes())
        .chain((j as u64).to_le_bytes())
    {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        h ^= h << 13;
        h ^= h >> 7;
        h ^= h << 17;
        out.extend_from_slice(&h.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A subject with `n` face templates (and a finger template when `n > 1`).
pub fn subject(id: &str, version: u32, n: usize) -> NewSubject {
    let mut templates = Vec::new();
    for j in 0..n {
        let data = template_bytes(id, version, j, 512);
        if j % 2 == 1 {
            templates.push(NewTemplate::finger(
                (j % 11) as u8,
                FINGER_MODEL,
                data,
                40.0 + j as f32,
            ));
        } else {
            templates.push(NewTemplate::face(FACE_MODEL, data, 0.5 + j as f32 / 100.0));
        }
    }
    let mut metadata = BTreeMap::new();
    metadata.insert("version".to_owned(), version.to_string());
    NewSubject {
        subject_id: id.to_owned(),
        metadata,
        templates,
    }
}

pub fn face_filter(tenant: Option<&str>) -> ScanFilter<'_> {
    ScanFilter {
        tenant,
        modality: Modality::Face,
        model_id: FACE_MODEL,
    }
}

/// Every live face template visible to a scan: key → (subject id, bytes).
pub fn scan_all(store: &Store, tenant: Option<&str>) -> BTreeMap<TemplateKey, (String, Vec<u8>)> {
    let mut out = BTreeMap::new();
    store
        .scan(&face_filter(tenant), |t| {
            out.insert(t.key, (t.subject_id.to_owned(), t.data.to_vec()));
            ControlFlow::Continue(())
        })
        .expect("scan");
    out
}

/// All live subject ids of a tenant, walking every page.
pub fn list_all(store: &Store, tenant: &str, page: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor = None;
    loop {
        let p = store.list(tenant, page, cursor.as_deref()).expect("list");
        ids.extend(p.subjects.into_iter().map(|s| s.subject_id));
        match p.next_cursor {
            Some(c) => cursor = Some(c),
            None => return ids,
        }
    }
}
