//! ANN tier through FAISS (cargo feature `faiss`).
//!
//! An [`AnnIndex`] is built by a FAISS factory string (`"IVF1024,Flat"`,
//! `"IVF1024,SQ8"`, `"IVF1024,PQ32"`, `"PQ64x4fs"`, `"HNSW32"`) from the same vectors as a
//! [`FlatIndex`]; FAISS labels are flat-index rows. A search asks FAISS for
//! `k × rerank_factor` candidates, drops tombstoned / filtered rows and re-scores
//! the rest exactly from the flat store. The FAISS index is a derived structure:
//! it is saved with the [`FlatIndex::fingerprint`] of the rows it was built
//! from and rebuilt when that file is missing, unreadable or stale.
//!
//! Run with `OPENBLAS_NUM_THREADS=1` (OpenBLAS threads inside OpenMP threads
//! made FAISS 3-15× slower here) and `OMP_NUM_THREADS=1` when requests already run
//! in parallel. libgomp reads these at load time, so they must be set in the
//! environment of the process, not from Rust.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use faiss::index::autotune::ParameterSpace;
use faiss::index::{IndexImpl, TryClone};
use faiss::{index_factory, Index, MetricType};
use rayon::prelude::*;

use crate::bench::{BenchContext, NamedMethod, Searcher};
use crate::error::{IndexError, Result};
use crate::flat::topk::Scored;
use crate::flat::{FlatIndex, Hit, SearchParams};

fn fe(e: faiss::error::Error) -> IndexError {
    IndexError::Faiss(e.to_string())
}

/// How to build and search an ANN index.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AnnConfig {
    /// FAISS factory string.
    pub factory: String,
    /// IVF lists probed per query (IVF only).
    pub nprobe: Option<usize>,
    /// HNSW search beam (HNSW only).
    pub ef_search: Option<usize>,
    /// Candidates fetched per result, re-ranked exactly: `k × rerank_factor` over the whole index,
    /// split evenly over the shards (each gives at least `k`), so the re-rank budget does not grow
    /// with the shard count; recall stays about that of one index (measured, not guaranteed: a
    /// shard holding more than its share of one index's candidates loses the excess).
    pub rerank_factor: usize,
    /// Rows used to train (IVF/PQ/SQ); a strided sample.
    pub train_rows: usize,
    /// FAISS indexes the rows are split over (one trained quantiser, cloned), searched in parallel:
    /// FAISS parallelises over queries only, so this is how one query uses several cores. `0`: one
    /// per rayon thread at build time.
    #[serde(default)]
    pub shards: usize,
}

impl AnnConfig {
    /// A config for a factory string with defaults (nprobe 32, efSearch 128, ×10 candidates).
    pub fn new(factory: &str) -> Self {
        AnnConfig {
            factory: factory.into(),
            nprobe: Some(32),
            ef_search: Some(128),
            rerank_factor: 10,
            train_rows: 100_000,
            shards: 0,
        }
    }
}

/// Which tier to search.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Tier {
    /// Exact flat scan.
    Flat,
    /// ANN candidates + exact re-rank.
    Ann(AnnConfig),
}

/// Candidates per result the high-recall tier re-ranks exactly.
pub const HIGH_RECALL_RERANK: usize = 100;

/// The high-recall tier's FAISS index (a build without FAISS has the same tier in
/// [`crate::fast_scan`]): product quantisation with 2 dimensions
/// per 4-bit code, scanned with FAISS's in-register lookup tables ("fast-scan",
/// 32 bytes per 128-d vector). Every row is scored, so recall does not depend
/// on the data being clustered; partitioning (IVF) could not reach 0.99 on
/// face-like data whose top 10 are mostly isotropic impostors.
pub fn high_recall_factory(dim: usize) -> String {
    format!("PQ{}x4fs", (dim / 2).max(1))
}

