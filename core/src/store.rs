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
pub mod codec;
pub mod counter;
pub mod custom_fields;
pub mod group;
pub mod history;
pub mod jobs;
pub mod outbox;
pub mod plugin_objects;
pub mod plugins;
pub mod query;
pub mod records;
pub mod search;
pub mod tags;
pub mod tokens;
pub mod users;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use kith_migrations::MigratorTrait;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
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
}

impl StoreOptions {
    /// Options for `url` with Kith's defaults.
    pub fn new(url: &str) -> StoreOptions {
        StoreOptions {
            url: url.to_owned(),
            max_connections: 16,
            sqlite_synchronous_full: true,
            busy_timeout: Duration::from_secs(10),
        }
    }
}

/// A handle on the database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
    backend: DbBackend,
    hook: Arc<RwLock<Option<Arc<dyn WriteHook>>>>,
    group: Arc<group::Queue>,
}

/// Normalises what users type for a database location: a bare path means a SQLite file.
pub fn normalize_url(url: &str) -> String {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") || url.starts_with("sqlite:") {
        url.to_owned()
    } else {
        format!("sqlite://{url}")
    }
}

impl Store {
    /// Connects (creating a SQLite file if needed). Does not migrate.
    pub async fn connect(options: &StoreOptions) -> Result<Store> {
        let url = normalize_url(&options.url);
        let sqlite = url.starts_with("sqlite:");
        let mut connect = ConnectOptions::new(url);
        connect.max_connections(options.max_connections).min_connections(1).sqlx_logging(false);
        if sqlite {
            let full = options.sqlite_synchronous_full;
            let busy = options.busy_timeout;
            connect.map_sqlx_sqlite_opts(move |o| {
                o.create_if_missing(true)
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
            });
        }
        let db = Database::connect(connect).await?;
        let backend = db.get_database_backend();
        Ok(Store { db, backend, hook: Arc::default(), group: Arc::default() })
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
            let lock = self.db.begin().await?;
            lock.execute_unprepared("SELECT pg_advisory_xact_lock(4242424242)").await?;
            let res = kith_migrations::Migrator::up(&self.db, None).await;
            lock.commit().await?;
            res?;
        } else {
            kith_migrations::Migrator::up(&self.db, None).await?;
        }
        Ok(())
    }

    /// Names of applied and pending migrations.
    pub async fn migration_status(&self) -> Result<(Vec<String>, Vec<String>)> {
        let applied = kith_migrations::Migrator::get_applied_migrations(&self.db).await?;
        let pending = kith_migrations::Migrator::get_pending_migrations(&self.db).await?;
        Ok((
            applied.iter().map(|m| m.name().to_owned()).collect(),
            pending.iter().map(|m| m.name().to_owned()).collect(),
        ))
    }

    /// Calls `observer` with the SQL of every statement run through this handle (tests and
    /// diagnostics: e.g. proving that a page of records costs a fixed number of queries).
    pub fn observe_queries(&mut self, observer: impl Fn(&str) + Send + Sync + 'static) {
        self.db.set_metric_callback(move |info| observer(&info.statement.sql));
    }

    /// The connection pool, for reads.
    pub fn conn(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Which database this is.
    pub fn backend(&self) -> DbBackend {
        self.backend
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<()> {
        self.db.ping().await.map_err(Error::from)
    }

    /// Installs the hook every write transaction of this store (and its clones) consults.
    pub fn set_write_hook(&self, hook: Option<Arc<dyn WriteHook>>) {
        *self.hook.write().unwrap_or_else(std::sync::PoisonError::into_inner) = hook;
    }

    /// Starts a write transaction on behalf of `actor`. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so concurrent writers queue instead of failing on lock upgrade.
    pub async fn begin(&self, actor: &Actor) -> Result<Tx> {
        let options = TransactionOptions {
            sqlite_transaction_mode: (self.backend == DbBackend::Sqlite).then_some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        };
        let txn = self.db.begin_with_options(options).await?;
        Ok(Tx {
            txn,
            backend: self.backend,
            actor: actor.clone(),
            now: truncate_micros(Utc::now()),
            outbox_locked: AtomicBool::new(false),
            hook: self.hook.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone(),
        })
    }

    /// Closes the pool.
    pub async fn close(self) -> Result<()> {
        self.db.close().await.map_err(Error::from)
    }
}

/// A write transaction with its actor and a single `now` for every timestamp it writes.
#[derive(Debug)]
pub struct Tx {
    txn: DatabaseTransaction,
    backend: DbBackend,
    /// Who is acting.
    pub actor: Actor,
    /// The time of the change, the same for every row it touches.
    pub now: DateTime<Utc>,
    outbox_locked: AtomicBool,
    hook: Option<Arc<dyn WriteHook>>,
}

impl Tx {
    /// The transaction, for statements.
    pub fn conn(&self) -> &DatabaseTransaction {
        &self.txn
    }

    /// Which database this is.
    pub fn backend(&self) -> DbBackend {
        self.backend
    }

    /// Before the first outbox append of a transaction on PostgreSQL, waits for the outbox lock
    /// (held until commit), so outbox positions are handed out in commit order and a reader
    /// following `seq` never skips a row that commits late. SQLite writers are serialised
    /// already.
    pub(crate) async fn lock_outbox(&self) -> Result<()> {
        if self.backend == DbBackend::Postgres && !self.outbox_locked.swap(true, Ordering::SeqCst) {
            self.txn.execute_unprepared("SELECT pg_advisory_xact_lock(4242424243)").await?;
        }
        Ok(())
    }

    /// The write hook to consult about writes to `object`, if one wants them.
    pub(crate) fn hook_for(&self, object: &str) -> Option<&dyn WriteHook> {
        self.hook.as_deref().filter(|hook| hook.wants(object))
    }

    /// Commits.
    pub async fn commit(self) -> Result<()> {
        self.txn.commit().await.map_err(Error::from)
    }

    /// Rolls back (dropping a `Tx` also rolls back).
    pub async fn rollback(self) -> Result<()> {
        self.txn.rollback().await.map_err(Error::from)
    }
}
