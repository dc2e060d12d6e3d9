//! The gRPC service: `sinhtrac.v1.Biometrics`, gRPC health checking and server reflection, with API-key
//! authentication, admission control, an audit log and Prometheus metrics.
//!
//! One module per concern: [`config`] (file/env/flags), [`auth`] (keys → tenant), [`limits`]
//! (workers, load shedding, deadlines), [`audit`] (append-only, durable), [`metrics`], [`errors`]
//! (engine errors → statuses with reasons), [`probe`] (image/template → vector), [`jobs`] (duplicate
//! sweep), [`handlers`] (the RPCs).

pub mod audit;
pub mod auth;
pub mod batcher;
pub mod config;
pub mod errors;
pub mod fusion;
pub mod handlers;
pub mod jobs;
pub mod limits;
pub mod metrics;
pub mod probe;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sinhtrac_engine::face::{FaceConfig, FaceEngine};
use sinhtrac_engine::finger::FingerEngine;
use sinhtrac_engine::fusion::FusionModel;
use sinhtrac_engine::gallery::{EmbeddingSpace, Gallery, GalleryOptions};
use tokio::net::TcpListener;
use tonic::transport::{Identity, Server, ServerTlsConfig};

use crate::proto;
use config::ServerConfig;
use handlers::{BiometricsService, Shared};

/// Addresses the service bound (port 0 resolved).
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    /// gRPC.
    pub grpc: SocketAddr,
    /// Prometheus metrics.
    pub metrics: Option<SocketAddr>,
}

