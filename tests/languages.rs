//! Plugins in other languages, built by their own toolchains for the tests and benchmarks:
//! `plugins/examples/welcome-py` on the Python SDK (`plugin-sdk/python`), built by
//! `python -m kith_plugin.build` with componentize-py (pinned, from PyPI, into
//! `target/componentize-py-venv`); `plugins/examples/welcome-ts` on the TypeScript SDK
//! (`plugin-sdk/typescript`), built by `npm run build` (`npm ci` in its folder, pinned by its
//! `package-lock.json`), both against `schemas/wit/v1.4.0`, world `plugin`; and
//! `plugins/examples/welcome-js`, plain JavaScript with no SDK, built by componentize-js
//! (`npm ci` into `target/componentize-js`) against `schemas/wit/v1.2.0`, world `base`.
//!
//! `Err` says why a toolchain cannot be had (no python3 with venv, no npm, no registry): the
//! caller reports SKIPPED, or fails under `CI`. A failed build of the examples' own source
//! panics: that is a failure, not a skip.

use std::path::{Path, PathBuf};

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo().join("target"))
}

/// A built example: its manifest and component.
#[derive(Clone)]
pub struct Built {
    /// `plugin.toml`.
    pub manifest: String,
    /// The component, as the toolchain made it.
    pub wasm: Vec<u8>,
}

static PYTHON: tokio::sync::OnceCell<Result<PathBuf, String>> = tokio::sync::OnceCell::const_new();
static NODE: tokio::sync::OnceCell<Result<PathBuf, String>> = tokio::sync::OnceCell::const_new();

/// componentize-py, installed the first time.
async fn componentize_py() -> Result<PathBuf, String> {
    PYTHON
        .get_or_init(|| async {
            let venv = target().join("componentize-py-venv");
            let tool = venv.join("bin/componentize-py");
            if tool.exists() {
                return Ok(tool);
            }
            let made = tokio::process::Command::new("python3").args(["-m", "venv"]).arg(&venv).status().await;
            if !made.is_ok_and(|s| s.success()) {
                return Err("python3 cannot make a virtualenv".to_owned());
            }
            let pip = tokio::process::Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet", "--disable-pip-version-check", "componentize-py==0.25.1"])
                .output()
                .await
                .map_err(|e| e.to_string())?;
            if !pip.status.success() {
                let _ = std::fs::remove_dir_all(&venv);
                return Err(format!("pip: {}", String::from_utf8_lossy(&pip.stderr)));
            }
            Ok(tool)
        })
        .await
        .clone()
}

/// componentize-js, installed the first time.
async fn componentize_js() -> Result<PathBuf, String> {
    NODE.get_or_init(|| async {
        let source = repo().join("plugins/examples/welcome-js");
        let tools = target().join("componentize-js");
        std::fs::create_dir_all(&tools).map_err(|e| e.to_string())?;
        let lock = std::fs::read(source.join("package-lock.json")).map_err(|e| e.to_string())?;
        let tool = tools.join("node_modules/.bin/componentize-js");
        if tool.exists() && std::fs::read(tools.join("package-lock.json")).is_ok_and(|l| l == lock) {
            return Ok(tool);
        }
        for file in ["package.json", "package-lock.json"] {
            std::fs::copy(source.join(file), tools.join(file)).map_err(|e| e.to_string())?;
        }
        let npm = tokio::process::Command::new("npm")
            .args(["ci", "--silent", "--no-audit", "--no-fund"])
            .current_dir(&tools)
            .output()
            .await
            .map_err(|e| format!("npm: {e}"))?;
        if !npm.status.success() {
            return Err(format!("npm ci: {}", String::from_utf8_lossy(&npm.stderr)));
        }
        Ok(tool)
    })
    .await
    .clone()
}

fn finish(build: std::process::Output, tool: &str, example: &Path, out: &Path) -> Built {
    assert!(
        build.status.success(),
        "{tool}: {}{}",
        String::from_utf8_lossy(&build.stdout),
        String::from_utf8_lossy(&build.stderr)
    );
    Built {
        manifest: std::fs::read_to_string(example.join("plugin.toml")).unwrap_or_else(|e| panic!("{e}")),
        wasm: std::fs::read(out).unwrap_or_else(|e| panic!("{e}")),
    }
}

static PYTHON_WELCOME: tokio::sync::OnceCell<Result<Built, String>> = tokio::sync::OnceCell::const_new();
static TYPESCRIPT_WELCOME: tokio::sync::OnceCell<Result<Built, String>> = tokio::sync::OnceCell::const_new();

