//! The `Authorization: Bearer <token>` header (docs/protocol.md §3.1, steps 1–2).

/// Why the header yields no token. Both answer 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BearerError {
    /// No header, or an empty one: `{"error":"Authorization header required"}`.
    #[error("Authorization header required")]
    Missing,
    /// Not exactly `bearer <token>`: `{"error":"Invalid authorization format"}`.
    #[error("Invalid authorization format")]
    InvalidFormat,
}

/// The token of an `Authorization` header value (`None`: no header).
///
/// The value is trimmed and split on runs of whitespace; it must have
/// exactly two parts, the first equal to `bearer` ignoring case.
pub(crate) fn bearer_token(header: Option<&str>) -> Result<&str, BearerError> {
    let value = match header {
        None | Some("") => return Err(BearerError::Missing),
        Some(value) => value,
    };
    let mut parts = value.split(char::is_whitespace).filter(|p| !p.is_empty());
    match (parts.next(), parts.next(), parts.next()) {
        (Some(scheme), Some(token), None) if scheme.eq_ignore_ascii_case("bearer") => Ok(token),
        _ => Err(BearerError::InvalidFormat),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_rules() {
        assert_eq!(bearer_token(None), Err(BearerError::Missing));
        assert_eq!(bearer_token(Some("")), Err(BearerError::Missing));
        assert_eq!(bearer_token(Some("   ")), Err(BearerError::InvalidFormat));
        assert_eq!(bearer_token(Some("Bearer")), Err(BearerError::InvalidFormat));
        assert_eq!(bearer_token(Some("Basic abc")), Err(BearerError::InvalidFormat));
        assert_eq!(bearer_token(Some("Bearer a b")), Err(BearerError::InvalidFormat));
        assert_eq!(bearer_token(Some("Bearertok")), Err(BearerError::InvalidFormat));
        assert_eq!(bearer_token(Some("Bearer tok")), Ok("tok"));
        assert_eq!(bearer_token(Some("BEARER\ttok")), Ok("tok"));
        assert_eq!(bearer_token(Some("  bEaReR    tok  ")), Ok("tok"));
    }
}

#[cfg(test)]
mod example {
    /// The function's contract in a few lines.
    #[test]
    fn bearer_token_example() {
        use crate::request::{bearer_token, BearerError};
        assert_eq!(bearer_token(Some("  bEaReR    tok  ")), Ok("tok"));
        assert_eq!(bearer_token(Some("Bearer a b")), Err(BearerError::InvalidFormat));
        assert_eq!(bearer_token(None), Err(BearerError::Missing));
    }
}
