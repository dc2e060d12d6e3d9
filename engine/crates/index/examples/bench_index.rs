//! Runs the index bench table (what `sinhtrac bench index` will call).
//!
//! ```text
//! OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 cargo run -p sinhtrac-index --release --features faiss \
//!   --example bench_index -- --n 1000000 --dim 128 --data clustered --threads 1 --json out.json
//! ```

use std::path::PathBuf;

#[cfg(feature = "faiss")]
use sinhtrac_index::bench::ExtraMethods;
use sinhtrac_index::bench::{run, BenchSpec, DataKind};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut spec = BenchSpec::default();
    let mut json: Option<PathBuf> = None;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let v = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--n" => spec.n = v.parse()?,
            "--dim" => spec.dim = v.parse()?,
            "--data" => {
                spec.data = match v.as_str() {
                    "random" => DataKind::Random,
                    "clustered" => DataKind::Clustered {
                        samples_per_identity: 4,
                    },
                    other => return Err(format!("--data {other}: random|clustered").into()),
                }
            }
            "--samples-per-identity" => {
                spec.data = DataKind::Clustered {
                    samples_per_identity: v.parse()?,
                }
            }
            "--threads" => spec.threads = v.parse()?,
            "--queries" => spec.queries = v.parse()?,
            "--batch1-queries" => spec.batch1_queries = v.parse()?,
            "--vectors" => spec.vectors = Some(PathBuf::from(v)),
            "--json" => json = Some(PathBuf::from(v)),
            "--hnsw-max-rows" => spec.hnsw_max_rows = v.parse()?,
            "--no-faiss" => {
                spec.faiss = false;
                i += 1;
                continue;
            }
            other => return Err(format!("unknown flag {other}").into()),
        }
        i += 2;
    }
    #[cfg(feature = "faiss")]
    let extra: Option<ExtraMethods<'_>> = if spec.faiss {
        Some(&sinhtrac_index::ann::bench_methods)
    } else {
        None
    };
    #[cfg(not(feature = "faiss"))]
    let extra = None;
    let mut table = run(&spec, extra)?;
    for var in ["OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"] {
        table.notes.push(format!(
            "{var}={}",
            std::env::var(var).unwrap_or_else(|_| "unset".into())
        ));
    }
    println!("{}", table.to_markdown());
    if let Some(p) = json {
        std::fs::write(&p, serde_json::to_vec_pretty(&table)?)?;
    }
    Ok(())
}
