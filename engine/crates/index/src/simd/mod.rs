//! Inner-product kernels: a scalar reference, per-ISA kernels and run-time dispatch.
//!
//! Layout follows FAISS (`distances_simd.cpp` + `simd_impl/distances_avx2.cpp` +
//! `distances_dispatch.h`): [`scalar`] is the reference every other level is tested
//! against, [`avx2`] holds the AVX2+FMA+F16C kernels, and [`Kernels`] is a table of
//! plain function pointers picked once per process by [`SimdLevel::detect`]. An
//! AVX-512 or NEON level is one more file and one more arm in [`kernels_for`].
//!
//! Set `SINHTRAC_SIMD=scalar` to force the scalar kernels (for A/B checks and to
//! rule the SIMD code out when chasing a bug).
//!
//! Two shapes of kernel exist for each element type:
//! * `dot_*`: one pair of vectors;
//! * `tile_*`: a register-blocked score tile, `nq` queries × `nr` rows, so a batch
//!   of queries shares each pass over the rows (the rows of a tile are loaded once
//!   per pair of queries instead of once per query).
//!
//! ```
//! use sinhtrac_index::simd::kernels;
//! let k = kernels();
//! let a = [0.6f32, 0.8];
//! assert!((( k.dot_f32)(&a, &a) - 1.0).abs() < 1e-6);
//! ```

mod aligned;
pub mod scalar;

#[cfg(target_arch = "x86_64")]
pub mod avx2;

pub use aligned::{AlignedBuf, Element};

use std::sync::OnceLock;

/// Name of the environment variable that overrides the detected level.
pub const SIMD_ENV: &str = "SINHTRAC_SIMD";

/// An instruction-set level for which kernels exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SimdLevel {
    /// Portable Rust, the reference implementation.
    Scalar,
    /// x86-64 AVX2 + FMA + F16C.
    Avx2,
}

impl SimdLevel {
    /// The level used by default: the best the CPU supports, unless
    /// `SINHTRAC_SIMD=scalar` forces the reference kernels. Cached per process.
    pub fn detect() -> SimdLevel {
        static LEVEL: OnceLock<SimdLevel> = OnceLock::new();
        *LEVEL.get_or_init(|| {
            let forced = std::env::var(SIMD_ENV).ok();
            match forced.as_deref().map(str::to_ascii_lowercase).as_deref() {
                Some("scalar") | Some("none") => SimdLevel::Scalar,
                _ => Self::best_available(),
            }
        })
    }

    /// The best level this CPU supports, ignoring the environment.
    pub fn best_available() -> SimdLevel {
        if SimdLevel::Avx2.is_available() {
            SimdLevel::Avx2
        } else {
            SimdLevel::Scalar
        }
    }

    /// Whether this CPU can run the level's kernels.
    pub fn is_available(self) -> bool {
        match self {
            SimdLevel::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            SimdLevel::Avx2 => avx2::is_available(),
            #[cfg(not(target_arch = "x86_64"))]
            SimdLevel::Avx2 => false,
        }
    }

    /// Every level this CPU can run (for tests and benches).
    pub fn all_available() -> Vec<SimdLevel> {
        [SimdLevel::Scalar, SimdLevel::Avx2]
            .into_iter()
            .filter(|l| l.is_available())
            .collect()
    }
}

/// Signature of a tile kernel: `(queries, rows, dim, out)`, with `queries` holding
/// `nq × dim` values, `rows` holding `nr × dim` codes and `out[q * nr + r]` receiving
/// the score of query `q` against row `r`. Panics if the lengths disagree.
pub type TileFn<Q, R, O> = fn(&[Q], &[R], usize, &mut [O]);

/// Rows per block of 4-bit PQ codes (FAISS's `bbs = 32`).
pub const PQ4_BLOCK: usize = 32;

/// Signature of a 4-bit PQ fast-scan kernel: `(codes, lut, out)`.
///
/// With `m` sub-quantisers (`m` even), `lut` holds `m × 16` bytes: `lut[s * 16 + c]` is the
/// quantised score of code `c` of sub-quantiser `s` for one query. `codes` holds blocks of
/// [`PQ4_BLOCK`] rows, `m × 16` bytes each: byte `s * 16 + j` of a block carries row `j`'s code of
/// sub-quantiser `s` in its low nibble and row `j + 16`'s in its high nibble, so one 32-byte load
/// covers two sub-quantisers of 32 rows and `pshufb` looks all of them up in two instructions.
/// `out[b * 32 + j]` receives row `j` of block `b`'s sum (wrapping u16; the caller scales the
/// table so that no sum exceeds `u16::MAX`).
pub type Pq4ScanFn = fn(&[u8], &[u8], &mut [u16]);

