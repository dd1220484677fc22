//! Requests into [`RequestParts`], [`Reply`]s into responses.

use axum::body::Body;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use stratasync_core::endpoint::{Reply, ReplyBody, RequestParts};

/// What the endpoints read of a request.
pub(crate) fn parts(uri: &Uri, headers: &HeaderMap) -> RequestParts {
    RequestParts {
        query: uri.query().unwrap_or_default().to_owned(),
        authorization: text(headers, &header::AUTHORIZATION),
        content_type: text(headers, &header::CONTENT_TYPE),
        content_length: text(headers, &header::CONTENT_LENGTH),
        chunked: headers.contains_key(header::TRANSFER_ENCODING),
    }
}

/// A header's value as text (bytes that are not UTF-8 become U+FFFD).
fn text(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    headers.get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
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
