//! The face gallery: the crash-safe store (`sinhtrac-store`) and the in-memory 1:N index
//! (`sinhtrac-index`) kept in step.
//!
//! The store is the truth; the index is rebuilt from it at start (one scan) and follows it after each
//! write by reading the store's change feed from the generation it last saw, so it also picks up writes
//! made by another process on the same file. One embedding space per gallery: templates of other
//! models are refused, never mixed into a scan.
//!
//! Exact search scans f32 vectors; approximate search scans int8 codes (4× less memory traffic) for
//! `k × 4` candidates and re-scores them exactly.
//!
//! Fingerprint templates of one finger space live beside the faces (same store, same tenants) in
//! per-tenant MCC galleries ([`fingers`]), loaded and synced the same way.

mod fingers;

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use sinhtrac_index::sweep::{self, SweepConfig, SweepOutcome, SweepProgress};
use sinhtrac_index::{Codec, Filter, FlatConfig, FlatIndex, SearchParams, Tag};
use sinhtrac_store::{
    Change, Generation, NewSubject, ScanFilter, Store, StoreOptions, SubjectRecord, TemplateKey,
    TemplateRef, WriteReceipt,
};

use sinhtrac_finger::{FingerPosition, Matcher, SearchTemplate};

use crate::finger::FingerSpace;
use crate::template::{Modality, Template, TemplateError};
use fingers::FingerIndex;

pub use sinhtrac_store::Error as StoreError;

/// Why a gallery operation failed.
#[derive(Debug, thiserror::Error)]
pub enum GalleryError {
    /// The store refused or failed (not found, exists, invalid id, I/O).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The index failed (dimension, non-finite query).
    #[error("index: {0}")]
    Index(#[from] sinhtrac_index::IndexError),
    /// A template is not valid for this gallery.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// More tenants than an index tag can name.
    #[error("too many tenants for one index (tenant key {0})")]
    TenantLimit(i64),
    /// The operation was cancelled (deadline passed, caller gone).
    #[error("cancelled")]
    Cancelled,
}

impl GalleryError {
    /// Stable reason code.
    pub fn reason(&self) -> &'static str {
        match self {
            GalleryError::Store(StoreError::NotFound { .. }) => "SUBJECT_NOT_FOUND",
            GalleryError::Store(StoreError::AlreadyExists { .. }) => "SUBJECT_EXISTS",
            GalleryError::Store(StoreError::InvalidSubjectId { .. }) => "INVALID_SUBJECT_ID",
            GalleryError::Store(
                StoreError::InvalidTenant { .. }
                | StoreError::InvalidTemplate { .. }
                | StoreError::InvalidMetadata { .. }
                | StoreError::InvalidCursor
                | StoreError::NoTemplates,
            ) => "INVALID_REQUEST",
            GalleryError::Store(_) | GalleryError::TenantLimit(_) => "INTERNAL_ERROR",
            GalleryError::Index(_) => "INVALID_REQUEST",
            GalleryError::Template(e) => e.reason(),
            GalleryError::Cancelled => "DEADLINE",
        }
    }

    /// True when the caller's input is at fault.
    pub fn is_input_error(&self) -> bool {
        !matches!(self.reason(), "INTERNAL_ERROR" | "DEADLINE")
    }
}

type Result<T, E = GalleryError> = std::result::Result<T, E>;

/// The embedding space a gallery holds: templates must come from this model file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddingSpace {
    /// Model id (as in the manifest).
    pub model_id: String,
    /// sha256 of the model file.
    pub model_sha256: [u8; 32],
    /// Vector dimension.
    pub dim: usize,
}

impl EmbeddingSpace {
    /// Decode template bytes and check they belong to this space; returns the template.
    pub fn accept(&self, bytes: &[u8]) -> Result<Template, TemplateError> {
        let t = Template::decode(bytes)?;
        self.check(&t)?;
        Ok(t)
    }

