//! The `kith` command line. Lives in the library so tests drive it exactly as users do;
//! `main.rs` only hands it the process arguments, environment and output streams.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};

pub mod plugin;
pub mod privacy;
pub mod scaffold;
pub mod webhook;

use crate::config::Config;
use crate::domain::actor::{Actor, Role};
use crate::http::{AppState, app, serve, shutdown_signal};
use crate::service::export::{self, Format};
use crate::service::import::{ImportOptions, OnDuplicate, import_csv};
use crate::service::{Kith, seed, users};
use crate::store::{Store, tokens};

/// Kith: an open-source CRM with a typed GraphQL API and sandboxed plugins.
#[derive(Debug, Parser)]
#[command(name = "kith", version, about)]
pub struct Cli {
    /// Configuration file (default: none; see kith.example.toml).
    #[arg(long, global = true, env = "KITH_CONFIG")]
    pub config: Option<PathBuf>,
    /// Database URL, overriding the configuration (sqlite://kith.db, postgres://...).
    #[arg(long, global = true)]
    pub database: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Show or apply database migrations.
    Migrate {
        /// `status` or `up`.
        #[arg(value_enum, default_value = "status")]
        action: MigrateAction,
    },
    /// Manage users.
    User {
        /// The user action.
        #[command(subcommand)]
        action: UserAction,
    },
    /// Manage API tokens.
    Token {
        /// The token action.
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Import contacts or companies from a CSV file.
    Import(ImportArgs),
    /// Export records as CSV or JSON.
    Export(ExportArgs),
    /// Fill the database with a demo data set.
    Seed {
        /// Seed the demo data set (required, so seeding is never accidental).
        #[arg(long)]
        demo: bool,
    },
    /// Print the commented example configuration.
    PrintConfig,
    /// Manage plugins.
    Plugin {
        /// The plugin action.
        #[command(subcommand)]
        action: plugin::PluginAction,
    },
    /// Personal-data requests: export, erasure, retention policies.
    Privacy {
        /// The privacy action.
        #[command(subcommand)]
        action: privacy::PrivacyAction,
    },
    /// Outbound webhooks: add, list, remove, deliveries, replay.
    Webhook {
        /// The webhook action.
        #[command(subcommand)]
        action: webhook::WebhookAction,
    },
    /// The GraphQL schema.
    Schema {
        /// The schema action.
        #[command(subcommand)]
        action: SchemaAction,
    },
}

/// `kith schema` actions.
#[derive(Debug, Subcommand)]
pub enum SchemaAction {
    /// Print the GraphQL SDL: of the core schema (committed as schemas/graphql/schema.graphql),
    /// or with --live of the schema `kith serve` builds on the configured database.
    Print {
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Open the configured database (--config, --database, KITH_*, as `kith serve` does)
        /// and print the schema with its enabled plugins' objects, fields and operations.
        #[arg(long)]
        live: bool,
    },
}

/// `kith serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (overrides server.bind).
    #[arg(long)]
    pub bind: Option<std::net::SocketAddr>,
    /// Log as JSON lines (overrides log.format).
    #[arg(long)]
    pub json_logs: bool,
    /// Install and enable the plugins bundled with Kith, granting what they request
    /// (overrides plugins.enable_bundled).
    #[arg(long)]
    pub enable_bundled_plugins: bool,
}

/// `kith migrate` actions.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum MigrateAction {
    /// List applied and pending migrations.
    Status,
    /// Apply pending migrations.
    Up,
}

/// `kith user` actions.
#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Create a user.
    Create {
        /// Login e-mail.
        #[arg(long)]
        email: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// ADMIN, MANAGER, AGENT or VIEWER.
        #[arg(long, default_value = "AGENT")]
        role: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
}

/// `kith token` actions.
#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Create an API token and print it (alone, on standard output).
    Create {
        /// A name to recognise it by.
        #[arg(long)]
        name: String,
        /// ADMIN, MANAGER, AGENT or VIEWER.
        #[arg(long)]
        role: String,
        /// Act for this user (e-mail); the role is then capped at the user's.
        #[arg(long)]
        user: Option<String>,
        /// Expire after this many days.
        #[arg(long)]
        expires_in_days: Option<i64>,
    },
    /// Revoke tokens by id or name.
    Revoke {
        /// Token id or name.
        token: String,
    },
    /// List API tokens (never their secrets).
    List,
}

