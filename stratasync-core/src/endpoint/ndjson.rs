//! NDJSON responses: the services' chunks, passed on as they are produced.

use super::reply::{Reply, StreamAborted};
use crate::error::ServiceError;
use crate::log_text::clip;
use crate::protocol::ErrorLine;
use crate::service::NdjsonStream;
use bytes::Bytes;
use futures_util::Stream;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A 200 streaming `application/x-ndjson` response (chunked, no
/// `Content-Length`, `Cache-Control: no-cache`).
pub(crate) fn reply(stream: NdjsonStream) -> Reply {
    Reply::stream("application/x-ndjson", Box::pin(NdjsonBody { inner: Some(stream) }))
        .with_header("cache-control", "no-cache")
}

/// The response body: each chunk is written as soon as the service sends
/// it; a service error becomes the last line,
/// `{"message":"<client-safe message>","type":"error"}`, and ends the body.
/// An interrupted stream (its producer stopped, e.g. because the client
/// took nothing for the stall timeout) aborts the response instead, so the
/// client never takes a cut stream for a complete one. Dropping the body
/// (the client went away) drops the channel, which stops the producer.
struct NdjsonBody {
    inner: Option<NdjsonStream>,
}

impl Stream for NdjsonBody {
    type Item = Result<Bytes, StreamAborted>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(inner) = self.inner.as_mut() else { return Poll::Ready(None) };
        match Pin::new(inner).poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => Poll::Ready(Some(Ok(chunk))),
            Poll::Ready(Some(Err(ServiceError::StreamAborted))) => {
                self.inner = None;
                tracing::info!("NDJSON stream interrupted; aborting the response");
                Poll::Ready(Some(Err(StreamAborted)))
            }
            Poll::Ready(Some(Err(e))) => {
                self.inner = None;
                tracing::warn!(error = ?clip(&e), "NDJSON stream ended with an error line");
                Poll::Ready(Some(Ok(error_line(&e.to_string()))))
            }
            Poll::Ready(None) => {
                self.inner = None;
                Poll::Ready(None)
            }
        }
    }
}

/// `{"message":…,"type":"error"}\n`.
fn error_line(message: &str) -> Bytes {
    let mut line = serde_json::to_vec(&ErrorLine::new(message))
        .unwrap_or_else(|_| br#"{"message":"Internal error","type":"error"}"#.to_vec());
    line.push(b'\n');
    Bytes::from(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_line_shape() {
        assert_eq!(error_line("Storage \"x\"").as_ref(), b"{\"message\":\"Storage \\\"x\\\"\",\"type\":\"error\"}\n");
    }
}
