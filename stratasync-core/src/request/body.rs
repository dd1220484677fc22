//! Request bodies before validation: content type, size limit and JSON
//! decoding, with the framework-level errors of docs/protocol.md §4.0.

use serde::Serialize;
use serde_json::Value;

/// The largest body accepted (1 MiB); larger ones get 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A content type the endpoints accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MediaType {
    /// `application/json` (any parameters): decoded as JSON.
    Json,
    /// `text/plain`: kept as a string (which validation then rejects with
    /// `expected object, received string`).
    Text,
}

/// What to do with a request's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyPlan {
    /// The request has no body and no content type: validation sees
    /// `undefined`.
    Absent,
    /// Read the body (at most the limit) and [`decode_body`] it.
    Read(MediaType),
}

/// A body refused before validation. `Display` is the client message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum BodyError {
    /// 400 `FST_ERR_CTP_INVALID_JSON_BODY`.
    #[error("Body is not valid JSON but content-type is set to 'application/json'")]
    InvalidJson,
    /// 400 `FST_ERR_CTP_EMPTY_JSON_BODY`.
    #[error("Body cannot be empty when content-type is set to 'application/json'")]
    EmptyJson,
    /// 413 `FST_ERR_CTP_BODY_TOO_LARGE`.
    #[error("Request body is too large")]
    TooLarge,
    /// 415 `FST_ERR_CTP_INVALID_MEDIA_TYPE`, with the content type received
    /// (`undefined` when there was none).
    #[error("Unsupported Media Type: {0}")]
    UnsupportedMediaType(String),
    /// 400 `FST_ERR_CTP_INVALID_CONTENT_LENGTH`: the body ended early or
    /// its framing was broken.
    #[error("Request body size did not match Content-Length")]
    Incomplete,
}

impl BodyError {
    /// The HTTP status.
    pub(crate) fn status(&self) -> u16 {
        match self {
            BodyError::InvalidJson | BodyError::EmptyJson | BodyError::Incomplete => 400,
            BodyError::TooLarge => 413,
            BodyError::UnsupportedMediaType(_) => 415,
        }
    }

    /// The reference framework's error code.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            BodyError::InvalidJson => "FST_ERR_CTP_INVALID_JSON_BODY",
            BodyError::EmptyJson => "FST_ERR_CTP_EMPTY_JSON_BODY",
            BodyError::TooLarge => "FST_ERR_CTP_BODY_TOO_LARGE",
            BodyError::UnsupportedMediaType(_) => "FST_ERR_CTP_INVALID_MEDIA_TYPE",
            BodyError::Incomplete => "FST_ERR_CTP_INVALID_CONTENT_LENGTH",
        }
    }

    /// The response body `{"statusCode","code","error","message"}`.
    pub(crate) fn body(&self) -> FrameworkErrorBody {
        let status_code = self.status();
        FrameworkErrorBody {
            status_code,
            code: Some(self.code()),
            error: reason_phrase(status_code),
            message: self.to_string(),
        }
    }
}

/// The reference framework's error body:
/// `{"statusCode":413,"code":"FST_ERR_CTP_BODY_TOO_LARGE","error":"Payload Too Large","message":"…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FrameworkErrorBody {
    /// The HTTP status.
    pub status_code: u16,
    /// The error code (absent for generic server errors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    /// The status's reason phrase.
    pub error: &'static str,
    /// A client-safe message.
    pub message: String,
}

impl FrameworkErrorBody {
    /// A body without a code, e.g.
    /// `{"statusCode":503,"error":"Service Unavailable","message":"Storage unavailable"}`.
    pub(crate) fn generic(status_code: u16, message: impl Into<String>) -> Self {
        FrameworkErrorBody { status_code, code: None, error: reason_phrase(status_code), message: message.into() }
    }
}

/// The reason phrases the framework bodies use.
fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        409 => "Conflict",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// Decides how to read a body from its headers, as the reference's
/// framework does: no content type and no body (no `Transfer-Encoding`,
/// `Content-Length` absent or 0) is "no body"; a body without a content
/// type, or with one other than JSON or `text/plain`, is 415; a declared
/// length over `limit` is 413 before anything is read.
pub(crate) fn body_plan(
    content_type: Option<&str>,
    content_length: Option<&str>,
    chunked: bool,
    limit: usize,
) -> Result<BodyPlan, BodyError> {
    let content_type = content_type.filter(|ct| !ct.is_empty());
    let declared = content_length.map(str::trim);
    let media = match content_type {
        None if !chunked && matches!(declared, None | Some("0")) => return Ok(BodyPlan::Absent),
        None => return Err(BodyError::UnsupportedMediaType("undefined".to_owned())),
        Some(ct) => {
            let essence = ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
            match essence.as_str() {
                "application/json" => MediaType::Json,
                "text/plain" => MediaType::Text,
                _ => return Err(BodyError::UnsupportedMediaType(shorten(ct))),
            }
        }
    };
    if let Some(Ok(length)) = declared.map(str::parse::<u64>) {
        if length > limit as u64 {
            return Err(BodyError::TooLarge);
        }
    }
    Ok(BodyPlan::Read(media))
}