/// Chooses flat vs ANN. An int8 flat scan of 1M×128 takes ~15 ms per query on
/// one core of this class of machine, so below 1M rows (or when exactness is
/// demanded, `recall_target ≥ 0.999`) the flat scan wins. Above: for targets
/// ≥ 0.99 the PQ fast-scan of [`high_recall_factory`] with ×[`HIGH_RECALL_RERANK`]
/// exact re-rank (recall@10 ≥ 0.99 at 10× the f32 scan on 1M face-like vectors,
/// measured by `bench_index`); for lower targets IVF-SQ8 with √n·4 lists and
/// 1/64 of them probed, which is only as good as the data is clustered.
pub fn choose_tier(rows: usize, dim: usize, recall_target: f64) -> Tier {
    if rows < 1_000_000 || recall_target >= 0.999 {
        return Tier::Flat;
    }
    if recall_target >= 0.99 && dim.is_multiple_of(2) {
        return Tier::Ann(AnnConfig {
            nprobe: None,
            ef_search: None,
            rerank_factor: HIGH_RECALL_RERANK,
            ..AnnConfig::new(&high_recall_factory(dim))
        });
    }
    let nlist = ((rows as f64).sqrt() * 4.0).round().clamp(256.0, 65536.0) as usize;
    Tier::Ann(AnnConfig {
        nprobe: Some((nlist / 64).max(8)),
        ..AnnConfig::new(&format!("IVF{nlist},SQ8"))
    })
}

/// Sets nprobe (IVF) / efSearch (HNSW) on a FAISS index.
fn set_params(
    ix: &IndexImpl,
    factory: &str,
    nprobe: Option<usize>,
    ef: Option<usize>,
) -> Result<()> {
    let ps = ParameterSpace::new().map_err(fe)?;
    let f = factory.to_ascii_uppercase();
    if let (Some(np), true) = (nprobe, f.contains("IVF")) {
        ps.set_index_parameter(ix, "nprobe", np as f64)
            .map_err(fe)?;
    }
    if let (Some(ef), true) = (ef, f.contains("HNSW")) {
        ps.set_index_parameter(ix, "efSearch", ef as f64)
            .map_err(fe)?;
    }
    Ok(())
}

#[derive(serde::Serialize, serde::Deserialize, PartialEq)]
struct Meta {
    version: u32,
    fingerprint: u64,
    rows: usize,
    dim: usize,
    factory: String,
    /// First flat row of each shard (version 2; version 1 files hold one shard).
    #[serde(default)]
    starts: Vec<usize>,
}

/// Sidecar format written by [`AnnIndex::save`].
const META_VERSION: u32 = 2;

/// One FAISS index over a contiguous range of flat rows (its labels are offsets from `start`).
struct Shard {
    index: Mutex<IndexImpl>,
    start: usize,
}

impl Shard {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, IndexImpl>> {
        self.index
            .lock()
            .map_err(|_| IndexError::Faiss("poisoned lock".into()))
    }
}

/// A FAISS index over a flat index's rows, split in shards searched in parallel.
pub struct AnnIndex {
    cfg: AnnConfig,
    shards: Vec<Shard>,
    fingerprint: u64,
    rows: usize,
}

impl std::fmt::Debug for AnnIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnnIndex")
            .field("cfg", &self.cfg)
            .field("rows", &self.rows)
            .finish()
    }
}

fn meta_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".meta.json");
    PathBuf::from(p)
}

/// Where shard `i` is saved: `path` itself for the first (so a one-shard index is the plain FAISS
/// file it always was), `path.<i>` for the others.
fn shard_path(path: &Path, i: usize) -> PathBuf {
    if i == 0 {
        return path.to_path_buf();
    }
    let mut p = path.as_os_str().to_owned();
    p.push(format!(".{i}"));
    PathBuf::from(p)
}

