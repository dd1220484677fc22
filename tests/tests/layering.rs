//! The dependency order inside `stratasync-core`: every `crate::<module>`
//! path in a module's code (comments and doc links aside) must point to a
//! lower layer, or be one of the listed exceptions. A new back-edge fails
//! this test with its file, line and edge.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// The layers, lowest first: a unit may use the units of lower layers (and
/// its own). `ops::explain` is a unit of its own (the operator's dry run
/// works on a whole engine); the rest of `ops` (compaction, statistics) is
/// below the engine, which runs compaction.
const LAYERS: &[&[&str]] = &[
    // Leaves: no dependency inside the crate.
    &["log_text", "request_id", "composite_id", "tls", "readiness"],
    // Wire types and their helpers (JsonObject, RawJson, createdAt, dedupe).
    &["protocol"],
    // Request validation, and the in-process delta bus.
    &["request", "bus"],
    // PostgreSQL: connections, the log, memberships, migrations.
    &["storage"],
    // Tokens and the caller's groups (read from `storage::memberships`).
    &["auth"],
    // Field codecs (and `CodecKind`), then errors (`MutationError` names a
    // `CodecKind`; `HookError` is declared here), then the scope of a read.
    &["codec"],
    &["error"],
    &["scope", "metrics"],
    // The model contract: specs, typed hooks, the client schema.
    &["model"],
    // The registry (models, type-erased for the services), payload
    // normalization, bootstrap, batch, delta page rules, group commit,
    // limits.
    &["service"],
    // Writes from server code; compaction and log statistics.
    &["write", "ops"],
    // The live feed and WebSocket sessions.
    &["realtime"],
    // The engine: every `impl SyncEngine`.
    &["engine"],
    // Over the engine: the HTTP endpoints and the operator's explain.
    &["endpoint", "ops::explain"],
];

/// Edges against the order, each with why it is still there (none: every
/// `crate::` path points down; an entry here must name its reason).
const EXCEPTIONS: &[(&str, &str, &str)] = &[];

fn unit_of(module: &str, next: Option<&str>) -> String {
    match (module, next) {
        ("ops", Some("explain")) => "ops::explain".to_owned(),
        _ => module.to_owned(),
    }
}

fn rank(unit: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&unit))
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../stratasync-core/src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read core's sources") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The unit a file belongs to (`None` for the crate root).
fn file_unit(relative: &Path) -> Option<String> {
    let parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned()).collect();
    match parts.as_slice() {
        [root] if root == "lib" => None,
        [first, rest @ ..] => Some(unit_of(first, rest.first().map(String::as_str))),
        [] => None,
    }
}

/// What `crate::<name>` means for a name that is not a module: the crate
/// root's re-exports (`pub use engine::SyncEngine;`).
fn root_exports(lib: &str) -> HashMap<String, String> {
    let mut map = HashMap::new();
    for line in lib.lines().map(str::trim) {
        let Some(path) = line.strip_prefix("pub use ").and_then(|l| l.strip_suffix(';')) else { continue };
        let Some((module, items)) = path.split_once("::") else { continue };
        let items = items.trim_start_matches('{').trim_end_matches('}');
        for item in items.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let name = item.rsplit("::").next().unwrap_or(item).rsplit(" as ").next().unwrap_or(item);
            map.insert(name.to_owned(), module.to_owned());
        }
    }
    map
}

/// The code of a line: nothing of a comment line, and nothing after `//`
/// (core has no `//` inside string literals on lines that name modules).
fn code(line: &str) -> &str {
    let trimmed = line.trim_start();
    if trimmed.starts_with("//") {
        return "";
    }
    match line.find("//") {
        Some(at) if !line[..at].contains('"') => &line[..at],
        _ => line,
    }
}

