//! The `sinhtrac.v1.Biometrics` handlers. Each RPC: authenticate (interceptor), admit, run the engine
//! work on a worker under the deadline, write the audit record (durable before the reply), count it.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use sinhtrac_engine::face::FaceEngine;
use sinhtrac_engine::finger::FingerEngine;
use sinhtrac_engine::fusion::FusionModel;
use sinhtrac_engine::gallery::{Candidate, Gallery, SearchMode};
use sinhtrac_finger::{FingerPosition, Matcher};
use sinhtrac_store::{NewSubject, NewTemplate};
use tokio_stream::Stream;
use tonic::{Code, Request, Response, Status, Streaming};

use super::audit::{AuditLog, AuditRecord};
use super::auth::{principal, Principal};
use super::batcher::SearchBatcher;
use super::config::{DuplicatePolicy, ServerConfig};
use super::errors::{self, status, Reason};
use super::fusion;
use super::jobs::Jobs;
use super::limits::{Cancel, Limits};
use super::metrics::{code_name, Metrics};
use super::probe::{self, Captured, Probe, ProbeOptions};
use crate::proto;
use crate::proto::biometrics_server::Biometrics;

/// Largest `top_k` of an Identify.
pub const MAX_TOP_K: u32 = 100;
/// Longest client reference kept in the audit log.
const MAX_CLIENT_REFERENCE: usize = 128;

/// What every handler shares.
pub struct Shared {
    /// The face pipeline (and every model's calibration).
    pub engine: Arc<FaceEngine>,
    /// The fingerprint pipeline.
    pub fingers: Arc<FingerEngine>,
    /// Face + fingerprint score fusion, when a model for these two pipelines is installed.
    pub fusion: Option<FusionModel>,
    /// Store + index.
    pub gallery: Arc<Gallery>,
    /// Audit log.
    pub audit: AuditLog,
    /// Metrics.
    pub metrics: Metrics,
    /// Admission control and deadlines.
    pub limits: Limits,
    /// Configuration.
    pub config: ServerConfig,
    /// Background jobs.
    pub jobs: Jobs,
    /// Identification batching.
    pub search: SearchBatcher,
}

/// The service.
#[derive(Clone)]
pub struct BiometricsService {
    s: Arc<Shared>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Replies that name the request id of their audit record in the message itself (all replies carry it
/// in the `x-request-id` header too).
trait CarriesRequestId {
    fn set_request_id(&mut self, _id: &str) {}
}

macro_rules! carries_request_id {
    ($($t:ty),*) => {$(
        impl CarriesRequestId for $t {
            fn set_request_id(&mut self, id: &str) {
                self.request_id = id.to_string();
            }
        }
    )*};
}

carries_request_id!(
    proto::EnrollResponse,
    proto::VerifyResponse,
    proto::CompareResponse,
    proto::IdentifyResponse,
    proto::CheckLivenessResponse,
    proto::DeleteSubjectResponse
);

impl CarriesRequestId for proto::EnrollBatchResponse {}
impl CarriesRequestId for proto::Subject {}
impl CarriesRequestId for proto::ListSubjectsResponse {}
impl CarriesRequestId for proto::GalleryStatsResponse {}
impl CarriesRequestId for proto::Job {}
impl CarriesRequestId for proto::DuplicateSweepResult {}
impl CarriesRequestId for JobStream {}

/// One request in flight: who, what, since when, and its audit record.
struct Call {
    method: &'static str,
    principal: Principal,
    deadline: Instant,
    started: Instant,
    audit: AuditRecord,
}

fn reference(r: &str) -> Result<String, Status> {
    if r.len() > MAX_CLIENT_REFERENCE {
        return Err(errors::invalid("client_reference is longer than 128 bytes"));
    }
    Ok(r.chars().filter(|c| !c.is_control()).collect())
}

/// Which calibrated pipeline a score comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scorer {
    /// Face embeddings (cosine).
    Face,
    /// Fingerprint minutiae (MCC).
    Finger,
}

impl Scorer {
    pub(super) fn of(p: &Probe) -> Self {
        match p.captured {
            Captured::Face(_) => Scorer::Face,
            Captured::Finger { .. } => Scorer::Finger,
        }
    }

    /// The API's name of the modality.
    pub(super) fn modality(self) -> proto::Modality {
        match self {
            Scorer::Face => proto::Modality::Face,
            Scorer::Finger => proto::Modality::Finger,
        }
    }

