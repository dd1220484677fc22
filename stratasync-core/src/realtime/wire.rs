//! Server-to-client WebSocket frames (RFC 6455 §5.2), encoded once.
//!
//! Server frames are not masked, so a frame's bytes are the same for every
//! socket: a delta is encoded once and the same bytes are queued on every
//! recipient socket.

use bytes::{BufMut, Bytes, BytesMut};

/// Largest header of an unmasked frame: 2 bytes, plus 8 for a 64-bit
/// payload length.
pub const MAX_HEADER: usize = 10;
/// Largest payload of a control frame (ping, pong, close).
const MAX_CONTROL_PAYLOAD: usize = 125;

const TEXT: u8 = 0x1;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;
const FIN: u8 = 0x80;

/// Writes the header of a final frame with `opcode` and a payload of `len`
/// bytes into the end of `out` (which must be [`header_len`] long).
pub fn write_header(out: &mut [u8], opcode: u8, len: usize) {
    out[0] = FIN | opcode;
    match out.len() {
        2 => out[1] = len as u8,
        4 => {
            out[1] = 126;
            out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out[1] = 127;
            out[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        }
    }
}

/// The header length of a frame with a payload of `len` bytes.
pub fn header_len(len: usize) -> usize {
    match len {
        0..=125 => 2,
        126..=0xFFFF => 4,
        _ => 10,
    }
}

/// The opcode of a text frame.
pub const TEXT_OPCODE: u8 = TEXT;

fn frame(opcode: u8, payload: &[u8]) -> Bytes {
    let header = header_len(payload.len());
    let mut buf = BytesMut::with_capacity(header + payload.len());
    buf.put_bytes(0, header);
    write_header(&mut buf[..header], opcode, payload.len());
    buf.extend_from_slice(payload);
    buf.freeze()
}

/// A text frame.
pub fn text(payload: &[u8]) -> Bytes {
    frame(TEXT, payload)
}

/// A ping (payloads over 125 bytes are truncated).
pub fn ping(payload: &[u8]) -> Bytes {
    frame(PING, &payload[..payload.len().min(MAX_CONTROL_PAYLOAD)])
}

/// A pong (payloads over 125 bytes are truncated).
pub fn pong(payload: &[u8]) -> Bytes {
    frame(PONG, &payload[..payload.len().min(MAX_CONTROL_PAYLOAD)])
}

/// A close frame: no payload without a code; the reason is cut to fit a
/// control frame, at a character boundary.
pub fn close(code: Option<u16>, reason: &str) -> Bytes {
    let Some(code) = code else { return frame(CLOSE, &[]) };
    let mut end = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = Vec::with_capacity(2 + end);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    frame(CLOSE, &payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_unmasked_frames() {
        assert_eq!(&text(b"hi")[..], b"\x81\x02hi");
        let long = vec![b'a'; 300];
        let t = text(&long);
        assert_eq!(&t[..4], &[0x81, 126, 1, 44]);
        assert_eq!(t.len(), 304);
        let huge = vec![b'a'; 70_000];
        let t = text(&huge);
        assert_eq!(&t[..10], &[0x81, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
        assert_eq!(&ping(b"")[..], b"\x89\x00");
        assert_eq!(&pong(b"x")[..], b"\x8a\x01x");
        assert_eq!(&close(None, "")[..], b"\x88\x00");
        assert_eq!(&close(Some(4008), "slow")[..], b"\x88\x06\x0f\xa8slow");
        let reason = "é".repeat(100);
        let c = close(Some(1000), &reason);
        assert_eq!(c[1] as usize, c.len() - 2);
        assert!(c.len() - 2 <= 125 && std::str::from_utf8(&c[4..]).is_ok());
    }
}
