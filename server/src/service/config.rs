//! Service configuration: a TOML file, then `SINHTRAC_*` environment variables and flags on top (the
//! command line applies those). Printed at start with key hashes only, never keys or certificates.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Every RPC of its tenant.
    #[default]
    Operator,
    /// Verify, Compare, Identify, CheckLiveness, GetSubject, ListSubjects, GalleryStats, jobs: no
    /// enrolment or deletion.
    Reader,
}

/// One API key: the tenant it opens and the sha256 (hex) of the key. The key itself is never stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyEntry {
    /// Tenant (gallery) the key is bound to.
    pub tenant: String,
    /// Lower-case hex sha256 of the key (`sinhtrac keys hash <key>`).
    pub sha256: String,
    /// What the key may do.
    #[serde(default)]
    pub role: Role,
}

/// Default duplicate-check policy on enrolment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DuplicatePolicy {
    /// Refuse the enrolment.
    #[default]
    Reject,
    /// Enrol and report the matches.
    Flag,
    /// Enrol without checking.
    Allow,
}

/// TLS files (PEM).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsConfig {
    /// Certificate chain.
    pub cert: PathBuf,
    /// Private key.
    pub key: PathBuf,
}

/// Everything the service reads at start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// gRPC address (port 0: any free port, printed at start).
    pub listen: SocketAddr,
    /// Prometheus `/metrics` address; `None` disables it.
    pub metrics_listen: Option<SocketAddr>,
    /// Gallery database file (SQLite, WAL).
    pub gallery: PathBuf,
    /// Append-only audit log (JSON lines).
    pub audit_log: PathBuf,
    /// API keys.
    pub api_keys: Vec<ApiKeyEntry>,
    /// False-match rate decisions are made at unless a request names another calibrated point.
    pub target_fmr: f64,
    /// The same for fingerprint decisions (the FVC calibration supports 1e-2 and 1e-3).
    pub finger_target_fmr: f64,
    /// Fingerprint extractor: `classical` (~50 ms per image) or `leader` (1-4 s, far more accurate).
    /// Every template of a gallery comes from one of them: switching means re-enrolling.
    pub finger_extractor: String,
    /// LEADER's detection threshold (`None`: the manifest's 0.55). The shipped LEADER calibration is for
    /// 0.45, the measured best on FVC, hence the default.
    pub leader_quality: Option<f32>,
    /// Enrolment duplicate check when the request leaves it unspecified.
    pub duplicate_policy: DuplicatePolicy,
    /// CPU-heavy requests (image decoding, inference, scans) running at once; 0 = CPU count.
    pub workers: usize,
    /// Requests admitted beyond the running ones (waiting for a worker); more are refused with
    /// RESOURCE_EXHAUSTED instead of queueing without bound.
    pub queue_depth: usize,
    /// Largest request message accepted, bytes.
    pub max_message_bytes: usize,
    /// Deadline applied when the caller sends none, milliseconds.
    pub default_deadline_ms: u64,
    /// Keep an int8 copy of the gallery for approximate identification.
    pub approximate_tier: bool,
    /// Identify without a mode scans exactly while the tenant's gallery has at most this many
    /// templates, and approximately (int8 scan, exact re-rank) above it.
    pub exact_search_limit: usize,
    /// Optional TLS.
    pub tls: Option<TlsConfig>,
    /// Seconds to let in-flight requests finish at shutdown.
    pub shutdown_grace_s: u64,
    /// Images with several faces: use the largest (default), the one nearest the centre (central: a
    /// kiosk camera that frames the claimant) or refuse with MULTIPLE_FACES (strict).
    pub multi_face: sinhtrac_engine::face::MultiFacePolicy,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9464))),
            gallery: PathBuf::from("var/gallery.db"),
            audit_log: PathBuf::from("var/audit.jsonl"),
            api_keys: Vec::new(),
            target_fmr: 1e-4,
            finger_target_fmr: 1e-3,
            finger_extractor: "classical".into(),
            leader_quality: Some(0.45),
            duplicate_policy: DuplicatePolicy::Reject,
            workers: 0,
            queue_depth: 64,
            max_message_bytes: 16 << 20,
            default_deadline_ms: 30_000,
            approximate_tier: true,
            exact_search_limit: 250_000,
            tls: None,
            shutdown_grace_s: 30,
            multi_face: sinhtrac_engine::face::MultiFacePolicy::Largest,
        }
    }
}

impl ServerConfig {
    /// Read a TOML file.
    pub fn from_file(path: &std::path::Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading config {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("config {}: {e}", path.display()))
    }

    /// Worker count after resolving 0 to the CPU count.
    pub fn effective_workers(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        }
    }

    /// Check values that would otherwise fail later, with a message naming the field.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.target_fmr > 0.0 && self.target_fmr < 1.0,
            "target_fmr must be in (0, 1)"
        );
        anyhow::ensure!(
            self.finger_target_fmr > 0.0 && self.finger_target_fmr < 1.0,
            "finger_target_fmr must be in (0, 1)"
        );
        anyhow::ensure!(
            matches!(self.finger_extractor.as_str(), "classical" | "leader"),
            "finger_extractor must be classical or leader"
        );
        anyhow::ensure!(
            self.leader_quality.is_none_or(|q| (0.0..=1.0).contains(&q)),
            "leader_quality must be in [0, 1]"
        );
        anyhow::ensure!(
            self.default_deadline_ms > 0,
            "default_deadline_ms must be positive"
        );
        anyhow::ensure!(
            self.max_message_bytes >= 1024,
            "max_message_bytes is too small"
        );
        for k in &self.api_keys {
            anyhow::ensure!(
                k.sha256.len() == 64 && k.sha256.bytes().all(|b| b.is_ascii_hexdigit()),
                "api key of tenant {:?}: sha256 must be 64 hex digits (use `sinhtrac keys hash`)",
                k.tenant
            );
            sinhtrac_store::validate_tenant(&k.tenant)
                .map_err(|e| anyhow::anyhow!("api key tenant {:?}: {e}", k.tenant))?;
        }
        anyhow::ensure!(
            !self.api_keys.is_empty(),
            "no api_keys configured: every call needs a key (see README, `sinhtrac keys hash`)"
        );
        Ok(())
    }

    /// The configuration as TOML, for the start-up log (key hashes are not secrets).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("<unprintable config: {e}>"))
    }
}
