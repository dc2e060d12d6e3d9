//! `sinhtrac serve`: run the gRPC service; `sinhtrac keys hash`: the hash to put in the config.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use sinhtrac_server::service::auth::hash_key;
use sinhtrac_server::service::config::{
    ApiKeyEntry, DuplicatePolicy, Role, ServerConfig, TlsConfig,
};

use super::GlobalArgs;

/// Options of `sinhtrac serve` (each overrides the config file; most also read `SINHTRAC_*`).
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML configuration file (see README, "Service configuration").
    #[arg(long, env = "SINHTRAC_CONFIG")]
    pub config: Option<PathBuf>,
    /// gRPC listen address (port 0: any free port).
    #[arg(long, env = "SINHTRAC_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Prometheus metrics listen address.
    #[arg(long, env = "SINHTRAC_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Disable the metrics endpoint.
    #[arg(long)]
    pub no_metrics: bool,
    /// Gallery database file.
    #[arg(long, env = "SINHTRAC_GALLERY")]
    pub gallery: Option<PathBuf>,
    /// Audit log file.
    #[arg(long, env = "SINHTRAC_AUDIT_LOG")]
    pub audit_log: Option<PathBuf>,
    /// Add an API key as TENANT:KEY (hashed at once; for demos and tests; production configs hold
    /// hashes). Append `:reader` for a read-only key.
    #[arg(long = "api-key", env = "SINHTRAC_API_KEYS", value_delimiter = ',')]
    pub api_keys: Vec<String>,
    /// Target false-match rate of decisions.
    #[arg(long, env = "SINHTRAC_TARGET_FMR")]
    pub target_fmr: Option<f64>,
    /// Target false-match rate of fingerprint decisions.
    #[arg(long, env = "SINHTRAC_FINGER_TARGET_FMR")]
    pub finger_target_fmr: Option<f64>,
    /// Fingerprint extractor: classical or leader.
    #[arg(long, env = "SINHTRAC_FINGER_EXTRACTOR")]
    pub finger_extractor: Option<String>,
    /// LEADER's detection threshold (0-1; default 0.45, the calibrated one).
    #[arg(long)]
    pub leader_quality: Option<f32>,
    /// Default duplicate policy on enrolment: reject, flag, allow.
    #[arg(long)]
    pub duplicate_policy: Option<String>,
    /// Worker threads for CPU-heavy requests (0 = CPU count).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Requests allowed to wait for a worker before RESOURCE_EXHAUSTED.
    #[arg(long)]
    pub queue_depth: Option<usize>,
    /// Deadline of a request whose caller sends no `grpc-timeout`, milliseconds.
    #[arg(long)]
    pub default_deadline_ms: Option<u64>,
    /// TLS certificate (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Seconds to drain in-flight requests at shutdown.
    #[arg(long)]
    pub shutdown_grace_s: Option<u64>,
    /// Refuse images with several faces (MULTIPLE_FACES) instead of using the largest.
    #[arg(long)]
    pub strict_faces: bool,
}

/// `sinhtrac keys ...`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print the sha256 of an API key, for the `api_keys` table of the config.
    Hash {
        /// The key (read from stdin when absent, so it stays out of shell history).
        key: Option<String>,
    },
}

fn parse_key(spec: &str) -> anyhow::Result<ApiKeyEntry> {
    let mut parts = spec.splitn(3, ':');
    let (Some(tenant), Some(key)) = (parts.next(), parts.next()) else {
        anyhow::bail!("--api-key wants TENANT:KEY[:reader]");
    };
    let role = match parts.next() {
        None | Some("operator") => Role::Operator,
        Some("reader") => Role::Reader,
        Some(other) => anyhow::bail!("unknown key role {other:?} (operator or reader)"),
    };
    anyhow::ensure!(!key.is_empty(), "empty API key for tenant {tenant:?}");
    Ok(ApiKeyEntry {
        tenant: tenant.to_string(),
        sha256: hash_key(key),
        role,
    })
}

/// The configuration these flags and the file describe.
pub fn config(args: &ServeArgs) -> anyhow::Result<ServerConfig> {
    let mut c = match &args.config {
        Some(p) => ServerConfig::from_file(p)?,
        None => ServerConfig::default(),
    };
    if let Some(v) = args.listen {
        c.listen = v;
    }
    if let Some(v) = args.metrics_listen {
        c.metrics_listen = Some(v);
    }
    if args.no_metrics {
        c.metrics_listen = None;
    }
    if let Some(v) = &args.gallery {
        c.gallery = v.clone();
    }
    if let Some(v) = &args.audit_log {
        c.audit_log = v.clone();
    }
    for spec in &args.api_keys {
        c.api_keys.push(parse_key(spec)?);
    }
    if let Some(v) = args.target_fmr {
        c.target_fmr = v;
    }
    if let Some(v) = args.finger_target_fmr {
        c.finger_target_fmr = v;
    }
    if let Some(v) = &args.finger_extractor {
        c.finger_extractor = v.clone();
    }
    if let Some(v) = args.leader_quality {
        c.leader_quality = Some(v);
    }
    if let Some(v) = &args.duplicate_policy {
        c.duplicate_policy = match v.as_str() {
            "reject" => DuplicatePolicy::Reject,
            "flag" => DuplicatePolicy::Flag,
            "allow" => DuplicatePolicy::Allow,
            other => anyhow::bail!("--duplicate-policy {other:?}: reject, flag or allow"),
        };
    }
    if let Some(v) = args.workers {
        c.workers = v;
    }
    if let Some(v) = args.queue_depth {
        c.queue_depth = v;
    }
    if let Some(v) = args.default_deadline_ms {
        c.default_deadline_ms = v;
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        c.tls = Some(TlsConfig {
            cert: cert.clone(),
            key: key.clone(),
        });
    }
    if let Some(v) = args.shutdown_grace_s {
        c.shutdown_grace_s = v;
    }
    if args.strict_faces {
        c.multi_face = sinhtrac_engine::face::MultiFacePolicy::Strict;
    }
    c.validate()?;
    Ok(c)
}

pub fn run(global: &GlobalArgs, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = config(&args)?;
    eprintln!("sinhtrac serve: configuration\n{}", config.to_toml());
    let face = global.face_config();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sinhtrac-io")
        .build()?;
    runtime.block_on(sinhtrac_server::service::serve(
        config,
        face,
        sinhtrac_server::service::shutdown_signal(),
        |bound| {
            // Scripts and tests read this line to find the port.
            println!("sinhtrac: listening on {}", bound.grpc);
            if let Some(m) = bound.metrics {
                println!("sinhtrac: metrics on http://{m}/metrics");
            }
            let _ = std::io::stdout().flush();
        },
    ))?;
    Ok(ExitCode::SUCCESS)
}

pub fn run_keys(cmd: KeysCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        KeysCommand::Hash { key } => {
            let key = match key {
                Some(k) => k,
                None => {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            anyhow::ensure!(!key.is_empty(), "empty key");
            println!("{}", hash_key(&key));
            Ok(ExitCode::SUCCESS)
        }
    }
}
