//! Storage: the connection, transactions and every SQL statement Kith runs.
//!
//! Architecture Invariant: `store` is the only module that builds SQL. Every statement is built
//! with sea-query and bound parameters; identifiers come from object definitions, never from
//! callers.
//!
//! Architecture Invariant: every write happens inside a [`Tx`], which also appends the audit log
//! entry and the outbox event of the change before it commits.

pub mod aggregate;
pub mod audit;
pub mod autocommit;
pub mod codec;
pub mod counter;
pub mod custom_fields;
mod flush;
pub mod group;
pub mod history;
pub mod idempotency;
pub mod imports;
pub mod jobs;
pub mod mail;
pub mod outbox;
pub mod plugin_objects;
pub mod plugins;
pub mod privacy;
pub mod query;
pub mod records;
pub mod reports;
pub mod search;
pub mod stats;
pub mod tags;
pub mod tokens;
pub mod txn;
pub mod users;
pub mod webhooks;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use kith_migrations::MigratorTrait;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, SqliteTransactionMode,
    TransactionOptions, TransactionTrait,
};

use crate::domain::actor::Actor;
use crate::domain::hook::WriteHook;
use crate::domain::value::truncate_micros;
use crate::error::{Error, Result};

/// How the database is reached and tuned.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// `sqlite://path/to/kith.db` or `postgres://user@host/db`.
    pub url: String,
    /// Most pooled connections.
    pub max_connections: u32,
    /// SQLite: `FULL` (every commit survives power loss) or `NORMAL` (survives a crash of Kith).
    pub sqlite_synchronous_full: bool,
    /// How long a SQLite writer waits for the lock.
    pub busy_timeout: Duration,
    /// SQLite: create the file when it does not exist. Commands that only make sense on an
    /// existing database turn this off, so a typo or the wrong directory is an error instead
    /// of a new, empty database.
    pub create_if_missing: bool,
}

impl StoreOptions {
    /// Options for `url` with Kith's defaults.
    pub fn new(url: &str) -> StoreOptions {
        StoreOptions {
            url: url.to_owned(),
            max_connections: 16,
            sqlite_synchronous_full: true,
            busy_timeout: Duration::from_secs(10),
            create_if_missing: true,
        }
    }
}

/// A handle on the database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    autocommit: autocommit::Autocommit,
    backend: DbBackend,
    hook: Arc<RwLock<Option<Arc<dyn WriteHook>>>>,
    group: Arc<group::Queue>,
    /// SQLite: the process's write transactions take turns here, first come first served,
    /// before `BEGIN IMMEDIATE`. SQLite has one writer at a time, and a connection that finds
    /// the write lock taken sleeps in its busy handler (1, 2, 5, 10 … 100 ms) instead of being
    /// woken when it frees: sixteen plugin mutations at once spent most of their time asleep.
    /// Other processes on the same file still meet the busy handler.
    writers: Option<Arc<tokio::sync::Mutex<()>>>,
    /// How long a write waits for its turn (SQLite's busy timeout): past it, the database is
    /// busy, as SQLite itself would say.
    busy_timeout: Duration,
}

/// How long the first connection to PostgreSQL may take before Kith says it cannot connect.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a database named by the configuration cannot be used, in words that say what to do.
fn unusable(message: impl std::fmt::Display) -> Error {
    Error::Domain(crate::domain::DomainError::invalid("database.url", message))
}

/// A SQLite location's folder must exist: Kith creates the file, not the folders above it.
fn check_sqlite_location(url: &str) -> Result<()> {
    let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" || path.starts_with("file:") {
        return Ok(());
    }
    let path = std::path::Path::new(path);
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && !folder.is_dir()
    {
        return Err(unusable(format!(
            "the folder `{}` of the SQLite database `{}` does not exist; create it first, or point `--database` elsewhere",
            folder.display(),
            path.display()
        )));
    }
    Ok(())
}

