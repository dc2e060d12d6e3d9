//! Prometheus metrics and the `/metrics` HTTP endpoint.

use std::net::SocketAddr;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The service's metrics.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Requests by RPC and final status code.
    pub requests: IntCounterVec,
    /// Request latency by RPC and status code, seconds.
    pub latency: HistogramVec,
    /// Engine stage latency (decode, extract, liveness, search, store), seconds.
    pub stages: HistogramVec,
    /// Templates in the in-memory index.
    pub gallery_templates: IntGauge,
    /// Requests admitted and not finished (running + waiting for a worker).
    pub in_flight: IntGauge,
    /// Requests waiting for a worker.
    pub queue_depth: IntGauge,
    /// Requests refused by load shedding, by RPC.
    pub shed: IntCounterVec,
}

fn buckets() -> Vec<f64> {
    vec![
        0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
    ]
}

impl Metrics {
    /// Register every metric in a fresh registry.
    pub fn new() -> prometheus::Result<Self> {
        let registry = Registry::new_custom(Some("sinhtrac".into()), None)?;
        let requests = IntCounterVec::new(
            Opts::new("requests_total", "gRPC requests by method and status code"),
            &["method", "code"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new("request_seconds", "gRPC request latency").buckets(buckets()),
            &["method", "code"],
        )?;
        let stages = HistogramVec::new(
            HistogramOpts::new("stage_seconds", "engine stage latency").buckets(buckets()),
            &["stage"],
        )?;
        let gallery_templates =
            IntGauge::new("gallery_templates", "face templates in the in-memory index")?;
        let in_flight = IntGauge::new("in_flight_requests", "admitted requests not finished")?;
        let queue_depth = IntGauge::new("queue_depth", "requests waiting for a worker")?;
        let shed = IntCounterVec::new(
            Opts::new("shed_total", "requests refused with RESOURCE_EXHAUSTED"),
            &["method"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(stages.clone()))?;
        registry.register(Box::new(gallery_templates.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        registry.register(Box::new(queue_depth.clone()))?;
        registry.register(Box::new(shed.clone()))?;
        Ok(Metrics {
            registry,
            requests,
            latency,
            stages,
            gallery_templates,
            in_flight,
            queue_depth,
            shed,
        })
    }

    /// Time an engine stage.
    pub fn stage(&self, stage: &str, seconds: f64) {
        self.stages.with_label_values(&[stage]).observe(seconds);
    }

    /// Record a finished request.
    pub fn finish(&self, method: &str, code: tonic::Code, seconds: f64) {
        let code = code_name(code);
        self.requests.with_label_values(&[method, code]).inc();
        self.latency
            .with_label_values(&[method, code])
            .observe(seconds);
    }

    /// The text exposition.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        out
    }

    /// Serve `GET /metrics` (HTTP/1.1, one response per connection) until the task is dropped.
    pub async fn serve(self, listener: TcpListener) {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                continue;
            };
            let me = self.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let n = match sock.read(&mut buf).await {
                    Ok(n) => n,
                    Err(_) => return,
                };
                let head = String::from_utf8_lossy(&buf[..n]);
                let (status, body, ctype) = if head.starts_with("GET /metrics") {
                    ("200 OK", me.render(), "text/plain; version=0.0.4")
                } else {
                    ("404 Not Found", b"not found\n".to_vec(), "text/plain")
                };
                let header = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(header.as_bytes()).await;
                let _ = sock.write_all(&body).await;
                let _ = sock.shutdown().await;
            });
        }
    }

    /// Bind the metrics address.
    pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
        TcpListener::bind(addr).await
    }
}

/// The canonical upper-case name of a gRPC code.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}
