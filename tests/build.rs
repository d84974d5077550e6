//! Builds the purpose-built test plugins under `tests/plugins/` into wasm32-wasip2 components,
//! into `target/wasm-tests` (apart from `core/build.rs`'s `target/wasm`, so the two nested
//! builds never share a lock or an output), for the end-to-end tests and the benchmarks:
//! `env!("TEST_PLUGINS_DIR")` is their directory. They are never bundled.

include!("../build-support/wasm.rs");

fn main() {
    build_wasm(
        &["kith-test-plugin-hostile"],
        &["tests/plugins", "plugin-sdk/src", "plugin-sdk/Cargo.toml", "schemas/wit", "build-support", "Cargo.toml"],
        "wasm-tests",
        "TEST_PLUGINS_DIR",
    );
}
