//! What an endpoint reads of a request.

/// The parts of a request the endpoints read, copied from the transport's
/// request. The method and path are the router's: each endpoint is its
/// own function.
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
}

impl RequestParts {
    /// The first value of query parameter `name`.
    pub(crate) fn query_param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }
}