impl AnnIndex {
    /// Builds from all rows of `flat` (tombstoned rows too: they are filtered at search).
    pub fn build(flat: &FlatIndex, cfg: &AnnConfig) -> Result<Self> {
        let (dim, n) = (flat.dim(), flat.rows());
        if n == 0 {
            return Err(IndexError::InvalidArgument(
                "cannot build an ANN index over 0 rows".into(),
            ));
        }
        let mut all = vec![0.0f32; n * dim];
        flat.decode_rows(0..n, &mut all);
        let mut index =
            index_factory(dim as u32, &cfg.factory, MetricType::InnerProduct).map_err(fe)?;
        if !index.is_trained() {
            let sample = flat.strided_sample(cfg.train_rows);
            let t = Instant::now();
            index.train(&sample).map_err(fe)?;
            tracing::info!(factory = %cfg.factory, rows = sample.len() / dim, secs = t.elapsed().as_secs_f64(), "ANN trained");
        }
        let count = match cfg.shards {
            0 => rayon::current_num_threads(),
            s => s,
        }
        .clamp(1, n);
        // Shard s holds rows [s·n/count, (s+1)·n/count): each an empty clone of the trained index.
        let starts: Vec<usize> = (0..=count).map(|s| s * n / count).collect();
        let mut empty: Vec<IndexImpl> = Vec::with_capacity(count);
        for _ in 1..count {
            empty.push(index.try_clone().map_err(fe)?);
        }
        empty.push(index);
        let shards = empty
            .into_par_iter()
            .zip(starts.par_windows(2))
            .map(|(mut ix, w)| {
                ix.add(&all[w[0] * dim..w[1] * dim]).map_err(fe)?;
                Ok(Shard {
                    index: Mutex::new(ix),
                    start: w[0],
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let ann = AnnIndex {
            cfg: cfg.clone(),
            shards,
            fingerprint: flat.fingerprint(),
            rows: n,
        };
        ann.apply_params()?;
        Ok(ann)
    }

    fn apply_params(&self) -> Result<()> {
        for shard in &self.shards {
            set_params(
                &*shard.lock()?,
                &self.cfg.factory,
                self.cfg.nprobe,
                self.cfg.ef_search,
            )?;
        }
        Ok(())
    }

    /// Number of FAISS indexes the rows are split over.
    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    /// The configuration.
    pub fn config(&self) -> &AnnConfig {
        &self.cfg
    }

    /// Whether this index was built from `flat`'s current rows.
    pub fn is_fresh_for(&self, flat: &FlatIndex) -> bool {
        self.rows == flat.rows() && self.fingerprint == flat.fingerprint()
    }

    /// Writes the shards (`path`, `path.1`, …) and a `<path>.meta.json` sidecar with the fingerprint
    /// of the rows and where each shard starts.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut dim = 0;
        for (i, shard) in self.shards.iter().enumerate() {
            let ix = shard.lock()?;
            dim = ix.d() as usize;
            faiss::write_index(&*ix, shard_path(path, i).to_string_lossy().as_ref()).map_err(fe)?;
        }
        // Shard files of an earlier index with more shards would only mislead a reader.
        let mut stale = self.shards.len();
        while std::fs::remove_file(shard_path(path, stale)).is_ok() {
            stale += 1;
        }
        let meta = Meta {
            version: META_VERSION,
            fingerprint: self.fingerprint,
            rows: self.rows,
            dim,
            factory: self.cfg.factory.clone(),
            starts: self.shards.iter().map(|s| s.start).collect(),
        };
        let mp = meta_path(path);
        let json = serde_json::to_vec(&meta).map_err(|e| IndexError::Format {
            path: mp.clone(),
            msg: e.to_string(),
        })?;
        std::fs::write(&mp, json).map_err(|source| IndexError::Io { path: mp, source })
    }

    /// Loads `path` if it was built from `flat`'s rows with the same factory;
    /// otherwise (missing, unreadable, stale) rebuilds and saves. Returns the
    /// index and whether it was rebuilt.
    pub fn load_or_build(flat: &FlatIndex, cfg: &AnnConfig, path: &Path) -> Result<(Self, bool)> {
        let loaded = (|| -> Option<AnnIndex> {
            let meta: Meta = serde_json::from_slice(&std::fs::read(meta_path(path)).ok()?).ok()?;
            let starts = match meta.version {
                1 => vec![0],
                META_VERSION => meta.starts.clone(),
                _ => return None,
            };
            // A configured shard count other than the saved one is a rebuild too (0: take the file's).
            let same_rows = meta.fingerprint == flat.fingerprint()
                && meta.rows == flat.rows()
                && meta.dim == flat.dim()
                && meta.factory == cfg.factory
                && (cfg.shards == 0 || cfg.shards.min(meta.rows) == starts.len());
            let valid = !starts.is_empty()
                && starts[0] == 0
                && starts.windows(2).all(|w| w[0] < w[1])
                && starts.last().is_some_and(|&s| s < meta.rows.max(1));
            if !(same_rows && valid) {
                tracing::info!(path = %path.display(), "ANN index stale, rebuilding");
                return None;
            }
            let mut shards = Vec::with_capacity(starts.len());
            for (i, &start) in starts.iter().enumerate() {
                let index =
                    faiss::read_index(shard_path(path, i).to_string_lossy().as_ref()).ok()?;
                let end = starts.get(i + 1).copied().unwrap_or(meta.rows);
                if index.ntotal() as usize != end - start {
                    tracing::info!(path = %path.display(), shard = i, "ANN shard size mismatch, rebuilding");
                    return None;
                }
                shards.push(Shard {
                    index: Mutex::new(index),
                    start,
                });
            }
            Some(AnnIndex {
                cfg: cfg.clone(),
                shards,
                fingerprint: meta.fingerprint,
                rows: meta.rows,
            })
        })();
        if let Some(a) = loaded {
            a.apply_params()?;
            return Ok((a, false));
        }
        let a = Self::build(flat, cfg)?;
        a.save(path)?;
        Ok((a, true))
    }

    /// Top-k per query: FAISS candidates, filtered, re-ranked exactly from `flat`.
    pub fn search_batch(
        &self,
        flat: &FlatIndex,
        queries: &[f32],
        k: usize,
        params: &SearchParams,
    ) -> Result<Vec<Vec<Hit>>> {
        self.search_batch_tuned(
            flat,
            queries,
            k,
            params,
            self.cfg.nprobe,
            self.cfg.ef_search,
        )
    }

    /// As [`AnnIndex::search_batch`], with nprobe / efSearch for this call.
    pub fn search_batch_tuned(
        &self,
        flat: &FlatIndex,
        queries: &[f32],
        k: usize,
        params: &SearchParams,
        nprobe: Option<usize>,
        ef_search: Option<usize>,
    ) -> Result<Vec<Vec<Hit>>> {
        if !self.is_fresh_for(flat) {
            return Err(IndexError::InvalidArgument(
                "ANN index is stale for this flat index: rebuild it".into(),
            ));
        }
        let p = flat.prepare(queries)?;
        let kc = per_shard_candidates(k, self.cfg.rerank_factor, self.rows, self.shards.len());
        // Every shard's best kc, in parallel; all of them are re-ranked exactly. The shards hold
        // random-order rows, so one index's best k × factor fall about evenly on them: the union is
        // that list but for the excess of a shard holding more than its share, which sits at the
        // tail of the list (measured: the same recall@10 as one index, `bench_index`). HNSW shards
        // build their own graphs.
        let results = self
            .shards
            .par_iter()
            .map(|shard| {
                let mut ix = shard.lock()?;
                set_params(&ix, &self.cfg.factory, nprobe, ef_search)?;
                let found = ix.search(&p.f32, kc).map_err(fe)?;
                Ok((shard.start, found))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut out = Vec::with_capacity(p.nq);
        for q in 0..p.nq {
            let mut c: Vec<Scored> = results
                .iter()
                .flat_map(|(start, res)| {
                    res.labels[q * kc..(q + 1) * kc]
                        .iter()
                        .zip(&res.distances[q * kc..(q + 1) * kc])
                        .filter_map(move |(l, &s)| l.get().map(|r| (start + r as usize, s)))
                })
                .filter(|&(r, _)| r < flat.rows() && flat.passes(r, params.filter))
                .map(|(r, s)| Scored {
                    score: s,
                    row: r as u32,
                })
                .collect();
            flat.rerank(&p, q, &mut c);
            c.truncate(k);
            out.push(
                c.into_iter()
                    .filter_map(|s| {
                        flat.id_of_row(s.row as usize)
                            .map(|id| Hit { id, score: s.score })
                    })
                    .collect(),
            );
        }
        Ok(out)
    }

    /// Size of the serialised index, bytes (FAISS has no memory accounting API).
    pub fn serialized_bytes(&self) -> Result<usize> {
        self.shards
            .iter()
            .map(|shard| serialized_len(&*shard.lock()?))
            .sum()
    }
}

/// Candidates each of `shards` shards returns: an even share of `k × factor` (over `rows` at most),
/// and at least `k`, so a shard holding all of the true top k still gives them all.
fn per_shard_candidates(k: usize, factor: usize, rows: usize, shards: usize) -> usize {
    let total = k.saturating_mul(factor.max(1)).min(rows).max(1);
    total.div_ceil(shards.max(1)).max(k).min(rows).max(1)
}

/// Size of one FAISS index serialised (written to a temporary file and measured).
fn serialized_len(ix: &IndexImpl) -> Result<usize> {
    let path =
        std::env::temp_dir().join(format!("sinhtrac-ann-size-{}-{:p}", std::process::id(), ix));
    faiss::write_index(ix, path.to_string_lossy().as_ref()).map_err(fe)?;
    let n = std::fs::metadata(&path).map_or(0, |m| m.len() as usize);
    std::fs::remove_file(&path).ok();
    Ok(n)
}

/// A FAISS index used directly as a bench peer (labels = ids = rows).
pub struct FaissPeer {
    index: Arc<Mutex<IndexImpl>>,
    factory: String,
    nprobe: Option<usize>,
    ef_search: Option<usize>,
    bytes_scanned: Option<usize>,
    memory: usize,
}

impl Searcher for FaissPeer {
    fn search(&self, q: &[f32], k: usize) -> Result<Vec<Vec<Hit>>> {
        let res = {
            let mut ix = self
                .index
                .lock()
                .map_err(|_| IndexError::Faiss("poisoned lock".into()))?;
            set_params(&ix, &self.factory, self.nprobe, self.ef_search)?;
            ix.search(q, k).map_err(fe)?
        };
        Ok(res
            .labels
            .chunks(k)
            .zip(res.distances.chunks(k))
            .map(|(l, d)| {
                l.iter()
                    .zip(d)
                    .filter_map(|(l, &s)| l.get().map(|id| Hit { id, score: s }))
                    .collect()
            })
            .collect())
    }
    fn memory_bytes(&self) -> usize {
        self.memory
    }
    fn bytes_scanned(&self) -> Option<usize> {
        self.bytes_scanned
    }
}

/// Our ANN tier as a bench method.
pub struct AnnSearcher<'a> {
    /// The ANN index.
    pub ann: Arc<AnnIndex>,
    /// The flat store it re-ranks from.
    pub flat: &'a FlatIndex,
    /// nprobe for this method.
    pub nprobe: Option<usize>,
    /// efSearch for this method.
    pub ef_search: Option<usize>,
}

impl Searcher for AnnSearcher<'_> {
    fn search(&self, q: &[f32], k: usize) -> Result<Vec<Vec<Hit>>> {
        self.ann.search_batch_tuned(
            self.flat,
            q,
            k,
            &SearchParams::default(),
            self.nprobe,
            self.ef_search,
        )
    }
    fn memory_bytes(&self) -> usize {
        self.ann.serialized_bytes().unwrap_or(0) + self.flat.memory_bytes()
    }
    fn bytes_scanned(&self) -> Option<usize> {
        None
    }
}

/// Builds a FAISS index on the bench vectors: (build seconds, index, serialised bytes).
fn faiss_build(
    ctx: &BenchContext<'_>,
    factory: &str,
) -> Result<(f64, Arc<Mutex<IndexImpl>>, usize)> {
    let t = Instant::now();
    let n = ctx.vectors.len() / ctx.dim;
    let mut index = index_factory(ctx.dim as u32, factory, MetricType::InnerProduct).map_err(fe)?;
    if !index.is_trained() {
        let stride = n.div_ceil(100_000).max(1);
        let sample: Vec<f32> = ctx
            .vectors
            .chunks(ctx.dim)
            .step_by(stride)
            .flatten()
            .copied()
            .collect();
        index.train(&sample).map_err(fe)?;
    }
    index.add(ctx.vectors).map_err(fe)?;
    let build = t.elapsed().as_secs_f64();
    let memory = serialized_len(&index)?;
    Ok((build, Arc::new(Mutex::new(index)), memory))
}

/// The FAISS peers and our ANN tier for [`crate::bench::run`]: IndexFlatIP,
/// IndexScalarQuantizer SQ8, IVF-Flat (nprobe 16 / 64), HNSW32 when
/// `n ≤ spec.hnsw_max_rows`, our IVF-SQ8 with exact re-rank (nprobe 16 / 64)
/// and the high-recall PQ fast-scan tier with exact re-rank (two factors).
pub fn bench_methods<'a>(ctx: &BenchContext<'a>) -> Result<Vec<NamedMethod<'a>>> {
    let n = ctx.vectors.len() / ctx.dim;
    let nlist = ((n as f64).sqrt()).round().clamp(16.0, 4096.0) as usize;
    let mut out: Vec<NamedMethod<'a>> = Vec::new();
    let peer =
        |index: &Arc<Mutex<IndexImpl>>, factory: &str, nprobe, ef, bpv: Option<usize>, memory| {
            FaissPeer {
                index: index.clone(),
                factory: factory.to_string(),
                nprobe,
                ef_search: ef,
                bytes_scanned: bpv.map(|b| n * ctx.dim * b),
                memory,
            }
        };
    for (name, factory, bpv) in [("faiss-flat-ip", "Flat", 4), ("faiss-sq8", "SQ8", 1)] {
        let (b, ix, m) = faiss_build(ctx, factory)?;
        out.push((
            name.into(),
            b,
            Box::new(peer(&ix, factory, None, None, Some(bpv), m)),
        ));
    }
    let ivf = format!("IVF{nlist},Flat");
    let (b, ix, m) = faiss_build(ctx, &ivf)?;
    for nprobe in [16usize, 64] {
        out.push((
            format!("faiss-ivf{nlist},flat-np{nprobe}"),
            b,
            Box::new(peer(&ix, &ivf, Some(nprobe), None, None, m)),
        ));
    }
    let timed_build = |cfg: &AnnConfig| -> Result<(Arc<AnnIndex>, f64)> {
        let t = Instant::now();
        let ann = Arc::new(AnnIndex::build(ctx.exact, cfg)?);
        Ok((ann, t.elapsed().as_secs_f64()))
    };
    let searcher = |ann: &Arc<AnnIndex>, nprobe| -> Box<dyn Searcher + 'a> {
        Box::new(AnnSearcher {
            ann: ann.clone(),
            flat: ctx.exact,
            nprobe,
            ef_search: None,
        })
    };
    // One shard per bench thread: a query of ours may use the cores the bench gives our methods.
    let shards = ctx.spec.threads.max(1);
    let (ann, b) = timed_build(&AnnConfig {
        shards,
        ..AnnConfig::new(&format!("IVF{nlist},SQ8"))
    })?;
    for nprobe in [16usize, 64] {
        out.push((
            format!("ours-ivf{nlist},sq8-np{nprobe}+rerank"),
            b,
            searcher(&ann, Some(nprobe)),
        ));
    }
    // The high-recall tier: every row scored by 4-bit PQ fast-scan, the best
    // k × factor re-ranked exactly (what `choose_tier` picks for recall ≥ 0.99).
    let fast_scan = high_recall_factory(ctx.dim);
    for factor in [HIGH_RECALL_RERANK / 2, HIGH_RECALL_RERANK] {
        let cfg = AnnConfig {
            rerank_factor: factor,
            shards,
            ..AnnConfig::new(&fast_scan)
        };
        let (ann, b) = timed_build(&cfg)?;
        out.push((
            format!("faiss-{},rerank{factor}", fast_scan.to_ascii_lowercase()),
            b,
            searcher(&ann, None),
        ));
    }
    if n <= ctx.spec.hnsw_max_rows {
        let (b, ix, m) = faiss_build(ctx, "HNSW32")?;
        out.push((
            "faiss-hnsw32-ef128".into(),
            b,
            Box::new(peer(&ix, "HNSW32", None, Some(128), None, m)),
        ));
    }
    Ok(out)
}