/// One level's kernels, as plain function pointers (cheap to copy into hot loops).
#[derive(Clone, Copy, Debug)]
pub struct Kernels {
    /// The level these kernels belong to.
    pub level: SimdLevel,
    /// Inner product of two f32 vectors.
    pub dot_f32: fn(&[f32], &[f32]) -> f32,
    /// Inner product of an f32 query with an f16 code (IEEE half bits).
    pub dot_f16: fn(&[f32], &[u16]) -> f32,
    /// Integer inner product of two int8 codes.
    pub dot_i8: fn(&[i8], &[i8]) -> i32,
    /// Score tile: f32 queries × f32 rows.
    pub tile_f32: TileFn<f32, f32, f32>,
    /// Score tile: f32 queries × f16 rows.
    pub tile_f16: TileFn<f32, u16, f32>,
    /// Score tile: int8 queries (values in −127..=127) × int8 rows, integer dot products.
    pub tile_i8: TileFn<i8, i8, i32>,
    /// 4-bit PQ fast-scan over blocks of codes ([`Pq4ScanFn`]).
    pub pq4_scan: Pq4ScanFn,
}

static SCALAR: Kernels = Kernels {
    level: SimdLevel::Scalar,
    dot_f32: scalar::dot_f32,
    dot_f16: scalar::dot_f16,
    dot_i8: scalar::dot_i8,
    tile_f32: scalar::tile_f32,
    tile_f16: scalar::tile_f16,
    tile_i8: scalar::tile_i8,
    pq4_scan: scalar::pq4_scan,
};

#[cfg(target_arch = "x86_64")]
static AVX2: Kernels = Kernels {
    level: SimdLevel::Avx2,
    dot_f32: avx2::dot_f32,
    dot_f16: avx2::dot_f16,
    dot_i8: avx2::dot_i8,
    tile_f32: avx2::tile_f32,
    tile_f16: avx2::tile_f16,
    tile_i8: avx2::tile_i8,
    pq4_scan: avx2::pq4_scan,
};

/// The kernels of the detected level ([`SimdLevel::detect`]).
pub fn kernels() -> &'static Kernels {
    // detect() only returns available levels, so this cannot be None.
    kernels_for(SimdLevel::detect()).unwrap_or(&SCALAR)
}

/// The kernels of a given level, or `None` if this CPU cannot run them.
pub fn kernels_for(level: SimdLevel) -> Option<&'static Kernels> {
    if !level.is_available() {
        return None;
    }
    match level {
        SimdLevel::Scalar => Some(&SCALAR),
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx2 => Some(&AVX2),
        #[cfg(not(target_arch = "x86_64"))]
        SimdLevel::Avx2 => None,
    }
}

/// Checks the tile arguments shared by every level; returns `(nq, nr)`.
pub(crate) fn tile_shape(q_len: usize, r_len: usize, dim: usize, out_len: usize) -> (usize, usize) {
    assert!(dim > 0, "tile kernel: dim must be > 0");
    assert!(
        q_len.is_multiple_of(dim) && r_len.is_multiple_of(dim),
        "tile kernel: lengths not multiples of dim"
    );
    let (nq, nr) = (q_len / dim, r_len / dim);
    assert!(out_len >= nq * nr, "tile kernel: output too short");
    (nq, nr)
}

/// Checks the 4-bit PQ scan arguments shared by every level; returns `(m, blocks)`.
pub(crate) fn pq4_shape(codes_len: usize, lut_len: usize, out_len: usize) -> (usize, usize) {
    assert!(
        lut_len > 0 && lut_len.is_multiple_of(32),
        "pq4 scan: the table must hold 16 bytes for each of an even number of sub-quantisers"
    );
    assert!(
        codes_len.is_multiple_of(lut_len),
        "pq4 scan: codes are not whole blocks"
    );
    let blocks = codes_len / lut_len;
    assert!(out_len >= blocks * PQ4_BLOCK, "pq4 scan: output too short");
    (lut_len / 16, blocks)
}
