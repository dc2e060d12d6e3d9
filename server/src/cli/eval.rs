//! `sinhtrac eval …`: accuracy on datasets.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use sinhtrac_engine::face::{FaceConfig, MultiFacePolicy};
use sinhtrac_engine::fusion::Method;
use sinhtrac_engine::protocols::cache::{CacheStats, TemplateCache};
use sinhtrac_engine::protocols::chimeric::{self, ChimericProtocol, ChimericScores, FusionReport};
use sinhtrac_engine::protocols::chimeric_1n;
use sinhtrac_engine::protocols::lfw::{evaluate_cached, LfwProtocol, LfwReport};
use sinhtrac_engine::protocols::lfw_1n::{self, OpenSetOptions, OpenSetProtocol, OpenSetReport};
use sinhtrac_engine::protocols::liveness::{
    self, LivenessEvaluation, LivenessProtocol, LivenessSources,
};

use super::{default_dataset, progress_bar, write_json, GlobalArgs};

/// Template cache flags, shared by every command that extracts a dataset.
#[derive(Debug, Args)]
pub struct CacheArgs {
    /// Folder of cached templates, keyed by image sha256, model sha256 and pipeline settings
    /// (default: $SINHTRAC_HOME/templates, i.e. ~/.cache/sinhtrac/templates).
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// Extract everything afresh; neither read nor write the cache.
    #[arg(long, conflicts_with = "cache")]
    pub no_cache: bool,
}

impl CacheArgs {
    /// The cache these flags ask for (None with --no-cache).
    pub fn open(&self) -> anyhow::Result<Option<TemplateCache>> {
        if self.no_cache {
            return Ok(None);
        }
        let dir = self
            .cache
            .clone()
            .unwrap_or_else(TemplateCache::default_dir);
        Ok(Some(TemplateCache::open(&dir)?))
    }
}

