//! Reading a request body under the size limit (PROTOCOL.md §4.0).

use actix_web::error::PayloadError;
use actix_web::http::header::{self, HeaderMap, HeaderName};
use actix_web::{web, HttpRequest};
use bytes::BytesMut;
use futures_util::StreamExt;
use serde_json::Value;
use stratasync_core::request::{body_plan, decode_body, BodyError, BodyPlan};

/// The body as validation sees it: `None` when the request has none.
///
/// The content type is checked first (415), then the declared length
/// (413), then the body is read chunk by chunk and refused (413) as soon as
/// it passes `limit`, so an oversized body is never buffered whole.
pub(crate) async fn read_json(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Option<Value>, BodyError> {
    let headers = req.headers();
    let content_type = header_text(headers, &header::CONTENT_TYPE);
    let content_length = header_text(headers, &header::CONTENT_LENGTH);
    let chunked = headers.contains_key(header::TRANSFER_ENCODING);
    let media = match body_plan(content_type.as_deref(), content_length.as_deref(), chunked, limit)? {
        BodyPlan::Absent => return Ok(None),
        BodyPlan::Read(media) => media,
    };
    let mut buf = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| match e {
            PayloadError::Overflow => BodyError::TooLarge,
            _ => BodyError::Incomplete,
        })?;
        if buf.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        buf.extend_from_slice(&chunk);
    }
    decode_body(media, &buf).map(Some)
}

/// A header's value as text (bytes that are not UTF-8 become U+FFFD).
pub(crate) fn header_text(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    headers.get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}
