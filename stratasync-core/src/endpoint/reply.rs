//! What an endpoint answers, for the transport to write as it is.

use bytes::Bytes;
use futures_util::Stream;
use std::pin::Pin;

/// An HTTP response: status, headers and body. The transport writes it
/// unchanged.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Headers as lowercase names and values (`content-type`,
    /// `cache-control`, `retry-after`).
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: ReplyBody,
}

/// A response body: whole, or streamed chunk by chunk.
pub enum ReplyBody {
    /// The whole body.
    Full(Bytes),
    /// Chunks to write as they come (chunked transfer encoding). An
    /// `Err` aborts the response: the transport closes the connection
    /// without ending the body, so the client sees a broken body, never a
    /// short one.
    Stream(ReplyStream),
}

/// The chunks of a streamed body.
pub type ReplyStream = Pin<Box<dyn Stream<Item = Result<Bytes, StreamAborted>> + Send>>;

impl std::fmt::Debug for ReplyBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplyBody::Full(bytes) => f.debug_tuple("Full").field(&bytes.len()).finish(),
            ReplyBody::Stream(_) => f.write_str("Stream"),
        }
    }
}

/// A streamed response that must not end normally: abort the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the response was aborted")]
pub struct StreamAborted;

/// `application/json; charset=utf-8`, as the reference sends JSON.
pub(crate) const JSON: &str = "application/json; charset=utf-8";

impl Reply {
    /// A JSON response with the reference's content type.
    pub(crate) fn json(status: u16, body: &impl serde::Serialize) -> Reply {
        match serde_json::to_vec(body) {
            Ok(bytes) => Reply {
                status,
                headers: vec![("content-type", JSON.to_owned())],
                body: ReplyBody::Full(Bytes::from(bytes)),
            },
            Err(e) => {
                tracing::error!(error = %e, "serializing a response failed");
                Reply { status: 500, headers: Vec::new(), body: ReplyBody::Full(Bytes::new()) }
            }
        }
    }

    /// A streamed 200 with `content_type`.
    pub(crate) fn stream(content_type: &str, stream: ReplyStream) -> Reply {
        Reply { status: 200, headers: vec![("content-type", content_type.to_owned())], body: ReplyBody::Stream(stream) }
    }

    /// Adds a header.
    pub(crate) fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }
}