/// One line about cache use, for stderr.
pub fn cache_line(cache: Option<&TemplateCache>) -> String {
    match cache {
        None => "template cache: off".into(),
        Some(c) => {
            let CacheStats {
                hits,
                misses,
                corrupt,
                written,
                write_errors,
            } = c.stats();
            format!(
                "template cache {}: {hits} hits, {misses} misses ({corrupt} corrupt), {written} written, {write_errors} write errors",
                c.dir().display()
            )
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// LFW View-2 verification: 10-fold accuracy, EER, TAR at FAR=1e-3.
    Lfw(LfwArgs),
    /// Fingerprints, FVC protocol plus an extended impostor set, on every folder of NNN_M.tif|png|bmp files.
    Fvc(FvcArgs),
    /// Open-set 1:N identification from LFW: FNIR @ FPIR, rank-1/10, CMC (protocol in the engine docs).
    #[command(name = "lfw-1n")]
    Lfw1n(Lfw1nArgs),
    /// Passive liveness (PAD), ISO/IEC 30107-3: APCER, BPCER, BPCER @ APCER on LFW + PAD samples.
    Liveness(LivenessEvalArgs),
    /// Face + fingerprint score fusion on a chimeric set (FVC fingers x LFW identities): FNMR @ FMR
    /// and EER of face, finger and four fusion methods, cross-validated over subject halves.
    Fusion(FusionArgs),
}

#[derive(Debug, Args)]
pub struct FusionArgs {
    /// Folder holding lfw/ and fingerprints/ (default: $SINHTRAC_SHARED/datasets).
    #[arg(long, value_name = "DIR")]
    pub data_root: Option<PathBuf>,
    /// FVC databases to use, relative to <data-root>/fingerprints (default: every NNN_M folder two levels down).
    #[arg(long, value_delimiter = ',', value_name = "DB,...")]
    pub databases: Vec<String>,
    /// Pairing seeds (each: a face identity per finger, then a split of the subjects in two halves).
    #[arg(long, value_delimiter = ',', default_values_t = chimeric::DEFAULT_SEEDS)]
    pub seeds: Vec<u64>,
    /// Resolution of the fingerprint images in dots per inch.
    #[arg(long, default_value_t = 500)]
    pub dpi: u16,
    /// Write the fusion model learned on every subject (pairing of the first seed) to this file.
    #[arg(long, value_name = "PATH")]
    pub write_model: Option<PathBuf>,
    /// Method of the written model (default: the best by mean FNMR @ FMR=1e-3).
    #[arg(long, value_parser = parse_method)]
    pub method: Option<Method>,
    /// Minutiae extractor of the finger scores (the service looks for
    /// `fusion-<face model>-<extractor>.json` in the calibration folder).
    #[arg(long, value_enum, default_value_t = FingerExtractor::Classical)]
    pub extractor: FingerExtractor,
    /// LEADER detection threshold on its quality channel (default: the manifest's, 0.55; the service
    /// runs LEADER at 0.45).
    #[arg(long, value_name = "Q")]
    pub leader_quality: Option<f32>,
    /// Also evaluate fused identification (1:N): each fold's test subjects enrolled among face-only
    /// LFW fillers, searched with their other samples and with the training half's (non-mated).
    #[arg(long)]
    pub identify: bool,
    /// Face-only filler subjects of the identification galleries.
    #[arg(long, default_value_t = 1000)]
    pub fillers: usize,
    /// Target FMR per comparison of the identification thresholds (the folds' halves support 1e-3).
    #[arg(long, default_value_t = 1e-3)]
    pub identify_fmr: f64,
    /// Write the report as JSON to this path ("-" for stdout).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write a report folder: fusion.json and a markdown summary.
    #[arg(long)]
    pub report: Option<PathBuf>,
    #[command(flatten)]
    pub cache: CacheArgs,
}

fn parse_method(s: &str) -> Result<Method, String> {
    Method::ALL
        .into_iter()
        .find(|m| m.name() == s)
        .ok_or_else(|| {
            let names: Vec<&str> = Method::ALL.iter().map(|m| m.name()).collect();
            format!("unknown method {s:?} ({})", names.join(", "))
        })
}

#[derive(Debug, Args)]
pub struct Lfw1nArgs {
    /// LFW-style folder with images/<Name>/* (default: $SINHTRAC_SHARED/datasets/lfw).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Use only the first N identities (sorted by name).
    #[arg(long, value_name = "N")]
    pub identities: Option<usize>,
    /// Candidates kept per search (CMC depth).
    #[arg(long, default_value_t = 20)]
    pub cmc_depth: usize,
    /// Write the report as JSON to this path ("-" for stdout).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write a report folder: JSON, markdown summary, CMC and FNIR-FPIR curves (PNG, SVG).
    #[arg(long)]
    pub report: Option<PathBuf>,
    #[command(flatten)]
    pub cache: CacheArgs,
}

#[derive(Debug, Args)]
pub struct LivenessEvalArgs {
    /// LFW folder whose images are sampled as bona fide presentations (default: $SINHTRAC_SHARED/datasets/lfw).
    #[arg(long)]
    pub lfw: Option<PathBuf>,
    /// LFW images to sample (evenly over the sorted list); 0 for none.
    #[arg(long, default_value_t = 2000)]
    pub bona_fide_sample: usize,
    /// Folder of *_T<n> (bona fide) and *_F<n> (attack) images (default: $SINHTRAC_SHARED/datasets/face_pad_samples).
    #[arg(long)]
    pub pad_samples: Option<PathBuf>,
    /// Folder of attack images, one sub-folder per PAI species (print/, replay/...).
    #[arg(long, value_name = "DIR")]
    pub attacks: Option<PathBuf>,
    /// Decision threshold: bona fide iff score >= threshold (default: the engine's, 0.5).
    #[arg(long)]
    pub threshold: Option<f32>,
    /// Write the report as JSON to this path ("-" for stdout).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write a report folder: JSON, markdown summary, score histograms (PNG, SVG).
    #[arg(long)]
    pub report: Option<PathBuf>,
    #[command(flatten)]
    pub cache: CacheArgs,
}

#[derive(Debug, Args)]
pub struct FvcArgs {
    /// Folder (searched recursively) of FVC-style images (default: $SINHTRAC_SHARED/datasets/fingerprints).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Resolution of the images in dots per inch (rescaled to 500).
    #[arg(long, default_value_t = 500)]
    pub dpi: u16,
    /// Write the report as JSON to this path ("-" for stdout).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write a report folder per database: JSON, markdown summary, DET/ROC curves and score histograms.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Minutiae extractor. Default classical: the only one within the 150 ms/image goal; LEADER is far more
    /// accurate but takes 1-2 s per image (measurements in engine/crates/finger/README.md).
    #[arg(long, value_enum, default_value_t = FingerExtractor::Classical)]
    pub extractor: FingerExtractor,
    /// Extract the probe side of every comparison with this extractor instead (cross-extractor matching:
    /// the earlier image of each pair is enrolled with --extractor, the later one verified with this).
    #[arg(long, value_enum)]
    pub probe_extractor: Option<FingerExtractor>,
    /// LEADER detection threshold on its quality channel (default: the manifest's, 0.55).
    #[arg(long, value_name = "Q")]
    pub leader_quality: Option<f32>,
    /// Also compare the extractor's minutiae with this reference extractor's on every image (a diagnostic
    /// for extractor work): recall and precision at --reference-distance, and the error rates of the
    /// extractor's minutiae that the reference confirms.
    #[arg(long, value_enum, conflicts_with = "probe_extractor")]
    pub reference: Option<FingerExtractor>,
    /// Pixels (at 500 dpi) within which two minutiae count as the same one, for --reference.
    #[arg(long, default_value_t = 8.0, requires = "reference")]
    pub reference_distance: f32,
    /// Template cache for learned extractors (the classical one is not cached); timings of cache hits are
    /// meaningless, so time with --no-cache.
    #[command(flatten)]
    pub cache: CacheArgs,
}

/// Fingerprint minutiae extractors the CLI can evaluate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FingerExtractor {
    /// The pure-Rust classical pipeline (Gabor enhancement, thinning, crossing number).
    Classical,
    /// The LEADER ONNX network (models/manifest.tsv row `leader`).
    Leader,
    /// LEADER's minutiae plus the classical ones farther than 8 px from any of them (both run).
    #[value(name = "leader+classical")]
    Merged,
}

/// The extractor `choice` asks for; learned ones go through `cache` when there is one.
pub fn finger_extractor<'a>(
    global: &GlobalArgs,
    choice: FingerExtractor,
    leader_quality: Option<f32>,
    cache: Option<&'a TemplateCache>,
) -> anyhow::Result<Box<dyn sinhtrac_finger::Extractor + 'a>> {
    use sinhtrac_engine::finger::{CachedExtractor, LeaderExtractor, MergedExtractor};
    Ok(match choice {
        FingerExtractor::Classical => Box::new(sinhtrac_finger::ClassicalExtractor),
        FingerExtractor::Merged => Box::new(MergedExtractor::new(
            finger_extractor(global, FingerExtractor::Leader, leader_quality, cache)?,
            Box::new(sinhtrac_finger::ClassicalExtractor),
            8.0,
            "leader+classical",
        )),
        FingerExtractor::Leader => {
            let mut leader = LeaderExtractor::load_default(&global.face_config().runtime)?;
            if let Some(q) = leader_quality {
                leader = leader.with_quality_threshold(q);
            }
            match cache {
                Some(c) => {
                    let (sha, tag) = (leader.entry().sha256_bytes(), leader.cache_tag());
                    Box::new(CachedExtractor::new(leader, c, sha, tag))
                }
                None => Box::new(leader),
            }
        }
    })
}

