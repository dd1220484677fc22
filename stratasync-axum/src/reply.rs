//! Requests into [`RequestParts`], [`Reply`]s into responses.

use axum::body::Body;
use axum::http::header::{HeaderMap, HeaderName, HeaderValue};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use stratasync_core::endpoint::{Reply, ReplyBody, RequestParts};

/// What the endpoints read of a request (the core decides which headers
/// and how).
pub(crate) fn parts(uri: &Uri, headers: &HeaderMap) -> RequestParts {
    RequestParts::read(uri.query().unwrap_or_default(), |name| headers.get(name).map(HeaderValue::as_bytes))
}

/// `reply` as an axum response.
pub(crate) fn response(reply: Reply) -> Response {
    let body = match reply.body {
        ReplyBody::Full(bytes) => Body::from(bytes),
        ReplyBody::Stream(stream) => Body::from_stream(stream),
    };
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in reply.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(HeaderName::from_static(name), value);
        }
    }
    response
}
