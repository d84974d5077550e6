//! Statements outside a transaction (each its own transaction): every read of the API, and the
//! few single-statement writes that need no [`super::Tx`].
//!
//! On SQLite they run on the sea-orm pool. On PostgreSQL they run on connections Kith keeps
//! itself ([`Conns`]): sqlx's pool pings every connection as it goes back (a `Sync` and its
//! `ReadyForQuery`, one more round trip, a task and a wake-up of the server's backend per
//! query, there to clean up after a statement whose future was dropped halfway). Kith knows
//! when a statement ran to its end and hands that connection straight to the next statement;
//! only a connection whose statement was cancelled is pinged, by a task of its own, before it is
//! used again, and a connection that failed is closed.

use std::collections::VecDeque;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sea_orm::sqlx::postgres::{PgConnectOptions, PgConnection, PgDatabaseError, PgSeverity};
use sea_orm::sqlx::{self, ConnectOptions as _, Connection as _, Executor as _};
use sea_orm::{
    ConnAcquireErr, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, ExecResult, QueryResult, RuntimeErr,
    Statement,
};
use sea_query_sqlx::SqlxValues;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A connection idle for longer is pinged before its next statement (the server or a network
/// box in between may have dropped it), as sqlx's pool is configured to do for transactions.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(60);
/// A connection idle for longer is closed instead of used.
const CLOSE_IF_IDLE_FOR: Duration = Duration::from_secs(10 * 60);
/// A connection older than this is closed when its statement ends (sqlx's default lifetime).
const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// How long a statement waits for a connection (sqlx's default acquire timeout).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the ping of a cancelled statement's connection may take before it is closed.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(5);

type Observer = Arc<dyn Fn(&str) + Send + Sync>;

/// Where statements outside a transaction run: the sea-orm pool (SQLite) or Kith's own
/// PostgreSQL connections.
#[derive(Clone)]
pub struct Autocommit {
    pool: DatabaseConnection,
    /// SQLite: the one connection write transactions run on (see [`Autocommit::with_writer`]).
    writer: Option<DatabaseConnection>,
    conns: Option<Arc<Conns>>,
    stats: Arc<super::stats::PlannerStats>,
}

impl std::fmt::Debug for Autocommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Autocommit").field("backend", &self.pool.get_database_backend()).finish_non_exhaustive()
    }
}

impl Autocommit {
    /// Statements on `pool`, or on connections of their own to `url` when it is PostgreSQL (at
    /// most `max` open at once; none opened until a statement needs one).
    pub(crate) fn new(pool: DatabaseConnection, url: &str, max: u32) -> Result<Autocommit, DbErr> {
        let conns = if pool.get_database_backend() == DbBackend::Postgres {
            let options = PgConnectOptions::from_str(url)
                .map_err(|err| DbErr::Conn(RuntimeErr::SqlxError(Arc::new(err))))?
                .disable_statement_logging();
            Some(Arc::new(Conns::new(options, max.max(1) as usize)))
        } else {
            None
        };
        Ok(Autocommit { pool, writer: None, conns, stats: Arc::default() })
    }

    /// Write transactions run on `writer` (SQLite, a pool of one connection), reads on the pool.
    /// Writers take turns anyway (SQLite's write lock), and on one connection they find the
    /// pages they wrote last in its cache: a connection drops its whole cache when another one
    /// has written since its last transaction, so writers taking turns on sixteen connections
    /// read every index page they touch from the file again.
    pub(crate) fn with_writer(mut self, writer: DatabaseConnection) -> Autocommit {
        self.writer = Some(writer);
        self
    }

    /// Where write transactions begin: the writer connection on SQLite, the pool otherwise.
    pub(crate) fn transaction_pool(&self) -> &DatabaseConnection {
        self.writer.as_ref().unwrap_or(&self.pool)
    }

    /// The database's planner statistics, as last loaded (`store::stats`).
    pub fn stats(&self) -> &super::stats::PlannerStats {
        &self.stats
    }