/// `kith import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// contacts, companies, or what an enabled plugin imports (`donations` when a plugin
    /// declares the mutation `importDonations(csv: String!)`).
    pub object: String,
    /// The CSV file (with a header row).
    pub file: PathBuf,
    /// What to do with rows whose e-mail (domain) exists already.
    #[arg(long, value_enum, default_value = "skip")]
    pub on_duplicate: DuplicateArg,
    /// Map a column to a field: `--map "E-Mail Address=email"` (repeatable).
    #[arg(long = "map", value_name = "HEADER=FIELD")]
    pub mappings: Vec<String>,
    /// Rows per transaction.
    #[arg(long, default_value_t = 5_000)]
    pub batch_size: usize,
    /// Exit with success even when rows were rejected (they are still listed). Without it, an
    /// import that rejected any row exits with status 1 (the other rows are imported).
    #[arg(long)]
    pub allow_rejects: bool,
}

/// `--on-duplicate`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DuplicateArg {
    /// Leave the existing record alone.
    Skip,
    /// Update it with the row's values.
    Update,
}

/// What can be exported: the plural of every exportable object (`contacts`).
fn exportable_objects() -> clap::builder::PossibleValuesParser {
    let registry = crate::domain::object::Registry::core_static();
    clap::builder::PossibleValuesParser::new(
        registry
            .objects()
            .filter(|d| d.exportable)
            .map(|d| clap::builder::PossibleValue::new(d.plural.as_str()).help(d.plural_label.clone())),
    )
}

/// `kith export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// What to export.
    #[arg(value_parser = exportable_objects())]
    pub object: String,
    /// csv or json.
    #[arg(long, value_enum, default_value = "csv")]
    pub format: FormatArg,
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

/// `--format`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// CSV with a header row.
    Csv,
    /// A JSON array.
    Json,
}

/// Where the CLI reads and writes.
pub struct Io<'a> {
    /// Standard input.
    pub stdin: &'a mut dyn BufRead,
    /// Standard output: results meant for scripts.
    pub stdout: &'a mut dyn Write,
    /// Standard error: messages for people.
    pub stderr: &'a mut dyn Write,
}

/// Runs the CLI as the `kith` binary does and returns its exit status: 0, or 1 after printing
/// `error: ` and the error with its causes, once, to standard error.
pub async fn main(args: impl IntoIterator<Item = OsString>, env: Vec<(String, String)>, io: Io<'_>) -> u8 {
    let Io { stdin, stdout, stderr } = io;
    match run(args, env, Io { stdin, stdout, stderr: &mut *stderr }).await {
        Ok(()) => 0,
        Err(err) => {
            // `{:#}` prints each cause after a colon: errors keep their cause out of their own
            // message (it is their `source`), so nothing is printed twice.
            let _ = writeln!(stderr, "error: {err:#}");
            1
        }
    }
}

