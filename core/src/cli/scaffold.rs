//! `kith plugin new NAME --lang rust|typescript|python`: a plugin project that builds with its
//! language's own toolchain, tests against its SDK's in-memory test host, and whose output
//! `kith plugin install` takes as it is. The SDK is found relative to the project (`--sdk-path`
//! picks another), so the project holds no path of this machine; the toolchain versions come
//! from the SDK itself (the TypeScript SDK's `peerDependencies`, the Python SDK's `build` extra),
//! never from a second list here.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::ValueEnum;

/// The languages `kith plugin new` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    /// cargo, `kith-plugin-sdk` (plugin-sdk/).
    Rust,
    /// npm, `@kith/plugin-sdk` (plugin-sdk/typescript), componentize-js.
    #[value(alias = "ts")]
    Typescript,
    /// pip, `kith-plugin-sdk` (plugin-sdk/python), componentize-py.
    #[value(alias = "py")]
    Python,
}

impl Lang {
    /// The SDK of this language in the Kith source tree `kith` was built from.
    fn default_sdk(self) -> PathBuf {
        let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../plugin-sdk"));
        match self {
            Lang::Rust => root,
            Lang::Typescript => root.join("typescript"),
            Lang::Python => root.join("python"),
        }
    }

    /// What to run next, for the message after scaffolding.
    pub fn next_steps(self, dir: &Path) -> String {
        let dir = dir.display();
        match self {
            Lang::Rust => format!(
                "build it:   cd {dir} && cargo build --release --target wasm32-wasip2\n\
                 test it:    cargo test\n\
                 install it: kith plugin install {dir}"
            ),
            Lang::Typescript => format!(
                "set it up:  cd {dir} && npm install\n\
                 test it:    npm test\n\
                 build it:   npm run build\n\
                 install it: kith plugin install {dir}"
            ),
            Lang::Python => format!(
                "set it up:  cd {dir} && python3 -m venv .venv && .venv/bin/pip install -r requirements.txt\n\
                 test it:    .venv/bin/python -m unittest\n\
                 build it:   .venv/bin/python -m kith_plugin.build\n\
                 install it: kith plugin install {dir}"
            ),
        }
    }
}

/// Writes the project for plugin `name` into `dir` (default `./NAME`); returns `dir`.
pub fn scaffold(name: &str, dir: Option<PathBuf>, sdk_path: Option<PathBuf>, lang: Lang) -> anyhow::Result<PathBuf> {
    let valid = (1..=40).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        bail!("`{name}` is not a plugin id: use 1-40 lowercase letters, digits or `-`, starting with a letter");
    }
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    if dir.exists() && std::fs::read_dir(&dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
        bail!("{} exists and is not empty", dir.display());
    }
    let sdk = sdk_path.unwrap_or_else(|| lang.default_sdk());
    let sdk = sdk.canonicalize().with_context(|| {
        format!(
            "cannot find the {lang:?} plugin SDK at {}: pass --sdk-path with its folder in a Kith checkout",
            sdk.display()
        )
    })?;
    let (major, minor) = crate::plugin::SUPPORTED_SDK.last().copied().unwrap_or((1, 0));
    let sdk_version = format!("{major}.{minor}.0");
    // Read before anything is written: a wrong SDK leaves no half-made project.
    let files = match lang {
        Lang::Rust => rust_files(name, &sdk, &dir, &sdk_version)?,
        Lang::Typescript => typescript_files(name, &sdk, &dir, &sdk_version)?,
        Lang::Python => python_files(name, &sdk, &dir, &sdk_version)?,
    };
    for (file, text) in files {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(dir)
}

/// The project folder, absolute, as it will be (it may not exist yet).
fn absolute(dir: &Path) -> anyhow::Result<PathBuf> {
    let dir = if dir.is_absolute() { dir.to_owned() } else { std::env::current_dir()?.join(dir) };
    // Canonical up to the first missing folder, so a relative path to the SDK is right.
    let mut existing = dir.as_path();
    let mut rest = Vec::new();
    while !existing.exists() {
        rest.push(existing.file_name().context("the project folder has no name")?.to_owned());
        existing = existing.parent().context("the project folder has no parent")?;
    }
    let mut path = existing.canonicalize()?;
    for part in rest.into_iter().rev() {
        path.push(part);
    }
    Ok(path)
}

fn plugin_toml(name: &str, sdk_version: &str) -> String {
    PLUGIN_TOML.replace("{name}", name).replace("{sdk_version}", sdk_version)
}