/// Connects once to the PostgreSQL server of `url`, within [`CONNECT_TIMEOUT`], so a server that
/// is down, a wrong port or a missing database is said at once and by name (sqlx's pool would
/// keep retrying for half a minute and then say only "pool timed out").
async fn check_postgres_reachable(url: &str) -> Result<()> {
    use std::str::FromStr as _;

    use sea_orm::sqlx::postgres::PgConnectOptions;
    use sea_orm::sqlx::{ConnectOptions as _, Connection as _};

    let options = PgConnectOptions::from_str(url)
        .map_err(|err| unusable(format!("`{}` is not a PostgreSQL URL: {err}", redact(url))))?;
    let place = format!("{}:{}", options.get_host(), options.get_port());
    let database = options.get_database().unwrap_or("postgres").to_owned();
    match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
        Err(_) => Err(unusable(format!(
            "PostgreSQL at {place} did not answer within {} s (is the host right, and the port open?)",
            CONNECT_TIMEOUT.as_secs()
        ))),
        Ok(Ok(connection)) => {
            let _ = connection.close().await;
            Ok(())
        }
        Ok(Err(err)) => {
            let code = err.as_database_error().and_then(|db| db.code().map(|c| c.into_owned()));
            Err(unusable(match code.as_deref() {
                Some("3D000") => format!(
                    "the database `{database}` does not exist on PostgreSQL at {place}; create it with \
                     `createdb -h {} -p {} {database}` or `CREATE DATABASE \"{database}\"`",
                    options.get_host(),
                    options.get_port()
                ),
                Some("28P01" | "28000") => {
                    format!("PostgreSQL at {place} refused the login for database `{database}`: {err}")
                }
                _ => match &err {
                    sea_orm::sqlx::Error::Io(io) => {
                        format!("cannot connect to PostgreSQL at {place}: {io} (is the server running?)")
                    }
                    other => format!("cannot connect to PostgreSQL at {place}: {other}"),
                },
            }))
        }
    }
}

/// `url` without its password, for messages.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("****"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Normalises what users type for a database location: a bare path means a SQLite file; a URL
/// of another scheme is kept as it is, for [`Store::connect`] to refuse by name.
pub fn normalize_url(url: &str) -> String {
    if url.starts_with("sqlite:") || url.contains("://") { url.to_owned() } else { format!("sqlite://{url}") }
}

/// Refuses a URL of a database Kith does not run on.
fn check_scheme(url: &str) -> Result<()> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") || url.starts_with("sqlite:") {
        return Ok(());
    }
    let scheme = url.split("://").next().unwrap_or_default();
    Err(unusable(format!(
        "Kith does not run on `{scheme}`: use a SQLite file (a path, or `sqlite://path`) or PostgreSQL \
         (`postgres://user@host:5432/database`)"
    )))
}

/// The file of a SQLite database URL (relative paths are relative to the current directory, as
/// SQLite opens them), or `None` for PostgreSQL and in-memory databases.
pub fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let url = normalize_url(url);
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let memory = path.is_empty() || path == ":memory:" || query.split('&').any(|p| p == "mode=memory");
    (!memory).then(|| std::path::PathBuf::from(path))
}

