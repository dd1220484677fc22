//! The four HTTP endpoints. Each runs the protocol's order of checks:
//! body parsing, validation (400), authentication (401/500), then the
//! core service; nothing else happens here.

use crate::body::{header_text, read_json};
use crate::error::{self, ApiError};
use crate::ndjson;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::TryStreamExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use stratasync_core::auth::AuthContext;
use stratasync_core::log_text::clip;
use stratasync_core::request::{self, ValidationFailure};
use stratasync_core::SyncEngine;

/// What every handler of one mounted scope shares.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) engine: SyncEngine,
    pub(crate) body_limit: usize,
    /// The request-id counter (`"req-" + base36(n)`), shared by every
    /// worker of the [`SyncHttp`](crate::SyncHttp) it came from.
    pub(crate) requests: Arc<AtomicU64>,
}

impl State {
    /// A validation failure under the next request id.
    fn invalid(&self, failure: ValidationFailure) -> ApiError {
        let n = self.requests.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        ApiError::Invalid { failure, request_id: format!("req-{}", base36(n)) }
    }

    /// Steps 1–4 of PROTOCOL.md §3.1.
    async fn authorize(&self, req: &HttpRequest) -> Result<AuthContext, ApiError> {
        let header = header_text(req.headers(), &header::AUTHORIZATION);
        let token = request::bearer_token(header.as_deref()).map_err(ApiError::Bearer)?;
        self.engine.authorize(token).await.map_err(ApiError::Auth)
    }
}

/// `GET bootstrap`: a 200 NDJSON stream once auth and admission pass
/// (429 when the caller has too many streams open).
pub(crate) async fn bootstrap(state: Arc<State>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let params = request::bootstrap_query(req.query_string()).map_err(|f| state.invalid(f))?;
    let user = state.authorize(&req).await?;
    let stream = state.engine.bootstrap(&user, params).await.map_err(ApiError::Service)?;
    Ok(ndjson::response(stream))
}

/// `POST batch`: a 200 NDJSON stream once auth and admission pass.
pub(crate) async fn batch(
    state: Arc<State>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_json(&req, payload, state.body_limit).await.map_err(ApiError::Body)?;
    let params = request::batch_body(body).map_err(|f| state.invalid(f))?;
    let user = state.authorize(&req).await?;
    let stream = state.engine.batch(&user, params).await.map_err(ApiError::Service)?;
    Ok(ndjson::response(stream))
}

/// `GET deltas`: one JSON page, streamed as it is read, or 409
/// `BOOTSTRAP_REQUIRED`. A failure after the first bytes aborts the
/// response (the client sees a broken body and retries).
pub(crate) async fn deltas(state: Arc<State>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let params = request::deltas_query(req.query_string()).map_err(|f| state.invalid(f))?;
    let user = state.authorize(&req).await?;
    let page = state.engine.deltas_stream(&user, &params).await.map_err(ApiError::Service)?;
    let body = page.map_err(|e| {
        tracing::error!(error = ?clip(&e), "a deltas page failed while streaming; aborting the response");
        e
    });
    Ok(HttpResponse::Ok().insert_header((header::CONTENT_TYPE, error::JSON)).streaming(body))
}

/// `POST mutate`: 200 with one result per transaction.
pub(crate) async fn mutate(
    state: Arc<State>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_json(&req, payload, state.body_limit).await.map_err(ApiError::Body)?;
    let request = request::mutate_body(body).map_err(|f| state.invalid(f))?;
    let user = state.authorize(&req).await?;
    let response = state.engine.mutate(&user, &request).await.map_err(ApiError::Service)?;
    Ok(error::json(StatusCode::OK, &response))
}

/// Lowercase base 36, as JavaScript's `n.toString(36)`.
fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::base36;

    #[test]
    fn base36_like_javascript() {
        assert_eq!(base36(0), "0");
        assert_eq!(base36(15), "f");
        assert_eq!(base36(36), "10");
        assert_eq!(base36(u64::MAX), "3w5e11264sgsf");
    }
}
