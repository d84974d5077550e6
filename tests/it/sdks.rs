//! Plugins in TypeScript and Python, on their SDKs (`plugin-sdk/typescript`,
//! `plugin-sdk/python`): the SDKs' own tests (their in-memory test hosts held to the read
//! conformance table Kith answers in `conformance.rs`, the WIT's TypeScript declarations current),
//! the welcome ports' unit tests, the Rust welcome plugin's end-to-end test run against each port
//! as its toolchain built it, and projects made by `kith plugin new --lang` taken through the
//! steps their READMEs give: set up, test, build, install, enable, react to events.
//!
//! The toolchains come from the registries (componentize-py from PyPI into
//! `target/componentize-py-venv`, npm packages pinned by each folder's `package-lock.json`);
//! without them a test says SKIPPED, and fails under `CI`.

use std::path::{Path, PathBuf};

use kith_core::plugin::start_runtime;
use kith_tests::TestDb;
use kith_tests::languages::{self, or_skip};
use serde_json::json;

use crate::util::{eventually, plugins_config, run_cli_env};

/// Runs `program args` in `dir`; its output, or `Err` when it cannot start (no such tool).
async fn run(program: &Path, args: &[&str], dir: &Path, env: &[(&str, PathBuf)]) -> Result<String, String> {
    let mut command = tokio::process::Command::new(program);
    command.args(args).current_dir(dir);
    for (key, value) in env {
        command.env(key, value);
    }
    let out = command.output().await.map_err(|e| format!("{}: {e}", program.display()))?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "`{} {}` in {} failed:\n{text}", program.display(), args.join(" "), dir.display());
    Ok(text)
}

/// The number after `label` in a test runner's summary (`Ran 25 tests`, `# pass 90`).
fn count(output: &str, label: &str) -> usize {
    output
        .lines()
        .filter_map(|line| line.trim().strip_prefix(label))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .next_back()
        .unwrap_or_else(|| panic!("no `{label}` in:\n{output}"))
}

fn sdk(lang: &str) -> PathBuf {
    languages::repo().join("plugin-sdk").join(lang)
}

fn example(name: &str) -> PathBuf {
    languages::repo().join("plugins/examples").join(name)
}

#[tokio::test]
async fn the_python_sdk_passes_its_tests_and_the_read_conformance_table() {
    let Some(out) = or_skip(
        run(Path::new("python3"), &["-m", "unittest", "discover", "-s", "tests", "-t", "."], &sdk("python"), &[]).await,
        "python3",
    ) else {
        return;
    };
    // The table's cases run as sub-tests of one test; the doctests, one test per module.
    assert!(count(&out, "Ran ") >= 20, "{out}");
    assert!(out.contains("\nOK"), "{out}");
}

#[tokio::test]
async fn the_typescript_sdk_passes_its_tests_and_the_read_conformance_table() {
    let dir = sdk("typescript");
    let Some(()) = or_skip(languages::npm_ci(&dir).await, "npm") else { return };
    let out = run(Path::new("npm"), &["test"], &dir, &[]).await.unwrap();
    let table: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(languages::repo().join("plugin-sdk/conformance/reads.json")).unwrap(),
    )
    .unwrap();
    let cases = table["cases"].as_array().unwrap().len();
    // One test per case of the table, and the SDK's own.
    assert!(count(&out, "# pass ") > cases, "{out}");
    assert_eq!(count(&out, "# fail "), 0, "{out}");
}

#[tokio::test]
async fn the_welcome_ports_pass_their_unit_tests() {
    let python_sdk = sdk("python");
    let Some(out) = or_skip(
        run(Path::new("python3"), &["-m", "unittest", "-v"], &example("welcome-py"), &[("PYTHONPATH", python_sdk)])
            .await,
        "python3",
    ) else {
        return;
    };
    assert_eq!(count(&out, "Ran "), 11, "{out}");
    let dir = example("welcome-ts");
    let Some(()) = or_skip(languages::npm_ci(&dir).await, "npm") else { return };
    let out = run(Path::new("npm"), &["test"], &dir, &[]).await.unwrap();
    assert_eq!((count(&out, "# pass "), count(&out, "# fail ")), (11, 0), "{out}");
}

