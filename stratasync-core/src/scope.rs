//! The filter context of bootstrap and batch queries (docs/protocol.md §3.3).

/// Who is asking and which groups the request covers. A model's scope
/// (by default `group field IN authorized_group_ids`) is built from it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeFilter {
    /// The effective groups, deduplicated, in request order.
    pub authorized_group_ids: Vec<String>,
    /// The effective groups without the user's own id.
    pub workspace_group_ids: Vec<String>,
    /// The caller.
    pub user_id: String,
}

impl ScopeFilter {
    /// The filter for effective groups `groups` of user `user_id`.
    pub fn new(user_id: &str, groups: &[String]) -> Self {
        let authorized_group_ids = crate::auth::dedupe(groups.iter().cloned());
        let workspace_group_ids = authorized_group_ids.iter().filter(|g| *g != user_id).cloned().collect();
        ScopeFilter { authorized_group_ids, workspace_group_ids, user_id: user_id.to_owned() }
    }

    /// The authorized groups parsed as the key type `T`, in order; ids that
    /// the column type cannot hold, or that spell a key in other than its
    /// canonical form (see [`KeyValue`](crate::codec::KeyValue)), are
    /// dropped (they match no row).
    pub fn groups_as<T: crate::codec::KeyValue>(&self) -> Vec<T> {
        self.authorized_group_ids.iter().filter_map(|g| T::parse_key(g)).collect()
    }
}
