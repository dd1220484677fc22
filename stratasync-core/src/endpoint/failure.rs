//! Every failure of the sync endpoints, and the one place that decides how
//! each looks over HTTP (docs/protocol.md §3.1, §4.0, §4.3).

use super::reply::Reply;
use crate::auth::AuthError;
use crate::error::ServiceError;
use crate::log_text::clip;
use crate::request::{BearerError, BodyError, FrameworkErrorBody, ValidationFailure};
use crate::AuthRejection;
use serde::Serialize;
use std::fmt;

/// A failed request to a sync endpoint.
#[derive(Debug)]
pub(crate) enum ApiError {
    /// 400 validation failure, with the request id it is reported under.
    Invalid { failure: ValidationFailure, request_id: String },
    /// 400, 413 or 415 before validation.
    Body(BodyError),
    /// 401: no usable `Authorization` header.
    Bearer(BearerError),
    /// 401 (token refused) or 500 (groups unresolved).
    Auth(AuthError),
    /// 409, 429, 500 or 503 from a service.
    Service(ServiceError),
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Invalid { failure, .. } => fmt::Display::fmt(failure, f),
            ApiError::Body(e) => fmt::Display::fmt(e, f),
            ApiError::Bearer(e) => fmt::Display::fmt(e, f),
            ApiError::Auth(e) => fmt::Display::fmt(e, f),
            ApiError::Service(e) => fmt::Display::fmt(e, f),
        }
    }
}

#[derive(Serialize)]
pub(crate) struct ErrorOnly<'a> {
    pub(crate) error: &'a str,
}

#[derive(Serialize)]
struct ErrorWithMessage<'a> {
    error: &'a str,
    message: &'a str,
}

impl ApiError {
    fn status(&self) -> u16 {
        match self {
            ApiError::Invalid { .. } => 400,
            ApiError::Body(e) => e.status(),
            ApiError::Bearer(_) => 401,
            ApiError::Auth(AuthError::Rejected(_)) => 401,
            ApiError::Auth(AuthError::Groups(_)) => 500,
            ApiError::Service(ServiceError::BootstrapRequired) => 409,
            ApiError::Service(
                ServiceError::Storage(_)
                | ServiceError::Unavailable
                | ServiceError::Interrupted
                | ServiceError::StreamAborted,
            ) => 503,
            ApiError::Service(ServiceError::RateLimited { .. }) => 429,
            ApiError::Service(ServiceError::TooManyStreams) => 429,
            ApiError::Service(ServiceError::IndexedKeyNotAllowed { .. } | ServiceError::BatchLimitExceeded { .. }) => {
                500
            }
        }
    }

    /// The response of this failure.
    pub(crate) fn reply(&self) -> Reply {
        let status = self.status();
        match self {
            ApiError::Invalid { failure, request_id } => {
                tracing::debug!(%request_id, failure = %clip(failure), "request failed validation");
                Reply::json(status, &failure.body(request_id))
            }
            ApiError::Body(e) => {
                tracing::debug!(error = %clip(e), "request body refused");
                Reply::json(status, &e.body())
            }
            ApiError::Bearer(e) => Reply::json(status, &ErrorOnly { error: &e.to_string() }),
            ApiError::Auth(AuthError::Rejected(AuthRejection::Invalid)) => {
                Reply::json(status, &ErrorOnly { error: "Invalid token" })
            }
            ApiError::Auth(AuthError::Rejected(AuthRejection::Expired)) => {
                Reply::json(status, &ErrorOnly { error: "Token expired" })
            }
            ApiError::Auth(AuthError::Groups(source)) => {
                tracing::error!(error = %clip(source), "resolving sync groups failed");
                Reply::json(status, &ErrorOnly { error: "Failed to resolve sync groups" })
            }
            ApiError::Service(e @ ServiceError::BootstrapRequired) => {
                Reply::json(status, &ErrorWithMessage { error: "BOOTSTRAP_REQUIRED", message: &e.to_string() })
            }
            ApiError::Service(e @ ServiceError::TooManyStreams) => {
                tracing::info!("too many open streams for one user; answered 429");
                retry_after(Reply::json(status, &FrameworkErrorBody::generic(429, e.to_string())))
            }
            ApiError::Service(e @ ServiceError::Interrupted) => {
                tracing::debug!("an interrupted mutation answered 503");
                retry_after(Reply::json(status, &FrameworkErrorBody::generic(503, e.to_string())))
            }
            ApiError::Service(
                e @ (ServiceError::Storage(_) | ServiceError::Unavailable | ServiceError::StreamAborted),
            ) => {
                tracing::warn!(error = ?clip(e), "storage failure answered 503");
                retry_after(Reply::json(status, &FrameworkErrorBody::generic(503, e.to_string())))
            }
            ApiError::Service(e @ ServiceError::RateLimited { retry_after }) => {
                // Whole seconds, rounded up: a client waiting that long fits.
                let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                Reply::json(status, &FrameworkErrorBody::generic(429, e.to_string()))
                    .with_header("retry-after", seconds.max(1).to_string())
            }
            ApiError::Service(e) => {
                tracing::error!(error = %clip(e), "unexpected service error");
                Reply::json(status, &FrameworkErrorBody::generic(500, e.to_string()))
            }
        }
    }
}

/// `reply` with `Retry-After: 1` (the failure is retryable in a moment).
fn retry_after(reply: Reply) -> Reply {
    reply.with_header("retry-after", "1")
}
