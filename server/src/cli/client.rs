//! `sinhtrac client ...`: call the service from the command line (one subcommand per RPC).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use sinhtrac_server::proto::biometrics_client::BiometricsClient;
use sinhtrac_server::proto::{self, biometric::Source};
use sinhtrac_server::service::errors::reason_of;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};
use tonic::{Request, Status};

/// Connection options shared by `client` and `load`.
#[derive(Debug, Args, Clone)]
pub struct ConnectArgs {
    /// Server address.
    #[arg(long, env = "SINHTRAC_ADDR", default_value = "http://127.0.0.1:50051")]
    pub addr: String,
    /// API key (sent as `x-api-key`).
    #[arg(long, env = "SINHTRAC_API_KEY")]
    pub api_key: String,
    /// CA certificate (PEM) to trust for an https:// address.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Per-call deadline, milliseconds.
    #[arg(long, default_value_t = 30_000)]
    pub timeout_ms: u64,
}

type KeyInterceptor = Box<dyn FnMut(Request<()>) -> Result<Request<()>, Status> + Send + Sync>;
/// A client that sends the API key on every call.
pub type Client = BiometricsClient<InterceptedService<Channel, KeyInterceptor>>;

/// Connect and attach the key.
pub async fn connect(args: &ConnectArgs) -> anyhow::Result<Client> {
    let mut endpoint = Channel::from_shared(args.addr.clone())?
        .timeout(Duration::from_millis(args.timeout_ms))
        .connect_timeout(Duration::from_secs(10));
    if let Some(ca) = &args.ca {
        let pem = std::fs::read(ca)?;
        endpoint = endpoint.tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(pem))
                .domain_name("localhost"),
        )?;
    }
    let channel = endpoint.connect().await?;
    let key: MetadataValue<_> = args
        .api_key
        .parse()
        .map_err(|_| anyhow::anyhow!("the API key is not a valid header value"))?;
    let interceptor: KeyInterceptor = Box::new(move |mut req: Request<()>| {
        req.metadata_mut().insert("x-api-key", key.clone());
        Ok(req)
    });
    Ok(BiometricsClient::with_interceptor(channel, interceptor)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20))
}

/// A request biometric from a command-line argument: a face image, a template file (`STPL` bytes),
/// or a fingerprint image or finger template written `finger:POSITION:PATH` (ISO/IEC 19794-2
/// position 0-10, 500 dpi), e.g. `finger:2:101_1.tif` for a right index finger.
pub fn biometric(arg: &Path) -> anyhow::Result<proto::Biometric> {
    let text = arg.to_string_lossy();
    let finger = text.strip_prefix("finger:").map(|rest| {
        let (position, path) = rest.split_once(':').unwrap_or(("0", rest));
        (position.parse::<u32>(), PathBuf::from(path))
    });
    let path = match &finger {
        Some((_, p)) => p.as_path(),
        None => arg,
    };
    let data =
        std::fs::read(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    let is_finger = finger.is_some();
    let position = match finger {
        Some((position, _)) => {
            position.map_err(|e| anyhow::anyhow!("finger position in {text}: {e}"))?
        }
        None => 0,
    };
    let source = match (is_finger, data.starts_with(b"STPL")) {
        (_, true) => Source::Template(data),
        (true, false) => Source::FingerImage(proto::FingerImage {
            data,
            position,
            dpi: 500,
        }),
        (false, false) => Source::FaceImage(proto::Image { data }),
    };
    Ok(proto::Biometric {
        source: Some(source),
        finger_position: position,
    })
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Enrol a subject from face images, templates or fingerprints (`finger:POSITION:PATH`).
    Enroll {
        subject_id: String,
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// reject, flag or allow (default: the server's).
        #[arg(long)]
        duplicates: Option<String>,
        /// Replace an existing subject.
        #[arg(long)]
        replace: bool,
    },
    /// 1:1 verification of a probe against an enrolled subject.
    Verify {
        subject_id: String,
        probe: PathBuf,
        /// More captures of the claimant (face images or `finger:POSITION:PATH`): the decision is
        /// then made on the fused score.
        #[arg(long = "also")]
        also: Vec<PathBuf>,
        #[arg(long, default_value_t = 0.0)]
        fmr: f64,
        #[arg(long)]
        liveness: bool,
    },
    /// Compare two images/templates (no gallery).
    Compare {
        a: PathBuf,
        b: PathBuf,
        #[arg(long, default_value_t = 0.0)]
        fmr: f64,
        #[arg(long)]
        liveness: bool,
        /// Write the template of `a` here.
        #[arg(long)]
        save_template: Option<PathBuf>,
    },
    /// 1:N identification.
    Identify {
        probe: PathBuf,
        /// More captures of the person sought (a face image, `finger:POSITION:PATH`): each
        /// modality shortlists, the shortlisted subjects are decided on the fused score.
        #[arg(long = "also")]
        also: Vec<PathBuf>,
        #[arg(long, default_value_t = 10)]
        top_k: u32,
        #[arg(long, default_value_t = 0.0)]
        fmr: f64,
        #[arg(long)]
        approximate: bool,
    },
    /// Passive liveness of a face image.
    Liveness { image: PathBuf },
    /// Delete a subject.
    Delete { subject_id: String },
    /// Show a subject.
    Get { subject_id: String },
    /// List subjects.
    List {
        #[arg(long, default_value_t = 100)]
        page_size: u32,
        #[arg(long, default_value = "")]
        page_token: String,
    },
    /// Gallery counts.
    Stats,
    /// Bulk enrolment (EnrollBatch) from a folder with one sub-folder of images per subject (LFW
    /// layout): the sub-folder name is the subject id, its first image (sorted) is enrolled.
    EnrollDir {
        dir: PathBuf,
        /// Enrol at most this many subjects (sorted by name).
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Only sub-folders with at least this many images (so others remain as probes).
        #[arg(long, default_value_t = 1)]
        min_images: usize,
        /// Prefix of the subject ids.
        #[arg(long, default_value = "")]
        prefix: String,
        /// reject, flag or allow (default: the server's).
        #[arg(long)]
        duplicates: Option<String>,
    },
    /// Run a duplicate sweep and print the pairs.
    Sweep {
        #[arg(long, default_value_t = 0.0)]
        fmr: f64,
        #[arg(long, default_value_t = 100)]
        max_pairs: u32,
    },
}

#[derive(Debug, Args)]
pub struct ClientArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(subcommand)]
    pub command: ClientCommand,
}

