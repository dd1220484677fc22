//! Composite ids of join-table rows (docs/protocol.md §5.6).

use uuid::Uuid;

/// The fixed UUIDv5 namespace of composite ids.
pub const COMPOSITE_ID_NAMESPACE: Uuid = uuid::uuid!("92a73695-d772-4b43-9fb4-d79f5fbef300");

/// `UUIDv5(namespace, "<model>:<JSON array of the parts>")`, the same on
/// the bootstrap and the mutation side.
pub fn composite_id(model_name: &str, parts: &[&str]) -> String {
    let mut name = Vec::with_capacity(model_name.len() + 2 + parts.iter().map(|p| p.len() + 3).sum::<usize>());
    name.extend_from_slice(model_name.as_bytes());
    name.extend_from_slice(b":");
    // Writing a string slice to a Vec cannot fail; serde_json escapes like
    // JSON.stringify and leaves non-ASCII unescaped.
    let _ = serde_json::to_writer(&mut name, parts);
    Uuid::new_v5(&COMPOSITE_ID_NAMESPACE, &name).hyphenated().to_string()
}

#[cfg(test)]
mod tests {
    use super::composite_id;

    #[test]
    fn protocol_test_vectors() {
        assert_eq!(composite_id("TaskLabel", &["task-1", "label-1"]), "2d4e0cc0-a17b-5cf4-b540-db93f7f26b62");
        assert_eq!(composite_id("Task", &["id-1"]), "e7439bb7-f94d-59c6-a2b3-70d45734eac2");
    }
}
