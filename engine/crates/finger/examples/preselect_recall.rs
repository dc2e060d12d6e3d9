//! Recall cost of the coarse pre-selection, on real FVC templates.
//!
//! Gallery: every image of the given databases (one entry per image).
//! For each probe image (left out of the gallery), compares rank-1
//! identification of the exhaustive exact search with pre-selection at
//! several shortlist sizes, and counts how many genuine mates survive the
//! shortlist. `preselect_recall <fingerprints dir>`

use rayon::prelude::*;
use sinhtrac_finger::{fvc, ClassicalExtractor, Matcher};
use std::path::PathBuf;
use std::time::Instant;

/// Exhaustive rank-1 correct, and per shortlist size: (rank-1 correct,
/// mates kept, mates in gallery).
type ProbeRow = (bool, Vec<(bool, usize, usize)>);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .ok_or("usage: preselect_recall <dir>")?;
    let mut items = Vec::new();
    for (d, db) in [
        "fvc2000/DB1_B",
        "fvc2000/DB2_B",
        "fvc2000/DB3_B",
        "fvc2000/DB4_B",
        "fvc2002/DB1_B",
    ]
    .iter()
    .enumerate()
    {
        for s in fvc::list_samples(&root.join(db))? {
            items.push((d as u32 * 1000 + s.finger, s.path));
        }
    }
    let ms: Vec<(u32, Matcher)> = items
        .par_iter()
        .filter_map(|(id, p)| {
            fvc::extract_file(&ClassicalExtractor, p, 500)
                .ok()
                .map(|t| (*id, Matcher::new(&t)))
        })
        .collect();
    let n = ms.len();
    let fractions = [0.01f32, 0.02, 0.05, 0.10, 0.20];
    // Per probe: (exhaustive rank-1 correct, per fraction: (rank-1 correct, mates kept, mates total)).
    let t0 = Instant::now();
    let rows: Vec<ProbeRow> = (0..n)
        .into_par_iter()
        .map(|p| {
            let (pid, pm) = &ms[p];
            let others: Vec<usize> = (0..n).filter(|&j| j != p).collect();
            let exact: Vec<f32> = others.iter().map(|&j| pm.score(ms[j].1.probe())).collect();
            let coarse: Vec<u32> = others
                .iter()
                .map(|&j| pm.coarse_score(ms[j].1.probe()))
                .collect();
            let best = |cands: &[usize]| {
                cands
                    .iter()
                    .copied()
                    .max_by(|&a, &b| exact[a].total_cmp(&exact[b]))
            };
            let all: Vec<usize> = (0..others.len()).collect();
            let exhaustive_ok = best(&all).map(|k| ms[others[k]].0 == *pid).unwrap_or(false);
            let mut order = all.clone();
            order.sort_by(|&a, &b| coarse[b].cmp(&coarse[a]));
            let mates = all.iter().filter(|&&k| ms[others[k]].0 == *pid).count();
            let per = fractions
                .iter()
                .map(|f| {
                    let keep = ((others.len() as f32 * f).ceil() as usize).max(1);
                    let short = &order[..keep];
                    let ok = best(short)
                        .map(|k| ms[others[k]].0 == *pid)
                        .unwrap_or(false);
                    let kept = short.iter().filter(|&&k| ms[others[k]].0 == *pid).count();
                    (ok, kept, mates)
                })
                .collect();
            (exhaustive_ok, per)
        })
        .collect();
    let secs = t0.elapsed().as_secs_f64();
    let ex = rows.iter().filter(|r| r.0).count() as f64 / n as f64;
    println!(
        "gallery {n} images, {} probes; exhaustive rank-1 {:.2}%",
        n,
        ex * 100.0
    );
    for (i, f) in fractions.iter().enumerate() {
        let ok = rows.iter().filter(|r| r.1[i].0).count() as f64 / n as f64;
        let kept: usize = rows.iter().map(|r| r.1[i].1).sum();
        let total: usize = rows.iter().map(|r| r.1[i].2).sum();
        println!(
            "shortlist {:>5.1}% ({:>3} of {}): rank-1 {:.2}% (loss {:.2} pts), mates kept {:.1}%",
            f * 100.0,
            ((n - 1) as f32 * f).ceil() as usize,
            n - 1,
            ok * 100.0,
            (ex - ok) * 100.0,
            100.0 * kept as f64 / total.max(1) as f64
        );
    }
    println!(
        "({:.1} s for {} exact + coarse comparisons on all cores)",
        secs,
        n * (n - 1)
    );
    Ok(())
}
