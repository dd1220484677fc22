//! Requests into [`RequestParts`], [`Reply`]s into responses.

use actix_web::http::header::HeaderValue;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use stratasync_core::endpoint::{Reply, ReplyBody, RequestParts};

/// What the endpoints read of `req` (the core decides which headers and
/// how).
pub(crate) fn parts(req: &HttpRequest) -> RequestParts {
    RequestParts::read(req.query_string(), |name| req.headers().get(name).map(HeaderValue::as_bytes))
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