    /// The model whose scores (and templates) these are.
    pub(super) fn model_id(self, s: &Shared) -> String {
        match self {
            Scorer::Face => s.gallery.space().model_id.clone(),
            Scorer::Finger => s.fingers.space().model_id.clone(),
        }
    }
}

/// The decision on `score` at the requested FMR (0 = the configured one for that modality), from that
/// pipeline's calibration. A requested FMR the calibration does not hold is the caller's error; a
/// missing calibration for the configured one is the server's.
fn decide_at(
    s: &Shared,
    scorer: Scorer,
    score: f32,
    requested: f64,
) -> Result<sinhtrac_engine::decision::Decision, Status> {
    let cal = &s.engine.calibrations;
    let decided = match scorer {
        Scorer::Face => {
            let fmr = target_fmr(requested, s.config.target_fmr)?;
            let e = &s.engine.embedder;
            cal.decide(e.model_id(), e.model_sha256_hex(), score, fmr)
        }
        Scorer::Finger => {
            let fmr = target_fmr(requested, s.config.finger_target_fmr)?;
            let space = s.fingers.space();
            cal.decide(&space.model_id, &space.sha256_hex(), score, fmr)
        }
    };
    match decided {
        Ok(d) => Ok(d),
        Err(e) if requested != 0.0 && e.reason() == "MODEL_UNCALIBRATED" => {
            Err(errors::invalid(format!("target_fmr {requested}: {e}")))
        }
        Err(e) => Err(errors::model(e)),
    }
}

/// The FMR a decision is made at: the requested one (validated), or the configured default when 0.
pub(super) fn target_fmr(requested: f64, default: f64) -> Result<f64, Status> {
    if requested == 0.0 {
        Ok(default)
    } else if requested > 0.0 && requested < 1.0 {
        Ok(requested)
    } else {
        Err(errors::invalid(
            "target_fmr must be in (0, 1), or 0 for the default",
        ))
    }
}

/// Decision threshold and FMR for searches (Identify, duplicate checks, sweeps).
fn threshold_at(s: &Shared, scorer: Scorer, requested: f64) -> Result<(f32, f64), Status> {
    decide_at(s, scorer, 0.0, requested).map(|d| (d.threshold, d.target_fmr))
}

/// A 1:1 decision for the API.
fn decision(
    s: &Shared,
    scorer: Scorer,
    score: f32,
    requested: f64,
) -> Result<proto::Decision, Status> {
    let d = decide_at(s, scorer, score, requested)?;
    Ok(proto::Decision {
        score,
        threshold: d.threshold,
        target_fmr: d.target_fmr,
        r#match: d.accept,
        model_id: d.model_id,
        calibration: d.calibration,
    })
}

/// MCC score of a probe finger against the subject's finger at the same position (`None` when it has
/// none there). Only one finger is compared: the best of ten would multiply the false-match rate.
pub(super) fn finger_score_at(
    probe: &Matcher,
    position: FingerPosition,
    enrolled: &[(FingerPosition, sinhtrac_finger::SearchTemplate)],
) -> Option<f32> {
    enrolled
        .iter()
        .filter(|(p, _)| *p == position)
        .map(|(_, t)| probe.score(t))
        .reduce(f32::max)
}

/// The best `k` subjects for one probe finger scoring at least `threshold` (on the worker).
fn search_finger(
    s: &Shared,
    tenant: &str,
    probe: &Matcher,
    position: FingerPosition,
    k: usize,
    threshold: f32,
) -> Result<Vec<Candidate>, Status> {
    let t0 = Instant::now();
    let found = s
        .gallery
        .identify_finger(tenant, probe, position, k, threshold)
        .map_err(errors::gallery)?;
    s.metrics.stage("finger_search", t0.elapsed().as_secs_f64());
    Ok(found)
}

/// 1:1 and enrolment need a known finger position (ISO/IEC 19794-2 code 1-10).
pub(super) fn require_position(position: FingerPosition, what: &str) -> Result<(), Status> {
    if position == FingerPosition::UNKNOWN {
        return Err(errors::invalid(format!(
            "{what} needs the finger position (1-10): comparing with every enrolled finger would \
             multiply the false-match rate by their number"
        )));
    }
    Ok(())
}

/// The audited fields of a 1:1 decision.
fn audit_decision(
    audit: &mut AuditRecord,
    d: Option<&proto::Decision>,
    liveness: Option<&proto::Liveness>,
) {
    if let Some(d) = d {
        // The model whose calibration decided (face, finger pipeline or fusion model).
        audit.model_ids = vec![d.model_id.clone()];
        audit.score = Some(d.score);
        audit.threshold = Some(d.threshold);
        audit.target_fmr = Some(d.target_fmr);
        audit.decision = Some(d.r#match);
    }
    audit.liveness_score = liveness.map(|l| l.score);
}

/// Cosine of two unit vectors with the index's SIMD kernel: the same arithmetic as calibration and 1:N.
pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return f32::NEG_INFINITY;
    }
    (sinhtrac_index::simd::kernels().dot_f32)(a, b)
}

impl BiometricsService {
    /// A service over shared state.
    pub fn new(shared: Arc<Shared>) -> Self {
        BiometricsService { s: shared }
    }

    fn begin<T>(&self, method: &'static str, req: &Request<T>) -> Result<Call, Status> {
        let principal = principal(req)?;
        let request_id = uuid::Uuid::new_v4().to_string();
        let audit = AuditRecord {
            ts_ms: now_ms(),
            request_id,
            tenant: principal.tenant.clone(),
            key_id: principal.key_id.clone(),
            operation: method,
            model_ids: vec![self.s.gallery.space().model_id.clone()],
            ..Default::default()
        };
        Ok(Call {
            method,
            deadline: self.s.limits.deadline(req.metadata()),
            principal,
            started: Instant::now(),
            audit,
        })
    }

    /// Audit and count the outcome; the reply goes out only once its audit record is durable.
    async fn finish<T: CarriesRequestId>(
        &self,
        mut call: Call,
        result: Result<T, Status>,
    ) -> Result<Response<T>, Status> {
        let code = match &result {
            Ok(_) => Code::Ok,
            Err(s) => s.code(),
        };
        call.audit.status = code_name(code).to_string();
        if let Err(s) = &result {
            call.audit.reason = errors::reason_of(s);
        }
        let elapsed = call.started.elapsed().as_secs_f64();
        call.audit.elapsed_ms = elapsed * 1e3;
        let audited = self.s.audit.record(&call.audit).await;
        self.s.metrics.finish(call.method, code, elapsed);
        tracing::info!(
            method = call.method,
            request_id = %call.audit.request_id,
            tenant = %call.principal.tenant,
            code = code_name(code),
            ms = elapsed * 1e3,
            "request"
        );
        let request_id = call.audit.request_id.parse().ok();
        if let Err(e) = audited {
            // Fail closed: a decision that cannot be audited is not given.
            tracing::error!(error = %e, "audit record not written");
            return Err(status(
                Code::Internal,
                Reason::InternalError,
                "audit log unavailable",
            ));
        }
        match result {
            Ok(mut v) => {
                v.set_request_id(&call.audit.request_id);
                let mut r = Response::new(v);
                if let Some(id) = request_id {
                    r.metadata_mut().insert("x-request-id", id);
                }
                Ok(r)
            }
            Err(mut s) => {
                if let Some(id) = request_id {
                    s.metadata_mut().insert("x-request-id", id);
                }
                Err(s)
            }
        }
    }

