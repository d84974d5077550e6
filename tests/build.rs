//! Builds the purpose-built test plugins (`tests/plugins/`) into wasm32-wasip2 components.

include!("../build-support/wasm.rs");

fn main() {
    build_wasm(
        &["kith-test-plugin-hostile", "kith-plugin-welcome"],
        &[
            "tests/plugins",
            "plugins/welcome",
            "plugin-sdk/src",
            "plugin-sdk/Cargo.toml",
            "schemas/wit",
            "build-support",
        ],
    );
}
