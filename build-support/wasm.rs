// Shared by the build scripts that compile plugins to wasm32-wasip2 components (`include!`d).
// It runs a nested `cargo build` of the given workspace packages into `target/<dir>` with the
// `plugin` profile, adding the wasm32-wasip2 target through rustup first when it is missing, and
// tells the crate where the components are through the compile-time variable `env_var`.
// Each build script passes a `dir` of its own (`core/build.rs`: `wasm`, `tests/build.rs`:
// `wasm-tests`): a target directory of its own never waits on the outer build's lock, nor on
// the other script's nested build, which cargo may run at the same time.

fn build_wasm(packages: &[&str], watch: &[&str], dir: &str, env_var: &str) -> std::path::PathBuf {
    use std::path::PathBuf;
    use std::process::Command;

    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let root = manifest_dir.parent().expect("the workspace root").to_path_buf();
    for path in watch {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc).args(["--print", "sysroot"]).output().expect("running rustc --print sysroot");
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    if !sysroot.join("lib/rustlib/wasm32-wasip2").exists() {
        let status = Command::new("rustup").args(["target", "add", "wasm32-wasip2"]).status();
        if !status.is_ok_and(|s| s.success()) {
            panic!("the wasm32-wasip2 target is missing and `rustup target add wasm32-wasip2` failed");
        }
    }
    let target_dir = root.join("target").join(dir);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(&root)
        .args(["build", "--quiet", "--target", "wasm32-wasip2", "--profile", "plugin", "--target-dir"])
        .arg(&target_dir);
    for package in packages {
        command.args(["-p", package]);
    }
    for var in [
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        command.env_remove(var);
    }
    let status = command.status().expect("running cargo build for the wasm plugins");
    if !status.success() {
        panic!("building the wasm plugins {packages:?} failed");
    }
    let out = target_dir.join("wasm32-wasip2").join("plugin");
    // Never `KITH_*`: cargo also sets this for `cargo run`, and Kith refuses unknown `KITH_*`
    // variables as misspelt settings.
    assert!(!env_var.starts_with("KITH_"), "{env_var}: a build script sets no KITH_* variable");
    println!("cargo:rustc-env={env_var}={}", out.display());
    out
}
