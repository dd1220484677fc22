//! Requests into [`RequestParts`], [`Reply`]s into responses.

use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use stratasync_core::endpoint::{Reply, ReplyBody, RequestParts};

/// What the endpoints read of `req`.
pub(crate) fn parts(req: &HttpRequest) -> RequestParts {
    let headers = req.headers();
    RequestParts {
        query: req.query_string().to_owned(),
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

/// `reply` as an actix response.
pub(crate) fn response(reply: Reply) -> HttpResponse {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    for (name, value) in reply.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.insert_header((name, value));
        }
    }
    match reply.body {
        ReplyBody::Full(bytes) => response.body(bytes),
        ReplyBody::Stream(stream) => response.streaming(stream),
    }
}
