//! The fingerprint side of a gallery: one MCC gallery per tenant (coarse pre-selection, then exact
//! re-scoring; `sinhtrac_finger::Gallery`), filled from the store at start and kept in step with its
//! change feed exactly as the face index is. Removed templates become tombstones in their tenant's
//! gallery (entry indices do not move, so the key maps stay valid) until the tombstones outnumber the
//! live fingers: then the tenant's gallery is compacted and the key maps rewritten.

use std::collections::HashMap;

use sinhtrac_finger::{
    FingerPosition, Gallery as MccGallery, Hit, Matcher, SearchOptions, SearchTemplate,
};
use sinhtrac_store::{Generation, ScanFilter, TemplateKey, TemplateRef};

use crate::finger::FingerSpace;

/// One tenant's fingers.
#[derive(Default)]
struct TenantFingers {
    gallery: MccGallery,
    /// Entry index → store template key.
    key_of: Vec<u64>,
}

/// Every tenant's fingers of one finger space.
pub(super) struct FingerIndex {
    pub(super) space: FingerSpace,
    tenants: HashMap<String, TenantFingers>,
    /// Store template key → (tenant, entry index).
    entry_of: HashMap<u64, (String, usize)>,
    pub(super) generation: Generation,
    /// Removed fingers a tenant's gallery may hold before it is compacted (when they also outnumber
    /// its live ones).
    compact_after: usize,
}

/// A per-finger hit with the store key of the template it matched.
pub(super) struct KeyedHit {
    pub key: TemplateKey,
    pub score: f32,
}

/// A stored template's finger position (unknown when absent or out of range).
pub(super) fn stored_position(code: Option<u8>) -> FingerPosition {
    code.and_then(|p| FingerPosition::new(p).ok())
        .unwrap_or(FingerPosition::UNKNOWN)
}

/// The store rows a finger index of `model_id` follows (all tenants).
pub(super) fn filter(model_id: &str) -> ScanFilter<'_> {
    ScanFilter {
        tenant: None,
        modality: sinhtrac_store::Modality::Finger,
        model_id,
    }
}

impl FingerIndex {
    pub(super) fn new(space: FingerSpace, compact_after: usize) -> Self {
        FingerIndex {
            space,
            tenants: HashMap::new(),
            entry_of: HashMap::new(),
            generation: Generation(0),
            compact_after,
        }
    }

    /// Index one stored finger template. A row the index cannot use is skipped loudly (the store keeps
    /// it): one bad row must not stop the service from starting.
    pub(super) fn add(&mut self, t: &TemplateRef<'_>) {
        let key = t.key.0 as u64;
        if self.entry_of.contains_key(&key) {
            return;
        }
        let minutiae = match self.space.accept(t.data) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(key, error = %e, "stored finger template not indexed");
                return;
            }
        };
        let position = stored_position(t.finger_position);
        let tenant = self.tenants.entry(t.tenant.to_string()).or_default();
        let entry = tenant
            .gallery
            .insert(t.subject_key.0 as u64, position, &minutiae);
        tenant.key_of.push(key);
        self.entry_of.insert(key, (t.tenant.to_string(), entry));
    }

    pub(super) fn remove(&mut self, key: TemplateKey) {
        if let Some((tenant, entry)) = self.entry_of.remove(&(key.0 as u64)) {
            if let Some(t) = self.tenants.get_mut(&tenant) {
                t.gallery.remove(entry);
                if t.gallery.removed() > self.compact_after.max(t.gallery.len()) {
                    self.compact(&tenant);
                }
            }
        }
    }

    /// Reclaim a tenant's removed fingers: its gallery drops them and the key maps follow the entries
    /// that moved. Runs when removed entries outnumber live ones (and `compact_after`), so its cost,
    /// linear in the tenant's live fingers, is paid once per as many removals.
    fn compact(&mut self, tenant: &str) {
        let Some(t) = self.tenants.get_mut(tenant) else {
            return;
        };
        let reclaimed = t.gallery.removed();
        let moved = t.gallery.compact();
        let mut key_of = vec![0; t.gallery.entries().len()];
        for (old, new) in moved.into_iter().enumerate() {
            if let (Some(new), Some(&key)) = (new, t.key_of.get(old)) {
                key_of[new] = key;
                self.entry_of.insert(key, (tenant.to_string(), new));
            }
        }
        t.key_of = key_of;
        tracing::info!(
            tenant,
            reclaimed,
            live = t.gallery.len(),
            "finger index compacted"
        );
    }

    /// The search form (MCC cylinders) of an indexed, live template.
    pub(super) fn search_form(&self, key: TemplateKey) -> Option<SearchTemplate> {
        let (tenant, entry) = self.entry_of.get(&(key.0 as u64))?;
        let g = &self.tenants.get(tenant)?.gallery;
        if !g.is_live(*entry) {
            return None;
        }
        g.entries().get(*entry).map(|e| e.template.clone())
    }

    /// Removed finger templates a tenant's gallery still holds.
    pub(super) fn removed(&self, tenant: &str) -> usize {
        self.tenants.get(tenant).map_or(0, |t| t.gallery.removed())
    }

    /// Live finger templates of a tenant.
    pub(super) fn count(&self, tenant: &str) -> usize {
        self.tenants.get(tenant).map_or(0, |t| t.gallery.len())
    }

    /// Live finger templates of all tenants.
    pub(super) fn len(&self) -> usize {
        self.tenants.values().map(|t| t.gallery.len()).sum()
    }

    /// The best `fetch` templates of `tenant` for one probe finger, best first.
    pub(super) fn search(
        &self,
        tenant: &str,
        probe: &Matcher,
        position: FingerPosition,
        fetch: usize,
    ) -> Vec<KeyedHit> {
        let Some(t) = self.tenants.get(tenant) else {
            return Vec::new();
        };
        let opts = SearchOptions {
            top_k: fetch,
            ..SearchOptions::default()
        };
        t.gallery
            .search(probe, position, &opts)
            .into_iter()
            .filter_map(|h: Hit| {
                t.key_of.get(h.entry).map(|&key| KeyedHit {
                    key: TemplateKey(key as i64),
                    score: h.score,
                })
            })
            .collect()
    }
}
