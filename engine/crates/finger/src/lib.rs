//! Fingerprints for sinhtrac: minutiae extraction, templates, matching,
//! 1:N search and FVC evaluation, in pure Rust.
//!
//! Roles:
//! - [`Extractor`] turns an [`ImageView`] into a [`FingerTemplate`];
//!   [`ClassicalExtractor`] is the pure-Rust pipeline; the engine's LEADER
//!   ONNX extractor plugs into the same trait and shares its quality gates
//!   through [`prepare`]. All constants: [`params`].
//! - [`FingerTemplate`] is our versioned binary template
//!   ([`FingerTemplate::to_bytes`] / [`FingerTemplate::from_bytes`]);
//!   [`FingerRecord`] reads and writes ISO/IEC 19794-2:2005 and
//!   ANSI/INCITS 378-2004 multi-finger records.
//! - [`Matcher`] (MCC-Bit + LSS-R, each pair's similarity weighted by the
//!   minutiae's ridge-flow descriptors, [`FlowDescriptor`]) is built once
//!   per probe and scores candidates in `[0, 1]` from any thread; [`Gallery`] does 1:N with a
//!   coarse pre-selection and multi-finger fusion.
//! - [`fvc`] runs the FVC protocol over a folder of `NNN_M` images;
//!   [`reference`] compares an extractor's minutiae with a reference's.
//!
//! ```
//! use sinhtrac_finger::{ClassicalExtractor, Extractor, FingerError, ImageView};
//! // A flat grey image has no ridges: a typed quality error, not a panic.
//! let pixels = vec![128u8; 256 * 256];
//! let image = ImageView::new(256, 256, &pixels, 500)?;
//! let err = ClassicalExtractor.extract(&image).unwrap_err();
//! assert!(matches!(err, FingerError::LowContrast { .. }));
//! # Ok::<(), FingerError>(())
//! ```
#![deny(missing_docs)]

mod coarse;
mod error;
mod extract;
mod flow;
pub mod fvc;
mod mcc;
pub mod params;
pub mod reference;
mod search;
mod standard;
mod template;

pub use error::{FingerError, Result};
pub use extract::{
    finish_template, prepare, ClassicalExtractor, Extractor, ImageView, PreparedImage,
};
pub use flow::{FlowDescriptor, FLOW_BYTES};
pub use mcc::{Matcher, SearchTemplate, CYLINDER_BITS, CYLINDER_WORDS};
pub use search::{fuse_scores, Gallery, GalleryEntry, Hit, SearchOptions, SubjectHit};
pub use standard::{FingerPosition, FingerRecord, FingerView, Standard};
pub use template::{FingerTemplate, Minutia, MinutiaKind, MAX_TEMPLATE_MINUTIAE, TEMPLATE_VERSION};
