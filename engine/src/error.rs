//! The engine's error type: one enum per layer, wrapped here, each with a stable machine-readable reason
//! that the service maps to a gRPC status.

use crate::face::FaceError;
use crate::image::ImageError;
use crate::runtime::ModelError;
use crate::template::TemplateError;

/// Any error the engine returns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The image could not be accepted (format, size, corruption).
    #[error(transparent)]
    Image(#[from] ImageError),
    /// A model or the ONNX runtime could not be loaded or run.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The image was decoded but gave no usable face.
    #[error(transparent)]
    Face(#[from] FaceError),
    /// A template could not be decoded or compared.
    #[error(transparent)]
    Template(#[from] TemplateError),
}

impl Error {
    /// A stable, upper-case reason code (e.g. `NO_FACE`, `IMAGE_TOO_LARGE`) for APIs and audit logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Image(e) => e.reason(),
            Error::Model(e) => e.reason(),
            Error::Face(e) => e.reason(),
            Error::Template(e) => e.reason(),
        }
    }

    /// True when the caller's input is at fault (a client error), false for server-side faults.
    pub fn is_input_error(&self) -> bool {
        !matches!(self, Error::Model(_))
    }
}

/// Result alias for engine operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
