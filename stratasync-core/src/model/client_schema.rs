//! The client's model schema, derived from the models' specs (an
//! application's [`Registry`](crate::Registry)), and its hash.
//!
//! `@stratasync/client` takes a `schema` option
//! (`{ models: { Task: { loadStrategy, groupKey, fields: { … } } } }`) that
//! must agree with the server's models. [`ClientSchema::from_registry`]
//! builds it from what `#[derive(SyncModel)]` already records, so a client
//! build can generate it instead of keeping a hand-written copy:
//!
//! | client key | from the model |
//! |---|---|
//! | model name | `name` |
//! | `loadStrategy` | `"instant"` (the derive has no load strategy; change it with [`ClientSchema::model_mut`]) |
//! | `groupKey` | the group field's wire name; `"id"` for `group = own`; absent for `global` |
//! | `fields` | every synced field in wire order, plus `id` for composite models (their composite id) |
//! | `indexed: true` | the group field and every `batch_keys` field other than `id` |
//! | `nullable: true` | fields whose Rust type is an `Option` |
//!
//! # The hash
//!
//! [`ClientSchema::hash`] is exactly the `computeSchemaHash` of
//! `@stratasync/core` 0.5.1 applied to the schema: 64-bit FNV-1a (over the
//! Unicode code points) of the JSON of a canonical snapshot in which every
//! object's keys are sorted and absent options left out, as 16 lower-case
//! hex digits. So the hash the server sends in bootstrap metadata equals
//! the hash a client computes for the generated schema. It changes when a
//! model, a field name, its `indexed` or `nullable` flag, a group key or a
//! load strategy changes; it does not change with the order in which
//! models or fields are declared, nor with comments. As in the client, a
//! field's value type is not part of it (a field that changes from a string
//! to a number keeps the hash).

use super::{GroupKey, ModelKind, ModelSpec};
use serde_json::{json, Map, Value};

/// When the client loads a model's rows (`loadStrategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadStrategy {
    /// Loaded by the bootstrap, always available (the default).
    Instant,
    /// Loaded on first access.
    Lazy,
    /// Loaded on demand, partially hydrated.
    Partial,
    /// Never loaded automatically.
    ExplicitlyRequested,
}

impl LoadStrategy {
    /// The client's spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            LoadStrategy::Instant => "instant",
            LoadStrategy::Lazy => "lazy",
            LoadStrategy::Partial => "partial",
            LoadStrategy::ExplicitlyRequested => "explicitlyRequested",
        }
    }
}

/// One field of a client model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientField {
    /// The wire name.
    pub name: String,
    /// Whether the client keeps an index on it (`indexed: true`).
    pub indexed: bool,
    /// Whether it may be `null` (`nullable: true`).
    pub nullable: bool,
}

/// One model of the client schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientModel {
    /// The model name (`__class`).
    pub name: String,
    /// When the client loads its rows.
    pub load_strategy: LoadStrategy,
    /// The field holding the row's sync group (`None` for global models).
    pub group_key: Option<String>,
    /// The fields, in wire order.
    pub fields: Vec<ClientField>,
}

/// The model schema of `@stratasync/client` (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSchema {
    /// The models, in registration order.
    pub models: Vec<ClientModel>,
}

/// The primary key the client reads rows by: the server always sends `id`.
const PRIMARY_KEY: &str = "id";