impl Store {
    /// Connects (creating a SQLite file if needed and allowed). Does not migrate.
    pub async fn connect(options: &StoreOptions) -> Result<Store> {
        let url = normalize_url(&options.url);
        check_scheme(&url)?;
        let sqlite = url.starts_with("sqlite:");
        if sqlite {
            check_sqlite_location(&url)?;
        } else {
            check_postgres_reachable(&url).await?;
        }
        let url_for_autocommit = url.clone();
        let mut connect = ConnectOptions::new(url);
        connect.max_connections(options.max_connections).min_connections(1).sqlx_logging(false);
        // sqlx pings a pooled connection before handing it out: one more round trip per
        // query (to the connection's worker thread on SQLite, over the socket on PostgreSQL).
        // A SQLite file does not go away under an open connection, so it is never pinged; a
        // PostgreSQL connection is pinged only after a minute idle, when the server may have
        // dropped it.
        if sqlite {
            connect.test_before_acquire(false);
        } else {
            connect.test_before_acquire_if_idle_for(Duration::from_secs(60));
        }
        if sqlite {
            let full = options.sqlite_synchronous_full;
            let busy = options.busy_timeout;
            let create = options.create_if_missing;
            connect.map_sqlx_sqlite_opts(move |o| {
                o.create_if_missing(create)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(if full { SqliteSynchronous::Full } else { SqliteSynchronous::Normal })
                    .busy_timeout(busy)
                    .foreign_keys(true)
                    // `like` is case-sensitive in Kith's filter language, as on PostgreSQL.
                    .pragma("case_sensitive_like", "ON")
                    // 16 MiB of page cache per connection (the default is 2 MiB): bulk writes
                    // touch the same index pages again and again.
                    .pragma("cache_size", "-16384")
                    // Statement journals (multi-row INSERTs inside a transaction) stay in memory.
                    .pragma("temp_store", "MEMORY")
                    // Deleted content is overwritten with zeros, not left in free pages: an
                    // erased person's values must not survive in the file (`store::privacy`).
                    .pragma("secure_delete", "ON")
                    // A page of up to 200 records (plus the look-ahead row) comes back from the
                    // worker thread without it stopping halfway for the reader to catch up.
                    .row_buffer_size(256)
            });
        }
        // A SQLite file: write transactions on a connection of their own
        // (`Autocommit::with_writer`). Not in memory, where each pool is a database of its own.
        let writer = if sqlite && sqlite_path(&url_for_autocommit).is_some() {
            let mut one = connect.clone();
            one.max_connections(1).min_connections(1);
            Some(Database::connect(one).await?)
        } else {
            None
        };
        let db = Database::connect(connect).await?;
        let backend = db.get_database_backend();
        let mut autocommit = autocommit::Autocommit::new(db, &url_for_autocommit, options.max_connections)?;
        if let Some(writer) = writer {
            autocommit = autocommit.with_writer(writer);
        }
        if let Err(err) = autocommit.stats().reload(&autocommit).await {
            tracing::warn!(error = %err, "cannot read the planner statistics");
        }
        let writers = (backend == DbBackend::Sqlite).then(Arc::default);
        let busy_timeout = options.busy_timeout;
        Ok(Store { autocommit, backend, hook: Arc::default(), group: Arc::default(), writers, busy_timeout })
    }