/// The component as its toolchain made it: no `kith:sdk-version` section (only the Rust SDK
/// writes one); Kith reads its contract from its `kith:plugin@1.4.0` interfaces.
fn made_by_another_toolchain(wasm: &[u8]) {
    assert!(!wasm.windows(16).any(|w| w == b"kith:sdk-version"));
    assert!(wasm.windows(18).any(|w| w == b"kith:plugin/host@1"));
}

#[tokio::test]
async fn the_python_welcome_plugin_works_end_to_end() {
    let Some(built) = or_skip(languages::python_welcome().await, "componentize-py") else { return };
    made_by_another_toolchain(&built.wasm);
    crate::extensions::welcome_works_end_to_end("welcome-py", &built.manifest, &built.wasm).await;
}

#[tokio::test]
async fn the_typescript_welcome_plugin_works_end_to_end() {
    let Some(built) = or_skip(languages::typescript_welcome().await, "componentize-js") else { return };
    made_by_another_toolchain(&built.wasm);
    crate::extensions::welcome_works_end_to_end("welcome-ts", &built.manifest, &built.wasm).await;
}

/// A language runtime's heap is part of the component: a cap below it is refused at install,
/// saying what to set, rather than failing every call. Both ports start well within the default.
#[tokio::test]
async fn a_memory_cap_too_small_for_the_language_runtime_is_refused_saying_what_to_set() {
    let Some(python) = or_skip(languages::python_welcome().await, "componentize-py") else { return };
    let Some(typescript) = or_skip(languages::typescript_welcome().await, "componentize-js") else { return };
    // Each in a Kith of its own: they declare the same GraphQL contributions.
    for (id, built) in [("welcome-py", &python), ("welcome-ts", &typescript)] {
        let db = TestDb::sqlite().await;
        let manager = kith_core::plugin::PluginManager::new(db.kith.clone(), &plugins_config()).unwrap();
        let capped = built.manifest.replace("[limits]\n", "[limits]\nmemory_mib = 2\n");
        assert_ne!(capped, built.manifest, "{id}: the manifest has a [limits] table");
        let err = manager.install(&crate::util::admin(), &capped, &built.wasm).await.map(drop).unwrap_err().to_string();
        assert!(err.contains("more than its cap of 2 MiB"), "{id}: {err}");
        let set: u64 = err
            .split("set `memory_mib = ")
            .nth(1)
            .and_then(|rest| rest.split('`').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{id}: {err}"));
        assert!(set <= 64, "{id}: the default cap of 64 MiB is enough ({set} MiB asked)");
        let fixed = built.manifest.replace("[limits]\n", &format!("[limits]\nmemory_mib = {set}\n"));
        manager.install(&crate::util::admin(), &fixed, &built.wasm).await.unwrap_or_else(|e| panic!("{id}: {e}"));
        manager.enable(&crate::util::admin(), id, kith_core::plugin::manager::Grants::All).await.unwrap();
        drop(manager);
        // It runs at the cap it was told to set.
        let runtime = start_runtime(&db.kith, &plugins_config()).await.unwrap();
        db.create("contact", json!({"firstName": "Ada"})).await.unwrap();
        eventually(30, "the welcome task", || async { (db.count_rows("activity").await == 1).then_some(()) }).await;
        runtime.stop().await;
        db.cleanup().await;
    }
}

/// The commands of `readme`'s walkthrough (its `## From nothing to a running plugin` section's
/// `sh` blocks), in order.
fn walkthrough(readme: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(readme).unwrap();
    let section = text.split("## From nothing to a running plugin").nth(1).expect("the walkthrough section");
    let section = section.split("\n## ").next().unwrap_or_default();
    let mut commands = Vec::new();
    let mut in_block = false;
    for line in section.lines() {
        if line.starts_with("```") {
            in_block = line.trim() == "```sh";
            continue;
        }
        if in_block && !line.trim().is_empty() {
            commands.push(line.trim().to_owned());
        }
    }
    commands
}

/// The walkthrough of the SDK's README, word for word, in a fresh folder: `kith` commands through
/// the CLI (with `--dir` for `kith plugin new`, the folder or file `kith plugin install` and
/// `kith import` read made absolute, and a plugin runtime in the test for `kith serve`), the others through `sh` in the
/// folder the walkthrough is in. The scaffold's own message names the same steps. In the end, the
/// plugin counted both imported contacts and `kith plugin show` says so.
async fn readme_walkthrough_runs(lang: &str) {
    let readme = sdk(lang).join("README.md");
    let commands = walkthrough(&readme);
    assert!(commands.iter().any(|c| c.starts_with("kith plugin new ")), "{lang}: {commands:?}");
    let db = TestDb::sqlite().await;
    let root = kith_tests::temp_dir();
    let mut cwd = root.clone();
    let mut runtime = None;
    let mut id = String::new();
    let env = vec![("KITH_PLUGINS_CACHE_DIR".to_owned(), plugins_config().cache_dir)];
    for command in &commands {
        if let Some(folder) = command.strip_prefix("cd ") {
            cwd = cwd.join(folder);
            continue;
        }
        if command == "kith serve" {
            runtime = Some(start_runtime(&db.kith, &plugins_config()).await.unwrap());
            continue;
        }
        if let Some(rest) = command.strip_prefix("kith ") {
            let mut args: Vec<String> = rest.split_whitespace().map(str::to_owned).collect();
            // What `kith plugin install` and `kith import` read is named relative to the folder.
            if (rest.starts_with("plugin install ") || rest.starts_with("import "))
                && let Some(path) = args.last_mut()
            {
                *path = cwd.join(&*path).display().to_string();
            }
            let new = rest.starts_with("plugin new ");
            if new {
                id = args[2].clone();
                args.extend(["--dir".to_owned(), cwd.join(&id).display().to_string()]);
            }
            if rest.starts_with("plugin show ") {
                eventually(30, "the plugin to count both contacts", || async {
                    let value = kith_core::store::plugins::kv_get(db.kith.store.conn(), &id, "greeted").await.unwrap();
                    (value.as_deref() == Some(b"2")).then_some(())
                })
                .await;
            }
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = run_cli_env(&db.url, &argv, "", env.clone())
                .await
                .unwrap_or_else(|e| panic!("{lang}: `{command}` failed: {e}"));
            if new {
                // The scaffold's message gives the same steps as the README.
                let after_cd = commands.iter().skip_while(|c| !c.starts_with("cd ")).skip(1);
                for step in after_cd.take_while(|c| !c.starts_with("kith ") && !c.starts_with("cd ")) {
                    assert!(
                        out.stderr.contains(step.as_str()),
                        "{lang}: the scaffold does not say `{step}`:\n{}",
                        out.stderr
                    );
                }
            }
            if rest.starts_with("plugin show ") {
                assert!(out.stdout.contains("2 delivered"), "{lang}: {}", out.stdout);
                assert!(out.stdout.contains("SDK 1.4.0"), "{lang}: {}", out.stdout);
            }
            continue;
        }
        let Some(_) = or_skip(run(Path::new("sh"), &["-c", command], &cwd, &[]).await, lang) else { return };
        if command.contains("build") {
            assert!(cwd.join("plugin.wasm").exists(), "{lang}: `{command}` writes plugin.wasm");
        }
    }
    assert!(runtime.is_some(), "{lang}: the walkthrough starts Kith");
    assert!(commands.iter().any(|c| c.starts_with("kith plugin show ")), "{lang}: the walkthrough checks the plugin");
    if let Some(runtime) = runtime {
        runtime.stop().await;
    }
    let _ = std::fs::remove_dir_all(root);
    db.cleanup().await;
}

#[tokio::test]
async fn the_typescript_sdk_readme_from_kith_plugin_new_to_a_running_plugin() {
    readme_walkthrough_runs("typescript").await;
}

#[tokio::test]
async fn the_python_sdk_readme_from_kith_plugin_new_to_a_running_plugin() {
    readme_walkthrough_runs("python").await;
}
