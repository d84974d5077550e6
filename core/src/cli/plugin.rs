//! `kith plugin ...`: scaffold, install, enable with grants, disable, upgrade, configure,
//! uninstall, dead letters and replay. The same operations as the GraphQL admin API.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Subcommand;

use crate::cli::Io;
use crate::domain::actor::Actor;
use crate::domain::extension::OperationKind;
use crate::plugin::PluginManager;
use crate::plugin::extension::{MissedRuns, low_role_writes};
use crate::plugin::manager::{Grants, visible_settings};
use crate::plugin::manifest::Manifest;

/// `kith plugin` actions.
#[derive(Debug, Subcommand)]
pub enum PluginAction {
    /// Create a new plugin project: its manifest, a handler, a unit test and what builds it
    /// (cargo; npm and componentize-js; pip and componentize-py).
    New {
        /// The plugin id (lowercase letters, digits and `-`).
        name: String,
        /// Where to create it (default: ./NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The SDK to depend on (default: the language's SDK in this Kith's source tree).
        #[arg(long)]
        sdk_path: Option<PathBuf>,
        /// The language: rust, typescript (ts) or python (py).
        #[arg(long, value_enum, default_value = "rust")]
        lang: crate::cli::scaffold::Lang,
    },
    /// Install a plugin, disabled: PATH is its project directory (built with
    /// `cargo build --release --target wasm32-wasip2`) or its .wasm with plugin.toml beside it.
    Install {
        /// Plugin directory or .wasm file.
        path: PathBuf,
        /// Accept a migration of its objects that loses data (from a kept earlier install).
        #[arg(long)]
        allow_destructive: bool,
    },
    /// List installed plugins.
    List,
    /// Show a plugin: what it requests, what it was granted, its settings and health.
    Show {
        /// The plugin id.
        id: String,
    },
    /// Enable (or resume) a plugin, granting every capability it requests.
    Enable {
        /// The plugin id.
        id: String,
        /// The capabilities to grant, comma-separated (all requested ones are needed).
        #[arg(long, value_delimiter = ',')]
        grant: Vec<String>,
        /// Grant everything the plugin requests (see `kith plugin show ID` first).
        #[arg(long, conflicts_with = "grant")]
        grant_all: bool,
        /// Enable it even though some of its mutations let VIEWER callers write through it
        /// (`kith plugin show ID` lists its operations and their roles).
        #[arg(long)]
        allow_low_role_writes: bool,
    },
    /// Disable a plugin (its data stays).
    Disable {
        /// The plugin id.
        id: String,
    },
    /// Replace a plugin by a new version; new capabilities need `--grant`.
    Upgrade {
        /// Plugin directory or .wasm file.
        path: PathBuf,
        /// Capabilities the new version adds, comma-separated.
        #[arg(long, value_delimiter = ',')]
        grant: Vec<String>,
        /// Accept changes to its objects that lose data (dropped objects or fields, changed types).
        #[arg(long)]
        allow_destructive: bool,
        /// Accept a version whose new mutations let VIEWER callers write through the plugin.
        #[arg(long)]
        allow_low_role_writes: bool,
    },
    /// Remove a plugin.
    Uninstall {
        /// The plugin id.
        id: String,
        /// Also delete its stored data (its objects' tables, key–value store, dead letters).
        #[arg(long)]
        purge: bool,
    },
    /// Set a setting (`--unset` restores its default). Lists: `a,b,c` or JSON.
    Set {
        /// The plugin id.
        id: String,
        /// The setting.
        key: String,
        /// The value.
        value: Option<String>,
        /// Restore the default.
        #[arg(long, conflicts_with = "value")]
        unset: bool,
    },
    /// List the events a plugin failed on (its dead letters).
    Events {
        /// The plugin id.
        id: String,
        /// Only those not replayed successfully yet.
        #[arg(long)]
        failed: bool,
    },
    /// Deliver a plugin's dead letters again, in order.
    Replay {
        /// The plugin id.
        id: String,
    },
    /// List a plugin's scheduled jobs, or with `--runs` their latest runs.
    Jobs {
        /// The plugin id.
        id: String,
        /// Show the latest runs instead (of one job with `--job`).
        #[arg(long)]
        runs: bool,
        /// Only this job's runs.
        #[arg(long, requires = "runs")]
        job: Option<String>,
    },
    /// Call a plugin's query or mutation (as an admin) and print its JSON answer.
    Call {
        /// The plugin id.
        id: String,
        /// The operation (`donorRetention`, ...).
        operation: String,
        /// An argument: `NAME=VALUE`, the value read as JSON when it parses (`year=2026`), else
        /// as text (repeatable).
        #[arg(long = "arg", value_name = "NAME=VALUE")]
        args: Vec<String>,
        /// An argument read from a file as text: `NAME=PATH` (repeatable).
        #[arg(long = "arg-file", value_name = "NAME=PATH")]
        arg_files: Vec<String>,
    },
    /// Run a plugin's job now and wait for it (refused while another run of it is going on).
    RunJob {
        /// The plugin id.
        id: String,
        /// The job.
        job: String,
    },
}

