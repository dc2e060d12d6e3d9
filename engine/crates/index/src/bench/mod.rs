//! Data generators, vector readers, a bandwidth probe and the index bench table
//! (behind the `sinhtrac bench index` CLI).
//!
//! ```
//! use sinhtrac_index::bench::{run, BenchSpec, DataKind};
//! let spec = BenchSpec { n: 2000, dim: 16, data: DataKind::Clustered { samples_per_identity: 4 },
//!     queries: 8, batch1_queries: 4, bandwidth_bytes: 1 << 20, ..BenchSpec::default() };
//! let table = run(&spec, None).unwrap();
//! assert!(table.rows.iter().any(|r| r.method == "flat-f32" && r.recall_at_10 == 1.0));
//! println!("{}", table.to_markdown());
//! ```

pub mod bandwidth;
pub mod gen;
pub mod io;

use std::path::PathBuf;
use std::time::Instant;

use crate::error::{IndexError, Result};
use crate::fast_scan::{FastScanConfig, FastScanIndex, DEFAULT_RERANK};
use crate::flat::{FlatConfig, FlatIndex, Hit, SearchParams};
use crate::quant::Codec;
use crate::simd::SimdLevel;

/// Which synthetic data to generate.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum DataKind {
    /// Isotropic random unit vectors (queries: fresh random vectors).
    Random,
    /// Face-like clusters (queries: fresh samples of enrolled identities).
    Clustered {
        /// Samples per identity.
        samples_per_identity: usize,
    },
}

/// What to bench.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BenchSpec {
    /// Gallery size (ignored with `vectors`).
    pub n: usize,
    /// Dimension (ignored with `vectors`).
    pub dim: usize,
    /// Synthetic data kind.
    pub data: DataKind,
    /// Vectors from a `.fvecs` / `.npy` file instead (queries: the last `queries` rows, held out).
    pub vectors: Option<PathBuf>,
    /// Queries for recall and batch throughput.
    pub queries: usize,
    /// Queries timed one at a time for batch-1 latency.
    pub batch1_queries: usize,
    /// Batch size for throughput.
    pub batch: usize,
    /// k for recall.
    pub k: usize,
    /// Threads for search (rayon pool size).
    pub threads: usize,
    /// Seed.
    pub seed: u64,
    /// Buffer size of the bandwidth probe.
    pub bandwidth_bytes: usize,
    /// Also run the FAISS peers / ANN tier (needs the `faiss` feature).
    pub faiss: bool,
    /// Run FAISS HNSW only up to this many rows (its build takes minutes per 100k here).
    pub hnsw_max_rows: usize,
}

impl Default for BenchSpec {
    fn default() -> Self {
        BenchSpec {
            n: 1_000_000,
            dim: 128,
            data: DataKind::Clustered {
                samples_per_identity: 4,
            },
            vectors: None,
            queries: 256,
            batch1_queries: 100,
            batch: 64,
            k: 10,
            threads: 1,
            seed: 42,
            bandwidth_bytes: 512 << 20,
            faiss: true,
            hnsw_max_rows: 200_000,
        }
    }
}

/// One method's figures.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BenchRow {
    /// Method name.
    pub method: String,
    /// Build / cold-load time, seconds.
    pub build_s: f64,
    /// Memory held by the index, bytes.
    pub memory_bytes: usize,
    /// Batch-1 latency median, ms.
    pub batch1_p50_ms: f64,
    /// Batch-1 latency 99th percentile, ms.
    pub batch1_p99_ms: f64,
    /// Batch-1 latency minimum, ms (the least disturbed run on a shared box).
    pub batch1_min_ms: f64,
    /// Queries/s in batches of `spec.batch`.
    pub batch_qps: f64,
    /// Recall@1 against exact f32.
    pub recall_at_1: f64,
    /// Recall@k against exact f32.
    pub recall_at_10: f64,
    /// Largest |reported − exact| score over returned hits.
    pub max_score_error: f64,
    /// FAISS IndexFlatIP batch-1 min / ours (> 1: we are faster); None without FAISS.
    pub speedup_vs_faiss_flat_batch1: Option<f64>,
    /// Our batch qps / FAISS IndexFlatIP batch qps.
    pub speedup_vs_faiss_flat_batch: Option<f64>,
    /// Bytes one query scans (codes), when the method is a scan.
    pub bytes_scanned: Option<usize>,
    /// bytes_scanned / measured bandwidth at `threads`, ms.
    pub bandwidth_bound_ms: Option<f64>,
    /// batch1_min / bound (1.0 = at the memory floor).
    pub times_bound: Option<f64>,
}