/// Runs the CLI with `args` (program name first) and `env`.
pub async fn run(
    args: impl IntoIterator<Item = OsString>,
    env: Vec<(String, String)>,
    io: Io<'_>,
) -> anyhow::Result<()> {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err)
            if matches!(err.kind(), clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion) =>
        {
            write!(io.stdout, "{err}")?;
            return Ok(());
        }
        Err(err) => {
            // clap starts its message with `error: `, which `main` adds to every error.
            let text = err.render().to_string();
            let text = text.trim_end();
            return Err(anyhow::anyhow!("{}", text.strip_prefix("error: ").unwrap_or(text)));
        }
    };
    let config_path =
        cli.config.clone().or_else(|| env.iter().find(|(k, _)| k == "KITH_CONFIG").map(|(_, v)| PathBuf::from(v)));
    let (mut config, warnings) =
        Config::load_with_warnings(config_path.as_deref(), env).context("invalid configuration")?;
    for warning in &warnings {
        writeln!(io.stderr, "warning: {warning}")?;
    }
    if let Some(url) = &cli.database {
        config.database.url = url.clone();
    }
    if let Command::Serve(args) = &cli.command {
        if let Some(bind) = args.bind {
            config.server.bind = bind;
        }
        if args.json_logs {
            config.log.format = "json".into();
        }
        if args.enable_bundled_plugins {
            config.plugins.install_bundled = true;
            config.plugins.enable_bundled = true;
        }
    }
    if let Command::Plugin { action: plugin::PluginAction::New { name, dir, sdk_path, lang } } = &cli.command {
        let dir = scaffold::scaffold(name, dir.clone(), sdk_path.clone(), *lang)?;
        writeln!(io.stderr, "created {}\n{}", dir.display(), lang.next_steps(&dir))?;
        return Ok(());
    }
    if let Command::PrintConfig = cli.command {
        io.stdout.write_all(crate::config::EXAMPLE.as_bytes())?;
        return Ok(());
    }
    if let Command::Schema { action: SchemaAction::Print { output, live: false } } = &cli.command {
        let sdl = crate::api::schema::core_sdl().context("building the GraphQL schema")?;
        return write_sdl(&sdl, output.as_deref(), io.stdout);
    }
    let mut options = config.store_options();
    options.create_if_missing = check_database(&config, &cli.command, io.stderr)?;
    let store =
        if config.database.auto_migrate || matches!(cli.command, Command::Migrate { action: MigrateAction::Up }) {
            if matches!(cli.command, Command::Migrate { action: MigrateAction::Status }) {
                Store::connect(&options).await
            } else {
                Store::open(&options).await
            }
        } else {
            Store::connect(&options).await
        }
        .with_context(|| format!("cannot open the database at {}", redact(&config.database.url)))?;
    let kith = Kith::new(store);
    kith.configure_webhooks(config.webhooks.clone());
    kith.configure_mail(crate::service::mail::Mailer::new(&config.mail).context("[mail]")?.map(std::sync::Arc::new));
    kith.set_public_url(&config.server.public_url());
    let result = dispatch(&kith, &config, cli.command, io).await;
    kith.store.close().await.ok();
    result
}

/// Says which SQLite file a command is about to use when it was not chosen (the default,
/// `kith.db` in the current directory) or is about to be created, and refuses to create one for
/// a command that only makes sense on an existing database: `kith plugin install .` run inside
/// a plugin's folder once made and used a new, empty `kith.db` there. Returns whether the
/// command may create the file.
fn check_database(config: &Config, command: &Command, stderr: &mut dyn Write) -> anyhow::Result<bool> {
    // The commands that set a database up; every other one needs an existing database.
    let creates = matches!(command, Command::Serve(_) | Command::Migrate { .. } | Command::Seed { .. });
    let Some(path) = crate::store::sqlite_path(&config.database.url) else { return Ok(creates) };
    let shown = std::path::absolute(&path).unwrap_or_else(|_| path.clone());
    let default = config.database.url == crate::config::DatabaseConfig::default().url;
    let why = if default {
        " (the default: kith.db in the current directory; choose another with --database or KITH_DATABASE_URL)"
    } else {
        ""
    };
    if path.exists() {
        if default {
            writeln!(stderr, "using the database {}{why}", shown.display())?;
        }
        return Ok(creates);
    }
    if !creates {
        anyhow::bail!(
            "there is no database at {}{why}: `kith {}` does not create one. Pass --database URL (or set \
             KITH_DATABASE_URL) to use an existing database, or create one with `kith migrate up`",
            shown.display(),
            command.name()
        );
    }
    if let Some(folder) = shown.parent()
        && !folder.is_dir()
    {
        anyhow::bail!(
            "cannot create a database at {}: the folder {} does not exist",
            shown.display(),
            folder.display()
        );
    }
    writeln!(stderr, "creating a new database at {}{why}", shown.display())?;
    Ok(true)
}

impl Command {
    /// The command as typed (`plugin install`), for messages.
    fn name(&self) -> String {
        let name = match self {
            Command::Serve(_) => "serve",
            Command::Migrate { .. } => "migrate",
            Command::User { .. } => "user",
            Command::Token { .. } => "token",
            Command::Import(_) => "import",
            Command::Export(_) => "export",
            Command::Seed { .. } => "seed",
            Command::PrintConfig => "print-config",
            Command::Plugin { action } => return format!("plugin {}", action.name()),
            Command::Schema { .. } => "schema",
            Command::Privacy { .. } => "privacy",
            Command::Webhook { .. } => "webhook",
        };
        name.to_owned()
    }
}

