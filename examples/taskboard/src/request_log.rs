//! The request log: one `tracing` line per request, written when its
//! response head is ready. Unlike actix-web's `Logger`, which writes the raw
//! request line, it never writes a token (`token` query values, as in
//! `/sync/ws?token=…`, are redacted) and clips what the client chose (see
//! [`stratasync_core::log_text`]).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use std::time::Instant;
use stratasync_core::log_text::{clip, request_target};

/// Logs method, target, status and duration of a request at `info`;
/// mount it with `App::wrap(actix_web::middleware::from_fn(log_request))`.
pub async fn log_request(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = clip(req.method()).to_string();
    let target =
        req.uri().path_and_query().map_or_else(String::new, |target| request_target(target.as_str()).to_string());
    let peer = req.peer_addr().map_or_else(|| "-".to_owned(), |addr| addr.to_string());
    let result = next.call(req).await;
    let status = match &result {
        Ok(response) => response.status(),
        Err(error) => error.as_response_error().status_code(),
    };
    tracing::info!(%peer, %method, %target, status = status.as_u16(), elapsed = ?started.elapsed(), "request");
    result
}