/// The units a line of code names: `crate::a::b`, and each path of
/// `crate::{a, b::c}`.
fn named(line: &str, modules: &BTreeSet<String>, exports: &HashMap<String, String>) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        // `$crate::` in a macro is the crate root too.
        rest = &rest[at + "crate::".len()..];
        let paths: Vec<&str> = match rest.strip_prefix('{') {
            Some(group) => group.split('}').next().unwrap_or("").split(',').map(str::trim).collect(),
            None => vec![rest],
        };
        for path in paths {
            let mut segments = path.split("::").map(|s| {
                let end = s.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(s.len());
                &s[..end]
            });
            let Some(first) = segments.next().filter(|s| !s.is_empty()) else { continue };
            if modules.contains(first) {
                found.push(unit_of(first, segments.next()));
            } else if let Some(module) = exports.get(first) {
                found.push(module.clone());
            }
        }
    }
    found
}

/// Every edge of core: `(file, line, from, to)`.
fn edges() -> Vec<(String, usize, String, String)> {
    let src = src();
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("read lib.rs");
    let exports = root_exports(&lib);
    let mut modules = BTreeSet::new();
    for entry in std::fs::read_dir(&src).expect("read core's sources") {
        let path = entry.expect("directory entry").path();
        let name = path.file_stem().expect("a file name").to_string_lossy().into_owned();
        if name != "lib" && (path.is_dir() || path.extension().is_some_and(|e| e == "rs")) {
            modules.insert(name);
        }
    }
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut edges = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&src).expect("under src").to_path_buf();
        let Some(from) = file_unit(&relative) else { continue };
        let text = std::fs::read_to_string(&file).expect("read a source file");
        for (n, line) in text.lines().enumerate() {
            for to in named(code(line), &modules, &exports) {
                if to != from && !(from.starts_with("ops") && to.starts_with("ops")) {
                    edges.push((relative.display().to_string(), n + 1, from.clone(), to));
                }
            }
        }
    }
    edges
}

#[test]
fn every_module_of_core_has_a_layer() {
    let mut missing = BTreeSet::new();
    for (_, _, from, to) in edges() {
        for unit in [from, to] {
            if rank(&unit).is_none() {
                missing.insert(unit);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "modules of stratasync-core missing from LAYERS in tests/tests/layering.rs: {missing:?}"
    );
}

#[test]
fn core_depends_downwards_only() {
    let edges = edges();
    assert!(edges.len() > 100, "too few edges found ({}): is the source path right?", edges.len());
    let mut used = BTreeSet::new();
    let mut wrong = Vec::new();
    for (file, line, from, to) in &edges {
        let (Some(a), Some(b)) = (rank(from), rank(to)) else { continue };
        if b < a {
            continue;
        }
        if EXCEPTIONS.iter().any(|(f, t, _)| f == from && t == to) {
            used.insert((from.clone(), to.clone()));
            continue;
        }
        let kind = if a == b { "sideways (same layer)" } else { "upwards" };
        wrong.push(format!("stratasync-core/src/{file}:{line}: {from} -> {to} ({kind})"));
    }
    assert!(
        wrong.is_empty(),
        "stratasync-core dependencies against the layering of tests/tests/layering.rs \
         (move the item to a lower layer, or list the edge in EXCEPTIONS with its reason):\n{}",
        wrong.join("\n")
    );
    let stale: Vec<_> =
        EXCEPTIONS.iter().filter(|(f, t, _)| !used.contains(&((*f).to_owned(), (*t).to_owned()))).collect();
    assert!(stale.is_empty(), "exceptions no longer needed (remove them from EXCEPTIONS): {stale:?}");
}

#[test]
fn the_scanner_sees_grouped_and_root_paths() {
    let modules: BTreeSet<String> = ["engine", "ops", "model"].iter().map(|s| (*s).to_owned()).collect();
    let exports = root_exports("pub use engine::SyncEngine;\npub use model::{Registry, SyncModel};");
    assert_eq!(named("use crate::{engine, ops::explain::X};", &modules, &exports), ["engine", "ops::explain"]);
    assert_eq!(named("let e: crate::SyncEngine = crate::Registry::x();", &modules, &exports), ["engine", "model"]);
    assert_eq!(code("    /// [`x`](crate::engine)"), "");
    assert_eq!(code("f(); // crate::engine"), "f(); ");
}