    /// Connects and applies pending migrations.
    pub async fn open(options: &StoreOptions) -> Result<Store> {
        let store = Store::connect(options).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Applies pending migrations. On PostgreSQL an advisory lock makes concurrent starts of
    /// several Kith processes take turns instead of racing.
    pub async fn migrate(&self) -> Result<()> {
        if self.backend == DbBackend::Postgres {
            let lock = self.pool().begin().await?;
            lock.execute_unprepared("SELECT pg_advisory_xact_lock(4242424242)").await?;
            let res = kith_migrations::Migrator::up(self.pool(), None).await;
            lock.commit().await?;
            res?;
        } else {
            kith_migrations::Migrator::up(self.pool(), None).await?;
        }
        Ok(())
    }

    /// Names of applied and pending migrations.
    pub async fn migration_status(&self) -> Result<(Vec<String>, Vec<String>)> {
        let applied = kith_migrations::Migrator::get_applied_migrations(self.pool()).await?;
        let pending = kith_migrations::Migrator::get_pending_migrations(self.pool()).await?;
        Ok((
            applied.iter().map(|m| m.name().to_owned()).collect(),
            pending.iter().map(|m| m.name().to_owned()).collect(),
        ))
    }

    /// Calls `observer` with the SQL of every statement run through this handle (tests and
    /// diagnostics: e.g. proving that a page of records costs a fixed number of queries).
    pub fn observe_queries(&mut self, observer: impl Fn(&str) + Send + Sync + 'static) {
        self.autocommit.observe(Arc::new(observer));
    }

    /// Where statements outside a transaction run: reads, and single-statement writes that need
    /// no [`Tx`] (see [`autocommit`]).
    pub fn conn(&self) -> &autocommit::Autocommit {
        &self.autocommit
    }

    /// The sea-orm pool that transactions are begun on.
    pub fn pool(&self) -> &DatabaseConnection {
        self.autocommit.pool()
    }

    /// Which database this is.
    pub fn backend(&self) -> DbBackend {
        self.backend
    }

    /// Upkeep after a bulk load into `table` (its name from an object definition): fresh
    /// statistics, so the planner uses the indexes (full-text included) at once instead of after
    /// autovacuum's next visit (PostgreSQL) or never (SQLite, whose planner statistics Kith also
    /// reads, see [`stats`]); and on SQLite the full-text index's segments merged (each batch
    /// left one). PostgreSQL's full-text index keeps no pending list to merge (migration 17).
    /// The rows are committed already: a failure (a role that does not own the tables) is
    /// logged, not reported.
    pub async fn after_bulk_load(&self, table: &str) {
        self.analyze(&[table, "search_entry"]).await;
        if let Err(err) = self.merge_search_segments(Duration::from_secs(5)).await {
            tracing::warn!(error = %err, "after a bulk load: cannot merge the search index's segments");
        }
    }

    /// Analyses `tables` (their names from object definitions) now, as a bulk load goes (see
    /// [`stats::Growth`]), then reloads the statistics Kith plans with. A failure is logged:
    /// the rows it follows are committed.
    pub async fn analyze(&self, tables: &[&str]) {
        let result = async {
            stats::analyze(self.conn(), tables, Duration::ZERO).await?;
            self.conn().stats().reload(self.conn()).await
        }
        .await;
        if let Err(err) = result {
            tracing::warn!(error = %err, ?tables, "cannot analyse");
        }
    }

    /// About how many rows `table` holds (its name from an object definition).
    pub async fn rows_estimate(&self, table: &str) -> Result<u64> {
        stats::rows_estimate(self.conn(), table).await
    }

    /// The planner statistics of `tables` brought up to date (see [`stats::upkeep`]); returns
    /// the tables analysed.
    pub async fn upkeep_statistics(&self, tables: &[String]) -> Result<Vec<String>> {
        stats::upkeep(self.conn(), self.conn().stats(), tables).await
    }

    /// SQLite: merges the full-text index's segments, a step per transaction, for at most
    /// `budget` (see [`search::merge_step`]); returns the steps that merged something.
    pub async fn merge_search_segments(&self, budget: Duration) -> Result<u32> {
        let started = std::time::Instant::now();
        let mut steps = 0;
        while self.backend == DbBackend::Sqlite && started.elapsed() < budget {
            let tx = self.begin(&Actor::system("upkeep")).await?;
            let merged = search::merge_step(&tx).await?;
            tx.commit().await?;
            if !merged {
                break;
            }
            steps += 1;
        }
        Ok(steps)
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<()> {
        self.pool().ping().await.map_err(Error::from)
    }

    /// Installs the hook every write transaction of this store (and its clones) consults.
    pub fn set_write_hook(&self, hook: Option<Arc<dyn WriteHook>>) {
        *self.hook.write().unwrap_or_else(std::sync::PoisonError::into_inner) = hook;
    }

    /// Starts a write transaction on behalf of `actor`. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so concurrent writers queue instead of failing on lock upgrade.
    pub async fn begin(&self, actor: &Actor) -> Result<Tx> {
        // A request that follows its writes (`group::WriteWatch`) cannot follow this one's fate.
        if let Some(watch) = group::WriteWatch::current() {
            watch.untracked();
        }
        let turn = match &self.writers {
            Some(writers) => match tokio::time::timeout(self.busy_timeout, writers.clone().lock_owned()).await {
                Ok(turn) => Some(turn),
                Err(_) => return Err(Error::Database(DbErr::Custom("database is locked (busy)".into()))),
            },
            None => None,
        };
        let txn = txn::TxConn::begun(self.autocommit.clone(), self.transaction_options()).await?.holding(turn);
        Ok(self.tx(txn, actor))
    }

    /// A write transaction whose audit entries, outbox events and search entries are held back
    /// until [`Tx::commit`] writes them: for a unit of work that runs a while (a plugin call),
    /// so that PostgreSQL's outbox lock, which orders commits, is held only at its end.
    pub async fn begin_held(&self, actor: &Actor) -> Result<Tx> {
        let mut tx = self.begin(actor).await?;
        tx.defer_appends();
        Ok(tx)
    }

    /// Where a unit of work reads: inside `tx` once it has one (so it sees its own writes),
    /// on the autocommit connections before that.
    pub fn reader<'a>(&'a self, tx: Option<&'a Tx>) -> txn::Reader<'a> {
        match tx {
            Some(tx) => txn::Reader::Tx(tx.conn()),
            None => txn::Reader::Autocommit(&self.autocommit),
        }
    }

    /// A write transaction that begins at its first statement (see [`txn`]); if none runs,
    /// [`Tx::finish_group`] may write what it holds as one statement that is its own
    /// transaction. PostgreSQL only: SQLite takes its write lock in `BEGIN IMMEDIATE`.
    pub(crate) fn begin_lazy(&self, actor: &Actor) -> Tx {
        self.tx(txn::TxConn::lazy(self.autocommit.clone(), self.transaction_options()), actor)
    }

    fn transaction_options(&self) -> TransactionOptions {
        TransactionOptions {
            sqlite_transaction_mode: (self.backend == DbBackend::Sqlite).then_some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        }
    }

    fn tx(&self, txn: txn::TxConn, actor: &Actor) -> Tx {
        Tx {
            txn,
            backend: self.backend,
            actor: actor.clone(),
            now: truncate_micros(Utc::now()),
            outbox_locked: AtomicBool::new(false),
            hook: self.hook.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone(),
            appends: None,
            touched: AtomicBool::new(false),
            step_open: AtomicBool::new(false),
            step_depth: std::sync::atomic::AtomicU32::new(0),
        }
    }

    /// What the database connections are doing now, pool by pool (for `/metrics`).
    pub fn pool_stats(&self) -> Vec<autocommit::PoolStats> {
        self.autocommit.pool_stats()
    }

    /// Closes the pool and the connections of statements outside a transaction.
    pub async fn close(self) -> Result<()> {
        self.autocommit.close().await.map_err(Error::from)
    }
}

/// The PostgreSQL advisory lock that orders outbox appends (see [`Tx::outbox_lock_key`]).
const OUTBOX_LOCK: i64 = 4_242_424_243;

/// A write transaction with its actor and a single `now` for every timestamp it writes.
#[derive(Debug)]
pub struct Tx {
    txn: txn::TxConn,
    backend: DbBackend,
    /// Who is acting.
    pub actor: Actor,
    /// The time of the change, the same for every row it touches.
    pub now: DateTime<Utc>,
    outbox_locked: AtomicBool,
    hook: Option<Arc<dyn WriteHook>>,
    /// Grouped writes only: audit entries and outbox events held back, to be written in one
    /// statement each just before the commit ([`Tx::flush_appends`]).
    appends: Option<std::sync::Mutex<Appends>>,
    /// Set by [`Tx::conn`]: a statement may have run since [`Tx::take_touched`].
    touched: AtomicBool,
    /// The last [`Tx::step`] succeeded and its savepoint is still open: the next step releases
    /// it in the same round trip as it sets its own, and the commit with everything else.
    step_open: AtomicBool,
    /// Steps running now (a step inside a step releases its savepoint at once).
    step_depth: std::sync::atomic::AtomicU32,
}

/// How [`Tx::finish_group`] ended.
#[derive(Debug)]
pub(crate) enum GroupEnd {
    /// Written and committed.
    Committed,
    /// Nothing of the transaction was written (the database refused a statement).
    Refused(Error),
    /// The commit may or may not have happened (e.g. the connection was lost).
    Unknown(Error),
}

/// Rows held back by a grouped transaction, encoded and in order, and what it read once.
#[derive(Debug, Default)]
struct Appends {
    audit: Vec<Vec<sea_orm::Value>>,
    events: Vec<Vec<sea_orm::Value>>,
    /// Search entries of records created in this transaction (see [`Tx::hold_search`]).
    search: Vec<search::NewEntry>,
    /// New records' rows, when the group holds them (see [`Tx::insert_record`]); `None` when
    /// rows are written at once.
    records: Option<Vec<HeldRows>>,
    /// Custom field definitions per object, read once per transaction.
    custom_fields: std::collections::HashMap<String, Vec<crate::domain::custom_field::CustomFieldDef>>,
}

/// Rows for one table held back by a grouped transaction, in the order they were made.
#[derive(Debug)]
pub(crate) struct HeldRows {
    table: String,
    columns: Vec<String>,
    rows: Vec<Vec<sea_orm::Value>>,
}

/// How much a grouped transaction holds back, to [`Tx::forget_appends_after`] on a rollback.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct AppendsMark {
    audit: usize,
    events: usize,
    search: usize,
    /// Held record tables, and rows in the last of them.
    records: (usize, usize),
}

impl Tx {
    /// The transaction, for statements.
    pub fn conn(&self) -> &txn::TxConn {
        self.touched.store(true, Ordering::Relaxed);
        &self.txn
    }

