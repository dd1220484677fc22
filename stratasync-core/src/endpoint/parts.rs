//! What an endpoint reads of a request.

/// The parts of a request the endpoints read, copied from the transport's
/// request. The method and path are the router's: each endpoint is its
/// own function.
///
/// An adapter builds it with [`RequestParts::read`], which knows the
/// header names and how their values are read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestParts {
    /// The raw query string, without the `?` (empty when there is none).
    pub query: String,
    /// The `Authorization` header.
    pub authorization: Option<String>,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
    /// The `Content-Length` header.
    pub content_length: Option<String>,
    /// Whether a `Transfer-Encoding` header is present (a body follows).
    pub chunked: bool,
    /// The WebSocket handshake headers (the `ws` endpoint checks them).
    pub websocket: Handshake,
}

/// What a request says of a WebSocket handshake (RFC 6455 §4.1): the
/// `ws` endpoint answers a request that is none itself, the same on
/// every transport, before the transport's handshake runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Handshake {
    /// `Upgrade` lists `websocket` (any case).
    pub upgrade: bool,
    /// `Connection` lists `upgrade` (any case).
    pub connection: bool,
    /// The `Sec-WebSocket-Version` header.
    pub version: Option<String>,
    /// `Sec-WebSocket-Key` is the base64 text of 16 bytes.
    pub key: bool,
}

impl Handshake {
    /// Reads the handshake headers through `header` (as [`RequestParts::read`]).
    fn read<'a>(header: &impl Fn(&str) -> Option<&'a [u8]>) -> Handshake {
        let lists = |name: &str, token: &str| {
            header(name)
                .is_some_and(|v| v.split(|b| *b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes())))
        };
        Handshake {
            upgrade: lists("upgrade", "websocket"),
            connection: lists("connection", "upgrade"),
            version: header("sec-websocket-version").map(|v| String::from_utf8_lossy(v).trim().to_owned()),
            key: header("sec-websocket-key").is_some_and(|v| is_nonce(v.trim_ascii())),
        }
    }
}

/// Whether `key` is base64 of 16 bytes: 22 symbols and `==`. (Checked by
/// hand: a length and an alphabet, not worth a base64 crate.)
fn is_nonce(key: &[u8]) -> bool {
    let symbol = |b: &u8| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/';
    key.len() == 24 && key.ends_with(b"==") && key[..22].iter().all(symbol)
}

impl RequestParts {
    /// The parts of a request with raw query string `query` (without the
    /// `?`; empty when there is none) and headers `header`: given a
    /// lowercase header name, `header` returns the bytes of the request's
    /// first value of it. Values that are not UTF-8 are read lossily (such
    /// bytes become U+FFFD), so a hostile header is an invalid value, never
    /// an error of the transport's.
    ///
    /// With the `http` crate's `HeaderMap` (actix-web, axum):
    /// `RequestParts::read(query, |name| headers.get(name).map(|v| v.as_bytes()))`.
    pub fn read<'a>(query: &str, header: impl Fn(&str) -> Option<&'a [u8]>) -> RequestParts {
        let text = |name: &str| header(name).map(|value| String::from_utf8_lossy(value).into_owned());
        RequestParts {
            query: query.to_owned(),
            authorization: text("authorization"),
            content_type: text("content-type"),
            content_length: text("content-length"),
            chunked: header("transfer-encoding").is_some(),
            websocket: Handshake::read(&header),
        }
    }

    /// The first value of query parameter `name`.
    pub(crate) fn query_param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_endpoints_headers_lossily() {
        let headers: [(&str, &[u8]); 5] = [
            ("authorization", b"Bearer tok\xff"),
            ("content-type", b"application/json"),
            ("content-length", b"12"),
            ("transfer-encoding", b""),
            ("x-other", b"ignored"),
        ];
        let lookup = |name: &str| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
        assert_eq!(
            RequestParts::read("a=1&token=t", lookup),
            RequestParts {
                query: "a=1&token=t".to_owned(),
                authorization: Some("Bearer tok\u{fffd}".to_owned()),
                content_type: Some("application/json".to_owned()),
                content_length: Some("12".to_owned()),
                chunked: true,
                websocket: Handshake::default(),
            }
        );
        assert_eq!(RequestParts::read("", |_| None), RequestParts::default());
    }

    #[test]
    fn reads_the_handshake() {
        let headers: [(&str, &[u8]); 4] = [
            ("upgrade", b"h2c, WebSocket"),
            ("connection", b"keep-alive, Upgrade"),
            ("sec-websocket-version", b" 13 "),
            ("sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
        ];
        let lookup = |name: &str| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
        let parts = RequestParts::read("", lookup);
        assert_eq!(
            parts.websocket,
            Handshake { upgrade: true, connection: true, version: Some("13".into()), key: true }
        );
        for bad in [&b"dGhlIHNhbXBsZSBub25jZQ="[..], b"dGhlIHNhbXBsZSBub25jZQ=A", b"dGhlIHNhbXBsZSBub25j*Q==", b""] {
            assert!(!is_nonce(bad), "{}", String::from_utf8_lossy(bad));
        }
    }
}