/// ANN self-join for galleries too large for the exact all-pairs sweep: each
/// live row asks the ANN index for its `neighbours` nearest rows, candidates are
/// re-scored exactly, and pairs of different subjects ≥ `cfg.threshold` are
/// kept (deduplicated, ranked best first). Recall is bounded by the ANN recall
/// and by `neighbours` (a row with more duplicates than that loses some).
pub fn sweep_ann(
    ann: &AnnIndex,
    flat: &FlatIndex,
    cfg: &crate::sweep::SweepConfig,
    neighbours: usize,
    subject_of: impl Fn(u64) -> u64 + Sync,
    mut progress: impl FnMut(usize, usize),
) -> Result<Vec<crate::sweep::DuplicatePair>> {
    use crate::sweep::DuplicatePair;
    if !ann.is_fresh_for(flat) {
        return Err(IndexError::InvalidArgument(
            "ANN index is stale for this flat index: rebuild it".into(),
        ));
    }
    let (n, dim) = (flat.rows(), flat.dim());
    let params = SearchParams {
        filter: cfg.filter,
        ..Default::default()
    };
    let mut seen = std::collections::HashSet::new();
    let mut pairs = Vec::new();
    let block = cfg.tile_rows.max(1);
    let mut r0 = 0;
    while r0 < n {
        let r1 = (r0 + block).min(n);
        let mut q = vec![0.0f32; (r1 - r0) * dim];
        flat.decode_rows(r0..r1, &mut q);
        let hits = ann.search_batch(flat, &q, neighbours + 1, &params)?;
        for (i, hs) in hits.iter().enumerate() {
            let row = r0 + i;
            if !flat.passes(row, cfg.filter) {
                continue;
            }
            let Some(a) = flat.id_of_row(row) else {
                continue;
            };
            for h in hs {
                if h.id == a || h.score < cfg.threshold || subject_of(h.id) == subject_of(a) {
                    continue;
                }
                let key = (a.min(h.id), a.max(h.id));
                if seen.insert(key) {
                    pairs.push(DuplicatePair {
                        a: key.0,
                        b: key.1,
                        score: h.score,
                    });
                }
            }
        }
        r0 = r1;
        progress(r1, n);
    }
    pairs.sort_by(|x, y| {
        y.score
            .total_cmp(&x.score)
            .then(x.a.cmp(&y.a))
            .then(x.b.cmp(&y.b))
    });
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_the_rerank_budget_but_each_gives_k() {
        // ×100 for top 10: 1000 candidates in all, 500 from each of two shards, 334 of three.
        assert_eq!(per_shard_candidates(10, 100, 1_000_000, 1), 1000);
        assert_eq!(per_shard_candidates(10, 100, 1_000_000, 2), 500);
        assert_eq!(per_shard_candidates(10, 100, 1_000_000, 3), 334);
        // A shard may hold the whole true top k: it always returns at least k.
        assert_eq!(per_shard_candidates(10, 2, 1_000_000, 4), 10);
        // Never more than there are rows, never zero.
        assert_eq!(per_shard_candidates(10, 100, 50, 2), 25);
        assert_eq!(per_shard_candidates(0, 100, 50, 2), 1);
    }

    #[test]
    fn policy_prefers_flat_for_small_or_exact() {
        assert_eq!(choose_tier(10_000, 128, 0.99), Tier::Flat);
        assert_eq!(choose_tier(50_000_000, 128, 0.9999), Tier::Flat);
        let Tier::Ann(cfg) = choose_tier(20_000_000, 128, 0.99) else {
            panic!("expected ANN")
        };
        assert_eq!(cfg.factory, "PQ64x4fs");
        assert_eq!(cfg.rerank_factor, HIGH_RECALL_RERANK);
        let Tier::Ann(cfg) = choose_tier(20_000_000, 128, 0.9) else {
            panic!("expected ANN")
        };
        assert!(cfg.factory.starts_with("IVF"));
        assert!(cfg.nprobe.unwrap_or(0) >= 8);
    }
}