impl PluginAction {
    /// The action as typed (`install`), for messages.
    pub fn name(&self) -> &'static str {
        match self {
            PluginAction::New { .. } => "new",
            PluginAction::Install { .. } => "install",
            PluginAction::List => "list",
            PluginAction::Show { .. } => "show",
            PluginAction::Enable { .. } => "enable",
            PluginAction::Disable { .. } => "disable",
            PluginAction::Upgrade { .. } => "upgrade",
            PluginAction::Uninstall { .. } => "uninstall",
            PluginAction::Set { .. } => "set",
            PluginAction::Events { .. } => "events",
            PluginAction::Replay { .. } => "replay",
            PluginAction::Jobs { .. } => "jobs",
            PluginAction::Call { .. } => "call",
            PluginAction::RunJob { .. } => "run-job",
        }
    }
}

/// Finds `plugin.toml` and the component for `path`.
pub fn locate(path: &Path) -> anyhow::Result<(String, Vec<u8>)> {
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("cannot read {}", p.display()));
    if path.extension().is_some_and(|e| e == "wasm") {
        let manifest_path = path.with_file_name("plugin.toml");
        let manifest = std::fs::read_to_string(&manifest_path)
            .with_context(|| format!("cannot read {} (plugin.toml beside the .wasm)", manifest_path.display()))?;
        return Ok((manifest, read(path)?));
    }
    let manifest_path = path.join("plugin.toml");
    let manifest =
        std::fs::read_to_string(&manifest_path).with_context(|| format!("cannot read {}", manifest_path.display()))?;
    let direct = path.join("plugin.wasm");
    if direct.exists() {
        return Ok((manifest, read(&direct)?));
    }
    let cargo = std::fs::read_to_string(path.join("Cargo.toml"))
        .with_context(|| format!("{} has no plugin.wasm and no Cargo.toml", path.display()))?;
    let package: toml::Table = cargo.parse().context("Cargo.toml")?;
    let name = package
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(toml::Value::as_str)
        .context("Cargo.toml has no package name")?
        .replace('-', "_");
    let built = path.join("target/wasm32-wasip2/release").join(format!("{name}.wasm"));
    if !built.exists() {
        bail!(
            "{} is missing: build the plugin first with `cargo build --release --target wasm32-wasip2`",
            built.display()
        );
    }
    Ok((manifest, read(&built)?))
}

fn print_plugin(io: &mut Io<'_>, row: &crate::store::plugins::PluginRow) -> anyhow::Result<()> {
    let manifest = Manifest::parse(&row.manifest)?;
    writeln!(io.stdout, "{} {} ({}), SDK {}", row.id, row.version, row.name, row.sdk_version)?;
    writeln!(io.stdout, "  status:     {}{}", row.status, if row.enabled { "" } else { " (disabled)" })?;
    writeln!(io.stdout, "  requests:   {}", manifest.capabilities.join(", "))?;
    writeln!(io.stdout, "  granted:    {}", row.grants.join(", "))?;
    writeln!(io.stdout, "  events:     {}", manifest.events.join(", "))?;
    if let Some(hook) = &manifest.before_write {
        writeln!(
            io.stdout,
            "  hooks:      before-write on {} (on failure: {:?})",
            hook.objects.join(", "),
            hook.on_failure
        )?;
    }
    if !manifest.objects.is_empty() {
        let names: Vec<String> = manifest.objects.iter().map(|o| format!("{} ({})", o.name, o.plural)).collect();
        writeln!(io.stdout, "  objects:    {}", names.join(", "))?;
    }
    print_contributions(io, &manifest, if row.enabled { &row.grants } else { &manifest.capabilities })?;
    writeln!(io.stdout, "  settings:   {}", visible_settings(&manifest, &row.settings))?;
    writeln!(
        io.stdout,
        "  stats:      {} delivered, {} failures ({} in a row), {} dead letters, {} refused calls",
        row.delivered, row.failures, row.consecutive_failures, row.dead_letters, row.denied_calls
    )?;
    if let Some(error) = &row.last_error {
        writeln!(io.stdout, "  last error: {error}")?;
    }
    Ok(())
}

