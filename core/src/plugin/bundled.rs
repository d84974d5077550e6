//! Plugins shipped inside the `kith` binary (built from `plugins/` by `core/build.rs`).

/// A bundled plugin: its manifest and component.
#[derive(Debug, Clone, Copy)]
pub struct Bundled {
    /// The plugin id.
    pub id: &'static str,
    /// `plugin.toml`.
    pub manifest: &'static str,
    /// The wasm32-wasip2 component.
    pub component: &'static [u8],
}

/// Every bundled plugin (the welcome example first).
pub const BUNDLED: &[Bundled] = &[
    Bundled {
        id: "welcome",
        manifest: include_str!("../../../plugins/welcome/plugin.toml"),
        component: include_bytes!(concat!(env!("BUILT_PLUGINS_DIR"), "/kith_plugin_welcome.wasm")),
    },
    Bundled {
        id: "donors",
        manifest: include_str!("../../../plugins/donors/plugin.toml"),
        component: include_bytes!(concat!(env!("BUILT_PLUGINS_DIR"), "/kith_plugin_donors.wasm")),
    },
    Bundled {
        id: "marketing",
        manifest: include_str!("../../../plugins/marketing/plugin.toml"),
        component: include_bytes!(concat!(env!("BUILT_PLUGINS_DIR"), "/kith_plugin_marketing.wasm")),
    },
    Bundled {
        id: "loyalty",
        manifest: include_str!("../../../plugins/loyalty/plugin.toml"),
        component: include_bytes!(concat!(env!("BUILT_PLUGINS_DIR"), "/kith_plugin_loyalty.wasm")),
    },
    Bundled {
        id: "tryton",
        manifest: include_str!("../../../plugins/tryton/plugin.toml"),
        component: include_bytes!(concat!(env!("BUILT_PLUGINS_DIR"), "/kith_plugin_tryton.wasm")),
    },
];
