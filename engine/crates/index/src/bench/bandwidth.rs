//! Measured memory read bandwidth: the floor for a memory-bound scan.

use std::time::Instant;

use rayon::prelude::*;

use crate::error::{IndexError, Result};
use crate::simd::kernels;

/// Read bandwidth in bytes/s over a `bytes`-sized buffer (use ≫ last-level
/// cache, e.g. 256 MiB) with `threads` threads; best of `reps` passes. The pass
/// is a SIMD dot of the buffer with itself, i.e. one read stream, as a scan is.
pub fn read_bandwidth(bytes: usize, threads: usize, reps: usize) -> Result<f64> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(|e| IndexError::InvalidArgument(format!("thread pool: {e}")))?;
    let n = (bytes / 4).max(1024);
    // Touch every page with non-zero data so the reads hit real memory.
    let buf: Vec<f32> = (0..n).map(|i| (i % 7) as f32 * 0.25).collect();
    let k = kernels();
    let chunk = n.div_ceil(threads.max(1) * 8).max(4096);
    let mut best = f64::INFINITY;
    let mut sink = 0.0f32;
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        sink += pool.install(|| {
            buf.par_chunks(chunk)
                .map(|c| (k.dot_f32)(c, c))
                .sum::<f32>()
        });
        best = best.min(t.elapsed().as_secs_f64());
    }
    std::hint::black_box(sink);
    Ok((n * 4) as f64 / best)
}