    /// Check a decoded template belongs to this space.
    pub fn check(&self, t: &Template) -> Result<(), TemplateError> {
        if t.modality != Modality::Face
            || t.model_id != self.model_id
            || t.model_sha256 != self.model_sha256
        {
            return Err(TemplateError::ModelMismatch {
                a: format!("{:?}/{}", t.modality, t.model_id),
                b: format!("Face/{}", self.model_id),
            });
        }
        match t.vector() {
            Some(v) if v.len() == self.dim => Ok(()),
            Some(v) => Err(TemplateError::DimensionMismatch {
                a: v.len(),
                b: self.dim,
            }),
            None => Err(TemplateError::InvalidField {
                field: "element_type",
                detail: "a face gallery needs vector templates".into(),
            }),
        }
    }
}

/// How identification scans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SearchMode {
    /// f32 scan of every template.
    #[default]
    Exact,
    /// int8 scan with exact re-rank of `k × 4` candidates.
    Approximate,
}

/// A subject's templates of the gallery's spaces, decoded for 1:1 comparison.
#[derive(Debug, Clone, Default)]
pub struct SubjectTemplates {
    /// Face vectors of the gallery's embedding space.
    pub faces: Vec<Vec<f32>>,
    /// Fingers of the gallery's finger space in their search form (MCC cylinders, taken from the finger
    /// index when it holds them, so scoring many subjects builds none), with their positions.
    pub fingers: Vec<(FingerPosition, SearchTemplate)>,
}

/// A subject found by identification.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// External subject id.
    pub subject_id: String,
    /// Best score over the subject's templates.
    pub score: f32,
}

/// A suspected duplicate identity found by a sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct DuplicateSubjects {
    /// One subject.
    pub subject_a: String,
    /// The other.
    pub subject_b: String,
    /// Their best template score.
    pub score: f32,
}

/// Gallery options.
#[derive(Debug, Clone)]
pub struct GalleryOptions {
    /// Keep an int8 copy of the vectors for approximate search.
    pub approximate_tier: bool,
    /// Store options.
    pub store: StoreOptions,
    /// The finger space whose templates this gallery accepts and indexes (`None`: faces only; finger
    /// templates are then refused).
    pub fingers: Option<FingerSpace>,
    /// A tenant's finger index is compacted (deleted fingers' memory reclaimed) once its removed
    /// fingers outnumber both its live ones and this.
    pub finger_compact_after: usize,
}

impl Default for GalleryOptions {
    fn default() -> Self {
        GalleryOptions {
            approximate_tier: true,
            store: StoreOptions::default(),
            fingers: Some(FingerSpace::classical()),
            finger_compact_after: 1024,
        }
    }
}

struct Indexes {
    exact: FlatIndex,
    approximate: Option<FlatIndex>,
    /// Template key → subject key, for the sweep (pairs of one subject are not duplicates).
    subject_of: HashMap<u64, u64>,
    /// Tenant name → tag value.
    tenants: HashMap<String, u16>,
    /// Live templates per tenant tag.
    counts: HashMap<u16, usize>,
    generation: Generation,
}

/// Load and catch-up statistics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadReport {
    /// Face templates indexed.
    pub templates: usize,
    /// Finger templates indexed.
    pub finger_templates: usize,
    /// Seconds the initial scan took.
    pub seconds: f64,
}

/// Store + index for one embedding space.
pub struct Gallery {
    store: Store,
    space: EmbeddingSpace,
    indexes: RwLock<Indexes>,
    finger_space: Option<FingerSpace>,
    fingers: Option<RwLock<FingerIndex>>,
    load: LoadReport,
}

/// A store callback's verdict: go on, or keep the first error and stop the scan.
fn stop_on_error(r: Result<()>, failure: &mut Option<GalleryError>) -> ControlFlow<()> {
    match r {
        Ok(()) => ControlFlow::Continue(()),
        Err(e) => {
            *failure = Some(e);
            ControlFlow::Break(())
        }
    }
}

fn tag_of(tenant_key: i64) -> Result<u16> {
    u16::try_from(tenant_key).map_err(|_| GalleryError::TenantLimit(tenant_key))
}

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    // A panic mid-update leaves at worst a stale index, which the next sync corrects.
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