    /// The sea-orm pool, which transactions are begun on.
    pub(crate) fn pool(&self) -> &DatabaseConnection {
        &self.pool
    }

    /// Calls `observer` with the SQL of every statement run through this handle, on the pool
    /// (transactions) too. A handle shared with clones gets connections of its own.
    pub(crate) fn observe(&mut self, observer: Observer) {
        let pooled = observer.clone();
        self.pool.set_metric_callback(move |info| pooled(&info.statement.sql));
        if let Some(writer) = &mut self.writer {
            let writes = observer.clone();
            writer.set_metric_callback(move |info| writes(&info.statement.sql));
        }
        if let Some(conns) = &mut self.conns {
            match Arc::get_mut(conns) {
                Some(conns) => conns.observer = Some(observer),
                None => {
                    let mut own = Conns::new(conns.options.clone(), conns.max);
                    own.observer = Some(observer);
                    *conns = Arc::new(own);
                }
            }
        }
    }

    /// What the connections are doing now (for `/metrics`).
    pub(crate) fn pool_stats(&self) -> Vec<PoolStats> {
        let mut stats = Vec::with_capacity(2);
        if let Some((size, idle, max)) = self.sqlx_pool() {
            stats.push(PoolStats {
                pool: "transactions",
                in_use: u64::from(size).saturating_sub(idle as u64),
                idle: idle as u64,
                max: u64::from(max),
            });
        }
        if let Some(writer) = &self.writer {
            let pool = writer.get_sqlite_connection_pool();
            stats.push(PoolStats {
                pool: "writer",
                in_use: u64::from(pool.size()).saturating_sub(pool.num_idle() as u64),
                idle: pool.num_idle() as u64,
                max: u64::from(pool.options().get_max_connections()),
            });
        }
        if let Some(conns) = &self.conns {
            stats.push(PoolStats {
                pool: "statements",
                in_use: conns.max.saturating_sub(conns.permits.available_permits()) as u64,
                idle: conns.lock_idle().len() as u64,
                max: conns.max as u64,
            });
        }
        stats
    }

    /// sqlx's pool: its open connections, the idle ones among them and its most.
    fn sqlx_pool(&self) -> Option<(u32, usize, u32)> {
        match self.pool.get_database_backend() {
            DbBackend::Postgres => {
                let pool = self.pool.get_postgres_connection_pool();
                Some((pool.size(), pool.num_idle(), pool.options().get_max_connections()))
            }
            DbBackend::Sqlite => {
                let pool = self.pool.get_sqlite_connection_pool();
                Some((pool.size(), pool.num_idle(), pool.options().get_max_connections()))
            }
            _ => None,
        }
    }

    /// Counts a wait for a pooled connection when every one of the transaction pool's is taken
    /// as a transaction is about to begin (`kith_db_pool_waits_total`).
    /// (SQLite's writers wait for their turn instead, before they begin.)
    pub(crate) fn note_transaction_wait(&self) {
        if self.writer.is_some() {
            return;
        }
        if let Some((size, 0, max)) = self.sqlx_pool()
            && size >= max
        {
            metrics::counter!("kith_db_pool_waits_total", "pool" => "transactions").increment(1);
        }
    }

    /// Closes the pool and the idle connections (PostgreSQL: a `Terminate` each); statements
    /// still running close theirs when they end.
    pub(crate) async fn close(&self) -> Result<(), DbErr> {
        if let Some(conns) = &self.conns {
            conns.closed.store(true, std::sync::atomic::Ordering::SeqCst);
            let idle: Vec<Idle> = conns.lock_idle().drain(..).collect();
            for idle in idle {
                let _ = idle.conn.close().await;
            }
        }
        if let Some(writer) = &self.writer {
            writer.close_by_ref().await?;
        }
        self.pool.close_by_ref().await
    }
}