/// What the plugin adds to the API and its jobs: each query and mutation with its least role,
/// computed fields, jobs with their schedules, and a warning for each mutation that lets callers
/// below AGENT write with `grants` (the plugin's, or those enabling would give).
fn print_contributions(io: &mut Io<'_>, manifest: &Manifest, grants: &[String]) -> anyhow::Result<()> {
    let extension = crate::plugin::extension::extension(manifest);
    for op in &extension.operations {
        let kind = match op.kind {
            OperationKind::Query => "query",
            OperationKind::Mutation => "mutation",
        };
        let arguments: Vec<String> = op.arguments.iter().map(|(name, ty)| format!("{name}: {ty}")).collect();
        let arguments = if arguments.is_empty() { String::new() } else { format!("({})", arguments.join(", ")) };
        writeln!(io.stdout, "  {kind:<10}  {}{arguments}: {}, role {}", op.name, op.returns, op.role)?;
        if !op.description.is_empty() {
            writeln!(io.stdout, "              {}", op.description)?;
        }
    }
    for field in &extension.fields {
        writeln!(io.stdout, "  field:      {}.{}: {}", field.object, field.name, field.ty)?;
    }
    for job in &manifest.jobs {
        let missed = match job.missed {
            MissedRuns::Skip => "skip",
            MissedRuns::CatchUp => "catch-up",
        };
        writeln!(io.stdout, "  job:        {} at `{}` UTC (missed runs: {missed})", job.name, job.schedule)?;
    }
    for low in low_role_writes(manifest, grants) {
        writeln!(io.stdout, "  warning:    {low}")?;
    }
    Ok(())
}