/// Load the engine and the gallery, bind, serve until `shutdown` resolves, then drain in-flight
/// requests (up to the configured grace period), flush the audit log and close the store.
/// `on_bound` is told the addresses once listening (the command line prints them).
pub async fn serve(
    config: ServerConfig,
    face: FaceConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_bound: impl FnOnce(Bound),
) -> anyhow::Result<()> {
    config.validate()?;
    let mut face = face;
    face.multi_face = config.multi_face;
    let engine = tokio::task::spawn_blocking(move || FaceEngine::load(face))
        .await?
        .context("loading the face models")?;
    let space = EmbeddingSpace {
        model_id: engine.embedder.model_id().to_string(),
        model_sha256: engine.embedder.model_sha256(),
        dim: engine.embedder.dim(),
    };
    // Refuse to start without a calibration: every decision must state its false-match rate.
    engine
        .decide(0.0, Some(config.target_fmr))
        .context("the embedder has no calibration for the configured target_fmr")?;
    let fingers = match config.finger_extractor.as_str() {
        "leader" => FingerEngine::leader(&engine.config().runtime, config.leader_quality)
            .context("loading the LEADER fingerprint model")?,
        _ => FingerEngine::classical(),
    };
    let fusion = load_fusion(&engine, &fingers)?;
    let finger_space = fingers.space().clone();
    engine
        .calibrations
        .decide(
            &finger_space.model_id,
            &finger_space.sha256_hex(),
            0.0,
            config.finger_target_fmr,
        )
        .context("the fingerprint pipeline has no calibration for finger_target_fmr")?;
    if let Some(dir) = config
        .gallery
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the gallery folder {}", dir.display()))?;
    }
    let gallery_path = config.gallery.clone();
    let options = GalleryOptions {
        approximate_tier: config.approximate_tier,
        fingers: Some(finger_space),
        ..GalleryOptions::default()
    };
    let gallery = tokio::task::spawn_blocking(move || Gallery::open(&gallery_path, space, options))
        .await?
        .with_context(|| format!("opening the gallery {}", config.gallery.display()))?;
    let load = gallery.load_report();
    tracing::info!(
        templates = load.templates,
        finger_templates = load.finger_templates,
        seconds = load.seconds,
        "gallery indexed"
    );
    let metrics = metrics::Metrics::new()?;
    metrics.gallery_templates.set(gallery.indexed() as i64);
    let (audit, audit_writer) = audit::AuditLog::open(&config.audit_log)
        .with_context(|| format!("opening the audit log {}", config.audit_log.display()))?;
    let limits = limits::Limits::new(
        config.effective_workers(),
        config.queue_depth,
        Duration::from_millis(config.default_deadline_ms),
        metrics.clone(),
    );
    let keys = auth::ApiKeys::new(&config.api_keys);
    let gallery = Arc::new(gallery);
    let (search, search_thread) =
        batcher::SearchBatcher::start(gallery.clone(), 4 * batcher::MAX_BATCH)?;
    let shared = Arc::new(Shared {
        engine: Arc::new(engine),
        fingers: Arc::new(fingers),
        fusion,
        gallery,
        search,
        audit,
        metrics: metrics.clone(),
        limits,
        config: config.clone(),
        jobs: jobs::Jobs::default(),
    });

    let service =
        proto::biometrics_server::BiometricsServer::new(BiometricsService::new(shared.clone()))
            .max_decoding_message_size(config.max_message_bytes)
            .max_encoding_message_size(config.max_message_bytes);
    let service = tonic::service::interceptor::InterceptedService::new(service, keys.interceptor());
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status(
            "sinhtrac.v1.Biometrics",
            tonic_health::ServingStatus::Serving,
        )
        .await;
    health
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;

    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let grpc = listener.local_addr()?;
    let metrics_addr = match config.metrics_listen {
        Some(addr) => {
            let l = metrics::Metrics::bind(addr)
                .await
                .with_context(|| format!("binding the metrics address {addr}"))?;
            let bound = l.local_addr()?;
            tokio::spawn(metrics.clone().serve(l));
            Some(bound)
        }
        None => None,
    };

    let mut builder = Server::builder();
    if let Some(tls) = &config.tls {
        let cert = std::fs::read(&tls.cert)
            .with_context(|| format!("reading the TLS certificate {}", tls.cert.display()))?;
        let key = std::fs::read(&tls.key)
            .with_context(|| format!("reading the TLS key {}", tls.key.display()))?;
        builder =
            builder.tls_config(ServerTlsConfig::new().identity(Identity::from_pem(cert, key)))?;
    }
    let router = builder
        .add_service(health_service)
        .add_service(reflection)
        .add_service(service);

    on_bound(Bound {
        grpc,
        metrics: metrics_addr,
    });

    let stopping = Arc::new(tokio::sync::Notify::new());
    let notify = stopping.clone();
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: draining in-flight requests");
        health
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
        notify.notify_one();
    };
    let server = router.serve_with_incoming_shutdown(
        tokio_stream::wrappers::TcpListenerStream::new(listener),
        signal,
    );
    let grace = Duration::from_secs(config.shutdown_grace_s);
    tokio::select! {
        r = server => r.context("gRPC server")?,
        _ = async { stopping.notified().await; tokio::time::sleep(grace).await } => {
            tracing::warn!(grace_s = config.shutdown_grace_s, "requests still running after the grace period; stopping anyway");
        }
    }

    // Drained: flush the audit log and close the store (checkpoint). Work still running (a sweep) keeps
    // them open; every acknowledged write and audit record is already durable, so exiting is safe.
    match Arc::try_unwrap(shared) {
        Ok(shared) => {
            let Shared {
                gallery,
                audit,
                search,
                ..
            } = shared;
            drop(audit);
            audit_writer.finish();
            drop(search);
            let _ = search_thread.join();
            match Arc::try_unwrap(gallery) {
                Ok(g) => g.close().context("closing the gallery")?,
                Err(_) => tracing::warn!("gallery still in use; SQLite recovers it at next start"),
            }
        }
        Err(_) => tracing::warn!(
            "work still running at exit (a duplicate sweep); exiting without waiting"
        ),
    }
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// The installed fusion model for the served face model and fingerprint pipeline, if any. A model
/// learned on other pipelines' scores would misjudge these: it is not used (fused Verify then answers
/// MODEL_UNCALIBRATED) and the log says why.
fn load_fusion(engine: &FaceEngine, fingers: &FingerEngine) -> anyhow::Result<Option<FusionModel>> {
    let finger_model = &fingers.space().model_id;
    let extractor = finger_model.strip_prefix("finger-").unwrap_or(finger_model);
    let path = FusionModel::path_for(engine.embedder.model_id(), extractor);
    if !path.is_file() {
        tracing::warn!(path = %path.display(), "no fusion model: fused verification disabled");
        return Ok(None);
    }
    // A fusion file that is there but does not verify is refused, as a bad calibration file is.
    let model =
        FusionModel::load(&path).with_context(|| format!("fusion model {}", path.display()))?;
    let p = &model.provenance;
    let face_ok = p.face_model_id == engine.embedder.model_id()
        && p.face_model_sha256 == engine.embedder.model_sha256_hex();
    // The finger scores must come from the served finger space: extractor, its settings (LEADER's
    // detection threshold) and matcher, as the finger calibration is checked.
    let finger_ok = format!("finger-{}", p.finger_extractor) == fingers.space().model_id
        && p.finger_space_sha256.as_deref() == Some(fingers.space().sha256_hex().as_str());
    if face_ok && finger_ok {
        Ok(Some(model))
    } else {
        tracing::warn!(
            path = %path.display(),
            face = %p.face_model_id,
            finger = %p.finger_extractor,
            finger_space = p.finger_space_sha256.as_deref().unwrap_or("unrecorded"),
            "fusion model is for other pipelines: fused verification disabled"
        );
        Ok(None)
    }
}
