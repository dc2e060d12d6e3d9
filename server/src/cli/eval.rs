//! `sinhtrac eval …`: accuracy on datasets.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use sinhtrac_engine::protocols::lfw::{evaluate, LfwProtocol, LfwReport};

use super::{default_dataset, write_json, GlobalArgs};

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// LFW View-2 verification: 10-fold accuracy, EER, TAR at FAR=1e-3.
    Lfw(LfwArgs),
    /// Fingerprints, FVC protocol plus an extended impostor set, on every folder of NNN_M.tif|png|bmp files.
    Fvc(FvcArgs),
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
}

pub fn run(global: &GlobalArgs, cmd: EvalCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        EvalCommand::Fvc(args) => {
            let data = args.data.unwrap_or_else(|| default_dataset("fingerprints"));
            eprintln!("eval fvc: {} (classical extractor + MCC)", data.display());
            let report = sinhtrac_finger::fvc::evaluate_tree(
                &data,
                &sinhtrac_finger::ClassicalExtractor,
                args.dpi,
            )?;
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
            Ok(ExitCode::SUCCESS)
        }
        EvalCommand::Lfw(args) => {
            let report = run_lfw(global, args.data.unwrap_or_else(|| default_dataset("lfw")))?;
            print_lfw(&report);
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

pub fn run_lfw(global: &GlobalArgs, data: PathBuf) -> anyhow::Result<LfwReport> {
    let protocol = LfwProtocol::load(&data)?;
    let engine = global.face_engine(global.face_config())?;
    eprintln!(
        "eval lfw: {} pairs over {} images in {}",
        protocol.pairs.len(),
        protocol.images().len(),
        data.display()
    );
    let progress = |done: usize, total: usize| eprint!("\r  extracting templates {done}/{total}");
    let report = evaluate(&engine, &protocol, &progress)?;
    eprintln!();
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
