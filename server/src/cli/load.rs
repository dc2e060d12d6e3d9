//! `sinhtrac load`: a bounded load generator against a running server: N concurrent clients calling
//! one RPC for S seconds (or a number of calls); prints QPS, latency percentiles and error counts.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use sinhtrac_server::proto;
use sinhtrac_server::service::errors::reason_of;

use super::client::{biometric, connect, ConnectArgs};

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq)]
pub enum LoadRpc {
    /// Verify a face image against an enrolled subject.
    Verify,
    /// Identify a template against the gallery.
    Identify,
    /// Compare two images.
    Compare,
    /// Liveness of an image.
    Liveness,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq)]
pub enum LoadMode {
    /// The server's default.
    Default,
    /// Exhaustive f32 scan.
    Exact,
    /// int8 scan with exact re-rank.
    Approximate,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Which RPC.
    #[arg(long, value_enum)]
    pub rpc: LoadRpc,
    /// Concurrent clients (each its own connection).
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// Seconds to run (at most 600).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Stop after this many calls in total.
    #[arg(long)]
    pub max_calls: Option<u64>,
    /// Probe face image (default: an LFW image from the shared datasets).
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// Subject to verify against (enrolled from --image first, replacing it).
    #[arg(long, default_value = "load-probe-subject")]
    pub subject: String,
    /// Identify: send the probe as an image instead of a template.
    #[arg(long)]
    pub identify_with_image: bool,
    /// Identify: search mode (default: the server's choice by gallery size).
    #[arg(long, value_enum, default_value = "default")]
    pub mode: LoadMode,
    /// Write the figures as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// The figures of one run.
#[derive(Debug, serde::Serialize)]
pub struct LoadReport {
    pub rpc: String,
    pub mode: String,
    pub concurrency: usize,
    pub seconds: f64,
    pub calls: u64,
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
    pub qps: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn prepare(args: &LoadArgs, image: &std::path::Path) -> anyhow::Result<proto::Biometric> {
    let mut c = connect(&args.connect).await?;
    let probe = biometric(image)?;
    match args.rpc {
        LoadRpc::Verify => {
            let req = |replace| proto::EnrollRequest {
                subject_id: args.subject.clone(),
                biometrics: vec![probe.clone()],
                duplicate_policy: proto::DuplicatePolicy::Allow as i32,
                replace,
                client_reference: "sinhtrac-load setup".into(),
                ..Default::default()
            };
            // Enrol the probe's subject, or refresh it when a previous run left it there.
            if let Err(s) = c.enroll(req(false)).await {
                if s.code() != tonic::Code::AlreadyExists {
                    return Err(s.into());
                }
                c.enroll(req(true)).await?;
            }
            Ok(probe)
        }
        LoadRpc::Identify if !args.identify_with_image => {
            let r = c
                .compare(proto::CompareRequest {
                    a: Some(probe.clone()),
                    b: Some(probe),
                    ..Default::default()
                })
                .await?
                .into_inner();
            Ok(proto::Biometric {
                source: Some(proto::biometric::Source::Template(r.template_a)),
                ..Default::default()
            })
        }
        _ => Ok(probe),
    }
}

async fn run_async(args: LoadArgs) -> anyhow::Result<LoadReport> {
    anyhow::ensure!(
        (1..=1024).contains(&args.concurrency),
        "--concurrency 1-1024"
    );
    anyhow::ensure!(
        args.duration > 0.0 && args.duration <= 600.0,
        "--duration 0-600 s"
    );
    let image = args.image.clone().unwrap_or_else(|| {
        sinhtrac_engine::paths::datasets_dir()
            .join("lfw/images/Aaron_Peirsol/Aaron_Peirsol_0001.jpg")
    });
    // Verify replaces the subject so repeated runs work; a fresh gallery needs the first enrolment.
    let probe = prepare(&args, &image).await?;
    let budget = args.max_calls.unwrap_or(u64::MAX);
    let issued = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let start = Instant::now();
    let stop_at = start + Duration::from_secs_f64(args.duration);
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let mut c = connect(&args.connect).await?;
        let probe = probe.clone();
        let (rpc, subject, mode) = (args.rpc, args.subject.clone(), args.mode);
        let issued = issued.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors: BTreeMap<String, u64> = BTreeMap::new();
            while Instant::now() < stop_at
                && issued.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < budget
            {
                let t = Instant::now();
                let r = match rpc {
                    LoadRpc::Verify => c
                        .verify(proto::VerifyRequest {
                            subject_id: subject.clone(),
                            probe: Some(probe.clone()),
                            ..Default::default()
                        })
                        .await
                        .map(|_| ()),
                    LoadRpc::Identify => c
                        .identify(proto::IdentifyRequest {
                            probe: Some(probe.clone()),
                            top_k: 10,
                            mode: match mode {
                                LoadMode::Default => proto::SearchMode::Unspecified,
                                LoadMode::Exact => proto::SearchMode::Exact,
                                LoadMode::Approximate => proto::SearchMode::Approximate,
                            } as i32,
                            ..Default::default()
                        })
                        .await
                        .map(|_| ()),
                    LoadRpc::Compare => c
                        .compare(proto::CompareRequest {
                            a: Some(probe.clone()),
                            b: Some(probe.clone()),
                            ..Default::default()
                        })
                        .await
                        .map(|_| ()),
                    LoadRpc::Liveness => {
                        let image = match &probe.source {
                            Some(proto::biometric::Source::FaceImage(i)) => Some(i.clone()),
                            _ => None,
                        };
                        c.check_liveness(proto::CheckLivenessRequest {
                            image,
                            ..Default::default()
                        })
                        .await
                        .map(|_| ())
                    }
                };
                let ms = t.elapsed().as_secs_f64() * 1e3;
                match r {
                    Ok(()) => lat.push(ms),
                    Err(s) => {
                        let key = format!("{:?}/{}", s.code(), reason_of(&s).unwrap_or_default());
                        *errors.entry(key).or_default() += 1;
                    }
                }
            }
            (lat, errors)
        }));
    }
    let mut lat = Vec::new();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    for t in tasks {
        let (l, e) = t.await?;
        lat.extend(l);
        for (k, v) in e {
            *errors.entry(k).or_default() += v;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let ok = lat.len() as u64;
    let failed: u64 = errors.values().sum();
    Ok(LoadReport {
        rpc: format!("{:?}", args.rpc).to_lowercase(),
        mode: format!("{:?}", args.mode).to_lowercase(),
        concurrency: args.concurrency,
        seconds,
        calls: ok + failed,
        ok,
        errors,
        qps: ok as f64 / seconds,
        p50_ms: percentile(&lat, 0.50),
        p95_ms: percentile(&lat, 0.95),
        p99_ms: percentile(&lat, 0.99),
        max_ms: lat.last().copied().unwrap_or(0.0),
    })
}

pub fn run(args: LoadArgs) -> anyhow::Result<ExitCode> {
    let json = args.json.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(run_async(args))?;
    println!(
        "rpc={} mode={} concurrency={} calls={} ok={} errors={:?} qps={:.1} p50={:.2}ms p95={:.2}ms p99={:.2}ms max={:.2}ms",
        report.rpc,
        report.mode,
        report.concurrency,
        report.calls,
        report.ok,
        report.errors,
        report.qps,
        report.p50_ms,
        report.p95_ms,
        report.p99_ms,
        report.max_ms
    );
    if let Some(path) = json {
        super::write_json(&path, &report)?;
    }
    Ok(ExitCode::SUCCESS)
}