/// `plugins/examples/welcome-py`, built by the Python SDK's build command (once per process).
pub async fn python_welcome() -> Result<Built, String> {
    PYTHON_WELCOME.get_or_init(build_python_welcome).await.clone()
}

/// `plugins/examples/welcome-ts`, built by the TypeScript SDK's build command (once per process).
pub async fn typescript_welcome() -> Result<Built, String> {
    TYPESCRIPT_WELCOME.get_or_init(build_typescript_welcome).await.clone()
}

async fn build_python_welcome() -> Result<Built, String> {
    let tool = componentize_py().await?;
    let example = repo().join("plugins/examples/welcome-py");
    let out = crate::temp_dir().join("welcome-py.wasm");
    let build = tokio::process::Command::new(tool.with_file_name("python"))
        .args(["-m", "kith_plugin.build", "--out"])
        .arg(&out)
        .current_dir(&example)
        .env("PYTHONPATH", repo().join("plugin-sdk/python"))
        .output()
        .await
        .map_err(|e| e.to_string())?;
    Ok(finish(build, "python -m kith_plugin.build", &example, &out))
}

/// The Python interpreter of the virtualenv holding componentize-py (the SDK's build needs it).
pub async fn python() -> Result<PathBuf, String> {
    Ok(componentize_py().await?.with_file_name("python"))
}

static NPM_INSTALLS: tokio::sync::Mutex<Vec<PathBuf>> = tokio::sync::Mutex::const_new(Vec::new());

/// `npm ci` in `dir` (a folder of this repository with a `package-lock.json`), once per process
/// and only when its lock changed since the last install there; under `CI` a failure panics
/// through `or_skip`.
pub async fn npm_ci(dir: &Path) -> Result<(), String> {
    let mut done = NPM_INSTALLS.lock().await;
    if done.iter().any(|d| d == dir) {
        return Ok(());
    }
    let lock = std::fs::read(dir.join("package-lock.json")).map_err(|e| format!("{}: {e}", dir.display()))?;
    let stamp = dir.join("node_modules/.kith-installed-lock");
    if std::fs::read(&stamp).is_ok_and(|l| l == lock) {
        done.push(dir.to_owned());
        return Ok(());
    }
    let npm = tokio::process::Command::new("npm")
        .args(["ci", "--silent", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .output()
        .await
        .map_err(|e| format!("npm: {e}"))?;
    if !npm.status.success() {
        return Err(format!("npm ci in {}: {}", dir.display(), String::from_utf8_lossy(&npm.stderr)));
    }
    std::fs::write(&stamp, lock).map_err(|e| e.to_string())?;
    done.push(dir.to_owned());
    Ok(())
}

async fn build_typescript_welcome() -> Result<Built, String> {
    let example = repo().join("plugins/examples/welcome-ts");
    npm_ci(&example).await?;
    let out = crate::temp_dir().join("welcome-ts.wasm");
    let build = tokio::process::Command::new("npm")
        .args(["run", "--silent", "build", "--", "--out"])
        .arg(&out)
        .current_dir(&example)
        .output()
        .await
        .map_err(|e| e.to_string())?;
    Ok(finish(build, "npm run build", &example, &out))
}

/// `plugins/examples/welcome-js`, built; `fetch` leaves the engine's WASI HTTP in (which
/// Kith refuses).
pub async fn javascript_welcome(fetch: bool) -> Result<Built, String> {
    let tool = componentize_js().await?;
    let example = repo().join("plugins/examples/welcome-js");
    let out = crate::temp_dir().join("welcome-js.wasm");
    let mut command = tokio::process::Command::new(&tool);
    command.arg(example.join("welcome.js")).arg("-w").arg(repo().join("schemas/wit/v1.2.0")).args(["-n", "base"]);
    if !fetch {
        command.args(["-d", "http", "-d", "fetch-event"]);
    }
    let build = command.arg("-o").arg(&out).output().await.map_err(|e| e.to_string())?;
    Ok(finish(build, "componentize-js", &example, &out))
}

/// `built`, or the caller reported SKIPPED (`None`); under `CI` a missing toolchain fails.
pub fn or_skip<T>(built: Result<T, String>, what: &str) -> Option<T> {
    match built {
        Ok(built) => Some(built),
        Err(why) if std::env::var_os("CI").is_some() => panic!("{what}: no toolchain under CI: {why}"),
        Err(why) => {
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "SKIPPED ({what}): {why}");
            None
        }
    }
}
