//! Seeded synthetic galleries.
//!
//! `clustered` imitates face embeddings: each identity has a random unit centre
//! and its samples lie at cosine `centre_cosine` (≈ 0.8) to it, in a random
//! direction orthogonal to the centre; two samples of one identity then score
//! ≈ `centre_cosine²` (≈ 0.64), different identities ≈ 0 ± 1/√dim.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

/// Rows generated per independently seeded chunk (keeps output independent of
/// the thread count).
const CHUNK: usize = 4096;

fn gaussian(rng: &mut StdRng, out: &mut [f32]) {
    // Box–Muller: two normals per pair of uniforms.
    for pair in out.chunks_mut(2) {
        let u1: f64 = rng.random::<f64>().max(1e-300);
        let u2: f64 = rng.random::<f64>();
        let r = (-2.0 * u1.ln()).sqrt();
        let t = std::f64::consts::TAU * u2;
        pair[0] = (r * t.cos()) as f32;
        if pair.len() > 1 {
            pair[1] = (r * t.sin()) as f32;
        }
    }
}

fn normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-30);
    v.iter_mut().for_each(|x| *x /= n);
}

fn chunk_rng(seed: u64, chunk: usize) -> StdRng {
    StdRng::seed_from_u64(seed ^ (chunk as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// `n` random unit vectors (`n × dim`, row-major), isotropic.
pub fn random_unit(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut v = vec![0.0f32; n * dim];
    v.par_chunks_mut(CHUNK * dim)
        .enumerate()
        .for_each(|(c, block)| {
            let mut rng = chunk_rng(seed, c);
            for row in block.chunks_mut(dim) {
                gaussian(&mut rng, row);
                normalize(row);
            }
        });
    v
}

/// A clustered (face-like) gallery.
#[derive(Clone, Debug)]
pub struct Clustered {
    /// Dimension.
    pub dim: usize,
    /// Cosine of each sample to its identity centre.
    pub centre_cosine: f32,
    /// Identity centres (`identities × dim`).
    pub centres: Vec<f32>,
    /// Samples (`identities × samples_per_identity × dim`), grouped by identity.
    pub vectors: Vec<f32>,
    /// Identity of each sample row.
    pub identity: Vec<u32>,
    seed: u64,
}

/// One sample at cosine `a` to `centre`.
fn sample_near(centre: &[f32], a: f32, rng: &mut StdRng, out: &mut [f32]) {
    gaussian(rng, out);
    let proj: f32 = out.iter().zip(centre).map(|(x, c)| x * c).sum();
    out.iter_mut().zip(centre).for_each(|(x, c)| *x -= proj * c);
    normalize(out);
    let b = (1.0 - a * a).max(0.0).sqrt();
    out.iter_mut()
        .zip(centre)
        .for_each(|(x, c)| *x = a * c + b * *x);
    normalize(out);
}

/// Generates `identities × samples_per_identity` samples.
pub fn clustered(
    identities: usize,
    samples_per_identity: usize,
    dim: usize,
    centre_cosine: f32,
    seed: u64,
) -> Clustered {
    let centres = random_unit(identities, dim, seed);
    let spi = samples_per_identity;
    let mut vectors = vec![0.0f32; identities * spi * dim];
    let per_chunk = CHUNK.div_ceil(spi.max(1));
    vectors
        .par_chunks_mut(per_chunk * spi * dim)
        .enumerate()
        .for_each(|(c, block)| {
            let mut rng = chunk_rng(seed ^ 0x5a5a, c);
            for (k, row) in block.chunks_mut(dim).enumerate() {
                let id = c * per_chunk + k / spi;
                sample_near(
                    &centres[id * dim..(id + 1) * dim],
                    centre_cosine,
                    &mut rng,
                    row,
                );
            }
        });
    let identity = (0..identities as u32)
        .flat_map(|i| std::iter::repeat_n(i, spi))
        .collect();
    Clustered {
        dim,
        centre_cosine,
        centres,
        vectors,
        identity,
        seed,
    }
}

impl Clustered {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.identity.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.identity.is_empty()
    }

    /// `nq` fresh samples of enrolled identities (probes), with their identities.
    pub fn queries(&self, nq: usize, seed: u64) -> (Vec<f32>, Vec<u32>) {
        let dim = self.dim;
        let ids = self.centres.len() / dim;
        let mut rng = StdRng::seed_from_u64(seed ^ self.seed ^ 0xfeed);
        let mut q = vec![0.0f32; nq * dim];
        let mut who = Vec::with_capacity(nq);
        for row in q.chunks_mut(dim) {
            let id = rng.random_range(0..ids.max(1));
            sample_near(
                &self.centres[id * dim..(id + 1) * dim],
                self.centre_cosine,
                &mut rng,
                row,
            );
            who.push(id as u32);
        }
        (q, who)
    }
}
