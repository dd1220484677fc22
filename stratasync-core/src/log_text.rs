//! Client-supplied text on its way into the logs.
//!
//! Every `tracing` call that logs a string a client chose (an id, a model
//! name, a request target, an error that may quote the input) wraps it in
//! [`clip`] (`field = %clip(&value)`, or `?clip(&error)` for its `Debug`):
//! the log then holds at most [`MAX_LOGGED_CHARS`] characters of it,
//! escaped, so a client can neither flood the log nor forge lines in it. Request targets go through [`request_target`], which also redacts
//! `token` query parameters: a log never holds a credential.
//!
//! ```
//! use stratasync_core::log_text::{clip, request_target};
//!
//! assert_eq!(clip("tx-1\nFAKE LINE").to_string(), r"tx-1\nFAKE LINE");
//! assert_eq!(clip("x".repeat(300)).to_string(), format!("{}…(+44 bytes)", "x".repeat(256)));
//! assert_eq!(request_target("/sync/ws?v=1&token=s3cret").to_string(), "/sync/ws?v=1&token=<redacted>");
//! ```

use std::fmt::{self, Arguments, Debug, Display, Formatter, Write};

/// The characters of one client-supplied value that reach the log; the
/// rest is summarized as `…(+N bytes)`.
pub const MAX_LOGGED_CHARS: usize = 256;

/// `value` made safe for a log line (see [`Clip`]).
pub fn clip<T>(value: T) -> Clip<T> {
    Clip(value)
}

/// A value whose `Display` (and `Debug`) is its inner value's, clipped to
/// [`MAX_LOGGED_CHARS`] characters and followed by `…(+N bytes)` when cut;
/// control and invisible characters are escaped as Rust escapes them
/// (`\n`, `\u{202e}`), so one value stays on one line. Formatting it never
/// builds the inner value's whole text.
#[derive(Clone, Copy)]
pub struct Clip<T>(pub T);

impl<T: Display> Display for Clip<T> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        clipped(f, format_args!("{}", self.0))
    }
}

impl<T: Debug> Debug for Clip<T> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        clipped(f, format_args!("{:?}", self.0))
    }
}

fn clipped(f: &mut Formatter<'_>, text: Arguments<'_>) -> fmt::Result {
    let mut out = Clipper { out: f, left: MAX_LOGGED_CHARS, cut: 0 };
    out.write_fmt(text)?;
    let cut = out.cut;
    if cut > 0 {
        write!(f, "…(+{cut} bytes)")?;
    }
    Ok(())
}

/// Writes through escaped until `left` characters are spent, then counts
/// the bytes it drops.
struct Clipper<'a, 'b> {
    out: &'a mut Formatter<'b>,
    left: usize,
    cut: usize,
}

impl Write for Clipper<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for (at, c) in s.char_indices() {
            if self.left == 0 {
                self.cut += s.len() - at;
                return Ok(());
            }
            self.left -= 1;
            if matches!(c, '\'' | '"' | '\\') {
                self.out.write_char(c)?;
            } else {
                for e in c.escape_debug() {
                    self.out.write_char(e)?;
                }
            }
        }
        Ok(())
    }
}

/// A request target (`/path?query`) for the log: `token` query values
/// replaced by `<redacted>` (keys compared percent-decoded and ignoring
/// case, so every spelling the WebSocket upgrade reads as `token` is
/// caught), then clipped like [`clip`].
pub fn request_target(target: &str) -> Clip<RedactedTarget<'_>> {
    Clip(RedactedTarget(target))
}

/// The `Display` of a request target with its `token` query values
/// redacted (see [`request_target`]).
#[derive(Debug, Clone, Copy)]
pub struct RedactedTarget<'a>(pub &'a str);

impl Display for RedactedTarget<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let Some((path, query)) = self.0.split_once('?') else { return f.write_str(self.0) };
        f.write_str(path)?;
        f.write_char('?')?;
        for (i, pair) in query.split('&').enumerate() {
            if i > 0 {
                f.write_char('&')?;
            }
            let raw_key = pair.split_once('=').map_or(pair, |(key, _)| key);
            // The key alone, decoded as the query parser decodes it.
            let key = form_urlencoded::parse(raw_key.as_bytes()).next().map(|(key, _)| key);
            if key.is_some_and(|key| key.eq_ignore_ascii_case("token")) {
                write!(f, "{raw_key}=<redacted>")?;
            } else {
                f.write_str(pair)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_and_escapes() {
        assert_eq!(clip("plain text, don't").to_string(), "plain text, don't");
        assert_eq!(clip("a\"b\\c\r\n\t\u{0}\u{202e}").to_string(), r#"a"b\c\r\n\t\0\u{202e}"#);
        // `Debug` is clipped too (and not escaped twice).
        assert_eq!(format!("{:?}", clip(Some("a\nb"))), r#"Some("a\nb")"#);
        assert_eq!(format!("{:?}", clip("x".repeat(300))), format!("\"{}…(+46 bytes)", "x".repeat(255)));
        let long = "é".repeat(MAX_LOGGED_CHARS + 10);
        assert_eq!(clip(&long).to_string(), format!("{}…(+20 bytes)", "é".repeat(MAX_LOGGED_CHARS)));
        assert_eq!(clip("x".repeat(MAX_LOGGED_CHARS)).to_string(), "x".repeat(MAX_LOGGED_CHARS));
        // Any Display, written in pieces, is clipped as a whole.
        let pieces = format_args!("{}-{}", "a".repeat(200), "b".repeat(200));
        assert_eq!(clip(pieces).to_string(), format!("{}-{}…(+145 bytes)", "a".repeat(200), "b".repeat(55)));
    }

    #[test]
    fn redacts_tokens() {
        for (target, logged) in [
            ("/sync/ws?token=token-alice", "/sync/ws?token=<redacted>"),
            ("/sync/ws?a=1&token=s&b=2", "/sync/ws?a=1&token=<redacted>&b=2"),
            ("/sync/ws?%74oken=s&TOKEN=t&token", "/sync/ws?%74oken=<redacted>&TOKEN=<redacted>&token=<redacted>"),
            ("/sync/ws?tok%65n=s%20t&x=token", "/sync/ws?tok%65n=<redacted>&x=token"),
            ("/sync/ws?tokens=1&my_token=2", "/sync/ws?tokens=1&my_token=2"),
            ("/health", "/health"),
            ("/p?", "/p?"),
        ] {
            assert_eq!(request_target(target).to_string(), logged, "{target}");
        }
        let long = format!("/sync/ws?{}&token=secret", "a".repeat(1000));
        let logged = request_target(&long).to_string();
        let cut = "/sync/ws?".len() + 1000 + "&token=<redacted>".len() - MAX_LOGGED_CHARS;
        assert_eq!(logged, format!("/sync/ws?{}…(+{cut} bytes)", "a".repeat(MAX_LOGGED_CHARS - 9)));
    }
}
