//! WebSocket messages (docs/protocol.md §7), serialized once and shared.

use crate::protocol::{DeltaPacket, SyncAction, SyncId};
use bytes::Bytes;
use serde::Serialize;
use std::any::Any;
use std::sync::{Arc, OnceLock};

/// A delta message ready to send: its sync id (for the per-session cursor
/// gate) and its JSON, serialized once and shared by every recipient. The
/// transport's encoding of it ([`super::FrameEncoder::text`]) is made once
/// too, on first use, and shared the same way.
#[derive(Clone)]
pub(crate) struct DeltaFrame {
    /// The action's sync id.
    pub(crate) sync_id: SyncId,
    /// `{"packet":{"actions":[…],"lastSyncId":"…"},"type":"delta"}`.
    json: Bytes,
    /// The transport's frame of `json`, made by the first socket that
    /// sends it (a [`super::FrameEncoder::Frame`], type-erased because the
    /// feed does not know the transport).
    encoded: Arc<OnceLock<Box<dyn Any + Send + Sync>>>,
}

impl std::fmt::Debug for DeltaFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeltaFrame").field("sync_id", &self.sync_id).field("len", &self.json.len()).finish()
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    packet: DeltaPacket<'a>,
    #[serde(rename = "type")]
    kind: &'static str,
}

impl DeltaFrame {
    /// The message of one action.
    pub(crate) fn of(action: &SyncAction) -> DeltaFrame {
        let envelope = Envelope {
            packet: DeltaPacket { actions: std::slice::from_ref(action), last_sync_id: action.sync_id },
            kind: "delta",
        };
        // Serializing plain data to a Vec cannot fail.
        let json = serde_json::to_vec(&envelope).unwrap_or_default();
        DeltaFrame { sync_id: action.sync_id, json: Bytes::from(json), encoded: Arc::default() }
    }

    /// The JSON text.
    pub(crate) fn json(&self) -> &Bytes {
        &self.json
    }

    /// The action's own JSON inside the message: the bytes `/sync/deltas`
    /// writes for it (the same serialization of the same action).
    pub(crate) fn action_json(&self) -> Bytes {
        const PREFIX: &[u8] = br#"{"packet":{"actions":["#;
        const SUFFIX: [&[u8]; 2] = [br#"],"lastSyncId":""#, br#""},"type":"delta"}"#];
        let id = itoa::Buffer::new().format(self.sync_id.0).len();
        let end = self.json.len().saturating_sub(SUFFIX[0].len() + id + SUFFIX[1].len());
        self.json.slice(PREFIX.len().min(end)..end)
    }

    /// The frame `encode` makes of the JSON, made once for every socket
    /// that uses the same frame type.
    pub(crate) fn encoded<F: Clone + Send + Sync + 'static>(&self, encode: impl Fn(&Bytes) -> F) -> F {
        let cached = self.encoded.get_or_init(|| Box::new(encode(&self.json)));
        match cached.downcast_ref::<F>() {
            Some(frame) => frame.clone(),
            // Another transport's frame type came first (two adapters in one
            // process): this one encodes per socket.
            None => encode(&self.json),
        }
    }
}

/// An error message: `{"code":…,"message":…,"type":"error"}` (no `code` key
/// when `code` is `None`).
pub(crate) fn error_frame(code: Option<&str>, message: &str) -> String {
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

/// The `subscribed` message that ends a successful subscribe.
pub(crate) fn subscribed_frame(after_sync_id: SyncId, groups: &[String]) -> String {
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
    fn messages_have_the_wire_key_order() {
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
        assert_eq!(
            std::str::from_utf8(frame.json()).unwrap(),
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

    #[test]
    fn encodes_once_per_frame_type() {
        let frame = DeltaFrame::of(&SyncAction {
            action: crate::protocol::ActionKind::Delete,
            client_id: None,
            client_tx_id: None,
            created_at: chrono::DateTime::UNIX_EPOCH,
            data: Default::default(),
            group_id: None,
            model_id: "m".into(),
            model_name: "Task".into(),
            sync_id: SyncId(1),
        });
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let encode = |json: &Bytes| {
            calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            json.len()
        };
        let shared = frame.clone();
        assert_eq!(frame.encoded(encode), frame.json().len());
        assert_eq!(shared.encoded(encode), frame.json().len());
        assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 1, "clones share the encoding");
        // Another frame type still gets its frame, encoded each time.
        assert_eq!(frame.encoded(|json: &Bytes| json.clone()), frame.json());
    }

    #[test]
    fn the_action_json_is_the_actions_serialization() {
        let action = SyncAction {
            action: crate::protocol::ActionKind::Update,
            client_id: Some("c".into()),
            client_tx_id: None,
            created_at: chrono::DateTime::UNIX_EPOCH,
            data: serde_json::json!({"title": "a \"]}"}).as_object().cloned().unwrap_or_default(),
            group_id: Some("g".into()),
            model_id: "m".into(),
            model_name: "Task".into(),
            sync_id: SyncId(1234567),
        };
        let frame = DeltaFrame::of(&action);
        assert_eq!(frame.action_json(), serde_json::to_vec(&action).expect("serializes"));
    }
}