/// Runs an action that needs the database.
pub async fn run(
    manager: &std::sync::Arc<PluginManager>,
    actor: &Actor,
    action: PluginAction,
    mut io: Io<'_>,
) -> anyhow::Result<()> {
    match action {
        PluginAction::New { .. } => bail!("`kith plugin new` is handled before the database is opened"),
        PluginAction::Install { path, allow_destructive } => {
            let (manifest, component) = locate(&path)?;
            let row = manager.install_with(actor, &manifest, &component, allow_destructive).await?;
            writeln!(io.stderr, "installed {} {} (disabled)", row.id, row.version)?;
            let manifest = Manifest::parse(&row.manifest)?;
            if manifest.capabilities.is_empty() {
                writeln!(io.stderr, "enable it with: kith plugin enable {}", row.id)?;
            } else {
                writeln!(
                    io.stderr,
                    "it requests: {}\nenable it with: kith plugin enable {} --grant {}",
                    manifest.capabilities.join(", "),
                    row.id,
                    manifest.capabilities.join(",")
                )?;
            }
        }
        PluginAction::List => {
            for row in manager.list().await? {
                writeln!(
                    io.stdout,
                    "{}\t{}\t{}\t{}\t{}",
                    row.id,
                    row.version,
                    row.status,
                    row.grants.join(","),
                    row.last_error.as_deref().unwrap_or("")
                )?;
            }
        }
        PluginAction::Show { id } => {
            let row = manager.plugin(&id).await?;
            print_plugin(&mut io, &row)?;
        }
        PluginAction::Enable { id, grant, grant_all, allow_low_role_writes } => {
            let grants = if grant_all { Grants::All } else { Grants::List(grant) };
            let row = manager.enable_with(actor, &id, grants, allow_low_role_writes).await?;
            for low in low_role_writes(&Manifest::parse(&row.manifest)?, &row.grants) {
                writeln!(io.stderr, "warning: {low}")?;
            }
            writeln!(io.stderr, "enabled {} with {}", row.id, row.grants.join(", "))?;
        }
        PluginAction::Disable { id } => {
            manager.disable(actor, &id).await?;
            writeln!(io.stderr, "disabled {id}")?;
        }
        PluginAction::Upgrade { path, grant, allow_destructive, allow_low_role_writes } => {
            let (manifest, component) = locate(&path)?;
            let row = manager
                .upgrade_with(actor, &manifest, &component, &grant, allow_destructive, allow_low_role_writes)
                .await?;
            if row.enabled {
                for low in low_role_writes(&Manifest::parse(&row.manifest)?, &row.grants) {
                    writeln!(io.stderr, "warning: {low}")?;
                }
            }
            writeln!(io.stderr, "upgraded {} to {}", row.id, row.version)?;
        }
        PluginAction::Uninstall { id, purge } => {
            manager.uninstall(actor, &id, purge).await?;
            writeln!(io.stderr, "uninstalled {id}{}", if purge { " and purged its data" } else { "" })?;
        }
        PluginAction::Set { id, key, value, unset } => {
            let row = manager.plugin(&id).await?;
            let manifest = Manifest::parse(&row.manifest)?;
            let value = match (value, unset) {
                (_, true) => None,
                (Some(text), false) => {
                    let def = manifest.settings.get(&key).with_context(|| format!("`{id}` has no setting `{key}`"))?;
                    Some(def.kind.parse_text(&key, &text)?)
                }
                (None, false) => bail!("give a value, or --unset"),
            };
            let row = manager.set_setting(actor, &id, &key, value).await?;
            let manifest = Manifest::parse(&row.manifest)?;
            writeln!(io.stderr, "{id}.{key} = {}", visible_settings(&manifest, &row.settings)[&key])?;
        }
        PluginAction::Events { id, failed } => {
            for letter in manager.dead_letters(&id, failed).await? {
                let state = if letter.replayed_at.is_null() {
                    "failed".to_owned()
                } else {
                    format!("replayed {}", letter.replayed_at)
                };
                writeln!(
                    io.stdout,
                    "{}\t{}\t{}\t{} attempts\t{state}\t{}",
                    letter.seq, letter.kind, letter.failed_at, letter.attempts, letter.error
                )?;
            }
        }
        PluginAction::Replay { id } => {
            let outcome = manager.replay(actor, &id).await?;
            writeln!(io.stderr, "replayed {} event(s); {} failed again", outcome.replayed, outcome.failed)?;
        }
        PluginAction::Jobs { id, runs: false, .. } => {
            let time = |at: Option<chrono::DateTime<chrono::Utc>>| {
                at.map_or("-".to_owned(), crate::domain::value::format_datetime)
            };
            for job in crate::plugin::jobs::list(manager, &id).await? {
                let state = job.state.as_ref();
                writeln!(
                    io.stdout,
                    "{}	{}	next {}	last {}	{}",
                    job.spec.name,
                    job.spec.schedule,
                    time(state.and_then(|s| s.next_run_at)),
                    time(state.and_then(|s| s.last_run_at)),
                    job.spec.description
                )?;
            }
        }
        PluginAction::Jobs { id, runs: true, job } => {
            for run in crate::plugin::jobs::history(manager, &id, job.as_deref(), 50).await? {
                writeln!(
                    io.stdout,
                    "{}	{}	{}	{}	{} ms	{}	{}",
                    crate::domain::value::format_datetime(run.started_at),
                    run.job,
                    run.trigger,
                    run.status,
                    run.duration_ms.unwrap_or(0),
                    crate::domain::value::format_datetime(run.scheduled_for),
                    run.error.unwrap_or_default()
                )?;
            }
        }
        PluginAction::Call { id, operation, args, arg_files } => {
            let mut arguments = serde_json::Map::new();
            for pair in &args {
                let (name, value) =
                    pair.split_once('=').with_context(|| format!("--arg `{pair}` is not NAME=VALUE"))?;
                let value = serde_json::from_str(value).unwrap_or_else(|_| serde_json::Value::String(value.to_owned()));
                arguments.insert(name.to_owned(), value);
            }
            for pair in &arg_files {
                let (name, path) =
                    pair.split_once('=').with_context(|| format!("--arg-file `{pair}` is not NAME=PATH"))?;
                let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?;
                arguments.insert(name.to_owned(), serde_json::Value::String(text));
            }
            let answer = call_operation(manager, actor, &id, &operation, &arguments).await?;
            writeln!(io.stdout, "{}", serde_json::to_string_pretty(&answer)?)?;
        }
        PluginAction::RunJob { id, job } => {
            manager.start_for_command().await?;
            let outcome = crate::plugin::jobs::trigger(manager, actor, &id, &job).await;
            manager.stop().await;
            let run = outcome?;
            writeln!(io.stdout, "{}	{}	{} ms", run.id, run.status, run.duration_ms.unwrap_or(0))?;
            if let Some(error) = &run.error {
                bail!("job `{job}` of `{id}` failed: {error}");
            }
        }
    }
    Ok(())
}