    /// Whether [`Tx::conn`] was asked for since the last call, and starts counting afresh. A write
    /// that did not ask for it ran no statement: if it fails, the transaction is as it was
    /// before the write, apart from what [`Tx::forget_appends_after`] drops.
    pub(crate) fn take_touched(&self) -> bool {
        self.touched.swap(false, Ordering::Relaxed)
    }

    /// From now on (grouped writes that run without savepoints), new records' rows are held
    /// back with the audit entries and written in one statement per table before them.
    pub(crate) fn hold_records(&self) {
        if let Some(mut appends) = self.appends() {
            appends.records = Some(Vec::new());
        }
    }

    /// Inserts a new record's row, or holds it back until [`Tx::flush_appends`] when this
    /// transaction holds rows. Call it only where nothing later in the same write reads or
    /// refers to the row (no tags, history or other rows pointing at it): those statements
    /// would not find it. Other writes of the group cannot know its id before the commit; a
    /// unique value they share with it fails the flush, and the group runs again with
    /// savepoints (see `store::group`).
    pub(crate) async fn insert_record(
        &self,
        def: &crate::domain::object::ObjectDef,
        row: &crate::domain::value::Fields,
    ) -> Result<()> {
        if let Some(mut appends) = self.appends()
            && let Some(held) = appends.records.as_mut()
        {
            let values = records::encode_row(self.backend, def, row)?;
            match held.last_mut() {
                Some(last)
                    if last.table == def.table
                        && last.columns.len() == def.fields.len()
                        && last.columns.iter().zip(&def.fields).all(|(c, f)| *c == f.column) =>
                {
                    last.rows.push(values);
                }
                _ => held.push(HeldRows {
                    table: def.table.clone(),
                    columns: def.fields.iter().map(|f| f.column.clone()).collect(),
                    rows: vec![values],
                }),
            }
            return Ok(());
        }
        records::insert(self.conn(), def, std::slice::from_ref(row)).await
    }