/// Decodes a body read under [`BodyPlan::Read`]. A leading UTF-8 byte
/// order mark is skipped in JSON, as the reference's parser does.
pub(crate) fn decode_body(media: MediaType, bytes: &[u8]) -> Result<Value, BodyError> {
    match media {
        MediaType::Json if bytes.is_empty() => Err(BodyError::EmptyJson),
        MediaType::Json => {
            let json = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
            serde_json::from_slice(json).map_err(|_| BodyError::InvalidJson)
        }
        MediaType::Text => Ok(Value::String(String::from_utf8_lossy(bytes).into_owned())),
    }
}

/// At most 100 characters of a client-supplied header, for echoing.
fn shorten(value: &str) -> String {
    value.chars().take(100).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plans() {
        let limit = MAX_BODY_BYTES;
        assert_eq!(body_plan(None, None, false, limit), Ok(BodyPlan::Absent));
        assert_eq!(body_plan(None, Some("0"), false, limit), Ok(BodyPlan::Absent));
        assert_eq!(body_plan(Some(""), None, false, limit), Ok(BodyPlan::Absent));
        assert_eq!(body_plan(None, Some("2"), false, limit), Err(BodyError::UnsupportedMediaType("undefined".into())));
        assert_eq!(body_plan(None, None, true, limit), Err(BodyError::UnsupportedMediaType("undefined".into())));
        assert_eq!(body_plan(Some("application/json"), None, false, limit), Ok(BodyPlan::Read(MediaType::Json)));
        assert_eq!(
            body_plan(Some("Application/JSON; charset=utf-8"), Some("10"), false, limit),
            Ok(BodyPlan::Read(MediaType::Json))
        );
        assert_eq!(body_plan(Some("text/plain"), Some("0"), false, limit), Ok(BodyPlan::Read(MediaType::Text)));
        assert_eq!(
            body_plan(Some("application/xml"), Some("3"), false, limit),
            Err(BodyError::UnsupportedMediaType("application/xml".into()))
        );
        assert_eq!(body_plan(Some("application/json"), Some("1048577"), false, limit), Err(BodyError::TooLarge));
        assert_eq!(
            body_plan(Some("application/json"), Some("1048576"), false, limit),
            Ok(BodyPlan::Read(MediaType::Json))
        );
        // Content type is checked before size.
        assert_eq!(
            body_plan(Some("image/png"), Some("99999999"), false, limit),
            Err(BodyError::UnsupportedMediaType("image/png".into()))
        );
    }

    #[test]
    fn decoding() {
        assert_eq!(decode_body(MediaType::Json, b""), Err(BodyError::EmptyJson));
        assert_eq!(decode_body(MediaType::Json, b" "), Err(BodyError::InvalidJson));
        assert_eq!(decode_body(MediaType::Json, b"{\"a\":"), Err(BodyError::InvalidJson));
        assert_eq!(decode_body(MediaType::Json, b"\xff"), Err(BodyError::InvalidJson));
        let deep = "[".repeat(100_000);
        assert_eq!(decode_body(MediaType::Json, deep.as_bytes()), Err(BodyError::InvalidJson));
        assert_eq!(decode_body(MediaType::Json, b"{\"a\":1}"), Ok(json!({"a": 1})));
        assert_eq!(decode_body(MediaType::Json, b"\xEF\xBB\xBF{\"a\":1}"), Ok(json!({"a": 1})));
        assert_eq!(decode_body(MediaType::Text, b"hi"), Ok(json!("hi")));
        assert_eq!(decode_body(MediaType::Text, b""), Ok(json!("")));
    }

    #[test]
    fn framework_bodies() {
        assert_eq!(
            serde_json::to_string(&BodyError::TooLarge.body()).unwrap(),
            r#"{"statusCode":413,"code":"FST_ERR_CTP_BODY_TOO_LARGE","error":"Payload Too Large","message":"Request body is too large"}"#
        );
        assert_eq!(
            serde_json::to_string(&BodyError::UnsupportedMediaType("application/xml".into()).body()).unwrap(),
            r#"{"statusCode":415,"code":"FST_ERR_CTP_INVALID_MEDIA_TYPE","error":"Unsupported Media Type","message":"Unsupported Media Type: application/xml"}"#
        );
        assert_eq!(
            serde_json::to_string(&FrameworkErrorBody::generic(503, "Storage unavailable")).unwrap(),
            r#"{"statusCode":503,"error":"Service Unavailable","message":"Storage unavailable"}"#
        );
    }
}
