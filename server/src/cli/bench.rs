//! `sinhtrac bench …`: speed, measured in one run against a peer where one exists.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Subcommand};
use rayon::prelude::*;
use serde::Serialize;
use sinhtrac_engine::face::{align, FaceEngine};
use sinhtrac_engine::image::decode;

use super::{default_dataset, write_json, GlobalArgs};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Face pipeline: per-stage median latency and images/s at 1 and 2 threads.
    Face(FaceBenchArgs),
    /// 1:N index: our flat SIMD scans (f32, f16, int8) against FAISS on the same vectors, in one run.
    Index(IndexBenchArgs),
    /// Fingerprint 1:N: MCC comparisons per second with and without pre-selection, and its recall cost.
    Finger(super::bench_finger::FingerBenchArgs),
}

#[derive(Debug, Args)]
pub struct IndexBenchArgs {
    /// Gallery size.
    #[arg(long, default_value_t = 1_000_000)]
    pub n: usize,
    /// Vector dimension.
    #[arg(long, default_value_t = 128)]
    pub dim: usize,
    /// Synthetic data: `clustered` (face-like: identities with several samples) or `random`.
    #[arg(long, default_value = "clustered")]
    pub data: String,
    /// Search threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Queries for the batch and recall measurements.
    #[arg(long, default_value_t = 128)]
    pub queries: usize,
    /// Queries timed one at a time (latency percentiles).
    #[arg(long, default_value_t = 50)]
    pub batch1_queries: usize,
    /// Use these vectors (.fvecs or .npy) instead of synthetic data.
    #[arg(long)]
    pub vectors: Option<PathBuf>,
    /// Largest gallery for which FAISS HNSW is built (its build takes minutes per 100k here).
    #[arg(long, default_value_t = 0)]
    pub hnsw_max_rows: usize,
    /// Write the table as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct FaceBenchArgs {
    /// Number of LFW images (the first image of each of the first N people, alphabetically).
    #[arg(long, default_value_t = 100)]
    pub n: usize,
    /// Repetitions of each timing (the median of per-repetition medians is reported).
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
    /// LFW folder (default: $SINHTRAC_SHARED/datasets/lfw).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Also run the Python onnxruntime + OpenCV peer (shared/peers/face_pipeline_peer.py) in this run.
    #[arg(long)]
    pub peer: bool,
    /// Python interpreter for the peer (needs onnxruntime, opencv-python-headless, numpy).
    #[arg(long, default_value = ".venv-peer/bin/python")]
    pub python: PathBuf,
    /// Write the results as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Serialize, Clone, Copy)]
struct Timing {
    median_ms: f64,
    min_ms: f64,
}

#[derive(Debug, Serialize)]
struct ThreadResult {
    threads: usize,
    mode: &'static str,
    decode: Timing,
    detect: Timing,
    align: Timing,
    embed: Timing,
    liveness_v2: Timing,
    liveness_ensemble: Timing,
    /// detect + align + embed + MiniFASNetV2 liveness on a decoded image (what the peer times).
    e2e: Timing,
    /// e2e over the whole set: images per second.
    images_per_s: f64,
}

#[derive(Debug, Serialize)]
struct FaceBench {
    images: usize,
    reps: usize,
    ours: Vec<ThreadResult>,
    peer: Option<serde_json::Value>,
    ratios: Vec<(String, f64)>,
    loadavg: String,
}

fn time_each<T>(items: &[T], reps: usize, mut f: impl FnMut(&T)) -> Timing {
    if let Some(first) = items.first() {
        f(first); // warm-up
    }
    let mut medians = Vec::new();
    let mut min = f64::INFINITY;
    for _ in 0..reps.max(1) {
        let mut t: Vec<f64> = items
            .iter()
            .map(|it| {
                let s = Instant::now();
                f(it);
                s.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        t.sort_by(f64::total_cmp);
        min = min.min(t.first().copied().unwrap_or(0.0));
        medians.push(t.get(t.len() / 2).copied().unwrap_or(0.0));
    }
    medians.sort_by(f64::total_cmp);
    Timing {
        median_ms: medians[medians.len() / 2],
        min_ms: min,
    }
}

fn bench_images(lfw: &Path, n: usize) -> anyhow::Result<Vec<PathBuf>> {
    let images = lfw.join("images");
    let mut people: Vec<PathBuf> = std::fs::read_dir(&images)
        .with_context(|| format!("reading {}", images.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    people.sort();
    let mut out = Vec::new();
    for person in people.into_iter().take(n) {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&person)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        files.sort();
        if let Some(f) = files.into_iter().next() {
            out.push(f);
        }
    }
    anyhow::ensure!(!out.is_empty(), "no images under {}", images.display());
    Ok(out)
}

fn engine(global: &GlobalArgs, intra: usize, liveness: &[&str]) -> anyhow::Result<FaceEngine> {
    let mut config = global.face_config();
    config.runtime.intra_threads = intra;
    config.liveness = Some(liveness.iter().map(|s| s.to_string()).collect());
    global.face_engine(config)
}

fn run_threads(
    global: &GlobalArgs,
    bytes: &[Vec<u8>],
    reps: usize,
    threads: usize,
    parallel_images: bool,
) -> anyhow::Result<ThreadResult> {
    let intra = if parallel_images { 1 } else { threads };
    let v2 = engine(global, intra, &["minifasnet-v2-2.7"])?;
    let ens = engine(global, intra, &["minifasnet-v2-2.7", "minifasnet-v1se-4.0"])?;
    let limits = v2.config().limits;
    let imgs: Vec<image::RgbImage> = bytes
        .iter()
        .filter_map(|b| decode(b, &limits).ok().map(|d| d.rgb))
        .collect();
    let dets: Vec<_> = imgs
        .iter()
        .filter_map(|img| {
            v2.detector
                .detect(img)
                .ok()
                .and_then(|d| v2.select(&d, img.dimensions()).ok())
                .map(|d| (img, d))
        })
        .collect();
    anyhow::ensure!(!dets.is_empty(), "no face detected in the benchmark images");
    let size = v2.embedder.input_size();
    let crops: Vec<image::RgbImage> = dets
        .iter()
        .filter_map(|(img, d)| align::align_face(img, &d.landmarks, size))
        .collect();
    let e2e = |img: &image::RgbImage| {
        if let Ok(f) = v2.align(img) {
            let _ = v2.embedder.embed(&[&f.crop]);
            let _ = v2.liveness.score(img, &f.detection.bbox);
        }
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let mut per_s = Vec::new();
    for _ in 0..reps.max(1) {
        let start = Instant::now();
        if parallel_images {
            pool.install(|| imgs.par_iter().for_each(e2e));
        } else {
            imgs.iter().for_each(e2e);
        }
        per_s.push(imgs.len() as f64 / start.elapsed().as_secs_f64());
    }
    per_s.sort_by(f64::total_cmp);
    Ok(ThreadResult {
        threads,
        mode: if parallel_images {
            "images in parallel, 1 intra-op thread each"
        } else {
            "one image at a time, intra-op threads"
        },
        decode: time_each(bytes, reps, |b| {
            let _ = decode(b, &limits);
        }),
        detect: time_each(&imgs, reps, |img| {
            let _ = v2.detector.detect(img);
        }),
        align: time_each(&dets, reps, |(img, d)| {
            let _ = align::align_face(img, &d.landmarks, size);
        }),
        embed: time_each(&crops, reps, |c| {
            let _ = v2.embedder.embed(&[c]);
        }),
        liveness_v2: time_each(&dets, reps, |(img, d)| {
            let _ = v2.liveness.score(img, &d.bbox);
        }),
        liveness_ensemble: time_each(&dets, reps, |(img, d)| {
            let _ = ens.liveness.score(img, &d.bbox);
        }),
        e2e: time_each(&imgs, reps, |img| e2e(img)),
        images_per_s: per_s[per_s.len() / 2],
    })
}

fn run_peer(python: &Path, n: usize, reps: usize) -> anyhow::Result<serde_json::Value> {
    let script = sinhtrac_engine::paths::shared_dir().join("peers/face_pipeline_peer.py");
    anyhow::ensure!(
        script.is_file(),
        "peer script not found at {}",
        script.display()
    );
    anyhow::ensure!(
        python.exists(),
        "peer python {} not found (run scripts/peer-setup.sh)",
        python.display()
    );
    let out = std::env::temp_dir().join(format!("sinhtrac-face-peer-{}.json", std::process::id()));
    let status = std::process::Command::new(python)
        .arg(&script)
        .args(["--n", &n.to_string(), "--reps", &reps.to_string(), "--out"])
        .arg(&out)
        .env("SINHTRAC_MODELS", sinhtrac_engine::paths::models_dir())
        .env("SINHTRAC_DATASETS", sinhtrac_engine::paths::datasets_dir())
        .stdout(std::process::Stdio::null())
        .status()
        .context("running the face peer")?;
    anyhow::ensure!(status.success(), "face peer failed: {status}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out)?)?;
    let _ = std::fs::remove_file(&out);
    Ok(v)
}

fn peer_f64(v: &serde_json::Value, t: &str, key: &str) -> Option<f64> {
    v.get(t)?.get(key)?.as_f64()
}

fn run_index(args: IndexBenchArgs) -> anyhow::Result<ExitCode> {
    use sinhtrac_index::bench::{BenchSpec, DataKind};
    let spec = BenchSpec {
        n: args.n,
        dim: args.dim,
        data: match args.data.as_str() {
            "random" => DataKind::Random,
            "clustered" => DataKind::Clustered {
                samples_per_identity: 4,
            },
            other => anyhow::bail!("--data {other}: expected clustered or random"),
        },
        threads: args.threads,
        queries: args.queries,
        batch1_queries: args.batch1_queries,
        vectors: args.vectors,
        hnsw_max_rows: args.hnsw_max_rows,
        faiss: cfg!(feature = "faiss"),
        ..BenchSpec::default()
    };
    #[cfg(feature = "faiss")]
    let extra: Option<sinhtrac_index::bench::ExtraMethods<'_>> =
        Some(&sinhtrac_index::ann::bench_methods);
    #[cfg(not(feature = "faiss"))]
    let extra = None;
    let mut table = sinhtrac_index::bench::run(&spec, extra)?;
    if !cfg!(feature = "faiss") {
        table
            .notes
            .push("built without the `faiss` feature: no FAISS peers in this run".into());
    }
    for var in ["OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"] {
        table.notes.push(format!(
            "{var}={}",
            std::env::var(var).unwrap_or_else(|_| "unset".into())
        ));
    }
    println!("{}", table.to_markdown());
    if let Some(path) = &args.json {
        write_json(path, &table)?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run(global: &GlobalArgs, cmd: BenchCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        BenchCommand::Index(args) => run_index(args),
        BenchCommand::Finger(args) => {
            super::bench_finger::run(args)?;
            Ok(ExitCode::SUCCESS)
        }
        BenchCommand::Face(args) => {
            let lfw = args.data.clone().unwrap_or_else(|| default_dataset("lfw"));
            let paths = bench_images(&lfw, args.n)?;
            let bytes: Vec<Vec<u8>> = paths.iter().map(std::fs::read).collect::<Result<_, _>>()?;
            eprintln!("bench face: {} LFW images, {} reps", bytes.len(), args.reps);
            let peer = if args.peer {
                Some(run_peer(&args.python, args.n, args.reps)?)
            } else {
                None
            };
            let ours = vec![
                run_threads(global, &bytes, args.reps, 1, false)?,
                run_threads(global, &bytes, args.reps, 2, false)?,
                run_threads(global, &bytes, args.reps, 2, true)?,
            ];
            let mut ratios = Vec::new();
            if let Some(p) = &peer {
                for (ours_i, t) in [(0usize, "t1"), (1, "t2"), (2, "t2")] {
                    if let Some(theirs) = peer_f64(p, t, "e2e_ort_images_per_s") {
                        ratios.push((
                            format!(
                                "images/s ours ({} thr, {}) / peer ({t})",
                                ours[ours_i].threads, ours[ours_i].mode
                            ),
                            ours[ours_i].images_per_s / theirs,
                        ));
                    }
                }
            }
            let report = FaceBench {
                images: bytes.len(),
                reps: args.reps,
                ours,
                peer,
                ratios,
                loadavg: std::fs::read_to_string("/proc/loadavg")
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
            };
            print_face_bench(&report);
            if let Some(path) = &args.json {
                write_json(path, &report)?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_face_bench(r: &FaceBench) {
    println!(
        "face pipeline, {} LFW images, median of {} reps (ms per image; min in brackets)",
        r.images, r.reps
    );
    println!(
        "  {:<44} {:>14} {:>14} {:>14} {:>14} {:>14} {:>14} {:>14} {:>10}",
        "mode", "decode", "detect", "align", "embed", "live V2", "live V2+V1SE", "e2e", "images/s"
    );
    let cell = |t: &Timing| format!("{:.2} [{:.2}]", t.median_ms, t.min_ms);
    for t in &r.ours {
        println!(
            "  {:<44} {:>14} {:>14} {:>14} {:>14} {:>14} {:>14} {:>14} {:>10.1}",
            format!("{} thr: {}", t.threads, t.mode),
            cell(&t.decode),
            cell(&t.detect),
            cell(&t.align),
            cell(&t.embed),
            cell(&t.liveness_v2),
            cell(&t.liveness_ensemble),
            cell(&t.e2e),
            t.images_per_s
        );
    }
    if let Some(p) = &r.peer {
        for t in ["t1", "t2"] {
            let g = |k: &str| {
                peer_f64(p, t, k)
                    .map(|v| format!("{v:.2}"))
                    .unwrap_or_else(|| "-".into())
            };
            println!(
                "  {:<44} {:>14} {:>14} {:>14} {:>14} {:>14} {:>14} {:>14} {:>10}",
                format!("peer python ort+cv2 ({t})"),
                p.get("jpeg_decode_ms")
                    .and_then(|v| v.as_f64())
                    .map(|v| format!("{v:.2}"))
                    .unwrap_or_default(),
                g("det_ort640_ms"),
                g("align_ms"),
                g("embed_ort_ms"),
                g("live_v2_ms"),
                "-",
                g("e2e_ort_ms"),
                g("e2e_ort_images_per_s")
            );
        }
    }
    for (what, ratio) in &r.ratios {
        println!("  ratio {what}: {ratio:.2}x");
    }
    println!("  load average at the end: {}", r.loadavg);
}
