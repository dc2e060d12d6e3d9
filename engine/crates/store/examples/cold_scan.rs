//! Cold-start load time: how long a fresh process takes to stream every
//! template of a large gallery out of the store into index-shaped buffers.
//!
//! ```text
//! cargo run --release -p sinhtrac-store --example cold_scan -- [--n 1000000] [--dim 128] [--db PATH] [--evict] [--compact]
//! ```
//!
//! The first run creates the gallery (`--n` subjects, one face template of
//! `--dim` f32 each) at `--db` (default: a file in the temp dir, reused by
//! later runs). `--evict` drops the file's pages from the OS page cache
//! first (via Python's `os.posix_fadvise`, only for this file), so the scan
//! reads from disk rather than memory. `--compact` also times a compaction
//! after 1,000 deletes. Timings are printed, not asserted.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Instant;

use sinhtrac_store::{Modality, NewSubject, NewTemplate, ScanFilter, Store};

const TENANT: &str = "bench";
const MODEL: &str = "bench-f32";

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn vector(i: usize, dim: usize) -> Vec<u8> {
    // Cheap deterministic values; the store never looks inside.
    let mut x = (i as u32).wrapping_mul(2_654_435_761) | 1;
    let mut out = Vec::with_capacity(dim * 4);
    for _ in 0..dim {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let v = (x as f32 / u32::MAX as f32) - 0.5;
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

fn populate(store: &Store, n: usize, dim: usize) -> Result<(), Box<dyn std::error::Error>> {
    let t = Instant::now();
    let chunk = 10_000;
    for start in (0..n).step_by(chunk) {
        let items: Vec<NewSubject> = (start..(start + chunk).min(n))
            .map(|i| NewSubject {
                subject_id: format!("{i:012}"),
                templates: vec![NewTemplate::face(MODEL, vector(i, dim), 0.9)],
                ..Default::default()
            })
            .collect();
        let mut failed = 0;
        store.enroll_batch(TENANT, &items, chunk, |_, r| {
            if r.is_err() {
                failed += 1;
            }
        })?;
        if failed > 0 {
            return Err(format!("{failed} enrolments failed").into());
        }
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "populated {n} subjects x 1 template ({dim} f32) in {s:.1} s ({:.0} enrolments/s, 10k per transaction)",
        n as f64 / s
    );

    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = arg(&args, "--n").map_or(Ok(1_000_000), |v| v.parse())?;
    let dim: usize = arg(&args, "--dim").map_or(Ok(128), |v| v.parse())?;
    let db = arg(&args, "--db").map_or_else(
        || std::env::temp_dir().join(format!("sinhtrac-cold-scan-{n}x{dim}.db")),
        PathBuf::from,
    );
    {
        let store = Store::open(&db)?;
        let have = store.stats(TENANT)?.face_templates as usize;
        if have != n {
            if have != 0 {
                return Err(format!(
                    "{} holds {have} templates, not {n}: remove it",
                    db.display()
                )
                .into());
            }
            populate(&store, n, dim)?;
        }
        store.close()?;
    }
    let size = std::fs::metadata(&db)?.len();
    if args.iter().any(|a| a == "--evict") {
        let status = std::process::Command::new("python3")
            .args([
                "-c",
                "import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.posix_fadvise(fd,0,0,os.POSIX_FADV_DONTNEED)",
            ])
            .arg(&db)
            .status()?;
        println!("evicted the file from the page cache: {}", status.success());
    }

    // What an index loader does at start-up: open, stream, copy into one
    // contiguous vector buffer plus a key column.
    let t = Instant::now();
    let store = Store::open(&db)?;
    let opened = t.elapsed();
    let mut keys: Vec<i64> = Vec::with_capacity(n);
    let mut vectors: Vec<f32> = Vec::with_capacity(n * dim);
    let mut bad = 0u64;
    let filter = ScanFilter {
        tenant: Some(TENANT),
        modality: Modality::Face,
        model_id: MODEL,
    };
    let summary = store.scan(&filter, |t| {
        if t.data.len() != dim * 4 {
            bad += 1;
            return ControlFlow::Continue(());
        }
        keys.push(t.key.0);
        vectors.extend(
            t.data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        );
        ControlFlow::Continue(())
    })?;
    let total = t.elapsed().as_secs_f64();
    println!(
        "cold scan: {} rows ({} MB file) in {total:.2} s (open {:.0} ms) = {:.0} rows/s, {:.0} MB/s of vectors; generation {}; bad rows {bad}",
        summary.rows,
        size / 1_000_000,
        opened.as_secs_f64() * 1e3,
        summary.rows as f64 / total,
        (vectors.len() * 4) as f64 / total / 1e6,
        summary.generation.0,
    );
    drop((keys, vectors));

    // For comparison: the same scan touching the bytes but copying nothing,
    // then the other per-tenant read paths on this gallery size.
    let t = Instant::now();
    let mut checksum = 0u64;
    let summary = store.scan(&filter, |t| {
        checksum = checksum.wrapping_add(t.data.len() as u64 + u64::from(t.data[0]));
        ControlFlow::Continue(())
    })?;
    println!(
        "scan without copying: {} rows in {:.2} s (checksum {checksum})",
        summary.rows,
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let stats = store.stats(TENANT)?;
    println!(
        "stats: {} subjects in {:.0} ms",
        stats.subjects,
        t.elapsed().as_secs_f64() * 1e3
    );
    let t = Instant::now();
    let page = store.list(TENANT, 100, Some("c1.303030303030353030303030"))?;
    println!(
        "list page of {} in {:.1} ms",
        page.subjects.len(),
        t.elapsed().as_secs_f64() * 1e3
    );

    if args.iter().any(|a| a == "--compact") {
        // Delete 1,000 subjects, compact (purge + checkpoint + VACUUM), and
        // enrol them again so the gallery keeps its size for the next run.
        let step = (n / 1000).max(1);
        let ids: Vec<usize> = (0..n).step_by(step).take(1000).collect();
        for i in &ids {
            store.delete(TENANT, &format!("{i:012}"))?;
        }
        let t = Instant::now();
        let report = store.compact()?;
        println!(
            "compact after {} deletes: {:.1} s ({report:?})",
            ids.len(),
            t.elapsed().as_secs_f64()
        );
        let items: Vec<NewSubject> = ids
            .iter()
            .map(|&i| NewSubject {
                subject_id: format!("{i:012}"),
                templates: vec![NewTemplate::face(MODEL, vector(i, dim), 0.9)],
                ..Default::default()
            })
            .collect();
        store.enroll_batch(TENANT, &items, 1000, |_, r| {
            if let Err(e) = r {
                eprintln!("re-enrol failed: {e}");
            }
        })?;
    }
    Ok(())
}