fn rust_files(name: &str, sdk: &Path, dir: &Path, sdk_version: &str) -> anyhow::Result<Vec<(&'static str, String)>> {
    let sdk_manifest: toml::Table = std::fs::read_to_string(sdk.join("Cargo.toml"))
        .ok()
        .and_then(|text| text.parse().ok())
        .with_context(|| format!("{} has no readable Cargo.toml: is it the kith-plugin-sdk?", sdk.display()))?;
    let package = sdk_manifest.get("package");
    if package.and_then(|p| p.get("name")).and_then(toml::Value::as_str) != Some("kith-plugin-sdk") {
        bail!("{} is not the kith-plugin-sdk (its Cargo.toml names another package)", sdk.display());
    }
    let sdk_crate_version = package.and_then(|p| p.get("version")).and_then(toml::Value::as_str);
    let type_name: String = name
        .split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect();
    // `version` says which SDK it was written for, and is what cargo uses once the path is dropped.
    let mut dependency = format!("path = \"{}\"", relative_path(&absolute(dir)?, sdk));
    if let Some(version) = sdk_crate_version {
        dependency = format!("version = \"{version}\", {dependency}");
    }
    Ok(vec![
        ("Cargo.toml", CARGO_TOML.replace("{name}", name).replace("{sdk}", &dependency)),
        ("plugin.toml", plugin_toml(name, sdk_version)),
        ("src/lib.rs", LIB_RS.replace("{Type}", &type_name)),
        (".gitignore", "/target\n".to_owned()),
    ])
}

fn typescript_files(
    name: &str,
    sdk: &Path,
    dir: &Path,
    sdk_version: &str,
) -> anyhow::Result<Vec<(&'static str, String)>> {
    let package: serde_json::Value = std::fs::read_to_string(sdk.join("package.json"))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .with_context(|| format!("{} has no readable package.json: is it @kith/plugin-sdk?", sdk.display()))?;
    if package["name"] != "@kith/plugin-sdk" {
        bail!("{} is not @kith/plugin-sdk (its package.json names another package)", sdk.display());
    }
    let mut dependencies = serde_json::Map::new();
    dependencies.insert(
        "@kith/plugin-sdk".into(),
        serde_json::Value::String(format!("file:{}", relative_path(&absolute(dir)?, sdk))),
    );
    // The toolchain, at the versions the SDK was made with.
    for (tool, version) in package["peerDependencies"].as_object().into_iter().flatten() {
        dependencies.insert(tool.clone(), version.clone());
    }
    let manifest = serde_json::json!({
        "name": format!("kith-plugin-{name}"),
        "version": "0.1.0",
        "private": true,
        "type": "module",
        "scripts": {"build": "kith-plugin build", "test": "kith-plugin test"},
        "devDependencies": dependencies,
    });
    Ok(vec![
        ("package.json", serde_json::to_string_pretty(&manifest)? + "\n"),
        ("tsconfig.json", TS_CONFIG.to_owned()),
        ("plugin.toml", plugin_toml(name, sdk_version)),
        ("src/plugin.ts", TS_PLUGIN.to_owned()),
        ("test/plugin.test.ts", TS_TEST.to_owned()),
        (".gitignore", "node_modules/\nbuild/\nplugin.wasm\nkith.db*\n".to_owned()),
    ])
}

fn python_files(name: &str, sdk: &Path, dir: &Path, sdk_version: &str) -> anyhow::Result<Vec<(&'static str, String)>> {
    let project: toml::Table = std::fs::read_to_string(sdk.join("pyproject.toml"))
        .ok()
        .and_then(|text| text.parse().ok())
        .with_context(|| format!("{} has no readable pyproject.toml: is it the kith-plugin-sdk?", sdk.display()))?;
    let package = project.get("project");
    if package.and_then(|p| p.get("name")).and_then(toml::Value::as_str) != Some("kith-plugin-sdk") {
        bail!("{} is not the Python kith-plugin-sdk (its pyproject.toml names another package)", sdk.display());
    }
    // The toolchain, at the versions the SDK was made with.
    let tools: Vec<&str> = package
        .and_then(|p| p.get("optional-dependencies"))
        .and_then(|d| d.get("build"))
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(toml::Value::as_str)
        .collect();
    let requirements = format!(
        "# The Kith plugin SDK of a Kith checkout, found relative to this project, and the toolchain it\n\
         # was made with. `pip install -r requirements.txt` in this folder.\n-e {}\n{}\n",
        relative_path(&absolute(dir)?, sdk),
        tools.join("\n")
    );
    Ok(vec![
        ("requirements.txt", requirements),
        ("plugin.toml", plugin_toml(name, sdk_version)),
        ("app.py", PY_APP.to_owned()),
        ("test_app.py", PY_TEST.to_owned()),
        (".gitignore", ".venv/\n__pycache__/\nplugin.wasm\nkith.db*\n".to_owned()),
    ])
}

