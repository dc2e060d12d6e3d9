//! The high-recall approximate tier without FAISS: every row scored by a 4-bit PQ fast-scan
//! ([`crate::quant::pq4`], 32 bytes per 128-d row, scanned by [`crate::simd::Pq4ScanFn`]), the best
//! `k × rerank_factor` re-scored exactly from the [`FlatIndex`].
//!
//! Every row is scored, so recall does not depend on the gallery being clustered (on face-like data
//! the top 10 are mostly isotropic impostors, which partitioning misses). The rows are split over the
//! rayon threads, and the queries of a batch share each pass over the codes. The index is derived from the
//! flat index's rows and rebuilt from them (a few seconds per million rows); it remembers the
//! [`FlatIndex::fingerprint`] it was built from and refuses a changed flat index.
//!
//! ```
//! use sinhtrac_index::fast_scan::{FastScanConfig, FastScanIndex};
//! use sinhtrac_index::{Codec, FlatConfig, FlatIndex, SearchParams};
//! let dim = 8;
//! let mut flat = FlatIndex::new(FlatConfig::new(dim, Codec::F32))?;
//! let vectors: Vec<f32> = (0..400 * dim).map(|i| ((i * 7919 % 211) as f32) - 105.0).collect();
//! flat.extend(&(0..400).collect::<Vec<u64>>(), &vectors, None)?;
//! let tier = FastScanIndex::build(&flat, &FastScanConfig::default())?;
//! let hits = tier.search_batch(&flat, &vectors[17 * dim..18 * dim], 1, &SearchParams::default())?;
//! assert_eq!(hits[0][0].id, 17);
//! # Ok::<(), sinhtrac_index::IndexError>(())
//! ```

use rayon::prelude::*;

use crate::flat::topk::Scored;
use crate::quant::pq4::{pack_block, Pq4Codebook, QueryLut, CENTROIDS};
use crate::simd::{kernels, PQ4_BLOCK};
use crate::{Filter, FlatIndex, Hit, IndexError, Result, SearchParams};

/// How to build and search a [`FastScanIndex`].
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FastScanConfig {
    /// Candidates per result re-scored exactly (`k × rerank_factor` in all).
    pub rerank_factor: usize,
    /// Rows sampled (strided) to train the codebook.
    pub train_rows: usize,
    /// k-means rounds.
    pub iterations: usize,
    /// k-means seed.
    pub seed: u64,
}

/// Candidates per result the tier re-scores by default: recall@10 1.000 on 1M face-like 128-d
/// vectors (`bench_index`), where ×50 gave 0.993–0.996.
pub const DEFAULT_RERANK: usize = 100;

impl Default for FastScanConfig {
    fn default() -> Self {
        FastScanConfig {
            rerank_factor: DEFAULT_RERANK,
            train_rows: 65_536,
            iterations: 20,
            seed: 0x5eed_f00d,
        }
    }
}

/// Blocks scanned per kernel call: 64 × 32 rows, whose 4 KiB of sums stay in L1.
const SCAN_BLOCKS: usize = 64;

/// Queries sharing one pass over the codes (larger batches are searched in groups of this many).
const QUERY_GROUP: usize = 64;

/// 4-bit PQ codes of every row of a flat index, in the fast-scan block layout.
pub struct FastScanIndex {
    cfg: FastScanConfig,
    book: Pq4Codebook,
    /// `ceil(rows / 32)` blocks of `m × 16` bytes.
    blocks: Vec<u8>,
    rows: usize,
    fingerprint: u64,
}

