//! # sinhtrac-engine
//!
//! The biometric engine behind the `sinhtrac` service: it turns an untrusted image into a trustworthy,
//! versioned template and compares templates, with a typed error whenever it cannot.
//!
//! Stages, one module each (data in, data out; I/O only in [`runtime`] and [`image`] decoding):
//! - [`image`]: decode JPEG/PNG/TIFF/BMP/WebP bytes under hard limits, EXIF orientation applied.
//! - [`runtime`]: the ONNX Runtime environment, the model manifest and checksum-verified sessions.
//! - [`face`]: detection (YuNet), 5-point alignment, embedding, passive liveness and quality.
//! - [`template`]: the versioned, checksummed binary template and template comparison.
//! - [`finger`]: fingerprint extraction into templates (classical, or LEADER through the ONNX Runtime),
//!   1:1 minutiae comparison; the classical extractor, MCC and FVC live in `sinhtrac-finger`.
//! - [`gallery`]: the crash-safe gallery store and the in-memory 1:N index, kept in step.
//! - [`decision`]: calibrated thresholds: a score becomes a decision at a stated false-match rate.
//! - [`fusion`]: face + fingerprint score fusion (sum of learned log-likelihood ratios) with thresholds.
//! - [`protocols`]: evaluation protocols (LFW) over datasets on disk.
//! - [`paths`]: where models, the runtime library and datasets are found.
//!
//! ```
//! use sinhtrac_engine::template::{ElementType, Modality, Template, QualitySummary};
//! // Templates are versioned bytes: encode, decode, compare.
//! let v = vec![0.6_f32, 0.8, 0.0];
//! let t = Template::face_vector("demo-model", [0u8; 32], &v, QualitySummary::default()).unwrap();
//! let bytes = t.encode();
//! let back = Template::decode(&bytes).unwrap();
//! assert_eq!(back.modality, Modality::Face);
//! assert_eq!(back.element_type(), ElementType::F32);
//! assert!((t.similarity(&back).unwrap() - 1.0).abs() < 1e-6);
//! ```
#![deny(missing_docs)]

pub mod decision;
pub mod error;
pub mod face;
pub mod finger;
pub mod fusion;
pub mod gallery;
pub mod image;
pub mod paths;
pub mod protocols;
pub mod runtime;
pub mod template;

pub use error::{Error, Result};