    /// Run `work` on a worker for this call.
    async fn work<T, F>(&self, call: &Call, work: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&Shared, &Cancel) -> Result<T, Status> + Send + 'static,
    {
        let s = self.s.clone();
        self.s
            .limits
            .run(call.method, call.deadline, move |c| work(&s, c))
            .await
    }

    /// The best `k` face subjects scoring at least `threshold`, from the batcher (shared scans), under
    /// the call's deadline.
    async fn search_faces(
        &self,
        call: &Call,
        vector: Vec<f32>,
        k: usize,
        threshold: f32,
        mode: SearchMode,
    ) -> Result<Vec<Candidate>, Status> {
        let t0 = Instant::now();
        let cancel = Cancel::new(call.deadline);
        let search = self.s.search.identify(
            &call.principal.tenant,
            vector,
            k,
            threshold,
            mode,
            cancel.clone(),
        );
        let found = match tokio::time::timeout_at(call.deadline.into(), search).await {
            Ok(r) => r?,
            Err(_) => {
                cancel.cancel();
                return Err(status(
                    Code::DeadlineExceeded,
                    Reason::Deadline,
                    "deadline exceeded while waiting for the gallery scan",
                ));
            }
        };
        self.s.metrics.stage("search", t0.elapsed().as_secs_f64());
        Ok(found)
    }

    /// Identify with several probes: shortlist by each modality's search, then decide every
    /// shortlisted subject on the fused score (see `IdentifyRequest.additional_probes`).
    async fn identify_fused(
        &self,
        call: &mut Call,
        r: proto::IdentifyRequest,
        k: usize,
        mode: SearchMode,
    ) -> Result<proto::IdentifyResponse, Status> {
        let shortlist_len = k.max(fusion::SHORTLIST);
        let tenant = call.principal.tenant.clone();
        let requested = r.target_fmr;
        let (quality, probes, mut shortlist, (threshold, fmr, model_id)) = self
            .work(call, move |s, c| {
                fusion::check_probe_count(r.additional_probes.len(), "identification")?;
                let mut probes = Vec::with_capacity(1 + r.additional_probes.len());
                for b in
                    std::iter::once(r.probe.as_ref()).chain(r.additional_probes.iter().map(Some))
                {
                    c.check()?;
                    probes.push(probe::extract(s, b, ProbeOptions::default(), c)?);
                }
                fusion::one_capture_per_face_and_finger(&probes, "identification")?;
                // Cylinders built and positions checked once, for the searches and the rescoring.
                let prepared = probes
                    .iter()
                    .map(|p| fusion::Prepared::new(p, "a fused identification"))
                    .collect::<Result<Vec<_>, Status>>()?;
                let threshold = fusion::fused_threshold(s, &prepared, requested)?;
                let mut shortlist = Vec::new();
                for p in &prepared {
                    if let fusion::Prepared::Finger(matcher, position) = p {
                        c.check()?;
                        let found = search_finger(
                            s,
                            &tenant,
                            matcher,
                            *position,
                            shortlist_len,
                            f32::NEG_INFINITY,
                        )?;
                        shortlist.extend(found.into_iter().map(|c| c.subject_id));
                    }
                }
                let quality = probes.swap_remove(0).quality;
                Ok((quality, prepared, shortlist, threshold))
            })
            .await?;
        let face = probes.iter().find_map(|p| match p {
            fusion::Prepared::Face(v) => Some(v.clone()),
            fusion::Prepared::Finger(..) => None,
        });
        if let Some(vector) = face {
            let found = self
                .search_faces(call, vector, shortlist_len, f32::NEG_INFINITY, mode)
                .await?;
            shortlist.extend(found.into_iter().map(|c| c.subject_id));
        }
        shortlist.sort_unstable();
        shortlist.dedup();
        let tenant = call.principal.tenant.clone();
        let (probes, candidates) = self
            .work(call, move |s, c| {
                let found =
                    fusion::rank_shortlist(s, &tenant, &shortlist, &probes, requested, k, c)?;
                Ok((probes, found))
            })
            .await?;
        let has_face = probes.iter().any(|p| p.scorer() == Scorer::Face);
        let has_finger = probes.len() > usize::from(has_face);
        let tenant = &call.principal.tenant;
        let gallery_size = if has_face {
            self.s.gallery.indexed_for(tenant)
        } else {
            0
        } + if has_finger {
            self.s.gallery.indexed_fingers_for(tenant)
        } else {
            0
        };
        call.audit.model_ids = std::iter::once(model_id.clone())
            .chain(has_face.then(|| Scorer::Face.model_id(&self.s)))
            .chain(has_finger.then(|| Scorer::Finger.model_id(&self.s)))
            .collect();
        Ok(proto::IdentifyResponse {
            candidates,
            threshold,
            target_fmr: fmr,
            model_id,
            gallery_size: gallery_size as u64,
            probe_quality: Some(quality),
            request_id: String::new(),
        })
    }
}

