//! `sinhtrac bench finger`: fingerprint 1:N matching speed (comparisons per second, with and without the
//! coarse pre-selection, on 1 and 2 threads) and what the pre-selection costs in rank-1 accuracy, on real
//! FVC templates.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use rayon::prelude::*;
use serde::Serialize;
use sinhtrac_finger::{
    fvc, ClassicalExtractor, FingerPosition, Gallery, Matcher, SearchOptions, SearchTemplate,
};

use super::{default_dataset, write_json};

/// FVC databases the benchmark reads (10 fingers × 8 impressions each).
const DATABASES: [&str; 5] = [
    "fvc2000/DB1_B",
    "fvc2000/DB2_B",
    "fvc2000/DB3_B",
    "fvc2000/DB4_B",
    "fvc2002/DB1_B",
];

#[derive(Debug, Args)]
pub struct FingerBenchArgs {
    /// Gallery entries for the speed runs (the real templates cloned up to this size: the cost of a
    /// comparison depends on minutiae counts, which real templates give honestly).
    #[arg(long, default_value_t = 100_000)]
    pub n: usize,
    /// Probes timed with pre-selection (exhaustive runs use a quarter, at least 2).
    #[arg(long, default_value_t = 32)]
    pub queries: usize,
    /// FVC root (default: $SINHTRAC_SHARED/datasets/fingerprints).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Write the results as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct SpeedRow {
    threads: usize,
    mode: String,
    queries: usize,
    ms_per_search: f64,
    comparisons_per_s: f64,
}

#[derive(Debug, Serialize)]
struct RecallRow {
    shortlist_fraction: f32,
    /// Whether the refine stage (partial MCC) ran between the shortlist and the full score.
    refine: bool,
    rank1: f64,
    loss_points: f64,
}

#[derive(Debug, Serialize)]
struct FingerBench {
    templates: usize,
    gallery: usize,
    speed: Vec<SpeedRow>,
    exhaustive_rank1: f64,
    recall: Vec<RecallRow>,
    loadavg: String,
}

/// Real templates with a finger id (database × 1000 + finger).
fn real_templates(root: &std::path::Path) -> anyhow::Result<Vec<(u32, SearchTemplate)>> {
    let mut items = Vec::new();
    for (d, db) in DATABASES.iter().enumerate() {
        let dir = root.join(db);
        let samples = fvc::list_samples(&dir)?;
        anyhow::ensure!(!samples.is_empty(), "no FVC images in {}", dir.display());
        items.extend(
            samples
                .into_iter()
                .map(|s| (d as u32 * 1000 + s.finger, s.path)),
        );
    }
    Ok(items
        .par_iter()
        .filter_map(|(id, p)| {
            fvc::extract_file(&ClassicalExtractor, p, 500)
                .ok()
                .map(|t| (*id, SearchTemplate::new(&t)))
        })
        .collect())
}

/// The default passes without the refine stage: the shortlist goes straight to the full score.
fn without_refine(preselect_fraction: f32) -> SearchOptions {
    SearchOptions {
        preselect_fraction,
        refine_cylinders: 0,
        ..SearchOptions::default()
    }
}

fn time_searches(
    gallery: &Gallery,
    probes: &[Matcher],
    opts: &SearchOptions,
    threads: usize,
) -> anyhow::Result<f64> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let t0 = Instant::now();
    pool.install(|| {
        for p in probes {
            std::hint::black_box(gallery.search(p, FingerPosition::UNKNOWN, opts));
        }
    });
    Ok(t0.elapsed().as_secs_f64())
}

/// Leave-one-out rank-1 over the real templates through the real search path (the probe's own entry
/// removed from a copy of the gallery): exhaustive, and with a shortlist of each fraction, with or
/// without the refine stage, the other passes as by default.
fn recall(real: &[(u32, SearchTemplate)], fractions: &[(f32, bool)]) -> (f64, Vec<RecallRow>) {
    let mut full = Gallery::new();
    for (i, (_, t)) in real.iter().enumerate() {
        full.push(i as u64, FingerPosition::UNKNOWN, t.clone());
    }
    let n = real.len();
    let rows: Vec<(bool, Vec<bool>)> = (0..n)
        .into_par_iter()
        .map(|p| {
            let mut gallery = full.clone();
            gallery.remove(p);
            let probe = Matcher::from_search(real[p].1.clone());
            let rank1_is_mate = |opts: &SearchOptions| {
                gallery
                    .search(&probe, FingerPosition::UNKNOWN, opts)
                    .first()
                    .is_some_and(|h| real[h.entry].0 == real[p].0)
            };
            let per = fractions
                .iter()
                .map(|&(f, refine)| {
                    let opts = if refine {
                        SearchOptions::default()
                    } else {
                        without_refine(f)
                    };
                    rank1_is_mate(&SearchOptions {
                        preselect_fraction: f,
                        preselect_min: 1,
                        top_k: 1,
                        ..opts
                    })
                })
                .collect();
            (rank1_is_mate(&SearchOptions::exhaustive(1)), per)
        })
        .collect();
    let share = |c: usize| c as f64 / n.max(1) as f64;
    let exhaustive = share(rows.iter().filter(|r| r.0).count());
    let out = fractions
        .iter()
        .enumerate()
        .map(|(i, &(f, refine))| {
            let r1 = share(rows.iter().filter(|r| r.1[i]).count());
            RecallRow {
                shortlist_fraction: f,
                refine,
                rank1: r1,
                loss_points: (exhaustive - r1) * 100.0,
            }
        })
        .collect();
    (exhaustive, out)
}

