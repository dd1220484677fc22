//! "Did you mean" suggestions for misspelled names.

/// The candidate closest to `name` by edit distance (`strsim`), if it is
/// close enough to be a typo: at most a third of the longer name apart,
/// plus one.
pub fn closest<'a, S: AsRef<str>>(name: &str, candidates: &'a [S]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::levenshtein(name, c.as_ref()), c.as_ref()))
        .filter(|(d, c)| *d <= name.len().max(c.len()) / 3 + 1)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn suggests_close_names_only() {
        let names = ["id", "workspace_id", "title", "archived_at"];
        assert_eq!(closest("workspace", &names), Some("workspace_id"));
        assert_eq!(closest("titel", &names), Some("title"));
        assert_eq!(closest("archived", &names), Some("archived_at"));
        assert_eq!(closest("parent_id", &names), None);
        assert_eq!(closest("inesrt", &["insert", "update"]), Some("insert"));
    }
}
