//! Request ids: one per HTTP request, carried through the engine so the
//! spans of work done on the request's behalf elsewhere (a mutation
//! group's commit on its lane) can name it.
//!
//! The application's middleware picks the id with
//! [`RequestId::for_request`] (the incoming [`HEADER`] when
//! [`RequestId::from_header`] accepts it, else a
//! [`RequestId::generate`]d one), runs the request inside
//! [`RequestId::scope`] and returns the id in [`HEADER`]; the engine
//! reads it with [`RequestId::current`]. The id is visible ASCII, so it is
//! always a valid header value.

use std::fmt;
use std::future::Future;

/// The longest incoming id honoured.
pub const MAX_LEN: usize = 64;

/// The header that carries the id, in the request and in the response
/// (`X-Request-Id`, lowercase as HTTP/2 and the `http` crate spell it).
pub const HEADER: &str = "x-request-id";

tokio::task_local! {
    static CURRENT: RequestId;
}

/// A short, printable request id (at most [`MAX_LEN`] visible ASCII
/// characters), safe to log and to echo in a header.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestId(String);

impl RequestId {
    /// The client's id, if it is 1 to [`MAX_LEN`] visible ASCII characters
    /// (`!` to `~`; no spaces or control characters); `None` otherwise, and
    /// the caller generates one.
    pub fn from_header(value: &[u8]) -> Option<RequestId> {
        let ok = !value.is_empty() && value.len() <= MAX_LEN && value.iter().all(|b| b.is_ascii_graphic());
        // Visible ASCII is valid UTF-8.
        ok.then(|| RequestId(String::from_utf8_lossy(value).into_owned()))
    }

    /// The id of a request whose [`HEADER`] is `header` (its first value,
    /// `None` when it has none): the client's when
    /// [`from_header`](Self::from_header) accepts it, else a
    /// [`generate`](Self::generate)d one.
    pub fn for_request(header: Option<&[u8]>) -> RequestId {
        header.and_then(RequestId::from_header).unwrap_or_else(RequestId::generate)
    }

    /// A fresh id: 32 hex digits (a random UUID).
    pub fn generate() -> RequestId {
        RequestId(uuid::Uuid::new_v4().simple().to_string())
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Runs `work` with this id as the [`current`](Self::current) one.
    pub async fn scope<F: Future>(self, work: F) -> F::Output {
        CURRENT.scope(self, work).await
    }

    /// The id of the request whose task this is, if it runs in a
    /// [`scope`](Self::scope).
    pub fn current() -> Option<RequestId> {
        CURRENT.try_with(RequestId::clone).ok()
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_printable_ids_are_honoured() {
        assert_eq!(RequestId::from_header(b"abc-123_X.y").map(|id| id.0), Some("abc-123_X.y".to_owned()));
        assert!(RequestId::from_header(&[b'a'; MAX_LEN]).is_some());
        for hostile in [&b""[..], &[b'a'; MAX_LEN + 1], b"a b", b"a\nb", b"a\x1b[31m", b"\xc3\xa9", b"a\x7f"] {
            assert_eq!(RequestId::from_header(hostile), None, "{hostile:?}");
        }
        let generated = RequestId::generate();
        assert_eq!(generated.as_str().len(), 32);
        assert_eq!(RequestId::from_header(generated.as_str().as_bytes()), Some(generated));
    }

    #[test]
    fn a_request_keeps_a_good_id_and_gets_a_fresh_one_otherwise() {
        assert_eq!(RequestId::for_request(Some(&b"client-7"[..])).as_str(), "client-7");
        for refused in [None, Some(&b"a b"[..]), Some(&[b'a'; MAX_LEN + 1][..])] {
            let id = RequestId::for_request(refused);
            assert!(id.as_str().len() == 32 && id.as_str().bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        }
    }

    #[tokio::test]
    async fn the_current_id_is_the_scope_s() {
        assert_eq!(RequestId::current(), None);
        let id = RequestId::generate();
        let seen = id.clone().scope(async { RequestId::current() }).await;
        assert_eq!(seen, Some(id));
    }
}
