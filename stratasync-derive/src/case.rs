//! Wire names: the camelCase form of a column name.

use heck::ToLowerCamelCase;

/// The default wire name of a column: `workspace_id` → `workspaceId`.
/// A raw identifier's `r#` prefix is not part of the name.
pub fn wire_name(column: &str) -> String {
    let column = column.strip_prefix("r#").unwrap_or(column);
    column.to_lower_camel_case()
}

#[cfg(test)]
mod tests {
    use super::wire_name;

    #[test]
    fn snake_case_columns_become_camel_case() {
        assert_eq!(wire_name("id"), "id");
        assert_eq!(wire_name("workspace_id"), "workspaceId");
        assert_eq!(wire_name("due_date"), "dueDate");
        assert_eq!(wire_name("created_at"), "createdAt");
        assert_eq!(wire_name("a_b_c"), "aBC");
        assert_eq!(wire_name("label2_id"), "label2Id");
    }

    #[test]
    fn raw_identifiers_lose_their_prefix() {
        assert_eq!(wire_name("r#type"), "type");
        assert_eq!(wire_name("r#type_name"), "typeName");
    }

    #[test]
    fn already_camel_case_is_kept() {
        assert_eq!(wire_name("archivedAt"), "archivedAt");
        assert_eq!(wire_name("x"), "x");
    }
}
