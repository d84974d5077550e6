//! Builds the plugins under `plugins/` into the wasm32-wasip2 components the `kith` binary
//! embeds, and the purpose-built test plugins under `tests/plugins/` used by the end-to-end
//! tests and the benchmarks (they are small; never bundled).

include!("../build-support/wasm.rs");

fn main() {
    build_wasm(
        &["kith-plugin-welcome", "kith-plugin-donors", "kith-test-plugin-hostile"],
        &[
            "plugins/welcome/src",
            "plugins/welcome/plugin.toml",
            "plugins/welcome/Cargo.toml",
            "plugins/donors/src",
            "plugins/donors/plugin.toml",
            "plugins/donors/Cargo.toml",
            "tests/plugins",
            "plugin-sdk/src",
            "plugin-sdk/Cargo.toml",
            "schemas/wit",
            "build-support",
        ],
    );
}