/// Rows waiting to be added to the indexes in one `extend` (parallel encoding).
#[derive(Default)]
struct Batch {
    ids: Vec<u64>,
    vectors: Vec<f32>,
    tags: Vec<Tag>,
}

/// Rows per `extend` during the initial load.
const LOAD_BATCH: usize = 65_536;

impl Indexes {
    /// Queue one stored template into `batch` (bookkeeping done now, vectors added at flush).
    fn queue(
        &mut self,
        space: &EmbeddingSpace,
        t: &TemplateRef<'_>,
        batch: &mut Batch,
    ) -> Result<()> {
        // A row the index cannot use (another model's bytes under our model id, corruption) must not
        // stop the service from starting: skip it loudly, the store keeps it.
        let template = match space.accept(t.data) {
            Ok(tpl) => tpl,
            Err(e) => {
                tracing::error!(key = t.key.0, error = %e, "stored template not indexed");
                return Ok(());
            }
        };
        let Some(v) = template.vector() else {
            return Ok(());
        };
        let tag = Tag::new(tag_of(t.tenant_key.0)?, Modality::Face as u8);
        let id = t.key.0 as u64;
        batch.ids.push(id);
        batch.vectors.extend_from_slice(v);
        batch.tags.push(tag);
        self.subject_of.insert(id, t.subject_key.0 as u64);
        *self.counts.entry(tag.tenant()).or_default() += 1;
        self.tenants
            .entry(t.tenant.to_string())
            .or_insert(tag.tenant());
        Ok(())
    }

    fn flush(&mut self, batch: &mut Batch) -> Result<()> {
        if batch.ids.is_empty() {
            return Ok(());
        }
        self.exact
            .extend(&batch.ids, &batch.vectors, Some(&batch.tags))?;
        if let Some(a) = self.approximate.as_mut() {
            a.extend(&batch.ids, &batch.vectors, Some(&batch.tags))?;
        }
        *batch = Batch::default();
        Ok(())
    }

    fn add(&mut self, space: &EmbeddingSpace, t: &TemplateRef<'_>) -> Result<()> {
        let mut batch = Batch::default();
        self.queue(space, t, &mut batch)?;
        self.flush(&mut batch)
    }

    fn remove(&mut self, key: TemplateKey) -> Result<()> {
        let id = key.0 as u64;
        if self.exact.contains(id) {
            if let Some(tag) = self.exact.row_of(id).and_then(|r| self.exact.tag_of_row(r)) {
                if let Some(n) = self.counts.get_mut(&tag.tenant()) {
                    *n = n.saturating_sub(1);
                }
            }
            self.exact.remove(id)?;
            if let Some(a) = self.approximate.as_mut() {
                a.remove(id)?;
            }
        }
        self.subject_of.remove(&id);
        Ok(())
    }
}