pub fn run(args: FingerBenchArgs) -> anyhow::Result<()> {
    let root = args
        .data
        .clone()
        .unwrap_or_else(|| default_dataset("fingerprints"));
    let real = real_templates(&root)?;
    anyhow::ensure!(
        real.len() >= 2,
        "too few FVC templates under {}",
        root.display()
    );
    let mut gallery = Gallery::new();
    for i in 0..args.n {
        gallery.push(
            i as u64,
            FingerPosition::UNKNOWN,
            real[i % real.len()].1.clone(),
        );
    }
    // Probes spread over the databases (every 13th template).
    let probes: Vec<Matcher> = (0..args.queries.max(1))
        .map(|q| Matcher::from_search(real[(q * 13) % real.len()].1.clone()))
        .collect();
    eprintln!(
        "bench finger: {} real templates, gallery {} entries, {} probes",
        real.len(),
        args.n,
        probes.len()
    );
    let mut speed = Vec::new();
    let exhaustive_probes = &probes[..(probes.len() / 4).max(2).min(probes.len())];
    for threads in [1usize, 2] {
        for (mode, opts, qs) in [
            (
                "pre-selection 30% -> 3%, refine 0.6%, exact",
                SearchOptions::default(),
                &probes[..],
            ),
            (
                "no refine: pre-selection 30% -> 2%, exact",
                without_refine(0.02),
                &probes[..],
            ),
            (
                "exhaustive exact",
                SearchOptions::exhaustive(10),
                exhaustive_probes,
            ),
        ] {
            let secs = time_searches(&gallery, qs, &opts, threads)?;
            speed.push(SpeedRow {
                threads,
                mode: mode.to_string(),
                queries: qs.len(),
                ms_per_search: secs * 1e3 / qs.len() as f64,
                comparisons_per_s: (args.n * qs.len()) as f64 / secs,
            });
        }
    }
    let (exhaustive_rank1, recall) = recall(
        &real,
        &[
            (0.01, true),
            (0.02, true),
            (0.03, true),
            (0.05, true),
            (0.10, true),
            (0.02, false),
            (0.03, false),
        ],
    );
    let report = FingerBench {
        templates: real.len(),
        gallery: args.n,
        speed,
        exhaustive_rank1,
        recall,
        loadavg: std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
            .to_string(),
    };
    println!(
        "1:N over {} fingerprint templates (MCC, classical extractor)",
        report.gallery
    );
    println!(
        "  {:<44} {:>7} {:>12} {:>16}",
        "mode", "threads", "ms/search", "comparisons/s"
    );
    for r in &report.speed {
        println!(
            "  {:<44} {:>7} {:>12.1} {:>16.0}",
            r.mode, r.threads, r.ms_per_search, r.comparisons_per_s
        );
    }
    for t in [1usize, 2] {
        let of = |m: &str| {
            report
                .speed
                .iter()
                .find(|r| r.threads == t && r.mode.starts_with(m))
                .map_or(f64::NAN, |r| r.comparisons_per_s)
        };
        println!(
            "  pre-selection speed-up, {t} thread(s): {:.1}x",
            of("pre-selection") / of("exhaustive")
        );
    }
    println!(
        "rank-1, leave-one-out over the {} real templates: exhaustive {:.2}%",
        report.templates,
        report.exhaustive_rank1 * 100.0
    );
    for r in &report.recall {
        println!(
            "  shortlist {:>4.1}%{}: rank-1 {:.2}% (cost {:.2} points)",
            r.shortlist_fraction * 100.0,
            if r.refine { ", refine" } else { ", no refine" },
            r.rank1 * 100.0,
            r.loss_points
        );
    }
    println!("  load average: {}", report.loadavg);
    if let Some(path) = &args.json {
        write_json(path, &report)?;
    }
    Ok(())
}
