//! Engine errors → gRPC statuses with a machine-readable reason.
//!
//! Each status carries a `google.rpc.ErrorInfo` detail (domain `sinhtrac.v1`, reason = an
//! [`ErrorReason`] name) and the same reason in the `x-sinhtrac-reason` trailer. Server-side faults
//! (model runtime, storage) are INTERNAL with a generic message: their details go to the log, not to
//! the caller.

use std::collections::HashMap;

use sinhtrac_engine::gallery::GalleryError;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

pub use crate::proto::ErrorReason as Reason;

/// ErrorInfo domain.
pub const DOMAIN: &str = "sinhtrac.v1";
/// Trailer carrying the reason name.
pub const REASON_TRAILER: &str = "x-sinhtrac-reason";

/// A status with a reason.
pub fn status(code: Code, reason: Reason, message: impl Into<String>) -> Status {
    let mut s = Status::with_error_details(
        code,
        message,
        ErrorDetails::with_error_info(
            reason.as_str_name(),
            DOMAIN,
            HashMap::<String, String>::new(),
        ),
    );
    if let Ok(v) = reason.as_str_name().parse() {
        s.metadata_mut().insert(REASON_TRAILER, v);
    }
    s
}

/// INVALID_ARGUMENT / INVALID_REQUEST.
pub fn invalid(message: impl Into<String>) -> Status {
    status(Code::InvalidArgument, Reason::InvalidRequest, message)
}

/// The reason carried by a status, if any (clients and tests).
pub fn reason_of(s: &Status) -> Option<String> {
    if let Some(info) = s.get_details_error_info() {
        return Some(info.reason);
    }
    s.metadata()
        .get(REASON_TRAILER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// A server-side fault: logged with its detail, sent as INTERNAL without it.
pub fn internal(detail: &dyn std::fmt::Display) -> Status {
    tracing::error!(error = %detail, "internal error");
    status(
        Code::Internal,
        Reason::InternalError,
        "internal error (see server log)",
    )
}

/// Map an engine reason code (see `sinhtrac_engine::Error::reason`) to a status.
pub fn from_reason(reason: &str, message: String, input_error: bool) -> Status {
    if !input_error {
        if reason == "MODEL_UNCALIBRATED" {
            return status(Code::FailedPrecondition, Reason::ModelUncalibrated, message);
        }
        return internal(&message);
    }
    let Some(r) = Reason::from_str_name(reason) else {
        return status(Code::InvalidArgument, Reason::InvalidRequest, message);
    };
    let code = match r {
        Reason::SubjectNotFound | Reason::JobNotFound => Code::NotFound,
        Reason::SubjectExists | Reason::DuplicateIdentity => Code::AlreadyExists,
        Reason::Deadline => Code::DeadlineExceeded,
        Reason::InternalError => return internal(&message),
        _ => Code::InvalidArgument,
    };
    status(code, r, message)
}

/// An engine error.
pub fn engine(e: sinhtrac_engine::Error) -> Status {
    from_reason(e.reason(), e.to_string(), e.is_input_error())
}

/// A gallery error.
pub fn gallery(e: GalleryError) -> Status {
    from_reason(e.reason(), e.to_string(), e.is_input_error())
}

/// A template error.
pub fn template(e: sinhtrac_engine::template::TemplateError) -> Status {
    from_reason(e.reason(), e.to_string(), true)
}

/// A model (runtime/calibration) error.
pub fn model(e: sinhtrac_engine::runtime::ModelError) -> Status {
    from_reason(e.reason(), e.to_string(), false)
}

/// A fingerprint extraction error: the caller's input (image, quality, template), or the server's
/// (a model runtime failure).
pub fn fingerprint(e: sinhtrac_engine::finger::FingerprintError) -> Status {
    let input = e.reason() != "INTERNAL_ERROR";
    from_reason(e.reason(), e.to_string(), input)
}