impl Gallery {
    /// Open (creating if needed) the gallery file and index every live face template of `space`.
    pub fn open(path: &Path, space: EmbeddingSpace, options: GalleryOptions) -> Result<Gallery> {
        let started = std::time::Instant::now();
        let store = Store::open_with(path, options.store.clone())?;
        let approximate = if options.approximate_tier {
            Some(FlatIndex::new(FlatConfig::new(
                space.dim,
                Codec::Sq8 {
                    per_dimension: false,
                },
            ))?)
        } else {
            None
        };
        let mut ix = Indexes {
            exact: FlatIndex::new(FlatConfig::new(space.dim, Codec::F32))?,
            approximate,
            subject_of: HashMap::new(),
            tenants: HashMap::new(),
            counts: HashMap::new(),
            generation: Generation(0),
        };
        let filter = Self::filter_for(&space);
        let mut failure = None;
        let mut batch = Batch::default();
        let summary = store.scan(&filter, |t| {
            let r = ix.queue(&space, &t, &mut batch).and_then(|()| {
                if batch.ids.len() >= LOAD_BATCH {
                    ix.flush(&mut batch)
                } else {
                    Ok(())
                }
            });
            stop_on_error(r, &mut failure)
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
        ix.flush(&mut batch)?;
        ix.generation = summary.generation;
        for (key, name) in store.tenants()? {
            ix.tenants.insert(name, tag_of(key.0)?);
        }
        let fingers = match options.fingers {
            Some(space) => {
                let model_id = space.model_id.clone();
                let mut fx = FingerIndex::new(space, options.finger_compact_after);
                let summary = store.scan(&fingers::filter(&model_id), |t| {
                    fx.add(&t);
                    ControlFlow::Continue(())
                })?;
                fx.generation = summary.generation;
                Some(fx)
            }
            None => None,
        };
        let load = LoadReport {
            templates: ix.exact.len(),
            finger_templates: fingers.as_ref().map_or(0, FingerIndex::len),
            seconds: started.elapsed().as_secs_f64(),
        };
        tracing::info!(
            templates = load.templates,
            finger_templates = load.finger_templates,
            seconds = load.seconds,
            "gallery loaded"
        );
        Ok(Gallery {
            store,
            space,
            indexes: RwLock::new(ix),
            finger_space: fingers.as_ref().map(|f| f.space.clone()),
            fingers: fingers.map(RwLock::new),
            load,
        })
    }

    fn filter_for(space: &EmbeddingSpace) -> ScanFilter<'_> {
        ScanFilter {
            tenant: None,
            modality: sinhtrac_store::Modality::Face,
            model_id: &space.model_id,
        }
    }

    /// The embedding space.
    pub fn space(&self) -> &EmbeddingSpace {
        &self.space
    }

    /// The store underneath (reads: get, list, stats).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// How the initial load went.
    pub fn load_report(&self) -> LoadReport {
        self.load
    }

    /// Templates in the index (all tenants).
    pub fn indexed(&self) -> usize {
        read(&self.indexes).exact.len()
    }

    /// Live face templates of one tenant in the index.
    pub fn indexed_for(&self, tenant: &str) -> usize {
        let ix = read(&self.indexes);
        ix.tenants
            .get(tenant)
            .and_then(|t| ix.counts.get(t))
            .copied()
            .unwrap_or(0)
    }

    /// Bring the index up to date with the store (after writes, possibly by other processes).
    pub fn sync(&self) -> Result<()> {
        let mut ix = write(&self.indexes);
        let since = ix.generation;
        let filter = Self::filter_for(&self.space);
        let mut failure = None;
        let summary = self.store.changes_since(&filter, since, |c| {
            let r = match c {
                Change::Added(t) => ix.add(&self.space, &t),
                Change::Removed { key, .. } => ix.remove(key),
            };
            stop_on_error(r, &mut failure)
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
        ix.generation = summary.generation;
        for (key, name) in self.store.tenants()? {
            let tag = tag_of(key.0)?;
            ix.tenants.entry(name).or_insert(tag);
        }
        drop(ix);
        if let Some(fingers) = &self.fingers {
            let mut fx = write(fingers);
            let since = fx.generation;
            let model_id = fx.space.model_id.clone();
            let summary = self
                .store
                .changes_since(&fingers::filter(&model_id), since, |c| {
                    match c {
                        Change::Added(t) => fx.add(&t),
                        Change::Removed { key, .. } => fx.remove(key),
                    }
                    ControlFlow::Continue(())
                })?;
            fx.generation = summary.generation;
        }
        Ok(())
    }

    fn after_write(&self, receipt: WriteReceipt) -> Result<WriteReceipt> {
        self.sync()?;
        Ok(receipt)
    }

    /// Check every template of a subject belongs to this gallery's face or finger space.
    fn check_subject(&self, subject: &NewSubject) -> Result<()> {
        for t in &subject.templates {
            if t.modality == sinhtrac_store::Modality::Finger {
                let space = self
                    .finger_space()
                    .ok_or_else(|| TemplateError::ModelMismatch {
                        a: format!("Finger/{}", t.model_id),
                        b: "a gallery without fingerprints".into(),
                    })?;
                space.accept(&t.data)?;
                if t.model_id != space.model_id {
                    return Err(TemplateError::ModelMismatch {
                        a: t.model_id.clone(),
                        b: space.model_id.clone(),
                    }
                    .into());
                }
            }
            if t.modality == sinhtrac_store::Modality::Face {
                self.space.accept(&t.data)?;
                if t.model_id != self.space.model_id {
                    return Err(TemplateError::ModelMismatch {
                        a: t.model_id.clone(),
                        b: self.space.model_id.clone(),
                    }
                    .into());
                }
            }
        }
        Ok(())
    }

    /// Enrol a new subject (durable on return) and index its templates.
    pub fn enroll(&self, tenant: &str, subject: &NewSubject) -> Result<WriteReceipt> {
        self.check_subject(subject)?;
        let r = self.store.enroll(tenant, subject)?;
        self.after_write(r)
    }

    /// Replace a subject's templates and metadata.
    pub fn replace(&self, tenant: &str, subject: &NewSubject) -> Result<WriteReceipt> {
        self.check_subject(subject)?;
        let r = self.store.replace(tenant, subject)?;
        self.after_write(r)
    }

    /// Delete a subject (tombstone) and drop its templates from the index.
    pub fn delete(&self, tenant: &str, subject_id: &str) -> Result<WriteReceipt> {
        let r = self.store.delete(tenant, subject_id)?;
        self.after_write(r)
    }

    /// A subject's record.
    pub fn get(&self, tenant: &str, subject_id: &str) -> Result<SubjectRecord> {
        Ok(self.store.get(tenant, subject_id)?)
    }

    /// A subject's templates of this gallery's face and finger spaces, from one store read (1:1
    /// verification). A stored row that no longer decodes is the server's fault, not the caller's: it is
    /// skipped loudly, as the index load does.
    pub fn subject_templates(&self, tenant: &str, subject_id: &str) -> Result<SubjectTemplates> {
        let record = self.store.get(tenant, subject_id)?;
        let mut out = SubjectTemplates::default();
        for t in &record.templates {
            match t.modality {
                sinhtrac_store::Modality::Face if t.model_id == self.space.model_id => {
                    match self.space.accept(&t.data) {
                        Ok(tpl) => out.faces.extend(tpl.vector().map(<[f32]>::to_vec)),
                        Err(e) => {
                            tracing::error!(subject_id, error = %e, "stored face template unusable")
                        }
                    }
                }
                sinhtrac_store::Modality::Finger => {
                    let Some(space) = self.finger_space().filter(|s| s.model_id == t.model_id)
                    else {
                        continue;
                    };
                    let position = fingers::stored_position(t.finger_position);
                    let indexed = self
                        .fingers
                        .as_ref()
                        .and_then(|f| read(f).search_form(t.key));
                    if let Some(prepared) = indexed {
                        out.fingers.push((position, prepared));
                        continue;
                    }
                    match space.accept(&t.data) {
                        Ok(m) => out.fingers.push((position, SearchTemplate::new(&m))),
                        Err(e) => {
                            tracing::error!(subject_id, error = %e, "stored finger template unusable")
                        }
                    }
                }
                sinhtrac_store::Modality::Face => {}
            }
        }
        Ok(out)
    }

    /// The finger space this gallery accepts, if it holds fingerprints.
    pub fn finger_space(&self) -> Option<&FingerSpace> {
        self.finger_space.as_ref()
    }

    /// Deleted finger templates of one tenant whose memory the finger index still holds (until its next
    /// compaction).
    pub fn removed_fingers_for(&self, tenant: &str) -> usize {
        self.fingers.as_ref().map_or(0, |f| read(f).removed(tenant))
    }

    /// Live finger templates of one tenant in the finger index.
    pub fn indexed_fingers_for(&self, tenant: &str) -> usize {
        self.fingers.as_ref().map_or(0, |f| read(f).count(tenant))
    }

    /// The best `k` subjects of `tenant` for one probe finger, best first, each scoring ≥ `threshold`
    /// (coarse pre-selection, exact MCC re-scoring; a subject's best finger counts). Only gallery
    /// fingers at the probe's position are compared unless either position is unknown.
    pub fn identify_finger(
        &self,
        tenant: &str,
        probe: &Matcher,
        position: FingerPosition,
        k: usize,
        threshold: f32,
    ) -> Result<Vec<Candidate>> {
        let Some(fingers) = &self.fingers else {
            return Ok(Vec::new());
        };
        let fetch = over_fetch(k);
        let hits = read(fingers).search(tenant, probe, position, fetch);
        let hits: Vec<_> = hits.into_iter().filter(|h| h.score >= threshold).collect();
        let keys: Vec<TemplateKey> = hits.iter().map(|h| h.key).collect();
        let owners = self.store.owners(tenant, &keys)?;
        Ok(best_per_subject(
            hits.iter().map(|h| h.score).zip(owners),
            k,
        ))
    }

    /// The best `k` subjects of `tenant` for each query vector, best first, each scoring ≥ `threshold`.
    /// Queries share each pass over memory. `k` counts subjects, not templates.
    pub fn identify_batch(
        &self,
        tenant: &str,
        queries: &[f32],
        k: usize,
        threshold: f32,
        mode: SearchMode,
    ) -> Result<Vec<Vec<Candidate>>> {
        let dim = self.space.dim;
        if queries.is_empty() || !queries.len().is_multiple_of(dim) {
            return Err(TemplateError::DimensionMismatch {
                a: queries.len(),
                b: dim,
            }
            .into());
        }
        if !queries.iter().all(|v| v.is_finite()) {
            return Err(TemplateError::NonFinite.into());
        }
        let nq = queries.len() / dim;
        let ix = read(&self.indexes);
        let Some(&t) = ix.tenants.get(tenant) else {
            return Ok(vec![Vec::new(); nq]);
        };
        let fetch = over_fetch(k);
        let params = SearchParams::with_filter(Filter::tenant(t));
        let hits = match (mode, ix.approximate.as_ref()) {
            (SearchMode::Approximate, Some(a)) => {
                let mut hits = a.search_batch(
                    queries,
                    fetch.saturating_mul(params.rerank_factor.max(1)),
                    &params,
                )?;
                for (q, hs) in hits.iter_mut().enumerate() {
                    let query = &queries[q * dim..(q + 1) * dim];
                    let qn = unit(query);
                    let dot = sinhtrac_index::simd::kernels().dot_f32;
                    for h in hs.iter_mut() {
                        h.score = dot(&ix.exact.vector(h.id)?, &qn);
                    }
                    hs.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
                    hs.truncate(fetch);
                }
                hits
            }
            _ => ix.exact.search_batch(queries, fetch, &params)?,
        };
        drop(ix);
        let mut out = Vec::with_capacity(nq);
        for hs in hits {
            let hs: Vec<_> = hs.into_iter().filter(|h| h.score >= threshold).collect();
            let keys: Vec<TemplateKey> = hs.iter().map(|h| TemplateKey(h.id as i64)).collect();
            let owners = self.store.owners(tenant, &keys)?;
            out.push(best_per_subject(hs.iter().map(|h| h.score).zip(owners), k));
        }
        Ok(out)
    }

    /// Identification for one query vector.
    pub fn identify(
        &self,
        tenant: &str,
        query: &[f32],
        k: usize,
        threshold: f32,
        mode: SearchMode,
    ) -> Result<Vec<Candidate>> {
        Ok(self
            .identify_batch(tenant, query, k, threshold, mode)?
            .pop()
            .unwrap_or_default())
    }

    /// All pairs of different subjects of `tenant` scoring ≥ `threshold`, best first, at most
    /// `max_pairs`. `progress(fraction, pairs)` is called after each tile; returning `false` cancels.
    pub fn duplicate_sweep(
        &self,
        tenant: &str,
        threshold: f32,
        max_pairs: usize,
        mut progress: impl FnMut(f64, usize) -> bool,
    ) -> Result<(Vec<DuplicateSubjects>, usize)> {
        // Sweep a snapshot so writes are not blocked for the sweep's duration.
        let (index, subject_of, swept) = {
            let ix = read(&self.indexes);
            let Some(&t) = ix.tenants.get(tenant) else {
                return Ok((Vec::new(), 0));
            };
            let mut snapshot = FlatIndex::new(FlatConfig::new(self.space.dim, Codec::F32))?;
            let filter = Filter::tenant(t);
            let mut ids = Vec::new();
            let mut vectors = Vec::new();
            for r in 0..ix.exact.rows() {
                if ix.exact.is_deleted(r)
                    || !ix.exact.tag_of_row(r).is_some_and(|t| filter.matches(t))
                {
                    continue;
                }
                let Some(id) = ix.exact.id_of_row(r) else {
                    continue;
                };
                ids.push(id);
                vectors.extend(ix.exact.vector(id)?);
            }
            snapshot.extend(&ids, &vectors, None)?;
            let subject_of: HashMap<u64, u64> = ids
                .iter()
                .map(|id| (*id, ix.subject_of.get(id).copied().unwrap_or(*id)))
                .collect();
            (snapshot, subject_of, ids.len())
        };
        let cfg = SweepConfig::new(threshold);
        let outcome = sweep::sweep(
            &index,
            &cfg,
            |id| subject_of.get(&id).copied().unwrap_or(id),
            None,
            |p: &SweepProgress, _| {
                if progress(p.work_fraction, p.pairs_found) {
                    ControlFlow::Continue(())
                } else {
                    ControlFlow::Break(())
                }
            },
        )?;
        let pairs = match outcome {
            SweepOutcome::Finished(p) => p,
            SweepOutcome::Stopped(_) => return Err(GalleryError::Cancelled),
        };
        // Best pair per subject pair, best first.
        let mut seen = std::collections::HashSet::new();
        let mut keys = Vec::new();
        let mut kept = Vec::new();
        for p in pairs {
            let (sa, sb) = (subject_of[&p.a], subject_of[&p.b]);
            if seen.insert((sa.min(sb), sa.max(sb))) {
                keys.push(TemplateKey(p.a as i64));
                keys.push(TemplateKey(p.b as i64));
                kept.push(p.score);
                if kept.len() == max_pairs {
                    break;
                }
            }
        }
        let owners = self.store.owners(tenant, &keys)?;
        let out = kept
            .iter()
            .zip(owners.chunks(2))
            .filter_map(|(score, o)| match (&o[0], &o[1]) {
                (Some(a), Some(b)) => Some(DuplicateSubjects {
                    subject_a: a.clone(),
                    subject_b: b.clone(),
                    score: *score,
                }),
                _ => None,
            })
            .collect();
        Ok((out, swept))
    }

    /// Close the store cleanly (checkpoint the WAL).
    pub fn close(self) -> Result<()> {
        Ok(self.store.close()?)
    }
}

/// Template hits to fetch for `k` subjects: several templates may belong to one subject, so over-fetch
/// and keep each subject's best ([`best_per_subject`]).
fn over_fetch(k: usize) -> usize {
    k.saturating_mul(2).max(k.saturating_add(4))
}

/// Template hits (best first, with their owners) → each subject's best, at most `k`.
fn best_per_subject(hits: impl Iterator<Item = (f32, Option<String>)>, k: usize) -> Vec<Candidate> {
    let mut best: Vec<Candidate> = Vec::new();
    for (score, owner) in hits {
        // A template deleted between the scan and this lookup has no owner: drop it.
        let Some(subject_id) = owner else { continue };
        if best.iter().any(|c| c.subject_id == subject_id) {
            continue; // hits are best first: the first one of a subject is its best
        }
        best.push(Candidate { subject_id, score });
        if best.len() == k {
            break;
        }
    }
    best
}

fn unit(v: &[f32]) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter().map(|x| x / n).collect()
    } else {
        v.to_vec()
    }
}
