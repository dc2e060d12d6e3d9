//! sinhtrac-index: the 1:N matcher.
//!
//! Roles, bottom up (FAISS/qdrant layout):
//! * [`simd`]: inner-product kernels (f32, f16, int8) — scalar reference, AVX2+FMA,
//!   run-time dispatch, `SINHTRAC_SIMD=scalar` to force the reference.
//! * [`quant`]: codecs for stored vectors (f32, f16, symmetric int8).
//! * [`flat`]: [`FlatIndex`], exact search over one aligned structure-of-arrays
//!   store: ids, tombstones, tag filters, top-k and threshold search, blocked
//!   multi-query scan, rayon across shards, optional exact re-rank of int8/f16.
//! * [`sweep`]: duplicate sweep, all pairs above a threshold, tiled, resumable.
//! * [`bench`]: data generators, vector file readers, bandwidth probe, bench table.
//! * `ann` (cargo feature `faiss`): IVF/HNSW through FAISS with exact re-rank.
//!
//! All vectors are L2-normalised on insert (see [`Normalization`]), so scores are
//! cosine similarities.
//!
//! ```
//! use sinhtrac_index::{Codec, FlatConfig, FlatIndex, SearchParams, Tag, Filter};
//! use sinhtrac_index::bench::gen::random_unit;
//!
//! let dim = 128;
//! let data = random_unit(1000, dim, 7);
//! let ids: Vec<u64> = (0..1000).collect();
//! let tags: Vec<Tag> = (0..1000).map(|i| Tag::new((i % 2) as u16, 0)).collect();
//! let mut index = FlatIndex::new(FlatConfig::new(dim, Codec::Sq8 { per_dimension: false }).with_rerank_copy())?;
//! index.extend(&ids, &data, Some(&tags))?;
//!
//! // Batch of two queries, tenant 1 only; int8 candidates re-ranked with exact f32.
//! let queries = &data[dim * 3..dim * 5];
//! let hits = index.search_batch(queries, 5, &SearchParams::with_filter(Filter::tenant(1)))?;
//! assert_eq!(hits[0][0].id, 3);
//! assert!((hits[0][0].score - 1.0).abs() < 1e-5);
//! assert!(hits[1].iter().all(|h| h.id % 2 == 1));
//! # Ok::<(), sinhtrac_index::IndexError>(())
//! ```
#![deny(missing_docs)]

pub mod bench;
mod error;
pub mod fast_scan;
pub mod flat;
pub mod quant;
pub mod simd;
pub mod sweep;

#[cfg(feature = "faiss")]
pub mod ann;

pub use error::{IndexError, Result};
pub use flat::{Filter, FlatConfig, FlatIndex, Hit, Normalization, SearchParams, Tag};
pub use quant::Codec;
pub use simd::SimdLevel;
