//! Command-line parsing and dispatch: one module per command group.

mod bench;
mod bench_finger;
mod calibrate;
mod client;
mod demo;
mod eval;
mod face;
mod gallery;
mod load;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use sinhtrac_engine::face::{FaceConfig, FaceEngine, MultiFacePolicy};
use sinhtrac_engine::runtime::RuntimeConfig;

/// sinhtrac: biometric identity verification (face and fingerprint).
#[derive(Debug, Parser)]
#[command(name = "sinhtrac", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Folder with model weights (default: models/weights of the checkout, else $SINHTRAC_SHARED/models).
    #[arg(long, global = true, env = "SINHTRAC_MODELS")]
    pub models: Option<PathBuf>,
    /// ONNX Runtime shared library (default: installed by scripts/setup.sh).
    #[arg(long, global = true, env = "ORT_DYLIB_PATH")]
    pub ort_lib: Option<PathBuf>,
    /// Threads per model inference (1 is best when requests run in parallel).
    #[arg(long, global = true, default_value_t = 1)]
    pub intra_threads: usize,
    /// Detector model id (see models/manifest.tsv).
    #[arg(long, global = true)]
    pub detector: Option<String>,
    /// Embedder model id (see models/manifest.tsv).
    #[arg(long, global = true)]
    pub embedder: Option<String>,
    /// More log output (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

impl GlobalArgs {
    /// The face configuration these flags describe.
    pub fn face_config(&self) -> FaceConfig {
        let mut runtime = RuntimeConfig::default();
        if let Some(m) = &self.models {
            runtime.models_dir = m.clone();
        }
        if let Some(l) = &self.ort_lib {
            runtime.ort_library = l.clone();
        }
        runtime.intra_threads = self.intra_threads.max(1);
        FaceConfig {
            runtime,
            detector: self.detector.clone(),
            embedder: self.embedder.clone(),
            multi_face: MultiFacePolicy::Largest,
            ..FaceConfig::default()
        }
    }

    /// Load the face engine.
    pub fn face_engine(&self, config: FaceConfig) -> anyhow::Result<FaceEngine> {
        Ok(FaceEngine::load(config)?)
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Face pipeline on image files: detect, extract, compare, liveness.
    #[command(subcommand)]
    Face(face::FaceCommand),
    /// Accuracy evaluations on datasets.
    #[command(subcommand)]
    Eval(eval::EvalCommand),
    /// Produce calibration files (target false-match rate → threshold).
    #[command(subcommand)]
    Calibrate(calibrate::CalibrateCommand),
    /// Speed benchmarks.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// The main job on embedded defaults: compare sample faces, check liveness, evaluate LFW.
    Demo(demo::DemoArgs),
    /// Run the gRPC service.
    Serve(Box<serve::ServeArgs>),
    /// Gallery tools (synthetic galleries for load tests).
    #[command(subcommand)]
    Gallery(gallery::GalleryCommand),
    /// Call a running service.
    Client(client::ClientArgs),
    /// Load-test a running service (bounded in time and calls).
    Load(load::LoadArgs),
    /// API key helpers.
    #[command(subcommand)]
    Keys(serve::KeysCommand),
}

pub fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SINHTRAC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Face(c) => face::run(&cli.global, c),
        Command::Eval(c) => eval::run(&cli.global, c),
        Command::Calibrate(c) => calibrate::run(&cli.global, c),
        Command::Bench(c) => bench::run(&cli.global, c),
        Command::Demo(a) => demo::run(&cli.global, a),
        Command::Serve(a) => serve::run(&cli.global, *a),
        Command::Keys(c) => serve::run_keys(c),
        Command::Client(a) => client::run(a),
        Command::Gallery(c) => gallery::run(c),
        Command::Load(a) => load::run(a),
    }
}

/// Write `value` as pretty JSON to `path` ("-" = stdout).
pub fn write_json(path: &std::path::Path, value: &impl serde::Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    if path.as_os_str() == "-" {
        println!("{text}");
    } else {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, text + "\n")?;
    }
    Ok(())
}

/// Default dataset folder for a dataset name (`$SINHTRAC_SHARED/datasets/<name>`).
pub fn default_dataset(name: &str) -> PathBuf {
    sinhtrac_engine::paths::datasets_dir().join(name)
}

/// A progress bar on stderr for long evaluations (hidden when stderr is not a terminal), as the
/// `progress(done, total)` callback the engine's protocols take.
pub fn progress_bar(label: &'static str) -> impl Fn(usize, usize) + Sync {
    let style = indicatif::ProgressStyle::with_template(
        "  {msg} [{bar:32}] {pos}/{len} ({elapsed}, eta {eta})",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
    .progress_chars("=> ");
    let bar = indicatif::ProgressBar::new(0)
        .with_style(style)
        .with_message(label);
    move |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
        if done >= total {
            bar.finish();
        }
    }
}