/// `to` as a path relative to the directory `from` (both absolute), written with `/` as TOML,
/// npm and pip read it on every platform; `to` itself when they share no root (another drive).
fn relative_path(from: &Path, to: &Path) -> String {
    use std::path::Component;
    let from_parts: Vec<Component<'_>> = from.components().collect();
    let to_parts: Vec<Component<'_>> = to.components().collect();
    let common = from_parts.iter().zip(&to_parts).take_while(|(a, b)| a == b).count();
    if common == 0 {
        return to.to_string_lossy().replace('\\', "/");
    }
    let mut parts: Vec<String> = vec!["..".to_owned(); from_parts.len() - common];
    parts.extend(to_parts[common..].iter().map(|c| c.as_os_str().to_string_lossy().into_owned()));
    if parts.is_empty() { ".".to_owned() } else { parts.join("/") }
}

const TS_CONFIG: &str = include_str!("scaffold/tsconfig.json");
const TS_PLUGIN: &str = include_str!("scaffold/plugin.ts");
const TS_TEST: &str = include_str!("scaffold/plugin.test.ts");
const PY_APP: &str = include_str!("scaffold/app.py");
const PY_TEST: &str = include_str!("scaffold/test_app.py");

const CARGO_TOML: &str = r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"

[lib]
crate-type = ["cdylib", "rlib"]

[dependencies]
# The SDK of a Kith checkout, found relative to this project (`kith plugin new --sdk-path`
# picks another): keep the path right if you move one of them.
kith-plugin-sdk = { {sdk} }
serde_json = "1"

[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
strip = true

# A workspace of its own, so the plugin builds wherever it lives.
[workspace]
"#;

const PLUGIN_TOML: &str = r#"# Kith plugin manifest (format 1).
manifest_version = 1
id = "{name}"
name = "{name}"
version = "0.1.0"
sdk_version = "{sdk_version}"
description = "Says hello when a contact is created."
authors = []
license = "Apache-2.0"
# What the plugin may do; the admin grants these when enabling it.
capabilities = ["contacts:read", "kv"]
# Events it receives: `contact.created`, `deal.*`, `*`...
events = ["contact.created"]

[settings.greeting]
type = "string"
default = "Hello"
description = "How to greet new contacts in the log."
"#;

const LIB_RS: &str = r#"//! A Kith plugin. Build: `cargo build --release --target wasm32-wasip2`; test: `cargo test`;
//! install: `kith plugin install PATH-TO-THIS-FOLDER` where Kith's database is (or with
//! `--database URL`).

use kith_plugin_sdk::{Event, Plugin, Result, kv, log, settings};

/// The plugin. Kith creates a fresh value for every call: keep state in `kv`, not in `self`.
#[derive(Default)]
pub struct {Type};

impl Plugin for {Type} {
    fn on_event(&self, event: &Event) -> Result<()> {
        let greeting: String = settings::get("greeting")?.unwrap_or_else(|| "Hello".into());
        let name = event.record_str("firstName").unwrap_or("there");
        log::info(&format!("{greeting}, {name}!"));
        let greeted = kv::get_json::<u64>("greeted")?.unwrap_or(0);
        kv::set_json("greeted", &(greeted + 1))
    }
}

kith_plugin_sdk::register_plugin!({Type});

#[cfg(test)]
mod tests {
    use super::*;
    use kith_plugin_sdk::testing::TestHost;

    #[test]
    fn greets_new_contacts_and_counts_them() {
        let host = TestHost::new().grant("kv").setting("greeting", serde_json::json!("Welcome"));
        let event = Event::new("contact.created", "contact", Some("1"), serde_json::json!({"firstName": "Ada"}));
        host.on_event::<{Type}>(&event).unwrap();
        host.on_event::<{Type}>(&event).unwrap();
        assert_eq!(host.logs()[0], "INFO Welcome, Ada!");
        assert_eq!(host.kv("greeted"), Some(b"2".to_vec()));
    }
}
"#;