impl FastScanIndex {
    /// Trains the codebook on a strided sample of `flat`'s rows and encodes every row (tombstoned
    /// rows too: they are filtered at search). `flat` must hold exact f32 rows (F32 codes or
    /// `keep_f32`), which the re-rank scores from, at least 16 rows, and a dimension that is a
    /// multiple of 4.
    pub fn build(flat: &FlatIndex, cfg: &FastScanConfig) -> Result<Self> {
        let (dim, n) = (flat.dim(), flat.rows());
        if n == 0 {
            return Err(IndexError::InvalidArgument(
                "cannot build a fast-scan index over 0 rows".into(),
            ));
        }
        if !flat.has_exact() {
            return Err(IndexError::InvalidArgument(
                "the fast-scan tier re-ranks from exact f32 rows: use F32 codes or keep_f32".into(),
            ));
        }
        let sample = flat.strided_sample(cfg.train_rows.max(CENTROIDS));
        let book = Pq4Codebook::train(&sample, dim, cfg.iterations, cfg.seed)?;
        let m = book.subquantizers();
        let block_bytes = m * 16;
        let mut blocks = vec![0u8; n.div_ceil(PQ4_BLOCK) * block_bytes];
        blocks
            .par_chunks_mut(block_bytes)
            .enumerate()
            .for_each(|(b, out)| {
                let r0 = b * PQ4_BLOCK;
                let r1 = (r0 + PQ4_BLOCK).min(n);
                let mut values = vec![0.0f32; (r1 - r0) * dim];
                flat.decode_rows(r0..r1, &mut values);
                let mut codes = vec![0u8; (r1 - r0) * m];
                for (v, c) in values.chunks_exact(dim).zip(codes.chunks_exact_mut(m)) {
                    book.encode(v, c);
                }
                pack_block(&codes, m, out);
            });
        Ok(FastScanIndex {
            cfg: cfg.clone(),
            book,
            blocks,
            rows: n,
            fingerprint: flat.fingerprint(),
        })
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &FastScanConfig {
        &self.cfg
    }

    /// Whether it was built from exactly these rows.
    pub fn is_fresh_for(&self, flat: &FlatIndex) -> bool {
        self.rows == flat.rows() && self.fingerprint == flat.fingerprint()
    }

    /// Bytes held (codes and codebook).
    pub fn memory_bytes(&self) -> usize {
        self.blocks.len() + self.book.subquantizers() * 16 * 2 * 4
    }

    /// Bytes of codes one query scans.
    pub fn bytes_scanned(&self) -> usize {
        self.blocks.len()
    }

    /// The `k` best live rows passing `params.filter` for each query, scored exactly, best first.
    pub fn search_batch(
        &self,
        flat: &FlatIndex,
        queries: &[f32],
        k: usize,
        params: &SearchParams,
    ) -> Result<Vec<Vec<Hit>>> {
        if !self.is_fresh_for(flat) {
            return Err(IndexError::InvalidArgument(
                "fast-scan index is stale for this flat index: rebuild it".into(),
            ));
        }
        let dim = flat.dim();
        if queries.len() > QUERY_GROUP * dim && queries.len().is_multiple_of(dim) {
            // Large batches in groups, so that the per-query candidate buffers stay small.
            let mut out = Vec::with_capacity(queries.len() / dim);
            for group in queries.chunks(QUERY_GROUP * dim) {
                out.extend(self.search_batch(flat, group, k, params)?);
            }
            return Ok(out);
        }
        let p = flat.prepare(queries)?;
        if k == 0 {
            return Ok(vec![Vec::new(); p.nq]);
        }
        let kc = k
            .saturating_mul(self.cfg.rerank_factor.max(1))
            .clamp(1, self.rows);
        let block_bytes = self.book.subquantizers() * 16;
        let nb = self.blocks.len() / block_bytes;
        // The rows in as many parts as there are threads; each part passes over its codes once for
        // the whole batch (64 blocks at a time, 64 KiB that stay in cache while every query is
        // scored against them), so a batch costs one pass over memory, not one per query.
        let parts = rayon::current_num_threads().clamp(1, nb.div_ceil(SCAN_BLOCKS));
        let per_part = nb.div_ceil(parts);
        let luts: Vec<QueryLut> = p.f32.chunks_exact(dim).map(|q| self.book.lut(q)).collect();
        // Each part keeps every query's best kc, so their union holds the best kc of all rows and
        // the answer does not depend on how many threads split the scan.
        let per_part_found: Vec<Vec<Vec<u64>>> = (0..parts)
            .into_par_iter()
            .map(|part| {
                let b0 = part * per_part;
                let b1 = (b0 + per_part).min(nb);
                self.scan(&luts, b0..b1, kc, flat, params.filter)
            })
            .collect();
        (0..p.nq)
            .into_par_iter()
            .map(|q| {
                let mut found: Vec<u64> = per_part_found
                    .iter()
                    .flat_map(|part| part[q].iter().copied())
                    .collect();
                // The best kc of the union by the whole key (sum, then lower row), with no running
                // threshold, so equal sums are settled by row whatever the split.
                best_first(&mut found, kc);
                let mut cands: Vec<Scored> = found
                    .into_iter()
                    .map(|key| {
                        let (sum, row) = unpack(key);
                        Scored {
                            score: luts[q].score(sum),
                            row,
                        }
                    })
                    .collect();
                flat.rerank(&p, q, &mut cands);
                cands.truncate(k);
                Ok::<_, IndexError>(
                    cands
                        .into_iter()
                        .filter_map(|s| {
                            flat.id_of_row(s.row as usize)
                                .map(|id| Hit { id, score: s.score })
                        })
                        .collect(),
                )
            })
            .collect()
    }

    /// Each query's best `kc` live rows of `blocks` by approximate score, as packed (sum, row) keys.
    fn scan(
        &self,
        luts: &[QueryLut],
        blocks: std::ops::Range<usize>,
        kc: usize,
        flat: &FlatIndex,
        filter: Filter,
    ) -> Vec<Vec<u64>> {
        let scan = kernels().pq4_scan;
        let block_bytes = self.book.subquantizers() * 16;
        let mut sums = vec![0u16; SCAN_BLOCKS * PQ4_BLOCK];
        let mut best: Vec<Collector> = luts.iter().map(|_| Collector::new(kc)).collect();
        let mut b = blocks.start;
        while b < blocks.end {
            let e = (b + SCAN_BLOCKS).min(blocks.end);
            let codes = &self.blocks[b * block_bytes..e * block_bytes];
            for (lut, best) in luts.iter().zip(best.iter_mut()) {
                let out = &mut sums[..(e - b) * PQ4_BLOCK];
                scan(codes, &lut.bytes, out);
                for (i, block) in out.chunks_exact(PQ4_BLOCK).enumerate() {
                    // Once the threshold has risen, most blocks hold no row above it and the few
                    // that do hold one or two: find them with one vectorisable pass, visit only those.
                    let t = best.threshold;
                    let above = block
                        .iter()
                        .enumerate()
                        .fold(0u32, |m, (j, &s)| m | (((s as i32 > t) as u32) << j));
                    let r0 = (b + i) * PQ4_BLOCK;
                    let mut rest = above;
                    while rest != 0 {
                        let j = rest.trailing_zeros() as usize;
                        rest &= rest - 1;
                        let row = r0 + j;
                        if row < self.rows && flat.passes(row, filter) {
                            best.offer(block[j], row as u32);
                        }
                    }
                }
            }
            b = e;
        }
        best.into_iter().map(Collector::finish).collect()
    }
}

/// A (kernel sum, row) pair as one integer: larger is better, equal sums go to the lower row.
fn pack(sum: u16, row: u32) -> u64 {
    ((sum as u64) << 32) | (!row) as u64
}

fn unpack(key: u64) -> (u16, u32) {
    ((key >> 32) as u16, !(key as u32))
}

/// Keeps the `k` largest keys, in no particular order.
fn best_first(keys: &mut Vec<u64>, k: usize) {
    if keys.len() > k && k > 0 {
        keys.select_nth_unstable_by(k - 1, |a, b| b.cmp(a));
        keys.truncate(k);
    }
}

/// Keeps the best `k` keys of rows offered in ascending row order: candidates above the running
/// threshold are buffered, and when the buffer reaches 2k it is cut to the best k and the threshold
/// rises to the k-th sum. A later row with a sum equal to the threshold has a higher row than every
/// kept row of that sum, so dropping it keeps exactly the best k by key.
struct Collector {
    k: usize,
    threshold: i32,
    buf: Vec<u64>,
}

impl Collector {
    fn new(k: usize) -> Self {
        Collector {
            k: k.max(1),
            threshold: -1,
            buf: Vec::with_capacity(2 * k.max(1)),
        }
    }

    fn offer(&mut self, sum: u16, row: u32) {
        if sum as i32 > self.threshold {
            self.buf.push(pack(sum, row));
            if self.buf.len() >= 2 * self.k {
                self.cut();
            }
        }
    }

    fn cut(&mut self) {
        if self.buf.len() > self.k {
            best_first(&mut self.buf, self.k);
            self.threshold = self.buf.iter().min().map_or(0, |&x| unpack(x).0 as i32);
        }
    }

    fn finish(mut self) -> Vec<u64> {
        self.cut();
        self.buf
    }
}