impl ClientSchema {
    /// The schema of these models, in this order
    /// ([`ClientSchema::from_registry`] passes an application's).
    pub fn from_specs<'a>(specs: impl IntoIterator<Item = &'a ModelSpec>) -> Self {
        let models = specs
            .into_iter()
            .map(|spec| {
                let group_key = match spec.group {
                    GroupKey::Field(f) => Some(f.to_owned()),
                    GroupKey::OwnId => Some(PRIMARY_KEY.to_owned()),
                    GroupKey::Global => None,
                };
                let indexed = |wire: &str| {
                    wire != PRIMARY_KEY && (group_key.as_deref() == Some(wire) || spec.indexed_keys.contains(&wire))
                };
                let mut fields: Vec<ClientField> = spec
                    .fields
                    .iter()
                    .map(|f| ClientField { name: f.wire.to_owned(), indexed: indexed(f.wire), nullable: f.nullable })
                    .collect();
                if spec.kind == ModelKind::Composite && spec.field(PRIMARY_KEY).is_none() {
                    // The composite id comes first, as the client lists its primary key.
                    fields.insert(0, ClientField { name: PRIMARY_KEY.to_owned(), indexed: false, nullable: false });
                }
                ClientModel { name: spec.name.to_owned(), load_strategy: LoadStrategy::Instant, group_key, fields }
            })
            .collect();
        ClientSchema { models }
    }

    /// The model named `name`, to change what the registry cannot say (its
    /// load strategy).
    pub fn model_mut(&mut self, name: &str) -> Option<&mut ClientModel> {
        self.models.iter_mut().find(|m| m.name == name)
    }

    /// The schema as the client takes it: `{"models":{…}}`, models and
    /// fields in declaration order, options only when set.
    pub fn to_json(&self) -> Value {
        let models: Map<String, Value> = self
            .models
            .iter()
            .map(|m| {
                let mut model = Map::new();
                model.insert("loadStrategy".into(), m.load_strategy.as_str().into());
                if let Some(g) = &m.group_key {
                    model.insert("groupKey".into(), g.as_str().into());
                }
                let fields: Map<String, Value> = m.fields.iter().map(|f| (f.name.clone(), field_options(f))).collect();
                model.insert("fields".into(), Value::Object(fields));
                (m.name.clone(), Value::Object(model))
            })
            .collect();
        json!({ "models": models })
    }

    /// The schema as a TypeScript module exporting `schema` (`as const`,
    /// so its load strategies keep their literal types) and `schemaHash`.
    pub fn to_typescript(&self) -> String {
        let body = serde_json::to_string_pretty(&self.to_json()).unwrap_or_default();
        format!(
            "// Generated from the server's sync models; do not edit.\n\
             export const schemaHash = {:?};\n\n\
             export const schema = {body} as const;\n",
            self.hash()
        )
    }

    /// The schema hash (see the [module docs](self)).
    pub fn hash(&self) -> String {
        let canonical = serde_json::to_string(&self.canonical()).unwrap_or_default();
        format!("{:016x}", fnv1a_64(&canonical))
    }

    /// The client's canonical snapshot: `{"models":{name:{"meta":…,"properties":…}}}`,
    /// every object's keys in code-unit order, absent options left out.
    fn canonical(&self) -> Value {
        let mut models: Vec<(&str, Value)> = self
            .models
            .iter()
            .map(|m| {
                let mut meta = Map::new();
                if let Some(g) = &m.group_key {
                    meta.insert("groupKey".into(), g.as_str().into());
                }
                meta.insert("loadStrategy".into(), m.load_strategy.as_str().into());
                meta.insert("name".into(), m.name.as_str().into());
                let mut properties: Vec<(&str, Value)> = m
                    .fields
                    .iter()
                    .map(|f| {
                        let mut p = Map::new();
                        if f.indexed {
                            p.insert("indexed".into(), true.into());
                        }
                        if f.nullable {
                            p.insert("nullable".into(), true.into());
                        }
                        p.insert("type".into(), "property".into());
                        (f.name.as_str(), Value::Object(p))
                    })
                    .collect();
                if !m.fields.iter().any(|f| f.name == PRIMARY_KEY) {
                    properties.push((PRIMARY_KEY, json!({ "type": "property" })));
                }
                sort_utf16(&mut properties);
                let properties: Map<String, Value> = properties.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
                (m.name.as_str(), json!({ "meta": meta, "properties": properties }))
            })
            .collect();
        sort_utf16(&mut models);
        let models: Map<String, Value> = models.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        json!({ "models": models })
    }
}

fn field_options(field: &ClientField) -> Value {
    let mut options = Map::new();
    if field.indexed {
        options.insert("indexed".into(), true.into());
    }
    if field.nullable {
        options.insert("nullable".into(), true.into());
    }
    Value::Object(options)
}

/// Sorts by key in UTF-16 code-unit order, as JavaScript's default sort does.
fn sort_utf16<T>(entries: &mut [(&str, T)]) {
    entries.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
}