/// The bench result.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BenchTable {
    /// The spec (n/dim as actually run).
    pub spec: BenchSpec,
    /// SIMD level in use.
    pub simd: SimdLevel,
    /// Read bandwidth, one thread, bytes/s.
    pub bandwidth_1t: f64,
    /// Read bandwidth, `spec.threads` threads, bytes/s.
    pub bandwidth_threads: f64,
    /// Per-method rows.
    pub rows: Vec<BenchRow>,
    /// Free-form notes (e.g. what was skipped).
    pub notes: Vec<String>,
}

impl BenchTable {
    /// A Markdown table.
    pub fn to_markdown(&self) -> String {
        let mut s = format!(
            "n={} dim={} data={:?} threads={} simd={:?} read bandwidth: 1 thread {:.1} GB/s, {} threads {:.1} GB/s\n\n",
            self.spec.n, self.spec.dim, self.spec.data, self.spec.threads, self.simd,
            self.bandwidth_1t / 1e9, self.spec.threads, self.bandwidth_threads / 1e9
        );
        s += "| method | build s | MiB | b1 min ms | b1 p50 ms | b1 p99 ms | batch q/s | R@1 | R@10 | max err | vs FAISS b1 (min) | vs FAISS batch | bound ms | min/bound |\n";
        s += "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
        let opt = |x: Option<f64>, p: usize| x.map_or("-".to_string(), |v| format!("{v:.p$}"));
        for r in &self.rows {
            s += &format!(
                "| {} | {:.2} | {:.0} | {:.2} | {:.2} | {:.2} | {:.0} | {:.4} | {:.4} | {:.4} | {} | {} | {} | {} |\n",
                r.method, r.build_s, r.memory_bytes as f64 / (1 << 20) as f64, r.batch1_min_ms, r.batch1_p50_ms, r.batch1_p99_ms,
                r.batch_qps, r.recall_at_1, r.recall_at_10, r.max_score_error,
                opt(r.speedup_vs_faiss_flat_batch1, 2), opt(r.speedup_vs_faiss_flat_batch, 2),
                opt(r.bandwidth_bound_ms, 2), opt(r.times_bound, 2)
            );
        }
        for n in &self.notes {
            s += &format!("\n- {n}");
        }
        s
    }
}

/// A searchable method under test (ours or a peer's).
pub trait Searcher: Sync {
    /// Top-k for a batch of queries (`nq × dim`).
    fn search(&self, queries: &[f32], k: usize) -> Result<Vec<Vec<Hit>>>;
    /// Memory held, bytes.
    fn memory_bytes(&self) -> usize;
    /// Bytes scanned per query, for scans.
    fn bytes_scanned(&self) -> Option<usize>;
}

/// A flat index with fixed search parameters, as a [`Searcher`].
pub struct FlatSearcher<'a> {
    /// The index.
    pub index: &'a FlatIndex,
    /// Parameters.
    pub params: SearchParams,
}

impl Searcher for FlatSearcher<'_> {
    fn search(&self, q: &[f32], k: usize) -> Result<Vec<Vec<Hit>>> {
        self.index.search_batch(q, k, &self.params)
    }
    fn memory_bytes(&self) -> usize {
        self.index.memory_bytes()
    }
    fn bytes_scanned(&self) -> Option<usize> {
        let c = self.index.config().codec;
        Some(self.index.rows() * self.index.dim() * c.bytes_per_value())
    }
}

/// The 4-bit PQ fast-scan tier over a flat index, as a [`Searcher`].
pub struct FastScanSearcher<'a> {
    /// The tier.
    pub tier: FastScanIndex,
    /// The flat index it re-ranks from.
    pub flat: &'a FlatIndex,
}

impl Searcher for FastScanSearcher<'_> {
    fn search(&self, q: &[f32], k: usize) -> Result<Vec<Vec<Hit>>> {
        self.tier
            .search_batch(self.flat, q, k, &SearchParams::default())
    }
    fn memory_bytes(&self) -> usize {
        self.tier.memory_bytes()
    }
    fn bytes_scanned(&self) -> Option<usize> {
        Some(self.tier.bytes_scanned())
    }
}

/// Context handed to extra (FAISS) methods.
pub struct BenchContext<'a> {
    /// Gallery, normalised, row-major; row i has id i.
    pub vectors: &'a [f32],
    /// Dimension.
    pub dim: usize,
    /// The exact f32 flat index (row i = id i).
    pub exact: &'a FlatIndex,
    /// The spec being run.
    pub spec: &'a BenchSpec,
}

/// A method under test: `(name, build seconds, searcher)`.
pub type NamedMethod<'a> = (String, f64, Box<dyn Searcher + 'a>);