/// One pool's connections at a moment: `transactions` (sqlx's pool: transactions on PostgreSQL,
/// every statement outside a write transaction on SQLite), `writer` (a SQLite file's one
/// connection for write transactions) or `statements` (Kith's own PostgreSQL connections for
/// statements outside a transaction).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Which pool.
    pub pool: &'static str,
    /// Connections taken by a statement or transaction.
    pub in_use: u64,
    /// Open connections waiting for work.
    pub idle: u64,
    /// Most connections it opens.
    pub max: u64,
}

/// Kith's own PostgreSQL connections for statements outside a transaction.
pub(crate) struct Conns {
    options: PgConnectOptions,
    max: usize,
    /// One per connection that may be open: held while a connection is in use (and while a
    /// cancelled one is cleaned up).
    permits: Arc<Semaphore>,
    /// Connections ready for a statement, the most recently used last.
    idle: Mutex<VecDeque<Idle>>,
    observer: Option<Observer>,
    closed: std::sync::atomic::AtomicBool,
}

struct Idle {
    conn: PgConnection,
    opened: Instant,
    since: Instant,
}

impl Conns {
    fn new(options: PgConnectOptions, max: usize) -> Conns {
        Conns {
            options,
            max,
            permits: Arc::new(Semaphore::new(max)),
            idle: Mutex::new(VecDeque::new()),
            observer: None,
            closed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, VecDeque<Idle>> {
        self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A connection for one statement: the most recently used idle one (pinged first when it
    /// sat idle long), or a new one.
    async fn lease(self: &Arc<Self>) -> Result<Lease, DbErr> {
        if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed));
        }
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                // Every connection is taken: this statement waits (`kith_db_pool_waits_total`).
                metrics::counter!("kith_db_pool_waits_total", "pool" => "statements").increment(1);
                tokio::time::timeout(ACQUIRE_TIMEOUT, self.permits.clone().acquire_owned())
                    .await
                    .map_err(|_| DbErr::ConnectionAcquire(ConnAcquireErr::Timeout))?
                    .map_err(|_| DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed))?
            }
        };
        loop {
            let idle = self.lock_idle().pop_back();
            let Some(mut idle) = idle else { break };
            let idle_for = idle.since.elapsed();
            if idle_for > CLOSE_IF_IDLE_FOR {
                drop(idle.conn);
                continue;
            }
            if idle_for > PING_IF_IDLE_FOR && idle.conn.ping().await.is_err() {
                continue;
            }
            return Ok(Lease { conns: self.clone(), conn: Some(idle.conn), opened: idle.opened, permit: Some(permit) });
        }
        let conn = self.options.connect().await.map_err(|err| DbErr::Conn(RuntimeErr::SqlxError(Arc::new(err))))?;
        Ok(Lease { conns: self.clone(), conn: Some(conn), opened: Instant::now(), permit: Some(permit) })
    }

    fn observe(&self, sql: &str) {
        if let Some(observer) = &self.observer {
            observer(sql);
        }
    }
}

/// A connection taken for one statement. [`Lease::finish`] hands it back as it is; dropped
/// without finishing (the statement's future was cancelled), it is pinged by a task of its own
/// before it is used again.
struct Lease {
    conns: Arc<Conns>,
    conn: Option<PgConnection>,
    opened: Instant,
    permit: Option<OwnedSemaphorePermit>,
}

impl Lease {
    fn conn(&mut self) -> &mut PgConnection {
        // Taken only by `finish` and `drop`, which consume the lease.
        self.conn.as_mut().expect("a lease holds its connection until it ends")
    }