/// Enrolment of one subject (shared by Enroll and EnrollBatch).
fn enroll_one(
    s: &Shared,
    tenant: &str,
    req: &proto::EnrollRequest,
    cancel: &Cancel,
) -> Result<proto::EnrollResponse, Status> {
    sinhtrac_store::validate_subject_id(&req.subject_id).map_err(|e| {
        status(
            Code::InvalidArgument,
            Reason::InvalidSubjectId,
            e.to_string(),
        )
    })?;
    if req.biometrics.is_empty() {
        return Err(errors::invalid(
            "at least one face image, fingerprint image or template is required",
        ));
    }
    if req.biometrics.len() > 16 {
        return Err(errors::invalid("at most 16 biometrics per enrolment"));
    }
    let opts = ProbeOptions {
        enrolment: true,
        liveness: false,
    };
    let mut probes: Vec<Probe> = Vec::with_capacity(req.biometrics.len());
    for b in &req.biometrics {
        cancel.check()?;
        let p = probe::extract(s, Some(b), opts, cancel)?;
        if let Captured::Finger { position, .. } = &p.captured {
            require_position(*position, "an enrolled fingerprint")?;
        }
        probes.push(p);
    }
    let policy = match req.duplicate_policy() {
        proto::DuplicatePolicy::Unspecified => s.config.duplicate_policy,
        proto::DuplicatePolicy::Reject => DuplicatePolicy::Reject,
        proto::DuplicatePolicy::Flag => DuplicatePolicy::Flag,
        proto::DuplicatePolicy::Allow => DuplicatePolicy::Allow,
    };
    let mut duplicates = Vec::new();
    // Faces decide a REJECT; fingerprint matches are only flagged for review: the finger calibration's
    // strictest point (FMR 1e-3 per comparison) would refuse genuine newcomers in a large gallery.
    let mut face_duplicate = false;
    if policy != DuplicatePolicy::Allow {
        cancel.check()?;
        let t0 = Instant::now();
        for p in &probes {
            let (threshold, _) = threshold_at(s, Scorer::of(p), 0.0)?;
            let found = match &p.captured {
                Captured::Face(v) => s
                    .gallery
                    .identify(tenant, v, 5, threshold, SearchMode::Exact),
                Captured::Finger { minutiae, position } => s.gallery.identify_finger(
                    tenant,
                    &Matcher::new(minutiae),
                    *position,
                    5,
                    threshold,
                ),
            }
            .map_err(errors::gallery)?;
            let scorer = Scorer::of(p);
            for c in found {
                // Re-enrolling (replace) the same subject is not a duplicate of itself.
                if c.subject_id == req.subject_id {
                    continue;
                }
                face_duplicate |= scorer == Scorer::Face;
                if !duplicates.iter().any(|d: &proto::Candidate| {
                    d.subject_id == c.subject_id && d.modality == scorer.modality() as i32
                }) {
                    duplicates.push(proto::Candidate {
                        subject_id: c.subject_id,
                        score: c.score,
                        rank: 0,
                        modality: scorer.modality() as i32,
                        ..Default::default()
                    });
                }
            }
        }
        s.metrics.stage("search", t0.elapsed().as_secs_f64());
        // Ranked within each modality (face and MCC scores are not on one scale), faces first.
        duplicates.sort_by(|a, b| {
            a.modality
                .cmp(&b.modality)
                .then(b.score.total_cmp(&a.score))
        });
        let mut rank = (0, 0);
        for d in duplicates.iter_mut() {
            rank = if d.modality == rank.0 {
                (rank.0, rank.1 + 1)
            } else {
                (d.modality, 1)
            };
            d.rank = rank.1;
        }
        if policy == DuplicatePolicy::Reject && face_duplicate {
            return Err(status(
                Code::AlreadyExists,
                Reason::DuplicateIdentity,
                format!(
                    "the face matches {} enrolled subject(s) at the configured false-match rate",
                    duplicates
                        .iter()
                        .filter(|d| d.modality == proto::Modality::Face as i32)
                        .count()
                ),
            ));
        }
    }
    cancel.check()?;
    let model_of = |p: &Probe| Scorer::of(p).model_id(s);
    let subject = NewSubject {
        subject_id: req.subject_id.clone(),
        metadata: req.metadata.clone().into_iter().collect(),
        templates: probes
            .iter()
            .map(|p| match &p.captured {
                Captured::Face(_) => {
                    NewTemplate::face(model_of(p), p.template.clone(), p.quality_score)
                }
                Captured::Finger { position, .. } => NewTemplate::finger(
                    position.code(),
                    model_of(p),
                    p.template.clone(),
                    p.quality_score,
                ),
            })
            .collect(),
    };
    let t0 = Instant::now();
    if req.replace {
        s.gallery.replace(tenant, &subject)
    } else {
        s.gallery.enroll(tenant, &subject)
    }
    .map_err(errors::gallery)?;
    s.metrics.stage("store", t0.elapsed().as_secs_f64());
    s.metrics.gallery_templates.set(s.gallery.indexed() as i64);
    Ok(proto::EnrollResponse {
        subject_id: req.subject_id.clone(),
        templates: probes
            .into_iter()
            .map(|p| proto::TemplateInfo {
                modality: Scorer::of(&p).modality() as i32,
                model_id: model_of(&p),
                quality: Some(p.quality),
                template: p.template,
            })
            .collect(),
        possible_duplicates: duplicates,
        request_id: String::new(),
    })
}

