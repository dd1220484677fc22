//! WebSocket frames (PROTOCOL.md §7), serialized once and shared.

use super::wire;
use crate::protocol::{DeltaPacket, SyncAction, SyncId};
use bytes::Bytes;
use serde::Serialize;

/// A delta frame ready to send: its sync id (for the per-session cursor
/// gate) and its WebSocket text frame, encoded once and shared by every
/// recipient.
#[derive(Debug, Clone)]
pub struct DeltaFrame {
    /// The action's sync id.
    pub sync_id: SyncId,
    /// The WebSocket frame: header, then the JSON.
    wire: Bytes,
    /// The header's length.
    header: u8,
}

#[derive(Serialize)]
struct Envelope<'a> {
    packet: DeltaPacket<'a>,
    #[serde(rename = "type")]
    kind: &'static str,
}

impl DeltaFrame {
    /// The frame of one action.
    pub fn of(action: &SyncAction) -> DeltaFrame {
        let envelope = Envelope {
            packet: DeltaPacket { actions: std::slice::from_ref(action), last_sync_id: action.sync_id },
            kind: "delta",
        };
        // The JSON is written after room for the longest header, and the
        // header right before it: one allocation, no copy.
        let mut buf = Vec::with_capacity(512);
        buf.resize(wire::MAX_HEADER, 0);
        // Serializing plain data to a Vec cannot fail.
        if serde_json::to_writer(&mut buf, &envelope).is_err() {
            buf.truncate(wire::MAX_HEADER);
        }
        let len = buf.len() - wire::MAX_HEADER;
        let header = wire::header_len(len);
        let start = wire::MAX_HEADER - header;
        wire::write_header(&mut buf[start..wire::MAX_HEADER], wire::TEXT_OPCODE, len);
        DeltaFrame { sync_id: action.sync_id, wire: Bytes::from(buf).slice(start..), header: header as u8 }
    }

    /// `{"packet":{"actions":[…],"lastSyncId":"…"},"type":"delta"}`.
    pub fn json(&self) -> Bytes {
        self.wire.slice(self.header as usize..)
    }

    /// The whole WebSocket text frame.
    pub fn wire(&self) -> &Bytes {
        &self.wire
    }
}

/// An error frame: `{"code":…,"message":…,"type":"error"}` (no `code` key
/// when `code` is `None`).
pub fn error_frame(code: Option<&str>, message: &str) -> String {
    #[derive(Serialize)]
    struct ErrorFrame<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        code: Option<&'a str>,
        message: &'a str,
        #[serde(rename = "type")]
        kind: &'static str,
    }
    serde_json::to_string(&ErrorFrame { code, message, kind: "error" }).unwrap_or_default()
}

/// The `subscribed` frame that ends a successful subscribe.
pub fn subscribed_frame(after_sync_id: SyncId, groups: &[String]) -> String {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Subscribed<'a> {
        after_sync_id: SyncId,
        groups: &'a [String],
        #[serde(rename = "type")]
        kind: &'static str,
    }
    serde_json::to_string(&Subscribed { after_sync_id, groups, kind: "subscribed" }).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn frames_have_the_wire_key_order() {
        let action = SyncAction {
            action: crate::protocol::ActionKind::Insert,
            client_id: Some("c".into()),
            client_tx_id: Some("tx".into()),
            created_at: chrono::Utc.timestamp_millis_opt(1_704_164_645_678).unwrap(),
            data: serde_json::json!({"id": "t3"}).as_object().unwrap().clone(),
            group_id: Some("g1".into()),
            model_id: "t3".into(),
            model_name: "Task".into(),
            sync_id: SyncId(3),
        };
        let frame = DeltaFrame::of(&action);
        assert_eq!(frame.wire()[..4], [0x81, 126, 0, frame.json().len() as u8]);
        assert_eq!(frame.wire()[4..], frame.json()[..]);
        assert_eq!(
            std::str::from_utf8(&frame.json()).unwrap(),
            r#"{"packet":{"actions":[{"action":"I","clientId":"c","clientTxId":"tx","createdAt":"2024-01-02T03:04:05.678Z","data":{"id":"t3"},"groupId":"g1","modelId":"t3","modelName":"Task","syncId":"3"}],"lastSyncId":"3"},"type":"delta"}"#
        );
        assert_eq!(
            error_frame(Some("BOOTSTRAP_REQUIRED"), "A fresh bootstrap is required before subscribing to deltas"),
            r#"{"code":"BOOTSTRAP_REQUIRED","message":"A fresh bootstrap is required before subscribing to deltas","type":"error"}"#
        );
        assert_eq!(error_frame(None, "Invalid token"), r#"{"message":"Invalid token","type":"error"}"#);
        assert_eq!(
            subscribed_frame(SyncId(42), &["w1".into(), "u1".into()]),
            r#"{"afterSyncId":"42","groups":["w1","u1"],"type":"subscribed"}"#
        );
    }
}