    /// The statement ran to its end with `err` (if any): the connection goes back unless the
    /// error ended it ([`ends_the_session`]), it is old, or the store was closed.
    fn finish(mut self, err: Option<&sqlx::Error>) {
        let Some(conn) = self.conn.take() else { return };
        let broken = err.is_some_and(ends_the_session);
        if broken || self.opened.elapsed() > MAX_LIFETIME || self.conns.closed.load(std::sync::atomic::Ordering::SeqCst)
        {
            drop(conn);
            return;
        }
        let stale = {
            let mut idle = self.conns.lock_idle();
            idle.push_back(Idle { conn, opened: self.opened, since: Instant::now() });
            // The least recently used connection is closed once it has sat idle too long.
            match idle.front() {
                Some(oldest) if oldest.since.elapsed() > CLOSE_IF_IDLE_FOR => idle.pop_front(),
                _ => None,
            }
        };
        if let Some(stale) = stale {
            drop(stale.conn);
        }
        // The permit goes back after the connection, so the next statement finds it idle.
        drop(self.permit.take());
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let conns = self.conns.clone();
        let permit = self.permit.take();
        let opened = self.opened;
        runtime.spawn(async move {
            // A ping waits out the cancelled statement's answer (or finishes sending it).
            // A store closed meanwhile keeps nothing open.
            if let Ok(Ok(())) = tokio::time::timeout(CLEANUP_TIMEOUT, conn.ping()).await
                && !conns.closed.load(std::sync::atomic::Ordering::SeqCst)
            {
                conns.lock_idle().push_back(Idle { conn, opened, since: Instant::now() });
            }
            drop(permit);
        });
    }
}

/// Whether after `err` the connection cannot run another statement: it broke (I/O, protocol),
/// or the server ended the session (a `FATAL` error, e.g. `pg_terminate_backend` or a
/// shutdown, which PostgreSQL sends just before it closes the connection).
fn ends_the_session(err: &sqlx::Error) -> bool {
    match err.as_database_error() {
        None => true,
        Some(db) => db
            .try_downcast_ref::<PgDatabaseError>()
            .is_some_and(|pg| matches!(pg.severity(), PgSeverity::Fatal | PgSeverity::Panic)),
    }
}

fn query_err(err: sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(Arc::new(err)))
}

fn exec_err(err: sqlx::Error) -> DbErr {
    DbErr::Exec(RuntimeErr::SqlxError(Arc::new(err)))
}

fn sqlx_query(stmt: &Statement) -> sqlx::query::Query<'_, sqlx::Postgres, SqlxValues> {
    let values = stmt.values.clone().unwrap_or(sea_orm::sea_query::Values(Vec::new()));
    sqlx::query_with(sqlx::AssertSqlSafe(stmt.sql.as_str()), SqlxValues(values))
}

impl super::stats::Planned for Autocommit {
    fn planner_stats(&self) -> Option<&super::stats::PlannerStats> {
        (self.pool.get_database_backend() == DbBackend::Sqlite).then_some(&*self.stats)
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for Autocommit {
    fn get_database_backend(&self) -> DbBackend {
        self.pool.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        let Some(conns) = &self.conns else { return self.pool.execute_raw(stmt).await };
        conns.observe(&stmt.sql);
        let mut lease = conns.lease().await?;
        let res = sqlx_query(&stmt).execute(lease.conn()).await;
        lease.finish(res.as_ref().err());
        res.map(ExecResult::from).map_err(exec_err)
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        let Some(conns) = &self.conns else { return self.pool.execute_unprepared(sql).await };
        conns.observe(sql);
        let mut lease = conns.lease().await?;
        let res = lease.conn().execute(sqlx::AssertSqlSafe(sql.to_owned())).await;
        lease.finish(res.as_ref().err());
        res.map(ExecResult::from).map_err(exec_err)
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        let Some(conns) = &self.conns else { return self.pool.query_one_raw(stmt).await };
        conns.observe(&stmt.sql);
        let mut lease = conns.lease().await?;
        let res = sqlx_query(&stmt).fetch_optional(lease.conn()).await;
        lease.finish(res.as_ref().err());
        res.map(|row| row.map(QueryResult::from)).map_err(query_err)
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        let Some(conns) = &self.conns else { return self.pool.query_all_raw(stmt).await };
        conns.observe(&stmt.sql);
        let mut lease = conns.lease().await?;
        let res = sqlx_query(&stmt).fetch_all(lease.conn()).await;
        lease.finish(res.as_ref().err());
        res.map(|rows| rows.into_iter().map(QueryResult::from).collect()).map_err(query_err)
    }

    fn support_returning(&self) -> bool {
        self.pool.support_returning()
    }
}