#[derive(Debug, Args)]
pub struct LfwArgs {
    /// Folder with pairs.txt and images/ (default: $SINHTRAC_SHARED/datasets/lfw).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Write the report as JSON to this path ("-" for stdout).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write a report folder: JSON, markdown summary, DET/ROC curves and score histograms (PNG, SVG).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Which face of a photo with several is the subject. LFW images are crops centred on the named
    /// person, so the protocol's subject is the central face; `largest` is the served default.
    #[arg(long, value_enum, default_value = "central")]
    pub multi_face: FacePolicy,
    #[command(flatten)]
    pub cache: CacheArgs,
}

/// `--multi-face` values (the engine's [`MultiFacePolicy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FacePolicy {
    /// The largest confident face (the served default).
    Largest,
    /// The confident face nearest the image centre.
    Central,
}

impl From<FacePolicy> for MultiFacePolicy {
    fn from(p: FacePolicy) -> Self {
        match p {
            FacePolicy::Largest => MultiFacePolicy::Largest,
            FacePolicy::Central => MultiFacePolicy::Central,
        }
    }
}

pub fn run(global: &GlobalArgs, cmd: EvalCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        EvalCommand::Fvc(args) => {
            let dist = args.reference_distance;
            if !(dist.is_finite() && dist > 0.0) {
                anyhow::bail!(
                    "--reference-distance must be a positive number of pixels, got {dist}"
                );
            }
            let data = args.data.unwrap_or_else(|| default_dataset("fingerprints"));
            let cache = args.cache.open()?;
            let gallery =
                finger_extractor(global, args.extractor, args.leader_quality, cache.as_ref())?;
            let probe = match args.probe_extractor {
                Some(p) => Some(finger_extractor(
                    global,
                    p,
                    args.leader_quality,
                    cache.as_ref(),
                )?),
                None => None,
            };
            eprintln!(
                "eval fvc: {} ({} extractor{} + MCC)",
                data.display(),
                gallery.name(),
                probe
                    .as_ref()
                    .map(|p| format!(", probes by {}", p.name()))
                    .unwrap_or_default()
            );
            let report = sinhtrac_finger::fvc::evaluate_tree_cross(
                &data,
                gallery.as_ref(),
                probe.as_deref(),
                args.dpi,
            )?;
            if args.extractor != FingerExtractor::Classical
                || args
                    .probe_extractor
                    .is_some_and(|p| p != FingerExtractor::Classical)
            {
                eprintln!("{}", cache_line(cache.as_ref()));
            }
            println!(
                "  {:<22} {:>6} {:>5} {:>8} {:>8} {:>9} {:>8} {:>9} {:>9}",
                "database",
                "images",
                "FTE",
                "EER %",
                "FMR100",
                "FMR1000",
                "ZeroFMR",
                "ext EER",
                "ms/image"
            );
            for d in &report.databases {
                println!(
                    "  {:<22} {:>6} {:>5} {:>8.2} {:>8.2} {:>9.2} {:>8.2} {:>9.2} {:>9.1}",
                    d.name,
                    d.images,
                    d.failures_to_enrol,
                    d.fvc.eer * 100.0,
                    d.fvc.fmr100 * 100.0,
                    d.fvc.fmr1000 * 100.0,
                    d.fvc.zero_fmr * 100.0,
                    d.extended.eer * 100.0,
                    d.extract_ms_median
                );
            }
            println!(
                "  mean EER {:.2}% (FVC protocol), {:.2}% (extended)",
                report.mean_eer * 100.0,
                report.mean_extended_eer * 100.0
            );
            if let Some(path) = &args.json {
                write_json(path, &report)?;
            }
            if let Some(dir) = &args.report {
                write_fvc_reports(dir, &report)?;
            }
            if let Some(choice) = args.reference {
                let reference =
                    finger_extractor(global, choice, args.leader_quality, cache.as_ref())?;
                compare_with_reference(
                    &data,
                    &report,
                    gallery.as_ref(),
                    reference.as_ref(),
                    args.dpi,
                    args.reference_distance,
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
        EvalCommand::Lfw1n(args) => run_lfw_1n(global, args),
        EvalCommand::Liveness(args) => run_liveness(global, args),
        EvalCommand::Fusion(args) => run_fusion(global, args),
        EvalCommand::Lfw(args) => {
            let cache = args.cache.open()?;
            let report = run_lfw(
                global,
                args.data.unwrap_or_else(|| default_dataset("lfw")),
                args.multi_face.into(),
                cache.as_ref(),
            )?;
            // With --json - stdout carries only the JSON.
            if !json_to_stdout(&args.json) {
                print_lfw(&report);
            }
            if let Some(path) = &args.json {
                write_json(path, &report)?;
            }
            if let Some(dir) = &args.report {
                write_lfw_report(dir, &report)?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub fn run_lfw(
    global: &GlobalArgs,
    data: PathBuf,
    multi_face: MultiFacePolicy,
    cache: Option<&TemplateCache>,
) -> anyhow::Result<LfwReport> {
    let protocol = LfwProtocol::load(&data)?;
    let engine = global.face_engine(FaceConfig {
        multi_face,
        ..global.face_config()
    })?;
    eprintln!(
        "eval lfw: {} pairs over {} images in {}, {multi_face:?} face of a photo with several",
        protocol.pairs.len(),
        protocol.images().len(),
        data.display()
    );
    let report = evaluate_cached(&engine, &protocol, cache, &progress_bar("extracting"))?;
    eprintln!();
    eprintln!("{}", cache_line(cache));
    Ok(report)
}

pub fn print_lfw(r: &LfwReport) {
    println!(
        "LFW verification ({} folds x {} + {} pairs), models {}",
        r.folds,
        r.per_fold,
        r.per_fold,
        r.models.join(" + ")
    );
    println!("  {:<34} {:>10}", "metric", "value");
    println!(
        "  {:<34} {:>9.2}% ± {:.2}",
        "10-fold accuracy",
        r.accuracy_mean * 100.0,
        r.accuracy_std * 100.0
    );
    println!("  {:<34} {:>9.2}%", "EER", r.eer * 100.0);
    println!(
        "  {:<34} {:>9.2}%",
        "TAR @ FAR=1e-3",
        r.tar_at_far_1e3 * 100.0
    );
    println!(
        "  {:<34} {:>10.4}",
        "cosine threshold @ FAR=1e-3", r.threshold_far_1e3
    );
    println!("  {:<34} {:>10.4}", "threshold @ EER", r.eer_threshold);
    println!("  {:<34} {:>10.3}", "genuine mean cosine", r.genuine_mean);
    println!("  {:<34} {:>10.3}", "impostor mean cosine", r.impostor_mean);
    println!(
        "  {:<34} {:>10}",
        "images without a template",
        r.failed_images.len()
    );
    println!(
        "  {:<34} {:>10}",
        "impostor pairs (FAR support)", r.impostor_pairs
    );
    println!("  {:<34} {:>9.1}s", "extraction time", r.extract_seconds);
    for (name, reason) in r.failed_images.iter().take(10) {
        println!("    failed: {name} ({reason})");
    }
}

fn write_lfw_report(dir: &std::path::Path, r: &LfwReport) -> anyhow::Result<()> {
    use sinhtrac_eval::report::{write_report, Report, ReportOptions, VerificationReport};
    let verification = VerificationReport::compute(&r.scores, &ReportOptions::default())?
        .with_kfold(r.kfold.clone());
    let mut report = Report::new(
        "LFW View 2 face verification",
        &format!(
            "{} folds x ({} genuine + {} impostor) pairs; models {}",
            r.folds,
            r.per_fold,
            r.per_fold,
            r.models.join(" + ")
        ),
    );
    report.verification = Some(verification);
    report.notes.push(format!(
        "{} images, {} without a template",
        r.images,
        r.failed_images.len()
    ));
    report
        .notes
        .push("confidence intervals: bootstrap over identities (first image of each pair)".into());
    let files = write_report(dir, &report)?;
    eprintln!(
        "report written: {}",
        files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

/// `eval fvc --reference`: how the evaluated extractor's minutiae compare with a reference extractor's.
fn compare_with_reference(
    data: &std::path::Path,
    report: &sinhtrac_finger::fvc::FvcReport,
    extractor: &dyn sinhtrac_finger::Extractor,
    reference: &dyn sinhtrac_finger::Extractor,
    dpi: u16,
    max_dist: f32,
) -> anyhow::Result<()> {
    use sinhtrac_finger::reference::{agreement_tree, ConfirmedExtractor};
    let agreement = agreement_tree(data, extractor, reference, dpi, max_dist)?;
    let confirmed = ConfirmedExtractor::new(extractor, reference, max_dist);
    let filtered = sinhtrac_finger::fvc::evaluate_tree(data, &confirmed, dpi)?;
    println!(
        "\n  {} minutiae against {} ({max_dist} px): recall = share of the reference's found, precision = \
         share of ours the reference confirms; 'confirmed' = ours kept only where the reference agrees",
        extractor.name(),
        reference.name()
    );
    println!(
        "  {:<22} {:>9} {:>9} {:>7} {:>9} {:>8} {:>12} {:>13}",
        "database",
        "ours/img",
        "ref/img",
        "recall",
        "precision",
        "ext EER",
        "confirmed EER",
        "confirmed ext"
    );
    for ((name, a), (d, c)) in agreement
        .iter()
        .zip(report.databases.iter().zip(&filtered.databases))
    {
        println!(
            "  {:<22} {:>9.1} {:>9.1} {:>6.1}% {:>8.1}% {:>7.2}% {:>11.2}% {:>12.2}%",
            name,
            a.minutiae_per_image(),
            a.reference_per_image(),
            a.recall() * 100.0,
            a.precision() * 100.0,
            d.extended.eer * 100.0,
            c.fvc.eer * 100.0,
            c.extended.eer * 100.0
        );
        if a.failed > 0 {
            println!(
                "  {:<22} ({} image(s) left out of the counts: an extractor refused them)",
                "", a.failed
            );
        }
    }
    Ok(())
}

/// One report folder per FVC database (`<dir>/<database path with / as _>/`): the extended impostor set,
/// since the standard one is too small for a DET curve.
fn write_fvc_reports(
    dir: &std::path::Path,
    r: &sinhtrac_finger::fvc::FvcReport,
) -> anyhow::Result<()> {
    use sinhtrac_eval::report::{write_report, Report, ReportOptions, VerificationReport};
    for d in &r.databases {
        let scores = sinhtrac_eval::ScoreSet::from_f32(&d.genuine_scores, &d.impostor_scores);
        let mut report = Report::new(
            &format!("Fingerprint verification, {}", d.name),
            &format!(
                "FVC genuine pairs ({}) vs extended impostor set ({} pairs); extractor {}, MCC matcher",
                d.genuine_scores.len(),
                d.impostor_scores.len(),
                d.extractor
            ),
        );
        report.verification = Some(VerificationReport::compute(
            &scores,
            &ReportOptions::default(),
        )?);
        report.notes.push(format!(
            "{} images, {} failures to enrol; FVC-protocol EER {:.2}%",
            d.images,
            d.failures_to_enrol,
            d.fvc.eer * 100.0
        ));
        let sub = dir.join(d.name.replace(['/', '\\'], "_"));
        let files = write_report(&sub, &report)?;
        eprintln!("report written: {} files in {}", files.len(), sub.display());
    }
    Ok(())
}

fn json_to_stdout(json: &Option<PathBuf>) -> bool {
    json.as_ref().is_some_and(|p| p.as_os_str() == "-")
}

fn pct(x: f64) -> String {
    format!("{:.2}%", 100.0 * x)
}

fn interval(ci: &sinhtrac_eval::ConfidenceInterval) -> String {
    format!("[{}, {}]", pct(ci.lower), pct(ci.upper))
}

fn run_lfw_1n(global: &GlobalArgs, args: Lfw1nArgs) -> anyhow::Result<ExitCode> {
    let data = args.data.unwrap_or_else(|| default_dataset("lfw"));
    let protocol = OpenSetProtocol::build(&data, args.identities)?;
    let engine = global.face_engine(global.face_config())?;
    let cache = args.cache.open()?;
    eprintln!(
        "eval lfw-1n: {} identities in {}: {} enrolled, {} mated + {} non-mated searches",
        protocol.identities,
        protocol.images_dir.display(),
        protocol.enrolled.len(),
        protocol.mated.len(),
        protocol.nonmated.len()
    );
    let options = OpenSetOptions {
        cmc_depth: args.cmc_depth,
        ..OpenSetOptions::default()
    };
    let report = lfw_1n::evaluate(
        &engine,
        &protocol,
        &options,
        cache.as_ref(),
        &progress_bar("extracting"),
    )?;
    eprintln!();
    eprintln!("{}", cache_line(cache.as_ref()));
    // With --json - stdout carries only the JSON.
    if !json_to_stdout(&args.json) {
        print_lfw_1n(&report);
    }
    if let Some(path) = &args.json {
        write_json(path, &report)?;
    }
    if let Some(dir) = &args.report {
        write_lfw_1n_report(dir, &report)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_lfw_1n(r: &OpenSetReport) {
    println!(
        "LFW open-set 1:N ({} identities: gallery {} of {} enrolled; {} mated, {} non-mated searches), models {}",
        r.identities,
        r.gallery,
        r.enrolled,
        r.mated_searches,
        r.nonmated_searches,
        r.models.join(" + ")
    );
    println!(
        "  {:<30} {:>9} {:>15} {:>22}",
        "metric", "value", "count", "95% Wilson interval"
    );
    for (name, rate) in [
        ("rank-1 identification", &r.rank1),
        ("rank-10 identification", &r.rank10),
    ] {
        println!(
            "  {:<30} {:>9} {:>15} {:>22}",
            name,
            pct(rate.ci.estimate),
            format!("{}/{}", rate.count, rate.of),
            interval(&rate.ci)
        );
    }
    for (p, label) in r.fnir_at_fpir.iter().map(|p| (p, "")).chain(
        r.indicative_fnir_at_fpir
            .iter()
            .map(|p| (p, " (indicative*)")),
    ) {
        println!(
            "  {:<30} {:>9} {:>15} {:>22}   threshold {:.4}, {} false positives",
            format!("FNIR @ FPIR={:.0e}{label}", p.at.target_fpir),
            pct(p.at.fnir),
            format!("{}/{} missed", p.misses.count, p.misses.of),
            interval(&p.misses.ci),
            p.at.threshold,
            p.false_positives
        );
    }
    if !r.indicative_fnir_at_fpir.is_empty() {
        println!(
            "  * {} non-mated searches are too few for the rule of 3 (n·FPIR ≥ 3) at this target; figure under n·FPIR ≥ 1",
            r.nonmated_searches
        );
    }
    for t in &r.unsupported_fpir {
        println!(
            "  FNIR @ FPIR={t:.0e}: not supported by {} non-mated searches",
            r.nonmated_searches
        );
    }
    let cmc: Vec<String> = r
        .result
        .cmc
        .iter()
        .take(10)
        .map(|x| format!("{:.2}", 100.0 * x))
        .collect();
    println!("  CMC ranks 1-10 (%): {}", cmc.join(" "));
    println!(
        "  mean mate cosine {:.3}, mean non-mated top cosine {:.3}",
        r.mate_score_mean, r.nonmated_top_mean
    );
    let count = |role: &str| r.failures.iter().filter(|f| f.role == role).count();
    println!(
        "  images without a template: {} enrolment, {} mated, {} non-mated; {} mated searches lack an enrolled mate",
        count("enrolment"),
        count("mated"),
        count("non-mated"),
        r.mated_without_gallery_mate
    );
    println!(
        "  extraction {:.1}s, enrol + search {:.2}s",
        r.extract_seconds, r.search_seconds
    );
    for f in r.failures.iter().take(10) {
        println!("    failed: {} ({}, {})", f.image, f.role, f.reason);
    }
}

fn write_lfw_1n_report(dir: &std::path::Path, r: &OpenSetReport) -> anyhow::Result<()> {
    use sinhtrac_eval::report::{write_report, Report};
    let mut report = Report::new(
        "LFW open-set 1:N identification",
        &format!(
            "identities with ≥ 2 images enrolled with their first image (sorted file order), probed with \
             the others (mated); identities with one image are non-mated probes; {} identities; exact f32 \
             SIMD flat index; FNIR at rank R = 1; models {}",
            r.identities,
            r.models.join(" + ")
        ),
    );
    report.open_set = Some(r.result.clone());
    let count = |role: &str| r.failures.iter().filter(|f| f.role == role).count();
    let notes = &mut report.notes;
    notes.push(format!(
        "gallery {} of {} enrolled identities; {} mated and {} non-mated searches",
        r.gallery, r.enrolled, r.mated_searches, r.nonmated_searches
    ));
    notes.push(format!(
        "rank-1 {}/{} = {} (95% Wilson {}), rank-10 {}/{} = {} (95% Wilson {}); intervals take searches as independent",
        r.rank1.count,
        r.rank1.of,
        pct(r.rank1.ci.estimate),
        interval(&r.rank1.ci),
        r.rank10.count,
        r.rank10.of,
        pct(r.rank10.ci.estimate),
        interval(&r.rank10.ci)
    ));
    for p in &r.fnir_at_fpir {
        notes.push(format!(
            "FNIR @ FPIR={:.0e}: {} of {} mated searches missed (95% Wilson {}), {} of {} non-mated searches alarmed",
            p.at.target_fpir,
            p.misses.count,
            p.misses.of,
            interval(&p.misses.ci),
            p.false_positives,
            r.nonmated_searches
        ));
    }
    for p in &r.indicative_fnir_at_fpir {
        notes.push(format!(
            "indicative only: FNIR @ FPIR={:.0e} = {} ({} of {} missed, threshold {:.4}, {} false positives): \
             {} non-mated searches are below the rule of 3 for this target (needs {}), computed under n·FPIR ≥ 1",
            p.at.target_fpir,
            pct(p.at.fnir),
            p.misses.count,
            p.misses.of,
            p.at.threshold,
            p.false_positives,
            r.nonmated_searches,
            (3.0 / p.at.target_fpir).ceil()
        ));
    }
    notes.push(format!(
        "images without a template (counted as misses for mated searches): {} enrolment, {} mated, {} non-mated; \
         {} mated searches lack an enrolled mate",
        count("enrolment"),
        count("mated"),
        count("non-mated"),
        r.mated_without_gallery_mate
    ));
    if let Some(c) = &r.cache {
        notes.push(format!(
            "template cache: {} hits, {} misses; extraction {:.1}s",
            c.hits, c.misses, r.extract_seconds
        ));
    }
    let mut files = write_report(dir, &report)?;
    let full = dir.join("lfw-1n.json");
    write_json(&full, r)?;
    files.push(full);
    eprintln!(
        "report written: {}",
        files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

fn run_liveness(global: &GlobalArgs, args: LivenessEvalArgs) -> anyhow::Result<ExitCode> {
    let sources = LivenessSources {
        lfw: (args.bona_fide_sample > 0)
            .then(|| args.lfw.unwrap_or_else(|| default_dataset("lfw"))),
        lfw_sample: args.bona_fide_sample,
        pad_samples: Some(
            args.pad_samples
                .unwrap_or_else(|| default_dataset("face_pad_samples")),
        ),
        attacks: args.attacks,
    };
    let protocol = LivenessProtocol::build(&sources)?;
    let mut config = global.face_config();
    if let Some(t) = args.threshold {
        config.liveness_threshold = t;
    }
    let engine = global.face_engine(config)?;
    let cache = args.cache.open()?;
    eprintln!(
        "eval liveness: {} bona fide ({} of {} LFW images + samples), {} attack presentations",
        protocol.bona_fide.len(),
        protocol.lfw_sampled,
        protocol.lfw_available,
        protocol.attacks.len()
    );
    let threshold = f64::from(engine.liveness.threshold);
    let report = liveness::evaluate(
        &engine,
        &protocol,
        threshold,
        cache.as_ref(),
        &progress_bar("scoring"),
    )?;
    eprintln!();
    eprintln!("{}", cache_line(cache.as_ref()));
    // With --json - stdout carries only the JSON.
    if !json_to_stdout(&args.json) {
        print_liveness(&report);
    }
    if let Some(path) = &args.json {
        write_json(path, &report)?;
    }
    if let Some(dir) = &args.report {
        write_liveness_report(dir, &report)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_liveness(r: &LivenessEvaluation) {
    let l = &r.report;
    println!(
        "Liveness (ISO/IEC 30107-3), models {}, bona fide iff score >= {:.3}",
        r.models.join(" + "),
        r.threshold
    );
    println!(
        "  presentations scored: {} bona fide, {} attack ({} and {} without a face)",
        l.n_bona_fide, l.n_attacks, r.bona_fide_not_scored, r.attacks_not_scored
    );
    if let Some(a) = &l.at_threshold {
        for s in &a.per_species {
            println!(
                "  APCER {:<18} {:>8} ({} of {} attacks accepted as bona fide)",
                s.species,
                pct(s.apcer),
                (s.apcer * s.n as f64).round(),
                s.n
            );
        }
        if let Some(ci) = &l.apcer_ci {
            println!(
                "  APCER (worst species)     {:>8}   95% Wilson {}",
                pct(a.apcer),
                interval(ci)
            );
        }
        if let Some(ci) = &l.bpcer_ci {
            println!(
                "  BPCER                     {:>8} ({} of {} bona fide rejected)   95% Wilson {}",
                pct(a.bpcer),
                (a.bpcer * l.n_bona_fide as f64).round(),
                l.n_bona_fide,
                interval(ci)
            );
        }
    }
    if let Some(b) = &r.bpcer_with_failures {
        println!(
            "  BPCER incl. no-face        {:>8} ({} of {})   95% Wilson {}",
            pct(b.ci.estimate),
            b.count,
            b.of,
            interval(&b.ci)
        );
    }
    for b in &l.bpcer_at_apcer {
        println!(
            "  BPCER @ APCER={}%: {} (threshold {:.4})",
            100.0 * b.target_apcer,
            pct(b.at.bpcer),
            b.at.threshold
        );
    }
    for t in &l.unsupported_apcer {
        println!(
            "  BPCER @ APCER={}%: not computable: needs >= {} attack presentations per species, the smallest has {}",
            100.0 * t,
            l.support_rule.required(*t),
            l.min_species_attacks
        );
    }
    if l.min_species_attacks < l.support_rule.required(0.05) as usize {
        println!(
            "  The attack set ({} presentations) is too small to state an APCER: the numbers above describe these samples only.",
            l.n_attacks
        );
    }
    for a in &r.attacks {
        match a.score {
            Some(s) => println!("    attack {}: score {:.4}", a.name, s),
            None => println!(
                "    attack {}: not scored ({})",
                a.name,
                a.reason.as_deref().unwrap_or("?")
            ),
        }
    }
    println!("  scoring {:.1}s", r.seconds);
}

fn write_liveness_report(dir: &std::path::Path, r: &LivenessEvaluation) -> anyhow::Result<()> {
    use sinhtrac_eval::report::{write_report, Report};
    let mut report = Report::new(
        "Passive face liveness (PAD)",
        &format!(
            "bona fide: {} of {} LFW images (evenly spaced in sorted order) + PAD bona fide samples; attacks: PAD \
             attack samples + attack folder; models {}",
            r.lfw_sampled,
            r.lfw_available,
            r.models.join(" + ")
        ),
    );
    report.liveness = Some(r.report.clone());
    report.notes.push(format!(
        "not scored (no face found): {} bona fide, {} attack presentations; they are left out of APCER/BPCER above",
        r.bona_fide_not_scored, r.attacks_not_scored
    ));
    if let Some(b) = &r.bpcer_with_failures {
        report.notes.push(format!(
            "BPCER counting bona fide presentations without a face as rejections: {} ({} of {}, 95% Wilson {})",
            pct(b.ci.estimate),
            b.count,
            b.of,
            interval(&b.ci)
        ));
    }
    for a in &r.attacks {
        report.notes.push(match a.score {
            Some(s) => format!(
                "attack {} ({}): score {:.4}",
                a.name,
                a.species.as_deref().unwrap_or("-"),
                s
            ),
            None => format!(
                "attack {}: not scored ({})",
                a.name,
                a.reason.as_deref().unwrap_or("?")
            ),
        });
    }
    report.notes.push(
        "LFW images are 250x250 press photos, unlike the selfie-camera input these models were trained on: \
         their BPCER is a stress figure"
            .into(),
    );
    let mut files = write_report(dir, &report)?;
    let full = dir.join("liveness.json");
    write_json(&full, r)?;
    files.push(full);
    eprintln!(
        "report written: {}",
        files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

fn run_fusion(global: &GlobalArgs, args: FusionArgs) -> anyhow::Result<ExitCode> {
    use sinhtrac_engine::finger::FingerEngine;
    let root = args
        .data_root
        .clone()
        .unwrap_or_else(sinhtrac_engine::paths::datasets_dir);
    let fingerprints = root.join("fingerprints");
    let databases = if args.databases.is_empty() {
        chimeric::default_databases(&fingerprints)?
    } else {
        args.databases
            .iter()
            .map(|d| fingerprints.join(d))
            .collect()
    };
    let protocol = ChimericProtocol::build(
        &root.join("lfw"),
        &databases,
        &fingerprints,
        chimeric::IMPRESSIONS,
    )?;
    let engine = global.face_engine(global.face_config())?;
    let cache = args.cache.open()?;
    eprintln!(
        "eval fusion: {} fingers of {} databases x {} eligible LFW identities, {} pairings",
        protocol.subjects(),
        databases.len(),
        protocol.faces.len(),
        args.seeds.len()
    );
    let extractor = finger_extractor(global, args.extractor, args.leader_quality, cache.as_ref())?;
    let scores = ChimericScores::compute(
        &protocol,
        &engine,
        extractor.as_ref(),
        args.dpi,
        &args.seeds,
        cache.as_ref(),
        &progress_bar("extracting faces"),
    )?;
    eprintln!();
    eprintln!("{}", cache_line(cache.as_ref()));
    let mut report = chimeric::evaluate(&protocol, &scores, &args.seeds)?;
    if args.identify {
        let names = chimeric_1n::filler_images(&protocol, args.fillers)?;
        let fillers = sinhtrac_engine::protocols::extract::extract_files(
            &engine,
            &protocol.images_dir,
            &names,
            cache.as_ref(),
            &progress_bar("extracting fillers"),
        );
        eprintln!();
        report.identification = Some(chimeric_1n::evaluate_identification(
            &protocol,
            &scores,
            &fillers,
            &args.seeds,
            args.method.unwrap_or(report.best),
            args.identify_fmr,
            chimeric_1n::SERVICE_SHORTLIST,
        )?);
    }
    if !json_to_stdout(&args.json) {
        print_fusion(&report);
    }
    if let Some(path) = &args.json {
        write_json(path, &report)?;
    }
    if let Some(dir) = &args.report {
        std::fs::create_dir_all(dir)?;
        write_json(&dir.join("fusion.json"), &report)?;
        std::fs::write(dir.join("fusion.md"), fusion_markdown(&report))?;
        eprintln!("report written: {}/fusion.json, fusion.md", dir.display());
    }
    if let Some(path) = &args.write_model {
        let method = args.method.unwrap_or(report.best);
        let seed = args
            .seeds
            .first()
            .copied()
            .unwrap_or(chimeric::DEFAULT_SEEDS[0]);
        let mut model = chimeric::fit_model(
            &protocol,
            &scores,
            method,
            seed,
            &sinhtrac_engine::fusion::FusionModel::id_for(
                engine.embedder.model_id(),
                extractor.name(),
            ),
        )?;
        // The finger space (extractor settings + matcher) the service will check the model against.
        model.provenance.finger_space_sha256 = match args.extractor {
            FingerExtractor::Classical => Some(FingerEngine::classical().space().sha256_hex()),
            FingerExtractor::Leader => Some(
                FingerEngine::leader(&global.face_config().runtime, args.leader_quality)?
                    .space()
                    .sha256_hex(),
            ),
            FingerExtractor::Merged => None,
        };
        model.save(path)?;
        eprintln!(
            "fusion model ({}, {} genuine / {} impostor comparisons) written to {}",
            method.name(),
            model.provenance.n_genuine,
            model.provenance.n_impostor,
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn fusion_rows(r: &FusionReport) -> Vec<[String; 5]> {
    let ms = |s: &chimeric::Summary| format!("{} ± {}", pct(s.mean), pct(s.std));
    r.rows
        .iter()
        .map(|row| {
            let w = if row.face_weights.is_empty() {
                "-".to_string()
            } else {
                let n = row.face_weights.len() as f64;
                format!("{:.2}", row.face_weights.iter().sum::<f64>() / n)
            };
            [
                row.description.clone(),
                ms(&row.fnmr_at_1e3),
                ms(&row.fnmr_at_1e2),
                ms(&row.eer),
                w,
            ]
        })
        .collect()
}

fn print_fusion(r: &FusionReport) {
    println!(
        "Face + fingerprint fusion, chimeric: {} subjects ({} FVC fingers x LFW identities), {} samples each; \
         face {}, finger {} + MCC",
        r.subjects,
        r.databases.join(", "),
        r.impressions,
        r.face_model,
        r.finger_extractor
    );
    println!(
        "  {} folds ({} pairings x 2 halves); per test half {} genuine, {} impostor comparisons; mean ± sd over folds",
        r.folds,
        r.seeds.len(),
        r.test_genuine,
        r.test_impostor
    );
    println!(
        "  {:<42} {:>18} {:>18} {:>18} {:>8}",
        "scores", "FNMR @ FMR=1e-3", "FNMR @ FMR=1e-2", "EER", "w_face"
    );
    for row in fusion_rows(r) {
        println!(
            "  {:<42} {:>18} {:>18} {:>18} {:>8}",
            row[0], row[1], row[2], row[3], row[4]
        );
    }
    println!("  best by mean FNMR @ FMR=1e-3: {}", r.best.name());
    println!(
        "  face images without a template: {}; finger samples that failed to enrol: {}",
        r.face_failures.len(),
        r.finger_failures.len()
    );
    println!(
        "  faces {:.1}s, finger extraction {:.1}s, finger matching {:.1}s, fusion {:.1}s",
        r.seconds[0], r.seconds[1], r.seconds[2], r.seconds[3]
    );
    if let Some(id) = &r.identification {
        print_identification(id);
    }
}

fn identification_rows(r: &chimeric_1n::IdentifyReport) -> Vec<[String; 5]> {
    let ms = |s: &chimeric::Summary| format!("{} ± {}", pct(s.mean), pct(s.std));
    let at = |row: &chimeric_1n::IdentifyRow, i: usize| {
        row.tpir_at_fpir.get(i).map_or("-".into(), |&v| pct(v))
    };
    r.rows
        .iter()
        .map(|row| {
            [
                row.description.clone(),
                ms(&row.tpir_summary),
                ms(&row.fpir_summary),
                at(row, 0),
                at(row, 1),
            ]
        })
        .collect()
}

fn print_identification(r: &chimeric_1n::IdentifyReport) {
    println!(
        "Fused identification (1:N), {} folds: gallery of {} chimeric subjects + {} face-only LFW fillers; \
         {} mated and {} non-mated searches per fold; thresholds at FMR {} per comparison ({} model per fold)",
        r.folds,
        r.enrolled_subjects,
        r.fillers,
        r.searches.0,
        r.searches.1,
        r.target_fmr,
        r.method.name()
    );
    println!(
        "  {:<58} {:>18} {:>18} {:>14} {:>14}",
        "decision rule", "TPIR (rank 1)", "FPIR", "TPIR@FPIR 1%", "TPIR@FPIR 5%"
    );
    for row in identification_rows(r) {
        println!(
            "  {:<58} {:>18} {:>18} {:>14} {:>14}",
            row[0], row[1], row[2], row[3], row[4]
        );
    }
    println!("  {:.1}s", r.seconds);
}

fn fusion_markdown(r: &FusionReport) -> String {
    let mut s = format!(
        "# Face + fingerprint fusion (chimeric)\n\n{} subjects: FVC fingers ({}) each paired with an LFW identity \
         with ≥ {} images; face {}, finger {} + MCC. {} folds ({} pairings × 2 subject halves), each test half \
         {} genuine and {} impostor comparisons; mean ± sd over folds.\n\n\
         | scores | FNMR @ FMR=1e-3 | FNMR @ FMR=1e-2 | EER | mean face weight |\n|---|---|---|---|---|\n",
        r.subjects,
        r.databases.join(", "),
        r.impressions,
        r.face_model,
        r.finger_extractor,
        r.folds,
        r.seeds.len(),
        r.test_genuine,
        r.test_impostor
    );
    for row in fusion_rows(r) {
        s.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    s.push_str(&format!(
        "\nBest by mean FNMR @ FMR=1e-3: `{}`. Face images without a template: {}; finger samples that failed to \
         enrol: {}.\n",
        r.best.name(),
        r.face_failures.len(),
        r.finger_failures.len()
    ));
    if let Some(id) = &r.identification {
        s.push_str(&format!(
            "\n## Fused identification (1:N)\n\nGallery: {} chimeric subjects + {} face-only LFW fillers; {} mated and \
             {} non-mated searches per fold; thresholds at FMR {} per comparison; mean ± sd over {} folds.\n\n\
             | decision rule | TPIR (rank 1) | FPIR | TPIR @ FPIR 1% (pooled) | TPIR @ FPIR 5% (pooled) |\n\
             |---|---|---|---|---|\n",
            id.enrolled_subjects,
            id.fillers,
            id.searches.0,
            id.searches.1,
            id.target_fmr,
            id.folds
        ));
        for row in identification_rows(id) {
            s.push_str(&format!("| {} |\n", row.join(" | ")));
        }
    }
    s
}