async fn dispatch(kith: &Kith, config: &Config, command: Command, io: Io<'_>) -> anyhow::Result<()> {
    let system = Actor::system("cli");
    match command {
        Command::Serve(_) => {
            let telemetry = crate::telemetry::init(config).context("setting up tracing")?;
            let listener = tokio::net::TcpListener::bind(config.server.bind)
                .await
                .with_context(|| format!("cannot listen on {}", config.server.bind))?;
            if config.server.public_url.trim().is_empty() {
                kith.set_public_url(&format!("http://{}", listener.local_addr()?));
            }
            let exporter = crate::http::metrics::Exporter::new(&config.metrics).context("setting up metrics")?;
            let state =
                AppState::new(kith.clone(), &config.api).context("building the GraphQL schema")?.with_metrics(exporter);
            let metrics_server = match config.metrics.separate_bind()? {
                Some(bind) if config.metrics.enabled => {
                    let listener = tokio::net::TcpListener::bind(bind)
                        .await
                        .with_context(|| format!("cannot listen on {bind} (metrics.bind)"))?;
                    tracing::info!(address = %listener.local_addr()?, "metrics are at /metrics");
                    let router = crate::http::metrics::router(state.clone());
                    Some(tokio::spawn(serve(listener, router, shutdown_signal(), Duration::from_secs(1))))
                }
                _ => None,
            };
            let plugins = if config.plugins.enabled {
                Some(crate::plugin::start_runtime(kith, &config.plugins).await.context("starting the plugin runtime")?)
            } else {
                None
            };
            crate::service::privacy::spawn_retention(kith.clone(), config.privacy.retention.clone());
            kith.spawn_statistics_upkeep();
            let webhooks = config.webhooks.enabled.then(|| crate::service::webhook_delivery::start(kith));
            let mail = match kith.mailer() {
                Some(mailer) if config.mail.enabled => Some(crate::service::mail::worker::start(kith, mailer)),
                _ => None,
            };
            let setup_code = state.setup_code.clone();
            let router = app(state, &config.server);
            let address = listener.local_addr()?;
            if !crate::store::users::any(kith.store.conn()).await? {
                // Printed, not only logged: the person who ran the command reads it.
                writeln!(
                    io.stderr,
                    "Kith has no users yet: open http://{address}/ to create the first administrator \
                     (from another machine, give the setup code {setup_code})"
                )?;
            } else {
                writeln!(io.stderr, "The console is at http://{address}/")?;
            }
            // Said once everything is in place (the bundled plugins installed and enabled), so a
            // script that waits for this line finds the server ready.
            tracing::info!(address = %listener.local_addr()?, database = %redact(&config.database.url), "kith is listening");
            serve(listener, router, shutdown_signal(), Duration::from_secs(config.server.shutdown_grace_secs)).await?;
            if let Some(plugins) = plugins {
                plugins.stop().await;
            }
            if let Some(metrics_server) = metrics_server {
                metrics_server.abort();
            }
            if let Some(webhooks) = webhooks {
                webhooks.stop().await;
            }
            if let Some(mail) = mail {
                mail.stop().await;
            }
            tracing::info!("stopped");
            // Sends the spans still buffered (off the runtime's threads: the flush blocks).
            let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
        }
        Command::Migrate { action } => {
            if let MigrateAction::Up = action {
                kith.store.migrate().await?;
            }
            let (applied, pending) = kith.store.migration_status().await?;
            for name in &applied {
                writeln!(io.stdout, "applied  {name}")?;
            }
            for name in &pending {
                writeln!(io.stdout, "pending  {name}")?;
            }
        }
        Command::User { action: UserAction::Create { email, name, role, password_stdin } } => {
            let role: Role = role.parse()?;
            let password = if password_stdin {
                let mut line = String::new();
                io.stdin.read_line(&mut line)?;
                Some(line.trim_end_matches(['\n', '\r']).to_owned())
            } else {
                None
            };
            let tx = kith.store.begin(&system).await?;
            let user = users::create_user(&tx, &kith.registry(), &email, &name, role, password.as_deref()).await?;
            tx.commit().await?;
            writeln!(io.stdout, "{}", user.id())?;
        }
        Command::Token { action: TokenAction::Create { name, role, user, expires_in_days } } => {
            let role: Role = role.parse()?;
            let user_id = match user {
                Some(email) => Some(
                    crate::store::users::find_login(kith.store.conn(), &email)
                        .await?
                        .with_context(|| format!("no user with e-mail {email}"))?
                        .id,
                ),
                None => None,
            };
            let tx = kith.store.begin(&system).await?;
            let (_, secret) = users::create_token(&tx, &name, role, user_id, expires_in_days).await?;
            tx.commit().await?;
            writeln!(io.stdout, "{secret}")?;
        }
        Command::Token { action: TokenAction::Revoke { token } } => {
            let tx = kith.store.begin(&system).await?;
            let ids = users::revoke_token(&tx, &token).await?;
            tx.commit().await?;
            writeln!(io.stderr, "revoked {} token(s)", ids.len())?;
        }
        Command::Token { action: TokenAction::List } => {
            for token in tokens::list(kith.store.conn()).await? {
                let state = if token.revoked_at.is_some() { "revoked" } else { "active" };
                // Uses are recorded at most once a minute (`tokens::touch`).
                let used = match token.last_used_at {
                    Some(at) => format!("last used {}", at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                    None => "never used".to_owned(),
                };
                writeln!(
                    io.stdout,
                    "{}\t{}\t{}\t{}…\t{state}\t{used}",
                    token.id, token.name, token.role, token.prefix
                )?;
            }
        }
        Command::Import(args) => match args.object.as_str() {
            "contacts" | "companies" => import(kith, &system, args, io).await?,
            _ => {
                let manager = crate::plugin::PluginManager::new(kith.clone(), &config.plugins)?;
                plugin::import(&manager, &system, &args.object, &args.file, args.allow_rejects, io).await?
            }
        },
        Command::Export(args) => {
            let registry = kith.registry();
            let object = registry
                .objects()
                .find(|d| d.plural == args.object)
                .map(|d| d.name.clone())
                .with_context(|| format!("unknown object `{}`", args.object))?;
            let object = object.as_str();
            let format = match args.format {
                FormatArg::Csv => Format::Csv,
                FormatArg::Json => Format::Json,
            };
            // The command line holds the database itself: every field is exported.
            let reader = crate::domain::actor::Role::Admin;
            let n = match &args.output {
                Some(path) => {
                    let file =
                        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
                    export::export(kith, object, reader, format, std::io::BufWriter::new(file)).await?
                }
                None => export::export(kith, object, reader, format, &mut *io.stdout).await?,
            };
            writeln!(io.stderr, "exported {n} record(s)")?;
        }
        Command::Seed { demo } => {
            if !demo {
                anyhow::bail!("nothing to seed: pass --demo to load the demo data set");
            }
            let report = seed::demo(kith).await?;
            writeln!(
                io.stderr,
                "seeded {} companies, {} contacts, {} deals, {} tickets, {} activities",
                report.companies, report.contacts, report.deals, report.tickets, report.activities
            )?;
        }
        Command::Privacy { action } => privacy::run(kith, config, action, io).await?,
        Command::Webhook { action } => webhook::run(kith, config, action, io).await?,
        Command::Plugin { action } => {
            let manager = crate::plugin::PluginManager::new(kith.clone(), &config.plugins)?;
            plugin::run(&manager, &system, action, io).await?;
        }
        Command::Schema { action: SchemaAction::Print { output, live: true } } => {
            let sdl = live_sdl(kith, config).await?;
            write_sdl(&sdl, output.as_deref(), io.stdout)?;
        }
        Command::PrintConfig | Command::Schema { .. } => {}
    }
    Ok(())
}

/// The SDL of the schema `kith serve` builds on `kith`'s database with `config`: the core
/// objects, plus (when `plugins.enabled`) the enabled plugins' objects, fields and operations.
async fn live_sdl(kith: &Kith, config: &Config) -> anyhow::Result<String> {
    if config.plugins.enabled {
        let registry = crate::plugin::manager::registry_in_database(kith)
            .await
            .context("reading the enabled plugins from the database")?;
        kith.set_registry(registry);
    }
    let registry = kith.registry();
    crate::domain::naming::Names::of(&registry)
        .map_err(|clash| anyhow::anyhow!("the enabled plugins' GraphQL names clash: {clash}"))?;
    let schema = crate::api::build_schema(&registry, Some(kith.clone()), config.api)
        .map_err(|err| anyhow::anyhow!("building the GraphQL schema: {}", err.0))?;
    Ok(schema.sdl())
}

/// Writes `sdl` to `output`, or to standard output without one.
fn write_sdl(sdl: &str, output: Option<&std::path::Path>, stdout: &mut dyn Write) -> anyhow::Result<()> {
    match output {
        Some(path) => std::fs::write(path, sdl).with_context(|| format!("cannot write {}", path.display()))?,
        None => stdout.write_all(sdl.as_bytes())?,
    }
    Ok(())
}

async fn import(kith: &Kith, actor: &Actor, args: ImportArgs, io: Io<'_>) -> anyhow::Result<()> {
    let object = if args.object == "contacts" { "contact" } else { "company" };
    let mut mapping = HashMap::new();
    for pair in &args.mappings {
        let (header, field) = pair.split_once('=').with_context(|| format!("--map `{pair}` is not HEADER=FIELD"))?;
        mapping.insert(header.trim().to_owned(), field.trim().to_owned());
    }
    if args.batch_size == 0 {
        anyhow::bail!("--batch-size must be positive");
    }
    let options = ImportOptions {
        on_duplicate: match args.on_duplicate {
            DuplicateArg::Skip => OnDuplicate::Skip,
            DuplicateArg::Update => OnDuplicate::Update,
        },
        batch_size: args.batch_size,
        mapping,
    };
    let file = std::fs::File::open(&args.file).with_context(|| format!("cannot open {}", args.file.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    if size == 0 {
        anyhow::bail!(
            "{} is empty: nothing to import (a CSV import needs a header row, then one row per record)",
            args.file.display()
        );
    }
    let bar = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {pos} rows imported ({per_sec}) {elapsed}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        Some(bar)
    } else {
        None
    };
    let started = Instant::now();
    let progress = |n: u64| {
        if let Some(bar) = &bar {
            bar.set_position(n);
        }
    };
    let report =
        import_csv(kith, actor, object, std::io::BufReader::with_capacity(1 << 16, file), &options, &progress).await?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let elapsed = started.elapsed();
    writeln!(
        io.stderr,
        "{} rows read ({} bytes) in {:.2}s: {} created, {} updated, {} skipped as duplicates, {} rejected",
        report.rows,
        size,
        elapsed.as_secs_f64(),
        report.created,
        report.updated,
        report.skipped,
        report.rejected.len()
    )?;
    if !report.ignored_columns.is_empty() {
        writeln!(io.stderr, "ignored columns (no matching field; use --map): {}", report.ignored_columns.join(", "))?;
    }
    if report.rows == 0 {
        writeln!(io.stderr, "no rows to import: {} has a header row and nothing else", args.file.display())?;
    }
    for rejected in &report.rejected {
        writeln!(io.stderr, "line {}: {}", rejected.line, rejected.reason)?;
    }
    check_rejects(report.rejected.len(), report.rows, args.allow_rejects, io.stderr)
}

/// An import that rejected rows fails (exit status 1) unless `--allow-rejects` accepts that:
/// a script must not take a partial import for a complete one.
pub(crate) fn check_rejects(rejected: usize, rows: u64, allow: bool, stderr: &mut dyn Write) -> anyhow::Result<()> {
    if rejected == 0 {
        return Ok(());
    }
    if allow {
        writeln!(stderr, "{rejected} of {rows} rows rejected (accepted with --allow-rejects)")?;
        return Ok(());
    }
    anyhow::bail!(
        "{rejected} of {rows} rows rejected (listed above); the other rows were imported. Fix the rejected rows \
         and import them again, or pass --allow-rejects to accept a partial import"
    )
}

/// Hides the password of a database URL for logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
