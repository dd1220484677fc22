//! Reading a request body under the size limit (docs/protocol.md §4.0).

use super::parts::RequestParts;
use crate::request::{body_plan, decode_body, BodyError, BodyPlan};
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use serde_json::Value;

/// The body as validation sees it: `None` when the request has none.
///
/// The content type is checked first (415), then the declared length
/// (413), then the body is read chunk by chunk and refused (413) as soon as
/// it passes `limit`, so an oversized body is never buffered whole. A
/// transport error while reading is a broken body (400).
pub(crate) async fn read_json<S, E>(parts: &RequestParts, body: S, limit: usize) -> Result<Option<Value>, BodyError>
where
    S: Stream<Item = Result<Bytes, E>>,
{
    let plan = body_plan(parts.content_type.as_deref(), parts.content_length.as_deref(), parts.chunked, limit)?;
    let media = match plan {
        BodyPlan::Absent => return Ok(None),
        BodyPlan::Read(media) => media,
    };
    let mut body = std::pin::pin!(body);
    let mut buf = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|_| BodyError::Incomplete)?;
        if buf.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        buf.extend_from_slice(&chunk);
    }
    decode_body(media, &buf).map(Some)
}