/// Extra methods: given the context, returns the methods to measure.
pub type ExtraMethods<'a> = &'a dyn for<'c> Fn(&BenchContext<'c>) -> Result<Vec<NamedMethod<'c>>>;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Loads or generates the gallery and queries: `(gallery, queries, dim)`.
pub fn load_data(spec: &BenchSpec) -> Result<(Vec<f32>, Vec<f32>, usize)> {
    if let Some(path) = &spec.vectors {
        let (v, dim) = match path.extension().and_then(|e| e.to_str()) {
            Some("fvecs") => io::read_fvecs(path)?,
            Some("npy") => io::read_npy(path)?,
            _ => {
                return Err(IndexError::Format {
                    path: path.clone(),
                    msg: "expected .fvecs or .npy".into(),
                })
            }
        };
        let n = v.len() / dim;
        if n <= spec.queries {
            return Err(IndexError::InvalidArgument(format!(
                "{n} vectors, need more than {} queries",
                spec.queries
            )));
        }
        let split = (n - spec.queries) * dim;
        return Ok((v[..split].to_vec(), v[split..].to_vec(), dim));
    }
    Ok(match spec.data {
        DataKind::Random => (
            gen::random_unit(spec.n, spec.dim, spec.seed),
            gen::random_unit(spec.queries, spec.dim, spec.seed ^ 0xabcd),
            spec.dim,
        ),
        DataKind::Clustered {
            samples_per_identity,
        } => {
            let spi = samples_per_identity.max(1);
            let c = gen::clustered(spec.n.div_ceil(spi), spi, spec.dim, 0.8, spec.seed);
            let (q, _) = c.queries(spec.queries, spec.seed);
            let mut v = c.vectors;
            v.truncate(spec.n * spec.dim);
            (v, q, spec.dim)
        }
    })
}