type JobStream = Pin<Box<dyn Stream<Item = Result<proto::Job, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl Biometrics for BiometricsService {
    async fn enroll(
        &self,
        req: Request<proto::EnrollRequest>,
    ) -> Result<Response<proto::EnrollResponse>, Status> {
        let mut call = self.begin("Enroll", &req)?;
        let r = req.into_inner();
        call.audit.subject_id = Some(r.subject_id.clone());
        let result = async {
            call.principal.require_operator()?;
            call.audit.client_reference = reference(&r.client_reference)?;
            let tenant = call.principal.tenant.clone();
            self.work(&call, move |s, c| enroll_one(s, &tenant, &r, c))
                .await
        }
        .await;
        if let Ok(resp) = &result {
            call.audit.decision = Some(true);
            call.audit.candidates = resp
                .possible_duplicates
                .iter()
                .map(|c| (c.subject_id.clone(), c.score))
                .collect();
        }
        self.finish(call, result).await
    }

    async fn enroll_batch(
        &self,
        req: Request<Streaming<proto::EnrollRequest>>,
    ) -> Result<Response<proto::EnrollBatchResponse>, Status> {
        let call = self.begin("EnrollBatch", &req)?;
        let mut stream = req.into_inner();
        let result = async {
            call.principal.require_operator()?;
            let mut out = proto::EnrollBatchResponse::default();
            let mut index = 0u64;
            while let Some(item) = stream.message().await? {
                let tenant = call.principal.tenant.clone();
                let subject_id = item.subject_id.clone();
                let r = self
                    .work(&call, move |s, c| enroll_one(s, &tenant, &item, c))
                    .await;
                let mut entry = proto::EnrollBatchItem {
                    index,
                    subject_id,
                    ..Default::default()
                };
                // Each item is a decision of its own: audited as it is acknowledged.
                let mut item_audit = AuditRecord {
                    ts_ms: now_ms(),
                    request_id: format!("{}#{index}", call.audit.request_id),
                    operation: "EnrollBatchItem",
                    subject_id: Some(entry.subject_id.clone()),
                    ..call.audit.clone()
                };
                match r {
                    Ok(resp) => {
                        out.enrolled += 1;
                        item_audit.status = "OK".into();
                        item_audit.decision = Some(true);
                        item_audit.candidates = resp
                            .possible_duplicates
                            .iter()
                            .map(|c| (c.subject_id.clone(), c.score))
                            .collect();
                        entry.possible_duplicates = resp.possible_duplicates;
                    }
                    Err(e) if e.code() == Code::DeadlineExceeded || e.code() == Code::Internal => {
                        return Err(e)
                    }
                    Err(e) => {
                        out.failed += 1;
                        entry.code = e.code() as i32;
                        entry.reason = errors::reason_of(&e).unwrap_or_default();
                        entry.message = e.message().to_string();
                        item_audit.status = code_name(e.code()).into();
                        item_audit.reason = Some(entry.reason.clone());
                    }
                }
                self.s.audit.record(&item_audit).await.map_err(|e| {
                    tracing::error!(error = %e, "audit record not written");
                    status(
                        Code::Internal,
                        Reason::InternalError,
                        "audit log unavailable",
                    )
                })?;
                out.items.push(entry);
                index += 1;
            }
            Ok(out)
        }
        .await;
        self.finish(call, result).await
    }

    async fn verify(
        &self,
        req: Request<proto::VerifyRequest>,
    ) -> Result<Response<proto::VerifyResponse>, Status> {
        let mut call = self.begin("Verify", &req)?;
        let r = req.into_inner();
        call.audit.subject_id = Some(r.subject_id.clone());
        let result = async {
            call.audit.client_reference = reference(&r.client_reference)?;
            let tenant = call.principal.tenant.clone();
            self.work(&call, move |s, c| {
                // Unknown subject first (cheaper than extraction, and the caller's likelier mistake);
                // one read serves every probe.
                let enrolled = s
                    .gallery
                    .subject_templates(&tenant, &r.subject_id)
                    .map_err(errors::gallery)?;
                fusion::check_probe_count(r.additional_probes.len(), "verification")?;
                let bios: Vec<Option<&proto::Biometric>> = std::iter::once(r.probe.as_ref())
                    .chain(r.additional_probes.iter().map(Some))
                    .collect();
                let is_face_image = |b: &Option<&proto::Biometric>| {
                    matches!(
                        b.and_then(|b| b.source.as_ref()),
                        Some(proto::biometric::Source::FaceImage(_))
                    )
                };
                if r.check_liveness && !bios.iter().any(is_face_image) {
                    return Err(status(
                        Code::InvalidArgument,
                        Reason::ModalityUnsupported,
                        "liveness is checked on a face image, and none was sent",
                    ));
                }
                let mut probes = Vec::with_capacity(bios.len());
                let mut scored = Vec::with_capacity(bios.len());
                for (i, b) in bios.iter().enumerate() {
                    c.check()?;
                    let opts = ProbeOptions {
                        enrolment: false,
                        liveness: r.check_liveness && is_face_image(b),
                    };
                    let p = probe::extract(s, *b, opts, c)?;
                    let score = fusion::Prepared::new(&p, "a fingerprint verification")?
                        .score(&enrolled)
                        .ok_or_else(|| fusion::no_template(&p))?;
                    scored.push((i, Scorer::of(&p), score));
                    probes.push(p);
                }
                fusion::one_capture_per_face_and_finger(&probes, "verification")?;
                let liveness = probes.iter_mut().find_map(|p| p.liveness.take());
                let primary = probes.swap_remove(0);
                let (d, probe_scores) = if scored.len() == 1 {
                    let (_, scorer, score) = scored[0];
                    (decision(s, scorer, score, r.target_fmr)?, Vec::new())
                } else {
                    (
                        fusion::fused_decision(s, &scored, r.target_fmr)?,
                        fusion::probe_scores(s, &scored),
                    )
                };
                Ok(proto::VerifyResponse {
                    decision: Some(d),
                    probe_quality: Some(primary.quality),
                    liveness,
                    request_id: String::new(),
                    probe_scores,
                })
            })
            .await
        }
        .await;
        if let Ok(resp) = &result {
            audit_decision(
                &mut call.audit,
                resp.decision.as_ref(),
                resp.liveness.as_ref(),
            );
        }
        self.finish(call, result).await
    }

    async fn compare(
        &self,
        req: Request<proto::CompareRequest>,
    ) -> Result<Response<proto::CompareResponse>, Status> {
        let mut call = self.begin("Compare", &req)?;
        let r = req.into_inner();
        let result = async {
            call.audit.client_reference = reference(&r.client_reference)?;
            self.work(&call, move |s, c| {
                let a = probe::extract(
                    s,
                    r.a.as_ref(),
                    ProbeOptions {
                        enrolment: false,
                        liveness: r.check_liveness_a,
                    },
                    c,
                )?;
                c.check()?;
                let b = probe::extract(s, r.b.as_ref(), ProbeOptions::default(), c)?;
                let score = match (&a.captured, &b.captured) {
                    (Captured::Face(va), Captured::Face(vb)) => dot(va, vb),
                    (
                        Captured::Finger {
                            minutiae: ma,
                            position: pa,
                        },
                        Captured::Finger {
                            minutiae: mb,
                            position: pb,
                        },
                    ) => {
                        if *pa != FingerPosition::UNKNOWN
                            && *pb != FingerPosition::UNKNOWN
                            && pa != pb
                        {
                            return Err(errors::invalid(
                                "a and b are fingerprints of different finger positions",
                            ));
                        }
                        s.fingers.compare(ma, mb)
                    }
                    _ => {
                        return Err(status(
                            Code::InvalidArgument,
                            Reason::ModalityUnsupported,
                            "a and b are of different modalities (face vs fingerprint)",
                        ))
                    }
                };
                let d = decision(s, Scorer::of(&a), score, r.target_fmr)?;
                Ok(proto::CompareResponse {
                    decision: Some(d),
                    quality_a: Some(a.quality),
                    quality_b: Some(b.quality),
                    liveness_a: a.liveness,
                    template_a: a.template,
                    template_b: b.template,
                    request_id: String::new(),
                })
            })
            .await
        }
        .await;
        if let Ok(resp) = &result {
            audit_decision(
                &mut call.audit,
                resp.decision.as_ref(),
                resp.liveness_a.as_ref(),
            );
        }
        self.finish(call, result).await
    }

    async fn identify(
        &self,
        req: Request<proto::IdentifyRequest>,
    ) -> Result<Response<proto::IdentifyResponse>, Status> {
        let mut call = self.begin("Identify", &req)?;
        let r = req.into_inner();
        let result = async {
            call.audit.client_reference = reference(&r.client_reference)?;
            let k = if r.top_k == 0 { 10 } else { r.top_k };
            if k > MAX_TOP_K {
                return Err(errors::invalid(format!("top_k must be 1-{MAX_TOP_K}")));
            }
            let tenant = call.principal.tenant.clone();
            let mode = match r.mode() {
                proto::SearchMode::Approximate => SearchMode::Approximate,
                proto::SearchMode::Exact => SearchMode::Exact,
                proto::SearchMode::Unspecified => {
                    let large =
                        self.s.gallery.indexed_for(&tenant) > self.s.config.exact_search_limit;
                    if large && self.s.config.approximate_tier {
                        SearchMode::Approximate
                    } else {
                        SearchMode::Exact
                    }
                }
            };
            if !r.additional_probes.is_empty() {
                return self.identify_fused(&mut call, r, k as usize, mode).await;
            }
            // Probe extraction on a worker. Face scans run in the batcher, shared with concurrent
            // calls; a fingerprint search (pre-selection + MCC re-scoring) runs on the worker.
            let finger_tenant = tenant.clone();
            let (p, threshold, fmr, finger_found) = self
                .work(&call, move |s, c| {
                    let p = probe::extract(s, r.probe.as_ref(), ProbeOptions::default(), c)?;
                    let (threshold, fmr) = threshold_at(s, Scorer::of(&p), r.target_fmr)?;
                    let found = match &p.captured {
                        Captured::Face(_) => None,
                        Captured::Finger { minutiae, position } => {
                            c.check()?;
                            Some(search_finger(
                                s,
                                &finger_tenant,
                                &Matcher::new(minutiae),
                                *position,
                                k as usize,
                                threshold,
                            )?)
                        }
                    };
                    Ok((p, threshold, fmr, found))
                })
                .await?;
            let scorer = Scorer::of(&p);
            let found = match (finger_found, &p.captured) {
                (Some(found), _) => found,
                (None, Captured::Face(vector)) => {
                    self.search_faces(&call, vector.clone(), k as usize, threshold, mode)
                        .await?
                }
                (None, Captured::Finger { .. }) => Vec::new(),
            };
            let gallery_size = match scorer {
                Scorer::Face => self.s.gallery.indexed_for(&tenant),
                Scorer::Finger => self.s.gallery.indexed_fingers_for(&tenant),
            };
            call.audit.model_ids = vec![scorer.model_id(&self.s)];
            Ok(proto::IdentifyResponse {
                candidates: found
                    .into_iter()
                    .enumerate()
                    .map(|(i, c)| proto::Candidate {
                        subject_id: c.subject_id,
                        score: c.score,
                        rank: i as u32 + 1,
                        modality: scorer.modality() as i32,
                        ..Default::default()
                    })
                    .collect(),
                threshold,
                target_fmr: fmr,
                model_id: scorer.model_id(&self.s),
                gallery_size: gallery_size as u64,
                probe_quality: Some(p.quality),
                request_id: String::new(),
            })
        }
        .await;
        if let Ok(resp) = &result {
            call.audit.threshold = Some(resp.threshold);
            call.audit.target_fmr = Some(resp.target_fmr);
            call.audit.decision = Some(!resp.candidates.is_empty());
            call.audit.candidates = resp
                .candidates
                .iter()
                .map(|c| (c.subject_id.clone(), c.score))
                .collect();
            if resp
                .candidates
                .iter()
                .any(|c| c.modality == proto::Modality::Fused as i32)
            {
                call.audit.candidate_thresholds =
                    resp.candidates.iter().map(|c| c.threshold).collect();
            }
        }
        self.finish(call, result).await
    }

    async fn check_liveness(
        &self,
        req: Request<proto::CheckLivenessRequest>,
    ) -> Result<Response<proto::CheckLivenessResponse>, Status> {
        let mut call = self.begin("CheckLiveness", &req)?;
        let r = req.into_inner();
        call.audit.model_ids = self.s.engine.liveness.model_ids();
        let result = async {
            call.audit.client_reference = reference(&r.client_reference)?;
            self.work(&call, move |s, c| {
                let image = r
                    .image
                    .ok_or_else(|| errors::invalid("an image is required"))?;
                let bio = proto::Biometric {
                    source: Some(proto::biometric::Source::FaceImage(image)),
                    ..Default::default()
                };
                let p = probe::extract(
                    s,
                    Some(&bio),
                    ProbeOptions {
                        enrolment: false,
                        liveness: true,
                    },
                    c,
                )?;
                Ok(proto::CheckLivenessResponse {
                    liveness: p.liveness,
                    quality: Some(p.quality),
                    request_id: String::new(),
                })
            })
            .await
        }
        .await;
        if let Ok(resp) = &result {
            if let Some(l) = &resp.liveness {
                call.audit.liveness_score = Some(l.score);
                call.audit.threshold = Some(l.threshold);
                call.audit.decision = Some(l.live);
            }
        }
        self.finish(call, result).await
    }

    async fn delete_subject(
        &self,
        req: Request<proto::DeleteSubjectRequest>,
    ) -> Result<Response<proto::DeleteSubjectResponse>, Status> {
        let mut call = self.begin("DeleteSubject", &req)?;
        let r = req.into_inner();
        call.audit.subject_id = Some(r.subject_id.clone());
        let result = async {
            call.principal.require_operator()?;
            call.audit.client_reference = reference(&r.client_reference)?;
            let tenant = call.principal.tenant.clone();
            self.work(&call, move |s, _| {
                let receipt = s
                    .gallery
                    .delete(&tenant, &r.subject_id)
                    .map_err(errors::gallery)?;
                s.metrics.gallery_templates.set(s.gallery.indexed() as i64);
                Ok(proto::DeleteSubjectResponse {
                    subject_id: r.subject_id,
                    templates_removed: receipt.removed.len() as u32,
                    request_id: String::new(),
                })
            })
            .await
        }
        .await;
        self.finish(call, result).await
    }

    async fn get_subject(
        &self,
        req: Request<proto::GetSubjectRequest>,
    ) -> Result<Response<proto::Subject>, Status> {
        let mut call = self.begin("GetSubject", &req)?;
        let r = req.into_inner();
        call.audit.subject_id = Some(r.subject_id.clone());
        let tenant = call.principal.tenant.clone();
        let result = self
            .work(&call, move |s, _| {
                let rec = s
                    .gallery
                    .get(&tenant, &r.subject_id)
                    .map_err(errors::gallery)?;
                Ok(proto::Subject {
                    subject_id: rec.subject_id,
                    metadata: rec.metadata.into_iter().collect(),
                    templates: rec
                        .templates
                        .iter()
                        .map(|t| {
                            let quality = probe::stored_quality(s, &t.data);
                            proto::TemplateInfo {
                                modality: match t.modality {
                                    sinhtrac_store::Modality::Face => proto::Modality::Face,
                                    sinhtrac_store::Modality::Finger => proto::Modality::Finger,
                                } as i32,
                                model_id: t.model_id.clone(),
                                quality,
                                // Template bytes are biometric data: not returned by a read.
                                template: Vec::new(),
                            }
                        })
                        .collect(),
                    created_at_ms: rec.created_at_ms,
                    updated_at_ms: rec.updated_at_ms,
                })
            })
            .await;
        self.finish(call, result).await
    }

    async fn list_subjects(
        &self,
        req: Request<proto::ListSubjectsRequest>,
    ) -> Result<Response<proto::ListSubjectsResponse>, Status> {
        let call = self.begin("ListSubjects", &req)?;
        let r = req.into_inner();
        let tenant = call.principal.tenant.clone();
        let result = async {
            let size = if r.page_size == 0 { 100 } else { r.page_size };
            if size > 1000 {
                return Err(errors::invalid("page_size must be 1-1000"));
            }
            self.work(&call, move |s, _| {
                let cursor = (!r.page_token.is_empty()).then_some(r.page_token.as_str());
                let page = s
                    .gallery
                    .store()
                    .list(&tenant, size as usize, cursor)
                    .map_err(|e| errors::gallery(e.into()))?;
                Ok(proto::ListSubjectsResponse {
                    subjects: page
                        .subjects
                        .into_iter()
                        .map(|s| proto::SubjectSummary {
                            subject_id: s.subject_id,
                            metadata: s.metadata.into_iter().collect(),
                            template_count: s.template_count,
                            created_at_ms: s.created_at_ms,
                            updated_at_ms: s.updated_at_ms,
                        })
                        .collect(),
                    next_page_token: page.next_cursor.unwrap_or_default(),
                })
            })
            .await
        }
        .await;
        self.finish(call, result).await
    }

    async fn gallery_stats(
        &self,
        req: Request<proto::GalleryStatsRequest>,
    ) -> Result<Response<proto::GalleryStatsResponse>, Status> {
        let call = self.begin("GalleryStats", &req)?;
        let tenant = call.principal.tenant.clone();
        let result = self
            .work(&call, move |s, _| {
                let st = s
                    .gallery
                    .store()
                    .stats(&tenant)
                    .map_err(|e| errors::gallery(e.into()))?;
                Ok(proto::GalleryStatsResponse {
                    subjects: st.subjects,
                    face_templates: st.face_templates,
                    finger_templates: st.finger_templates,
                    indexed_face_templates: s.gallery.indexed_for(&tenant) as u64,
                    face_model_id: s.gallery.space().model_id.clone(),
                })
            })
            .await;
        self.finish(call, result).await
    }

    async fn start_duplicate_sweep(
        &self,
        req: Request<proto::StartDuplicateSweepRequest>,
    ) -> Result<Response<proto::Job>, Status> {
        let mut call = self.begin("StartDuplicateSweep", &req)?;
        let r = req.into_inner();
        let result = async {
            let (threshold, fmr) = threshold_at(&self.s, Scorer::Face, r.target_fmr)?;
            call.audit.threshold = Some(threshold);
            call.audit.target_fmr = Some(fmr);
            let max_pairs = if r.max_pairs == 0 {
                10_000
            } else {
                r.max_pairs.min(1_000_000)
            } as usize;
            let slot = self.s.jobs.claim()?;
            let job = proto::Job {
                job_id: uuid::Uuid::new_v4().to_string(),
                state: proto::JobState::Running as i32,
                started_at_ms: now_ms(),
                ..Default::default()
            };
            let entry = self.s.jobs.create(&call.principal.tenant, job.clone());
            let s = self.s.clone();
            let tenant = call.principal.tenant.clone();
            let audit = call.audit.clone();
            std::thread::Builder::new()
                .name("sinhtrac-sweep".into())
                .spawn(move || {
                    let _slot = slot;
                    let outcome =
                        s.gallery
                            .duplicate_sweep(&tenant, threshold, max_pairs, |f, n| {
                                entry.update(|j| {
                                    j.progress = f;
                                    j.pairs_found = n as u64;
                                });
                                true
                            });
                    let mut audit = AuditRecord {
                        operation: "DuplicateSweepFinished",
                        ts_ms: now_ms(),
                        ..audit
                    };
                    match outcome {
                        Ok((pairs, swept)) => {
                            audit.status = "OK".into();
                            audit.candidates = pairs
                                .iter()
                                .take(100)
                                .map(|p| (format!("{}~{}", p.subject_a, p.subject_b), p.score))
                                .collect();
                            let result = proto::DuplicateSweepResult {
                                job: None,
                                pairs: pairs
                                    .into_iter()
                                    .map(|p| proto::DuplicatePair {
                                        subject_a: p.subject_a,
                                        subject_b: p.subject_b,
                                        score: p.score,
                                    })
                                    .collect(),
                                threshold,
                                target_fmr: fmr,
                                model_id: s.gallery.space().model_id.clone(),
                                templates_swept: swept as u64,
                            };
                            let n = result.pairs.len() as u64;
                            entry.update(|j| j.pairs_found = n);
                            entry.finish(result, now_ms());
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "duplicate sweep failed");
                            audit.status = "INTERNAL".into();
                            audit.reason = Some(e.reason().into());
                            entry.update(|j| {
                                j.state = proto::JobState::Failed as i32;
                                j.error = e.to_string();
                                j.finished_at_ms = now_ms();
                            });
                        }
                    }
                    // Best effort from a plain thread: the writer thread does the I/O.
                    let log = s.audit.clone();
                    let rt = tokio::runtime::Builder::new_current_thread().build();
                    if let Ok(rt) = rt {
                        if let Err(e) = rt.block_on(log.record(&audit)) {
                            tracing::error!(error = %e, "sweep audit record not written");
                        }
                    }
                })
                .map_err(|e| {
                    tracing::error!(error = %e, "cannot start sweep thread");
                    status(
                        Code::Internal,
                        Reason::InternalError,
                        "cannot start the sweep",
                    )
                })?;
            Ok(job)
        }
        .await;
        self.finish(call, result).await
    }

    type WatchJobStream = JobStream;

    async fn watch_job(
        &self,
        req: Request<proto::WatchJobRequest>,
    ) -> Result<Response<Self::WatchJobStream>, Status> {
        let call = self.begin("WatchJob", &req)?;
        let r = req.into_inner();
        let result = self
            .s
            .jobs
            .get(&call.principal.tenant, &r.job_id)
            .map(|entry| {
                let mut rx = entry.state.subscribe();
                let (tx, out) = tokio::sync::mpsc::channel(16);
                tokio::spawn(async move {
                    loop {
                        let job = rx.borrow_and_update().clone();
                        let done = job.state != proto::JobState::Running as i32;
                        if tx.send(Ok(job)).await.is_err() || done {
                            break;
                        }
                        if rx.changed().await.is_err() {
                            break;
                        }
                    }
                });
                Box::pin(tokio_stream::wrappers::ReceiverStream::new(out)) as JobStream
            });
        self.finish(call, result).await
    }

    async fn get_job_result(
        &self,
        req: Request<proto::GetJobResultRequest>,
    ) -> Result<Response<proto::DuplicateSweepResult>, Status> {
        let call = self.begin("GetJobResult", &req)?;
        let r = req.into_inner();
        let result = self
            .s
            .jobs
            .get(&call.principal.tenant, &r.job_id)
            .and_then(|e| e.result());
        self.finish(call, result).await
    }
}