/// Loads the plugins (no background tasks), runs `operation` of plugin `id`, stops them.
async fn call_operation(
    manager: &std::sync::Arc<PluginManager>,
    actor: &Actor,
    id: &str,
    operation: &str,
    arguments: &serde_json::Map<String, serde_json::Value>,
) -> anyhow::Result<serde_json::Value> {
    manager.start_for_command().await?;
    crate::plugin::PluginManager::attach(manager);
    let registry = manager.kith.registry();
    let outcome = match registry.extensions().iter().find(|e| e.plugin == id) {
        Some(extension) => {
            crate::plugin::operation::run_operation(&manager.kith, extension, operation, actor, arguments).await
        }
        None => {
            manager.stop().await;
            bail!("no enabled plugin `{id}` declares queries or mutations (see `kith plugin list`)");
        }
    };
    manager.stop().await;
    outcome.map_err(|failure| anyhow::anyhow!("{operation}: {failure}"))
}

/// `kith import OBJECT FILE.csv` for what a plugin imports: the enabled plugin declaring the
/// mutation `import<Object>(csv: String!)` gets the file; each row it refused is printed with
/// its line and reason. The file is checked as strictly as a core import first: the plugin
/// parses it itself, and a lenient parser merges the rows after an unterminated quote into one
/// cell, so a file with a broken row is refused whole, naming its lines.
pub async fn import(
    manager: &std::sync::Arc<PluginManager>,
    actor: &Actor,
    object: &str,
    file: &Path,
    allow_rejects: bool,
    io: Io<'_>,
) -> anyhow::Result<()> {
    let mut chars = object.chars();
    let capitalised: String = chars.next().map(|c| c.to_ascii_uppercase()).into_iter().chain(chars).collect();
    let mutation = format!("import{capitalised}");
    let mut found = None;
    for row in manager.list().await?.into_iter().filter(|r| r.enabled) {
        let manifest = Manifest::parse(&row.manifest)?;
        let fits = manifest.mutations.iter().any(|m| m.name == mutation && m.arguments.contains_key("csv"));
        if fits {
            found = Some(row.id);
            break;
        }
    }
    let Some(plugin) = found else {
        bail!(
            "cannot import `{object}`: use contacts or companies, or enable a plugin that declares `{mutation}(csv: String!)`"
        );
    };
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let summary = crate::service::import::rfc4180::check(&text);
    if summary.records == 0 && summary.broken.is_empty() {
        bail!(
            "{} is empty: nothing to import (a CSV import needs a header row, then one row per record)",
            file.display()
        );
    }
    if !summary.broken.is_empty() {
        for broken in &summary.broken {
            writeln!(io.stderr, "line {}: {}", broken.line, broken.reason)?;
        }
        bail!(
            "{} is not well-formed CSV ({} broken row(s), listed above); nothing was imported",
            file.display(),
            summary.broken.len()
        );
    }
    if summary.records == 1 {
        writeln!(io.stderr, "no rows to import: {} has a header row and nothing else", file.display())?;
        return Ok(());
    }
    let mut arguments = serde_json::Map::new();
    arguments.insert("csv".into(), serde_json::Value::String(text));
    let answer = call_operation(manager, actor, &plugin, &mutation, &arguments).await?;
    let imported = answer.get("imported").and_then(serde_json::Value::as_i64).unwrap_or(0);
    let rejected = answer.get("rejected").and_then(serde_json::Value::as_array).cloned().unwrap_or_default();
    for row in &rejected {
        writeln!(
            io.stderr,
            "line {}: {}",
            row.get("line").and_then(serde_json::Value::as_i64).unwrap_or(0),
            row.get("reason").and_then(serde_json::Value::as_str).unwrap_or("refused")
        )?;
    }
    writeln!(io.stderr, "imported {imported} {object} ({} rejected) through plugin `{plugin}`", rejected.len())?;
    crate::cli::check_rejects(rejected.len(), summary.records - 1, allow_rejects, io.stderr)
}