    /// Which database this is.
    pub fn backend(&self) -> DbBackend {
        self.backend
    }

    /// Before the first outbox append of a transaction on PostgreSQL, the outbox lock (held
    /// until commit) is taken, so outbox positions are handed out in commit order and a reader
    /// following `seq` never skips a row that commits late. SQLite writers are serialised
    /// already. This is the lock key the outbox INSERT must take first, in the same statement
    /// (one round trip less while the lock is held), or `None` once this transaction holds it;
    /// it counts the lock as taken.
    pub(crate) fn outbox_lock_key(&self) -> Option<i64> {
        (self.backend == DbBackend::Postgres && !self.outbox_locked.swap(true, Ordering::SeqCst)).then_some(OUTBOX_LOCK)
    }

    /// The write hook to consult about writes to `object`, if one wants them.
    pub(crate) fn hook_for(&self, object: &str) -> Option<&dyn WriteHook> {
        self.hook.as_deref().filter(|hook| hook.wants(object))
    }

    /// From now on, audit entries and outbox events are held back until [`Tx::flush_appends`]
    /// (nothing reads them inside the transaction that writes them).
    pub(crate) fn defer_appends(&mut self) {
        self.appends = Some(std::sync::Mutex::default());
    }

    fn appends(&self) -> Option<std::sync::MutexGuard<'_, Appends>> {
        self.appends.as_ref().map(|a| a.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Holds back audit rows when deferring; otherwise hands them back to be written now.
    pub(crate) fn hold_audit(&self, rows: Vec<Vec<sea_orm::Value>>) -> Option<Vec<Vec<sea_orm::Value>>> {
        match self.appends() {
            Some(mut appends) => {
                appends.audit.extend(rows);
                None
            }
            None => Some(rows),
        }
    }

    /// Holds back outbox rows when deferring; otherwise hands them back to be written now.
    pub(crate) fn hold_events(&self, rows: Vec<Vec<sea_orm::Value>>) -> Option<Vec<Vec<sea_orm::Value>>> {
        match self.appends() {
            Some(mut appends) => {
                appends.events.extend(rows);
                None
            }
            None => Some(rows),
        }
    }

    /// Holds back the search entries of new records when deferring; otherwise hands them back.
    pub(crate) fn hold_search(&self, entries: Vec<search::NewEntry>) -> Option<Vec<search::NewEntry>> {
        match self.appends() {
            Some(mut appends) => {
                appends.search.extend(entries);
                None
            }
            None => Some(entries),
        }
    }

    /// Writes the search entries held back so far: before any other change to the search index,
    /// so changes land in the order they were made.
    pub(crate) async fn flush_search(&self) -> Result<()> {
        let held = match self.appends() {
            Some(mut appends) if !appends.search.is_empty() => std::mem::take(&mut appends.search),
            _ => return Ok(()),
        };
        search::insert_new(self, held).await
    }

    /// The custom field definitions of `object`, read once per grouped transaction.
    pub(crate) async fn custom_fields(&self, object: &str) -> Result<Vec<crate::domain::custom_field::CustomFieldDef>> {
        if let Some(defs) = self.appends().and_then(|a| a.custom_fields.get(object).cloned()) {
            return Ok(defs);
        }
        // A failed read aborts a PostgreSQL transaction: count it as a statement that ran.
        // Read in the transaction once it has begun; before that, a read on the pool sees the
        // same committed definitions (READ COMMITTED) without beginning it.
        let defs = if self.txn.has_begun() {
            custom_fields::for_object(&self.txn, object).await
        } else {
            custom_fields::for_object(self.txn.autocommit(), object).await
        };
        let defs = defs.inspect_err(|_| {
            self.touched.store(true, Ordering::Relaxed);
        })?;
        if let Some(mut appends) = self.appends() {
            appends.custom_fields.insert(object.to_owned(), defs.clone());
        }
        Ok(defs)
    }

    /// Forgets the custom field definitions read so far (they changed, or may have).
    pub(crate) fn forget_custom_fields(&self) {
        if let Some(mut appends) = self.appends() {
            appends.custom_fields.clear();
        }
    }

    /// How many rows are held back, to [`Tx::forget_appends_after`] on a rollback.
    pub(crate) fn appends_mark(&self) -> AppendsMark {
        self.appends()
            .map(|a| AppendsMark {
                audit: a.audit.len(),
                events: a.events.len(),
                search: a.search.len(),
                records: a
                    .records
                    .as_ref()
                    .map(|held| (held.len(), held.last().map_or(0, |last| last.rows.len())))
                    .unwrap_or_default(),
            })
            .unwrap_or_default()
    }

    /// Drops the rows held back after `mark`, and what was read (it may have been rolled back).
    pub(crate) fn forget_appends_after(&self, mark: AppendsMark) {
        if let Some(mut appends) = self.appends() {
            appends.audit.truncate(mark.audit);
            appends.events.truncate(mark.events);
            appends.search.truncate(mark.search);
            if let Some(held) = appends.records.as_mut() {
                held.truncate(mark.records.0);
                if let Some(last) = held.last_mut().filter(|_| mark.records.0 > 0) {
                    last.rows.truncate(mark.records.1);
                }
            }
            appends.custom_fields.clear();
        }
    }

    /// Writes the held-back rows: new records first, then their search entries, audit entries
    /// and events; on PostgreSQL in one statement when they fit one ([`flush`]), otherwise one
    /// statement per table.
    pub(crate) async fn flush_appends(&self) -> Result<()> {
        if let Some(stmt) = self.take_held_statement()? {
            self.conn().execute_raw(stmt).await?;
            return Ok(());
        }
        let held = self.appends().and_then(|mut a| a.records.as_mut().map(std::mem::take)).unwrap_or_default();
        for HeldRows { table, columns, rows } in held {
            let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
            codec::insert_rows(self.conn(), &table, &columns, rows).await?;
        }
        self.flush_search().await?;
        let (audit, events) = match self.appends() {
            Some(mut appends) => (std::mem::take(&mut appends.audit), std::mem::take(&mut appends.events)),
            None => return Ok(()),
        };
        audit::insert_rows(self, audit).await?;
        outbox::insert_rows(self, events).await
    }

    /// PostgreSQL: everything held back as one statement ([`flush`]), taken out of the `Tx`, if
    /// it fits one.
    fn take_held_statement(&self) -> Result<Option<sea_orm::Statement>> {
        if self.backend != DbBackend::Postgres {
            return Ok(None);
        }
        let Some(mut appends) = self.appends() else { return Ok(None) };
        let held = flush::Held {
            records: appends.records.as_mut().map(std::mem::take).unwrap_or_default(),
            search: std::mem::take(&mut appends.search),
            audit: std::mem::take(&mut appends.audit),
            events: std::mem::take(&mut appends.events),
        };
        if !flush::fits(&held) {
            // Back where they were, for the statement-per-table path.
            if let Some(records) = appends.records.as_mut() {
                *records = held.records;
            }
            appends.search = held.search;
            appends.audit = held.audit;
            appends.events = held.events;
            return Ok(None);
        }
        drop(appends);
        flush::statement(held, self.outbox_lock_key()).map(Some)
    }

    /// Writes what the group holds and commits (see `store::group`). With no transaction begun
    /// (nothing ran a statement), what it holds goes out as one statement that is its own
    /// transaction.
    pub(crate) async fn finish_group(self) -> GroupEnd {
        if !self.txn.has_begun() {
            match self.take_held_statement() {
                Ok(Some(stmt)) => {
                    return match self.txn.autocommit().execute_raw(stmt).await {
                        Ok(_) => GroupEnd::Committed,
                        Err(err) if txn::refused(&err) => GroupEnd::Refused(err.into()),
                        Err(err) => GroupEnd::Unknown(err.into()),
                    };
                }
                Ok(None) => {}
                Err(err) => return GroupEnd::Refused(err),
            }
        }
        if let Err(err) = self.flush_appends().await {
            return match self.rollback().await {
                Ok(()) => GroupEnd::Refused(err),
                Err(rollback) => {
                    tracing::error!(error = %rollback, "rolling back a group of writes");
                    GroupEnd::Unknown(err)
                }
            };
        }
        match self.commit().await {
            Ok(()) => GroupEnd::Committed,
            Err(err) => GroupEnd::Unknown(err),
        }
    }

    /// Commits.
    pub async fn commit(self) -> Result<()> {
        if self.holds_appends() {
            self.flush_appends().await?;
        }
        self.txn.commit().await.map_err(Error::from)
    }

    /// Runs `work`, one step of a longer unit of work, in a savepoint: a step that fails is
    /// undone alone (its statements and the rows it held back) and the transaction goes on, as
    /// it must on PostgreSQL, where a failed statement would otherwise abort the transaction.
    ///
    /// A step that succeeds leaves its savepoint open: the next step releases it in the round
    /// trip that sets its own (`RELEASE …; SAVEPOINT …`), and the commit releases the last one,
    /// so a plugin handler's write costs one round trip of savepoints instead of two. What runs
    /// between two steps is inside the open savepoint, which is only ever released, never
    /// rolled back to, so it stays in the transaction as if no savepoint were there.
    pub async fn step<T>(&self, work: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        let nested = self.step_depth.fetch_add(1, Ordering::SeqCst) > 0;
        let outcome = self.run_step(nested, work).await;
        self.step_depth.fetch_sub(1, Ordering::SeqCst);
        outcome
    }

    async fn run_step<T>(&self, nested: bool, work: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        let begin = if !nested && self.step_open.swap(false, Ordering::SeqCst) {
            "RELEASE SAVEPOINT kith_step; SAVEPOINT kith_step"
        } else {
            "SAVEPOINT kith_step"
        };
        self.conn().execute_unprepared(begin).await?;
        let mark = self.appends_mark();
        match work.await {
            Ok(value) if nested => {
                self.conn().execute_unprepared("RELEASE SAVEPOINT kith_step").await?;
                Ok(value)
            }
            Ok(value) => {
                self.step_open.store(true, Ordering::SeqCst);
                Ok(value)
            }
            Err(err) => {
                self.forget_appends_after(mark);
                self.conn().execute_unprepared("ROLLBACK TO SAVEPOINT kith_step; RELEASE SAVEPOINT kith_step").await?;
                Err(err)
            }
        }
    }

    /// Whether rows are held back, to be written before the commit.
    fn holds_appends(&self) -> bool {
        self.appends().is_some_and(|a| {
            !a.audit.is_empty()
                || !a.events.is_empty()
                || !a.search.is_empty()
                || a.records.as_ref().is_some_and(|r| !r.is_empty())
        })
    }

    /// Rolls back (dropping a `Tx` also rolls back).
    pub async fn rollback(self) -> Result<()> {
        self.txn.rollback().await.map_err(Error::from)
    }
}