/// Runs every method on the same vectors and returns the table. `extra` adds
/// methods (the FAISS peers when built with the `faiss` feature).
pub fn run(spec: &BenchSpec, extra: Option<ExtraMethods<'_>>) -> Result<BenchTable> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(spec.threads.max(1))
        .build()
        .map_err(|e| IndexError::InvalidArgument(format!("thread pool: {e}")))?;
    let (gallery, queries, dim) = load_data(spec)?;
    let n = gallery.len() / dim;
    let nq = queries.len() / dim;
    let ids: Vec<u64> = (0..n as u64).collect();
    let mut spec = spec.clone();
    spec.n = n;
    spec.dim = dim;
    let bw1 = bandwidth::read_bandwidth(spec.bandwidth_bytes, 1, 5)?;
    let bwt = if spec.threads > 1 {
        bandwidth::read_bandwidth(spec.bandwidth_bytes, spec.threads, 5)?
    } else {
        bw1
    };

    let build = |codec: Codec, keep: bool, simd: Option<SimdLevel>| -> Result<(FlatIndex, f64)> {
        let t = Instant::now();
        let mut cfg = FlatConfig::new(dim, codec);
        cfg.keep_f32 = keep;
        cfg.simd = simd;
        let mut ix = FlatIndex::new(cfg)?;
        pool.install(|| ix.extend(&ids, &gallery, None))?;
        Ok((ix, t.elapsed().as_secs_f64()))
    };
    let (exact, exact_build) = build(Codec::F32, false, None)?;
    let truth = pool.install(|| exact.search_batch(&queries, spec.k, &SearchParams::default()))?;
    // The stored (normalised) gallery, for exact scores of any returned id.
    let normalized = exact.validated(&gallery)?;
    let qn = exact.validated(&queries)?;

    let plain = SearchParams {
        rerank_factor: 1,
        ..Default::default()
    };
    let (scalar, scalar_b) = build(Codec::F32, false, Some(SimdLevel::Scalar))?;
    let (f16, f16_b) = build(Codec::F16, false, None)?;
    let (sq8, sq8_b) = build(
        Codec::Sq8 {
            per_dimension: false,
        },
        true,
        None,
    )?;
    let (sq8d, sq8d_b) = build(
        Codec::Sq8 {
            per_dimension: true,
        },
        false,
        None,
    )?;
    let flat =
        |index, params| -> Box<dyn Searcher + '_> { Box::new(FlatSearcher { index, params }) };
    let mut methods: Vec<NamedMethod<'_>> = vec![
        ("flat-f32".into(), exact_build, flat(&exact, plain)),
        ("flat-f32-scalar".into(), scalar_b, flat(&scalar, plain)),
        ("flat-f16".into(), f16_b, flat(&f16, plain)),
        ("flat-sq8".into(), sq8_b, flat(&sq8, plain)),
        (
            "flat-sq8+rerank4".into(),
            sq8_b,
            flat(&sq8, SearchParams::default()),
        ),
        ("flat-sq8-dim".into(), sq8d_b, flat(&sq8d, plain)),
    ];
    let mut notes = Vec::new();
    // The high-recall approximate tier (4-bit PQ fast-scan of every row + exact re-rank), at the
    // default re-rank budget and half of it.
    let fast_scan_factors = if dim.is_multiple_of(4) {
        vec![DEFAULT_RERANK / 2, DEFAULT_RERANK]
    } else {
        notes.push(format!(
            "4-bit PQ fast-scan not run: dim {dim} is not a multiple of 4"
        ));
        Vec::new()
    };
    for factor in fast_scan_factors {
        let t = Instant::now();
        let cfg = FastScanConfig {
            rerank_factor: factor,
            ..FastScanConfig::default()
        };
        let tier = pool.install(|| FastScanIndex::build(&exact, &cfg))?;
        methods.push((
            format!("ours-pq{}x4fs,rerank{factor}", dim / 2),
            t.elapsed().as_secs_f64(),
            Box::new(FastScanSearcher { tier, flat: &exact }),
        ));
    }
    let ctx = BenchContext {
        vectors: &normalized,
        dim,
        exact: &exact,
        spec: &spec,
    };
    match extra {
        Some(extra) => methods.extend(extra(&ctx)?),
        None => notes.push("FAISS peers not run (build with --features faiss)".into()),
    }

    // Recall and score error.
    let mut rows = Vec::new();
    for (name, build_s, s) in &methods {
        let res = pool.install(|| s.search(&queries, spec.k))?;
        let (mut r1, mut r10, mut err) = (0.0, 0.0, 0.0f64);
        for (q, (got, want)) in res.iter().zip(&truth).enumerate() {
            if got.first().map(|h| h.id) == want.first().map(|h| h.id) {
                r1 += 1.0;
            }
            let hit = got
                .iter()
                .filter(|h| want.iter().any(|w| w.id == h.id))
                .count();
            r10 += hit as f64 / want.len().max(1) as f64;
            for h in got {
                let row = h.id as usize;
                let e = crate::simd::scalar::dot_f32(
                    &qn[q * dim..(q + 1) * dim],
                    &normalized[row * dim..(row + 1) * dim],
                );
                err = err.max((h.score - e).abs() as f64);
            }
        }
        let bound = s.bytes_scanned().map(|b| b as f64 / bwt * 1e3);
        rows.push(BenchRow {
            method: name.clone(),
            build_s: *build_s,
            memory_bytes: s.memory_bytes(),
            batch1_p50_ms: f64::NAN,
            batch1_p99_ms: f64::NAN,
            batch1_min_ms: f64::NAN,
            batch_qps: 0.0,
            recall_at_1: r1 / nq as f64,
            recall_at_10: r10 / nq as f64,
            max_score_error: err,
            speedup_vs_faiss_flat_batch1: None,
            speedup_vs_faiss_flat_batch: None,
            bytes_scanned: s.bytes_scanned(),
            bandwidth_bound_ms: bound,
            times_bound: None,
        });
    }
    // Timings interleaved across methods (round-robin per query / per pass), so
    // on a shared box every method sees the same background load.
    let mut lat = vec![Vec::new(); methods.len()];
    for q in 0..spec.batch1_queries.min(nq) {
        for (m, (_, _, s)) in methods.iter().enumerate() {
            let t = Instant::now();
            pool.install(|| s.search(&queries[q * dim..(q + 1) * dim], spec.k))?;
            lat[m].push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    for _ in 0..3 {
        for (m, (_, _, s)) in methods.iter().enumerate() {
            let t = Instant::now();
            let mut done = 0;
            for b in queries.chunks(spec.batch.max(1) * dim) {
                pool.install(|| s.search(b, spec.k))?;
                done += b.len() / dim;
            }
            rows[m].batch_qps = rows[m]
                .batch_qps
                .max(done as f64 / t.elapsed().as_secs_f64());
        }
    }
    for (r, l) in rows.iter_mut().zip(&mut lat) {
        l.sort_by(f64::total_cmp);
        r.batch1_p50_ms = percentile(l, 0.5);
        r.batch1_p99_ms = percentile(l, 0.99);
        r.batch1_min_ms = l.first().copied().unwrap_or(f64::NAN);
        r.times_bound = r.bandwidth_bound_ms.map(|b| r.batch1_min_ms / b);
    }
    drop(methods);
    if let Some(f) = rows.iter().find(|r| r.method == "faiss-flat-ip").cloned() {
        for r in &mut rows {
            r.speedup_vs_faiss_flat_batch1 = Some(f.batch1_min_ms / r.batch1_min_ms);
            r.speedup_vs_faiss_flat_batch = Some(r.batch_qps / f.batch_qps);
        }
    }
    notes.push(
        "flat-sq8 keeps an f32 copy for re-ranking: its memory and build time include it"
            .to_string(),
    );
    Ok(BenchTable {
        spec,
        simd: exact.simd_level(),
        bandwidth_1t: bw1,
        bandwidth_threads: bwt,
        rows,
        notes,
    })
}