/// 64-bit FNV-1a over the Unicode code points of `text`, as
/// `@stratasync/core` computes it (a code point above 0xFF is mixed in
/// whole, not byte by byte). Hand-written: the client's variant is not the
/// byte-wise FNV of the `fnv` crate.
fn fnv1a_64(text: &str) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    text.chars().fold(OFFSET_BASIS, |hash, c| (hash ^ u64::from(u32::from(c))).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, indexed: bool, nullable: bool) -> ClientField {
        ClientField { name: name.into(), indexed, nullable }
    }

    fn schema(fields: Vec<ClientField>) -> ClientSchema {
        ClientSchema {
            models: vec![ClientModel {
                name: "Task".into(),
                load_strategy: LoadStrategy::Instant,
                group_key: Some("workspaceId".into()),
                fields,
            }],
        }
    }

    #[test]
    fn fnv_matches_the_reference_values() {
        // Published FNV-1a 64 test vectors (ASCII, where code points are bytes).
        assert_eq!(fnv1a_64(""), 0xcbf29ce484222325);
        assert_eq!(fnv1a_64("a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a_64("foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn hash_ignores_order_and_follows_content() {
        let a = schema(vec![field("id", false, false), field("workspaceId", true, false), field("title", false, true)]);
        let b = schema(vec![field("title", false, true), field("workspaceId", true, false), field("id", false, false)]);
        assert_eq!(a.hash(), b.hash());
        assert_eq!(a.hash().len(), 16);
        let renamed =
            schema(vec![field("id", false, false), field("workspaceId", true, false), field("name", false, true)]);
        assert_ne!(a.hash(), renamed.hash());
        let not_null =
            schema(vec![field("id", false, false), field("workspaceId", true, false), field("title", false, false)]);
        assert_ne!(a.hash(), not_null.hash());
        let mut lazy = a.clone();
        lazy.model_mut("Task").unwrap().load_strategy = LoadStrategy::Lazy;
        assert_ne!(a.hash(), lazy.hash());
    }

    fn model(name: &str, group_key: Option<&str>, fields: Vec<ClientField>) -> ClientModel {
        ClientModel {
            name: name.into(),
            load_strategy: LoadStrategy::Instant,
            group_key: group_key.map(Into::into),
            fields,
        }
    }

    /// `Task` (grouped by `workspaceId`) and `Label`, with `title`
    /// indexed or not.
    fn task_and_label(title_indexed: bool) -> Vec<ClientModel> {
        vec![
            model(
                "Task",
                Some("workspaceId"),
                vec![
                    field("id", false, false),
                    field("workspaceId", true, false),
                    field("title", title_indexed, false),
                ],
            ),
            model("Label", Some("workspaceId"), vec![field("id", false, false), field("workspaceId", true, false)]),
        ]
    }

    #[test]
    fn hash_ignores_model_order() {
        let models = task_and_label(false);
        let reversed: Vec<ClientModel> = models.iter().rev().cloned().collect();
        let (a, b) = (ClientSchema { models }, ClientSchema { models: reversed });
        assert_ne!(a.to_json().to_string(), b.to_json().to_string(), "the JSON keeps declaration order");
        assert_eq!(a.hash(), b.hash(), "the hash does not");
    }

    #[test]
    fn hash_changes_with_an_index_flag() {
        let plain = ClientSchema { models: task_and_label(false) };
        let indexed = ClientSchema { models: task_and_label(true) };
        assert_ne!(plain.hash(), indexed.hash(), "an index added");
        // The same flag on another field of the same model is another schema.
        let mut moved = ClientSchema { models: task_and_label(false) };
        let task = moved.model_mut("Task").unwrap();
        task.fields[1].indexed = false;
        task.fields[2].indexed = true;
        assert_ne!(plain.hash(), moved.hash(), "an index moved to another field");
    }

    #[test]
    fn hash_changes_with_the_group_key() {
        let by_workspace = ClientSchema { models: task_and_label(false) };
        let mut hashes = vec![by_workspace.hash()];
        // Another field, the row's own id (`group = own`), none (`global`).
        for group_key in [Some("title"), Some("id"), None] {
            let mut changed = ClientSchema { models: task_and_label(false) };
            changed.model_mut("Task").unwrap().group_key = group_key.map(Into::into);
            hashes.push(changed.hash());
        }
        let distinct: std::collections::BTreeSet<&String> = hashes.iter().collect();
        assert_eq!(distinct.len(), hashes.len(), "every group key has its own hash: {hashes:?}");
    }

    #[test]
    fn json_lists_options_only_when_set() {
        let s = schema(vec![field("id", false, false), field("workspaceId", true, false), field("title", false, true)]);
        assert_eq!(
            serde_json::to_string(&s.to_json()).unwrap(),
            r#"{"models":{"Task":{"loadStrategy":"instant","groupKey":"workspaceId","fields":{"id":{},"workspaceId":{"indexed":true},"title":{"nullable":true}}}}}"#
        );
    }
}
