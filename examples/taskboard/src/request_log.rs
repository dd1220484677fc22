//! The request log and request ids: each request runs in a `request` span
//! carrying its id, which the response returns as `X-Request-Id`, and gets
//! one `tracing` line when its response head is ready. Unlike actix-web's
//! `Logger`, which writes the raw request line, it never writes a token
//! (`token` query values, as in `/sync/ws?token=…`, are redacted) and clips
//! what the client chose (see [`stratasync_core::log_text`]).
//!
//! An incoming `X-Request-Id` is kept only if
//! [`RequestId::from_header`] accepts it (short and printable); otherwise
//! the request gets a fresh one. The engine sees the id
//! ([`RequestId::current`]), so the span of the mutation group that
//! commits a request's batch lists it.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use std::time::Instant;
use stratasync_core::log_text::{clip, request_target};
use stratasync_core::request_id::{self, RequestId};
use tracing::Instrument;

/// The request id header, in and out ([`stratasync_core::request_id::HEADER`]).
pub const REQUEST_ID: HeaderName = HeaderName::from_static(request_id::HEADER);

/// Runs the request in its span with its id, returns the id as
/// `X-Request-Id`, and logs method, target, status and duration at `info`;
/// mount it with `App::wrap(actix_web::middleware::from_fn(log_request))`.
pub async fn log_request(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let id = RequestId::for_request(req.headers().get(&REQUEST_ID).map(HeaderValue::as_bytes));
    let span = tracing::info_span!("request", request_id = %id);
    let method = clip(req.method()).to_string();
    let target =
        req.uri().path_and_query().map_or_else(String::new, |target| request_target(target.as_str()).to_string());
    let peer = req.peer_addr().map_or_else(|| "-".to_owned(), |addr| addr.to_string());
    let mut result = id.clone().scope(next.call(req)).instrument(span.clone()).await;
    let status = match &mut result {
        Ok(response) => {
            // Visible ASCII only (`RequestId`), so always a valid value.
            if let Ok(value) = HeaderValue::from_str(id.as_str()) {
                response.headers_mut().insert(REQUEST_ID, value);
            }
            response.status()
        }
        Err(error) => error.as_response_error().status_code(),
    };
    span.in_scope(
        || tracing::info!(%peer, %method, %target, status = status.as_u16(), elapsed = ?started.elapsed(), "request"),
    );
    result
}
