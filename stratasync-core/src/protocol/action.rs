//! Sync actions and delta packets (docs/protocol.md §4.3, §7.4).

use super::JsonObject;
use super::RawJson;
use super::SyncId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An action letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionKind {
    /// `I`: insert.
    Insert,
    /// `U`: update.
    Update,
    /// `D`: delete.
    Delete,
    /// `A`: archive.
    Archive,
    /// `V`: unarchive.
    Unarchive,
    /// `S`: the user's sync groups changed. Written by the database when a
    /// user's rows of `sync_group_memberships` change (never by a
    /// mutation): `modelName` `SyncGroup`, `modelId` `sync-groups`,
    /// `groupId` the user's id, `data` `{"subscribedSyncGroups": [...]}`.
    SyncGroups,
}

impl ActionKind {
    /// The letters of row actions: what a mutation (or a model's
    /// `actions`) may name. [`ActionKind::SyncGroups`] is not one of them.
    pub const ALL: [ActionKind; 5] =
        [ActionKind::Insert, ActionKind::Update, ActionKind::Delete, ActionKind::Archive, ActionKind::Unarchive];

    /// The letter stored in `sync_actions.action`.
    pub const fn letter(self) -> char {
        match self {
            ActionKind::Insert => 'I',
            ActionKind::Update => 'U',
            ActionKind::Delete => 'D',
            ActionKind::Archive => 'A',
            ActionKind::Unarchive => 'V',
            ActionKind::SyncGroups => 'S',
        }
    }

    /// The letter as a string slice.
    pub const fn as_str(self) -> &'static str {
        match self {
            ActionKind::Insert => "I",
            ActionKind::Update => "U",
            ActionKind::Delete => "D",
            ActionKind::Archive => "A",
            ActionKind::Unarchive => "V",
            ActionKind::SyncGroups => "S",
        }
    }

    /// The action of a letter (a row action's or `S`).
    pub fn from_letter(c: char) -> Option<Self> {
        ActionKind::ALL.into_iter().chain([ActionKind::SyncGroups]).find(|a| a.letter() == c)
    }

    pub(crate) const fn bit(self) -> u8 {
        match self {
            ActionKind::Insert => 1,
            ActionKind::Update => 2,
            ActionKind::Delete => 4,
            ActionKind::Archive => 8,
            ActionKind::Unarchive => 16,
            // Never in a model's action set.
            ActionKind::SyncGroups => 32,
        }
    }
}

impl Serialize for ActionKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ActionKind {
    /// A letter of [`ActionKind::from_letter`], as one-letter text.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let mut chars = s.chars();
        match (chars.next().and_then(ActionKind::from_letter), chars.next()) {
            (Some(kind), None) => Ok(kind),
            _ => Err(serde::de::Error::custom(format!("unknown action letter {s:?}"))),
        }
    }
}

/// One committed sync action as delivered to clients. Optional keys are
/// absent (not `null`) when their column is NULL.
///
/// `D` is how the data is held: a parsed object (the default), or the
/// log's JSON text passed through ([`RawJson`]) where the
/// action is only read and sent on. It reads back from its JSON (with
/// `createdAt` at its milliseconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncAction<D = JsonObject> {
    /// The action letter.
    pub action: ActionKind,
    /// The originating client, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The originating client transaction, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_tx_id: Option<String>,
    /// Commit time, as ISO-8601 UTC with milliseconds.
    #[serde(serialize_with = "serialize_created_at", deserialize_with = "deserialize_created_at")]
    pub created_at: DateTime<Utc>,
    /// The action's data.
    pub data: D,
    /// The sync group (absent for global actions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    /// The canonical model id.
    pub model_id: String,
    /// The model's wire name.
    pub model_name: String,
    /// The sync id.
    pub sync_id: SyncId,
}

/// The sync-action `createdAt` form: ISO-8601 UTC with exactly three
/// fraction digits and `Z`.
pub fn iso_millis(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn serialize_created_at<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&iso_millis(at))
}

fn deserialize_created_at<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
    DateTime::parse_from_rfc3339(&s).map(|at| at.with_timezone(&Utc)).map_err(serde::de::Error::custom)
}

/// `{"actions":[…],"lastSyncId":"…"}`: the packet of a WebSocket delta frame.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeltaPacket<'a> {
    /// The actions.
    pub actions: &'a [SyncAction],
    /// The last action's sync id.
    pub last_sync_id: SyncId,
}

/// The body of `GET /sync/deltas` (the data of each action is the log's
/// JSON text, passed through).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeltasResponse {
    /// Actions in ascending sync id order.
    pub actions: Vec<SyncAction<RawJson>>,
    /// Whether more actions follow.
    pub has_more: bool,
    /// The last returned sync id, or the request's `after`.
    pub last_sync_id: SyncId,
}
