//! The four HTTP endpoints. Each runs the protocol's order of checks:
//! body parsing, validation (400), authentication (401/500), then the
//! service; nothing else happens here.

use super::body::read_json;
use super::failure::ApiError;
use super::ndjson;
use super::parts::RequestParts;
use super::reply::{Reply, StreamAborted, JSON};
use super::SyncEndpoints;
use crate::auth::AuthContext;
use crate::log_text::clip;
use crate::request::{self, ValidationFailure};
use crate::request_id::RequestId;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use std::sync::atomic::Ordering;

impl SyncEndpoints {
    /// A validation failure under the request's id: the one the
    /// application's middleware runs the request under
    /// ([`RequestId::scope`], the `X-Request-Id` it answers with), else
    /// `req-` and the next value of a per-process counter in base 36 (the
    /// reference's form).
    fn invalid(&self, failure: ValidationFailure) -> ApiError {
        let request_id = match RequestId::current() {
            Some(id) => id.to_string(),
            None => format!("req-{}", base36(self.requests.fetch_add(1, Ordering::Relaxed).wrapping_add(1))),
        };
        ApiError::Invalid { failure, request_id }
    }

    /// Steps 1–4 of docs/protocol.md §3.1.
    async fn authorize(&self, parts: &RequestParts) -> Result<AuthContext, ApiError> {
        let token = request::bearer_token(parts.authorization.as_deref()).map_err(ApiError::Bearer)?;
        self.engine.authorize(token).await.map_err(ApiError::Auth)
    }

    /// `GET bootstrap`: a 200 NDJSON stream once auth and admission pass
    /// (429 when the caller has too many streams open).
    pub async fn bootstrap(&self, parts: &RequestParts) -> Reply {
        self.bootstrap_inner(parts).await.unwrap_or_else(|e| e.reply())
    }

    async fn bootstrap_inner(&self, parts: &RequestParts) -> Result<Reply, ApiError> {
        let params = request::bootstrap_query(&parts.query).map_err(|f| self.invalid(f))?;
        let user = self.authorize(parts).await?;
        let stream = self.engine.bootstrap(&user, params).await.map_err(ApiError::Service)?;
        Ok(ndjson::reply(stream))
    }

    /// `POST batch`: a 200 NDJSON stream once auth and admission pass.
    /// `body` is the request body's chunks (an `Err` is a broken body).
    pub async fn batch<S, E>(&self, parts: &RequestParts, body: S) -> Reply
    where
        S: Stream<Item = Result<Bytes, E>>,
    {
        self.batch_inner(parts, body).await.unwrap_or_else(|e| e.reply())
    }

    async fn batch_inner<S, E>(&self, parts: &RequestParts, body: S) -> Result<Reply, ApiError>
    where
        S: Stream<Item = Result<Bytes, E>>,
    {
        let body = read_json(parts, body, self.body_limit).await.map_err(ApiError::Body)?;
        let params = request::batch_body(body).map_err(|f| self.invalid(f))?;
        let user = self.authorize(parts).await?;
        let stream = self.engine.batch(&user, params).await.map_err(ApiError::Service)?;
        Ok(ndjson::reply(stream))
    }

    /// `GET deltas`: one JSON page, streamed as it is read, or 409
    /// `BOOTSTRAP_REQUIRED`. A failure after the first bytes aborts the
    /// response (the client sees a broken body and retries).
    pub async fn deltas(&self, parts: &RequestParts) -> Reply {
        self.deltas_inner(parts).await.unwrap_or_else(|e| e.reply())
    }

    async fn deltas_inner(&self, parts: &RequestParts) -> Result<Reply, ApiError> {
        let params = request::deltas_query(&parts.query).map_err(|f| self.invalid(f))?;
        let user = self.authorize(parts).await?;
        let page = self.engine.deltas_stream(&user, &params).await.map_err(ApiError::Service)?;
        let body = page.map(|chunk| {
            chunk.map_err(|e| {
                tracing::error!(error = ?clip(&e), "a deltas page failed while streaming; aborting the response");
                StreamAborted
            })
        });
        Ok(Reply::stream(JSON, Box::pin(body)))
    }

    /// `POST mutate`: 200 with one result per transaction. `body` is the
    /// request body's chunks (an `Err` is a broken body).
    pub async fn mutate<S, E>(&self, parts: &RequestParts, body: S) -> Reply
    where
        S: Stream<Item = Result<Bytes, E>>,
    {
        self.mutate_inner(parts, body).await.unwrap_or_else(|e| e.reply())
    }

    async fn mutate_inner<S, E>(&self, parts: &RequestParts, body: S) -> Result<Reply, ApiError>
    where
        S: Stream<Item = Result<Bytes, E>>,
    {
        let body = read_json(parts, body, self.body_limit).await.map_err(ApiError::Body)?;
        let request = request::mutate_body(body).map_err(|f| self.invalid(f))?;
        let user = self.authorize(parts).await?;
        let response = self.engine.mutate(&user, &request).await.map_err(ApiError::Service)?;
        Ok(Reply::json(200, &response))
    }
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
