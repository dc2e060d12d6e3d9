//! Duplicate sweep over a clustered gallery with planted duplicate pairs.
//!
//! ```text
//! cargo run -p sinhtrac-index --release --example sweep_planted -- 100000 1000 sq8
//! ```
//! Plants `pairs` duplicates: a fresh sample of an enrolled identity enrolled
//! again under a new subject id (cosine ≈ 0.64 to the original, like a second
//! photo of one person); reports how many the sweep finds at threshold 0.5.

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::time::Instant;

use sinhtrac_index::bench::gen::clustered;
use sinhtrac_index::sweep::{sweep, SweepConfig, SweepOutcome};
use sinhtrac_index::{Codec, FlatConfig, FlatIndex};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args.first().map_or(Ok(100_000), |s| s.parse())?;
    let pairs: usize = args.get(1).map_or(Ok(1000), |s| s.parse())?;
    let codec = match args.get(2).map(String::as_str) {
        Some("f32") => Codec::F32,
        _ => Codec::Sq8 {
            per_dimension: false,
        },
    };
    let dim = 128;
    // One sample per identity (a gallery of distinct people) plus the planted second enrolments.
    let base = n - pairs;
    let c = clustered(base, 1, dim, 0.8, 7);
    let (dups, who) = c.queries(pairs, 8);
    let mut vectors = c.vectors.clone();
    vectors.extend_from_slice(&dups);
    let ids: Vec<u64> = (0..n as u64).collect();
    let t = Instant::now();
    let mut ix = FlatIndex::new(FlatConfig::new(dim, codec).with_rerank_copy())?;
    ix.extend(&ids, &vectors, None)?;
    eprintln!("loaded {n} in {:.2}s", t.elapsed().as_secs_f64());
    let planted: HashSet<(u64, u64)> = who
        .iter()
        .enumerate()
        .map(|(i, &src)| (src as u64, (base + i) as u64))
        .collect();
    let t = Instant::now();
    let out = sweep(
        &ix,
        &SweepConfig::new(0.5),
        |id| id,
        None,
        |p, _| {
            if p.tiles_done % 10 == 0 {
                eprintln!(
                    "{}/{} tiles, {:.1}% work, {} pairs",
                    p.tiles_done,
                    p.tiles,
                    p.work_fraction * 100.0,
                    p.pairs_found
                );
            }
            ControlFlow::Continue(())
        },
    )?;
    let secs = t.elapsed().as_secs_f64();
    let SweepOutcome::Finished(found) = out else {
        return Err("stopped".into());
    };
    let hit = found
        .iter()
        .filter(|p| planted.contains(&(p.a, p.b)))
        .count();
    println!(
        "sweep n={n} codec={} pairs_planted={pairs} found={hit} ({:.2}%) reported={} time={secs:.1}s threads={}",
        codec.name(),
        100.0 * hit as f64 / pairs as f64,
        found.len(),
        rayon::current_num_threads()
    );
    Ok(())
}
