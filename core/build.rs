//! Builds the bundled plugins (`plugins/`) into wasm32-wasip2 components that the `kith`
//! binary embeds.

include!("../build-support/wasm.rs");

fn main() {
    build_wasm(
        &["kith-plugin-welcome"],
        &[
            "plugins/welcome/src",
            "plugins/welcome/plugin.toml",
            "plugins/welcome/Cargo.toml",
            "plugin-sdk/src",
            "plugin-sdk/Cargo.toml",
            "schemas/wit",
            "build-support",
        ],
    );
}