fn show(v: &impl std::fmt::Debug) {
    println!("{v:#?}");
}

fn policy(p: Option<&str>) -> anyhow::Result<i32> {
    Ok(match p {
        None => proto::DuplicatePolicy::Unspecified,
        Some("reject") => proto::DuplicatePolicy::Reject,
        Some("flag") => proto::DuplicatePolicy::Flag,
        Some("allow") => proto::DuplicatePolicy::Allow,
        Some(o) => anyhow::bail!("--duplicates {o:?}: reject, flag or allow"),
    } as i32)
}

async fn call(args: ClientArgs) -> anyhow::Result<()> {
    let mut c = connect(&args.connect).await?;
    match args.command {
        ClientCommand::Enroll {
            subject_id,
            images,
            duplicates,
            replace,
        } => {
            let biometrics = images
                .iter()
                .map(|p| biometric(p))
                .collect::<anyhow::Result<_>>()?;
            let mut r = c
                .enroll(proto::EnrollRequest {
                    subject_id,
                    biometrics,
                    duplicate_policy: policy(duplicates.as_deref())?,
                    replace,
                    ..Default::default()
                })
                .await?
                .into_inner();
            r.templates.iter_mut().for_each(|t| t.template.clear());
            show(&r);
        }
        ClientCommand::Verify {
            subject_id,
            probe,
            also,
            fmr,
            liveness,
        } => show(
            &c.verify(proto::VerifyRequest {
                subject_id,
                probe: Some(biometric(&probe)?),
                target_fmr: fmr,
                check_liveness: liveness,
                additional_probes: also
                    .iter()
                    .map(|p| biometric(p))
                    .collect::<anyhow::Result<_>>()?,
                ..Default::default()
            })
            .await?
            .into_inner(),
        ),
        ClientCommand::Compare {
            a,
            b,
            fmr,
            liveness,
            save_template,
        } => {
            let mut r = c
                .compare(proto::CompareRequest {
                    a: Some(biometric(&a)?),
                    b: Some(biometric(&b)?),
                    target_fmr: fmr,
                    check_liveness_a: liveness,
                    ..Default::default()
                })
                .await?
                .into_inner();
            if let Some(path) = save_template {
                std::fs::write(&path, &r.template_a)?;
            }
            r.template_a.clear();
            r.template_b.clear();
            show(&r);
        }
        ClientCommand::Identify {
            probe,
            also,
            top_k,
            fmr,
            approximate,
        } => show(
            &c.identify(proto::IdentifyRequest {
                probe: Some(biometric(&probe)?),
                additional_probes: also
                    .iter()
                    .map(|p| biometric(p))
                    .collect::<anyhow::Result<_>>()?,
                top_k,
                target_fmr: fmr,
                mode: if approximate {
                    proto::SearchMode::Approximate
                } else {
                    proto::SearchMode::Exact
                } as i32,
                ..Default::default()
            })
            .await?
            .into_inner(),
        ),
        ClientCommand::Liveness { image } => show(
            &c.check_liveness(proto::CheckLivenessRequest {
                image: Some(proto::Image {
                    data: std::fs::read(&image)?,
                }),
                ..Default::default()
            })
            .await?
            .into_inner(),
        ),
        ClientCommand::Delete { subject_id } => show(
            &c.delete_subject(proto::DeleteSubjectRequest {
                subject_id,
                ..Default::default()
            })
            .await?
            .into_inner(),
        ),
        ClientCommand::Get { subject_id } => show(
            &c.get_subject(proto::GetSubjectRequest { subject_id })
                .await?
                .into_inner(),
        ),
        ClientCommand::List {
            page_size,
            page_token,
        } => show(
            &c.list_subjects(proto::ListSubjectsRequest {
                page_size,
                page_token,
            })
            .await?
            .into_inner(),
        ),
        ClientCommand::Stats => show(
            &c.gallery_stats(proto::GalleryStatsRequest {})
                .await?
                .into_inner(),
        ),
        ClientCommand::EnrollDir {
            dir,
            limit,
            min_images,
            prefix,
            duplicates,
        } => {
            let policy = policy(duplicates.as_deref())?;
            let mut items = Vec::new();
            let mut folders: Vec<PathBuf> = std::fs::read_dir(&dir)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_dir())
                .collect();
            folders.sort();
            for folder in folders {
                if items.len() == limit {
                    break;
                }
                let mut images: Vec<PathBuf> = std::fs::read_dir(&folder)?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.is_file())
                    .collect();
                images.sort();
                if images.len() < min_images.max(1) {
                    continue;
                }
                let name = folder
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                items.push(proto::EnrollRequest {
                    subject_id: format!("{prefix}{name}"),
                    biometrics: vec![biometric(&images[0])?],
                    duplicate_policy: policy,
                    metadata: [("source".to_string(), images[0].display().to_string())].into(),
                    ..Default::default()
                });
            }
            let t = std::time::Instant::now();
            let r = c
                .enroll_batch(tokio_stream::iter(items))
                .await?
                .into_inner();
            for item in r.items.iter().filter(|i| i.code != 0) {
                eprintln!("  {}: {} {}", item.subject_id, item.reason, item.message);
            }
            println!(
                "enrolled {} subjects, {} refused, in {:.1} s",
                r.enrolled,
                r.failed,
                t.elapsed().as_secs_f64()
            );
        }
        ClientCommand::Sweep { fmr, max_pairs } => {
            let job = c
                .start_duplicate_sweep(proto::StartDuplicateSweepRequest {
                    target_fmr: fmr,
                    max_pairs,
                })
                .await?
                .into_inner();
            let mut stream = c
                .watch_job(proto::WatchJobRequest {
                    job_id: job.job_id.clone(),
                })
                .await?
                .into_inner();
            while let Some(j) = stream.message().await? {
                eprintln!(
                    "sweep {}: {:.0}% ({} pairs)",
                    j.job_id,
                    j.progress * 100.0,
                    j.pairs_found
                );
            }
            show(
                &c.get_job_result(proto::GetJobResultRequest { job_id: job.job_id })
                    .await?
                    .into_inner(),
            );
        }
    }
    Ok(())
}

pub fn run(args: ClientArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match rt.block_on(call(args)) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => match e.downcast_ref::<Status>() {
            Some(s) => {
                eprintln!(
                    "sinhtrac client: {:?} [{}]: {}",
                    s.code(),
                    reason_of(s).unwrap_or_default(),
                    s.message()
                );
                Ok(ExitCode::from(1))
            }
            None => Err(e),
        },
    }
}
