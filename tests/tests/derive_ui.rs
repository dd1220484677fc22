//! Compile-time behavior of `#[derive(SyncModel)]` (trybuild): every
//! attribute in `tests/ui/pass`, every error in `tests/ui/fail` with the
//! exact diagnostics in its `.stderr`.
//!
//! Diagnostics change between compilers, so the `.stderr` files belong to
//! the compiler that wrote them ([`UI_RUSTC`]). On any other compiler the
//! test fails (it never skips) and says how to regenerate them: set
//! [`UI_RUSTC`] to the new compiler's minor version, run
//! `TRYBUILD=overwrite cargo test -p stratasync-tests --test derive_ui`,
//! and read every changed `.stderr` before committing it.

/// The `rustc` minor version the `.stderr` files were written with.
const UI_RUSTC: &str = "rustc 1.95.";

/// `rustc --version` of the compiler cargo uses (`$RUSTC` when cargo set
/// it, else the `rustc` on the `PATH`, which rustup resolves like cargo).
fn rustc_version() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let out = std::process::Command::new(&rustc).arg("--version").output().expect("run rustc --version");
    assert!(out.status.success(), "{rustc} --version failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn derive_ui() {
    let version = rustc_version();
    assert!(
        version.starts_with(UI_RUSTC),
        "the derive's UI cases (tests/ui/*/*.stderr) were written by {UI_RUSTC}x, and this is {version}. \
         To move them to this compiler: set UI_RUSTC in tests/tests/derive_ui.rs to this version, run \
         `TRYBUILD=overwrite cargo test -p stratasync-tests --test derive_ui`, and review every changed .stderr"
    );
    let t = trybuild::TestCases::new();
    t.pass("ui/pass/*.rs");
    t.compile_fail("ui/fail/*.rs");
}
