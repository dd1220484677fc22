//! Compile-time behavior of `#[derive(SyncModel)]` (trybuild): every
//! attribute in `tests/ui/pass`, every error in `tests/ui/fail` with the
//! exact diagnostics in its `.stderr`.
//!
//! Diagnostics change between compilers, so the cases are pinned to the
//! toolchain that wrote the `.stderr` files ([`UI_RUSTC`]); on another one
//! the test says so and does nothing. Regenerate with
//! `TRYBUILD=overwrite cargo test -p stratasync-tests --test derive_ui`
//! and read every changed `.stderr`.

/// The `rustc` minor version the `.stderr` files were written with.
const UI_RUSTC: &str = "rustc 1.95.";

fn rustc_version() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let out = std::process::Command::new(rustc).arg("--version").output().expect("run rustc --version");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn derive_ui() {
    let version = rustc_version();
    if !version.starts_with(UI_RUSTC) && std::env::var_os("STRATASYNC_UI_ANY_RUSTC").is_none() {
        eprintln!(
            "skipping the derive UI tests: they are pinned to {UI_RUSTC}x, this is {}; \
             set STRATASYNC_UI_ANY_RUSTC=1 to run them anyway",
            version.trim()
        );
        return;
    }
    let t = trybuild::TestCases::new();
    t.pass("ui/pass/*.rs");
    t.compile_fail("ui/fail/*.rs");
}
