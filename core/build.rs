//! Builds the plugins under `plugins/` into the wasm32-wasip2 components the `kith` binary
//! embeds (`plugin::bundled`), into `target/wasm`. The purpose-built test plugins under
//! `tests/plugins/` are built by `tests/build.rs`.

include!("../build-support/wasm.rs");

fn main() {
    build_wasm(
        &[
            "kith-plugin-welcome",
            "kith-plugin-donors",
            "kith-plugin-marketing",
            "kith-plugin-loyalty",
            "kith-plugin-tryton",
        ],
        &[
            "plugins/welcome/src",
            "plugins/welcome/plugin.toml",
            "plugins/welcome/Cargo.toml",
            "plugins/donors/src",
            "plugins/donors/plugin.toml",
            "plugins/donors/Cargo.toml",
            "plugins/marketing/src",
            "plugins/marketing/plugin.toml",
            "plugins/marketing/Cargo.toml",
            "plugins/loyalty/src",
            "plugins/loyalty/plugin.toml",
            "plugins/loyalty/Cargo.toml",
            "plugins/tryton/src",
            "plugins/tryton/plugin.toml",
            "plugins/tryton/Cargo.toml",
            "plugin-sdk/src",
            "plugin-sdk/Cargo.toml",
            "schemas/wit",
            "build-support",
            // The `plugin` profile.
            "Cargo.toml",
        ],
        "wasm",
        "BUILT_PLUGINS_DIR",
    );
}
