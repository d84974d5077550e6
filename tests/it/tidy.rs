//! The written rules of the source tree, checked (as rust-analyzer's `tidy.rs` does): every
//! Rust file starts with a `//!` header, there is no `mod.rs`, only `store` runs SQL, the layers
//! of `kith-core` depend only downwards, and every module is on the maps (`lib.rs`'s
//! `# Layout`, ARCHITECTURE.md). A new violation fails here.

use std::path::{Path, PathBuf};

/// The repository root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the repository root").to_path_buf()
}

/// Every `.rs` file under `dir`, outside `target/`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if !matches!(path.file_name().and_then(|n| n.to_str()), Some("target" | ".git" | "node_modules")) {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root()).unwrap_or(path).display().to_string()
}

#[test]
fn every_rust_file_says_what_it_is_for_and_none_is_a_mod_rs() {
    let mut missing = Vec::new();
    for dir in ["core", "migrations", "plugin-sdk", "plugins", "tests"] {
        for file in rust_files(&root().join(dir)) {
            assert_ne!(file.file_name().and_then(|n| n.to_str()), Some("mod.rs"), "{}: no mod.rs", relative(&file));
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            if !text.trim_start().starts_with("//!") {
                missing.push(relative(&file));
            }
        }
    }
    assert!(missing.is_empty(), "files without a `//!` header: {missing:#?}");
}

/// The layers of `kith-core`, lowest first, and the modules each may name (`crate::X`).
const LAYERS: &[(&str, &[&str])] = &[
    ("domain", &["domain"]),
    ("store", &["domain", "store", "error"]),
    ("service", &["domain", "store", "service", "error", "config"]),
    ("plugin", &["domain", "store", "service", "plugin", "error", "config"]),
    ("api", &["domain", "store", "service", "plugin", "api", "error", "config"]),
];

/// The `crate::X` names in `text`, with their counts.
fn crate_paths(text: &str) -> std::collections::BTreeMap<String, usize> {
    let mut out = std::collections::BTreeMap::new();
    for (at, _) in text.match_indices("crate::") {
        let name: String =
            text[at + "crate::".len()..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        *out.entry(name).or_default() += 1;
    }
    out
}

#[test]
fn the_layers_of_the_core_depend_only_downwards() {
    let src = root().join("core/src");
    let mut violations = Vec::new();
    for (layer, allowed) in LAYERS {
        let mut files = rust_files(&src.join(layer));
        files.push(src.join(format!("{layer}.rs")));
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            let name = relative(&file);
            for (module, count) in crate_paths(&text) {
                let is_layer = ["domain", "store", "service", "plugin", "api", "http", "cli", "config", "error"]
                    .contains(&module.as_str());
                if is_layer && !allowed.contains(&module.as_str()) {
                    violations.push(format!("{name} names crate::{module} {count} times (layer `{layer}`)"));
                }
            }
        }
    }
    assert!(violations.is_empty(), "upward dependencies: {violations:#?}");
}

/// What only `store` may do: run statements, and write SQL.
const SQL_MARKERS: &[&str] = &[
    "execute_raw(",
    "query_one_raw(",
    "query_all_raw(",
    "execute_unprepared(",
    "Statement::",
    "sea_query",
    "\"SELECT ",
    "\"INSERT INTO",
    "\"UPDATE ",
    "\"DELETE FROM",
];

#[test]
fn only_the_store_runs_sql() {
    let src = root().join("core/src");
    let mut violations = Vec::new();
    for file in rust_files(&src) {
        let name = relative(&file);
        if name.starts_with("core/src/store") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for marker in SQL_MARKERS {
            if text.contains(marker) {
                violations.push(format!("{name}: {marker}"));
            }
        }
    }
    assert!(violations.is_empty(), "SQL outside `store`: {violations:#?}");
}

#[test]
fn every_module_is_on_the_maps() {
    let src = root().join("core/src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap_or_default();
    let architecture = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap_or_default();
    let mut missing = Vec::new();
    for line in lib.lines() {
        if let Some(module) = line.strip_prefix("pub mod ").and_then(|m| m.strip_suffix(';'))
            && !lib.contains(&format!("//! - `{module}`"))
        {
            missing.push(format!("lib.rs `# Layout` lacks `{module}`"));
        }
    }
    for (layer, _) in LAYERS {
        for file in rust_files(&src.join(layer)) {
            let Some(module) = file.file_stem().and_then(|s| s.to_str()) else { continue };
            // Unit tests and a module's own sub-folder files are described by their parent.
            if module == "tests" || file.parent() != Some(src.join(layer).as_path()) {
                continue;
            }
            if !architecture.contains(&format!("`{module}`")) && !architecture.contains(&format!("::{module}")) {
                missing.push(format!("ARCHITECTURE.md lacks `{layer}::{module}`"));
            }
        }
    }
    assert!(missing.is_empty(), "{missing:#?}");
}

#[test]
fn error_codes_are_named_only_by_the_code_enum() {
    let src = root().join("core/src");
    let mut violations = Vec::new();
    for file in rust_files(&src) {
        let name = relative(&file);
        if name == "core/src/domain/code.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for code in kith_core::domain::code::Code::ALL {
            if text.contains(&format!("\"{}\"", code.as_str())) {
                violations.push(format!("{name}: \"{code}\""));
            }
        }
    }
    assert!(violations.is_empty(), "error codes as strings (use `domain::code::Code`): {violations:#?}");
}
