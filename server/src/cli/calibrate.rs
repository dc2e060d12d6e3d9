//! `sinhtrac calibrate …`: produce the calibration file (target FMR → threshold) of a model.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use sinhtrac_engine::decision::Calibration;
use sinhtrac_engine::protocols::lfw::{all_impostor_scores, extract_all_cached, LfwProtocol};

use super::eval::{cache_line, finger_extractor, CacheArgs, FingerExtractor};
use super::{default_dataset, GlobalArgs};

#[derive(Debug, Subcommand)]
pub enum CalibrateCommand {
    /// Calibrate the face embedder on every cross-identity pair of the LFW images.
    Face(CalibrateFaceArgs),
    /// Calibrate the fingerprint pipeline (extractor + MCC matcher) on the FVC databases: every
    /// impression against every impression of the other fingers of its database.
    Finger(CalibrateFingerArgs),
}

#[derive(Debug, Args)]
pub struct CalibrateFingerArgs {
    /// Folder (searched recursively) of FVC-style images (default: $SINHTRAC_SHARED/datasets/fingerprints).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Output file (default: models/calibration/<finger model id>.json).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Target false-match rates to calibrate (points the impostor count cannot support are refused).
    #[arg(long, value_delimiter = ',', default_values_t = [1e-2, 1e-3])]
    pub targets: Vec<f64>,
    /// The extractor whose templates the service will hold (`sinhtrac serve --finger-extractor`).
    #[arg(long, value_enum, default_value_t = FingerExtractor::Classical)]
    pub extractor: FingerExtractor,
    /// LEADER's detection threshold (default: the manifest's); must match the server's.
    #[arg(long)]
    pub leader_quality: Option<f32>,
    #[command(flatten)]
    pub cache: CacheArgs,
}

#[derive(Debug, Args)]
pub struct CalibrateFaceArgs {
    /// LFW-style folder (pairs.txt, images/) (default: $SINHTRAC_SHARED/datasets/lfw).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Output file (default: models/calibration/<model id>.json).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Target false-match rates to calibrate.
    #[arg(long, value_delimiter = ',', default_values_t = [1e-2, 1e-3, 1e-4, 1e-5, 1e-6])]
    pub targets: Vec<f64>,
    #[command(flatten)]
    pub cache: CacheArgs,
}

pub fn run(global: &GlobalArgs, cmd: CalibrateCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CalibrateCommand::Finger(args) => calibrate_finger(global, args),
        CalibrateCommand::Face(args) => {
            let data = args.data.unwrap_or_else(|| default_dataset("lfw"));
            let protocol = LfwProtocol::load(&data)?;
            let engine = global.face_engine(global.face_config())?;
            let cache = args.cache.open()?;
            let progress = super::progress_bar("extracting templates");
            let extracted = extract_all_cached(&engine, &protocol, cache.as_ref(), &progress);
            eprintln!();
            eprintln!("{}", cache_line(cache.as_ref()));
            let impostors = all_impostor_scores(&extracted);
            let cal = Calibration::from_impostors(
                engine.embedder.model_id(),
                engine.embedder.model_sha256_hex(),
                sinhtrac_eval::Modality::Face,
                &impostors,
                &args.targets,
            )?
            .with_protocol(&format!(
                "LFW all cross-identity pairs of the {} View-2 images, detector {}",
                extracted.len(),
                engine.detector.model_id()
            ));
            let out = args.out.unwrap_or_else(|| {
                sinhtrac_engine::paths::calibration_dir()
                    .join(format!("{}.json", engine.embedder.model_id()))
            });
            if let Some(dir) = out.parent() {
                std::fs::create_dir_all(dir)?;
            }
            cal.save(&out)?;
            print_points(&cal, &out);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn calibrate_finger(global: &GlobalArgs, args: CalibrateFingerArgs) -> anyhow::Result<ExitCode> {
    use sinhtrac_engine::finger::FingerEngine;
    let data = args.data.unwrap_or_else(|| default_dataset("fingerprints"));
    let space = match args.extractor {
        FingerExtractor::Classical => FingerEngine::classical().space().clone(),
        FingerExtractor::Leader => {
            FingerEngine::leader(&global.face_config().runtime, args.leader_quality)?
                .space()
                .clone()
        }
        FingerExtractor::Merged => {
            anyhow::bail!("the service holds classical or leader templates, not merged ones")
        }
    };
    eprintln!("calibrate finger: {} ({})", data.display(), space.model_id);
    let cache = args.cache.open()?;
    let extractor = finger_extractor(global, args.extractor, args.leader_quality, cache.as_ref())?;
    let report = sinhtrac_finger::fvc::evaluate_tree(&data, extractor.as_ref(), 500)?;
    let impostors: Vec<f64> = report
        .databases
        .iter()
        .flat_map(|d| d.impostor_scores.iter().map(|&s| f64::from(s)))
        .collect();
    let names: Vec<&str> = report.databases.iter().map(|d| d.name.as_str()).collect();
    let cal = Calibration::from_impostors(
        &space.model_id,
        &space.sha256_hex(),
        sinhtrac_eval::Modality::Fingerprint,
        &impostors,
        &args.targets,
    )?
    .with_protocol(&format!(
        "FVC extended impostors (every impression vs every impression of the other fingers of its \
         database) of {}; {} extractor + MCC",
        names.join(", "),
        extractor.name()
    ));
    let out = args.out.unwrap_or_else(|| {
        sinhtrac_engine::paths::calibration_dir().join(format!("{}.json", space.model_id))
    });
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    cal.save(&out)?;
    print_points(&cal, &out);
    Ok(ExitCode::SUCCESS)
}

fn print_points(cal: &Calibration, out: &std::path::Path) {
    println!(
        "calibration of {} on {} impostor comparisons -> {}",
        cal.model_id,
        cal.n_impostor,
        out.display()
    );
    for p in &cal.points {
        println!(
            "  FMR {:>8.0e}: threshold {:.4} (observed {:.2e}, {} false matches, 95% CI {:.1e}..{:.1e})",
            p.target_fmr, p.threshold, p.observed_fmr, p.false_matches, p.fmr_ci_lower, p.fmr_ci_upper
        );
    }
}
