//! Shared helpers for Kith's end-to-end tests: a fresh database per test on SQLite (a real
//! file) and, when `KITH_TEST_DATABASE_URL` is set, on PostgreSQL (a new database each).
//!
//! Without `KITH_TEST_DATABASE_URL`, what would have run on PostgreSQL is reported as skipped
//! on standard error (past the test harness's capture), never passed in silence. A `TestDb`
//! removes its database when dropped, so a test that panics leaves none behind.

// Test and benchmark code: a failed unwrap is a failed test, which is what it should be.
#![allow(clippy::unwrap_used)]

pub mod browser;
pub mod languages;
pub mod smtp;
pub mod tryton;

use std::io::Write as _;
use std::path::PathBuf;

use kith_core::domain::actor::Actor;
use kith_core::service::Kith;
use kith_core::service::input::Input;
use kith_core::store::records::Record;
use kith_core::store::{Store, StoreOptions, Tx};
use sea_orm::{ConnectionTrait, Database};

/// A database made for one test.
pub struct TestDb {
    /// `sqlite` or `postgres`, for assertion messages.
    pub name: &'static str,
    /// Its URL.
    pub url: String,
    /// Core services over it.
    pub kith: Kith,
    /// A temporary directory to remove on cleanup.
    pub dir: Option<PathBuf>,
    /// PostgreSQL admin URL and database name to drop on cleanup.
    pub pg_admin: Option<(String, String)>,
}

/// A fresh directory under the system temp dir.
pub fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kith-test-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

impl TestDb {
    /// A new SQLite file database, migrated.
    pub async fn sqlite() -> TestDb {
        TestDb::sqlite_with(|_| {}).await
    }

    /// [`TestDb::sqlite`] with the store's options as `adjust` leaves them (a benchmark's
    /// `synchronous = NORMAL`, say).
    pub async fn sqlite_with(adjust: impl FnOnce(&mut StoreOptions)) -> TestDb {
        let dir = temp_dir();
        let url = format!("sqlite://{}", dir.join("kith.db").display());
        let mut options = StoreOptions::new(&url);
        adjust(&mut options);
        let store = Store::open(&options).await.expect("open sqlite");
        TestDb { name: "sqlite", url, kith: Kith::new(store), dir: Some(dir), pg_admin: None }
    }

    /// For a test that only means something on PostgreSQL: a new database, migrated, when
    /// `KITH_TEST_DATABASE_URL` is set; otherwise `None`, after reporting the calling test
    /// (the harness names each test's thread after it) as skipped.
    pub async fn postgres_or_skip() -> Option<TestDb> {
        let db = TestDb::postgres().await;
        if db.is_none() {
            skipped(std::thread::current().name().unwrap_or("a test"));
        }
        db
    }

    /// A new PostgreSQL database, migrated, when `KITH_TEST_DATABASE_URL` is set. A test that
    /// needs one calls [`TestDb::postgres_or_skip`], which says when it is skipped.
    pub async fn postgres() -> Option<TestDb> {
        TestDb::postgres_opened_by(|options| async move { Store::open(&options).await.expect("open postgres") }).await
    }

    /// [`TestDb::postgres`], with the store over the new database made by `open` from its
    /// options. The database is dropped if `open` panics, as when a broken migration fails every
    /// test in `Store::open`.
    pub async fn postgres_opened_by<F, Fut>(open: F) -> Option<TestDb>
    where
        F: FnOnce(StoreOptions) -> Fut,
        Fut: std::future::Future<Output = Store>,
    {
        let admin_url = postgres_admin_url()?;
        let name = format!("kith_t_{}", uuid::Uuid::now_v7().simple());
        let admin =
            Database::connect(&admin_url).await.expect("KITH_TEST_DATABASE_URL is set but PostgreSQL is unreachable");
        admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create test database");
        admin.close().await.ok();
        // Dropped on a panic from here on, before it is the `TestDb`'s too.
        let mut created = Created(Some((admin_url.clone(), name.clone())));
        let base = admin_url.rsplit_once('/').map(|(base, _)| base.to_owned()).unwrap_or(admin_url.clone());
        let url = format!("{base}/{name}");
        let mut options = StoreOptions::new(&url);
        options.max_connections = 8;
        let store = open(options).await;
        Some(TestDb { name: "postgres", url, kith: Kith::new(store), dir: None, pg_admin: created.0.take() })
    }

    /// SQLite, plus PostgreSQL when configured (said once per test run when it is not).
    pub async fn all() -> Vec<TestDb> {
        let mut dbs = vec![TestDb::sqlite().await];
        match TestDb::postgres().await {
            Some(pg) => dbs.push(pg),
            None => {
                static ONCE: std::sync::Once = std::sync::Once::new();
                ONCE.call_once(|| skipped("the PostgreSQL half of every test that runs on both databases"));
            }
        }
        dbs
    }

    /// Another handle on this database, through `kith` (a `Store` opened with other options);
    /// the database stays this one's to remove.
    pub fn sharing(&self, kith: Kith) -> TestDb {
        TestDb { name: self.name, url: self.url.clone(), kith, dir: None, pg_admin: None }
    }

    /// Starts a write transaction as the system.
    pub async fn tx(&self) -> Tx {
        self.kith.store.begin(&Actor::system("test")).await.expect("begin")
    }

    /// Creates a record from JSON input in its own transaction.
    pub async fn create(&self, object: &str, input: serde_json::Value) -> Result<Record, kith_core::Error> {
        let def = self.kith.object(object)?;
        let input = Input::from_json(&def, &input)?;
        let tx = self.tx().await;
        let record = kith_core::service::records::create(&tx, &self.kith.registry(), object, input).await?;
        tx.commit().await?;
        Ok(record)
    }

    /// Updates a record from JSON input in its own transaction.
    pub async fn update(
        &self,
        object: &str,
        id: uuid::Uuid,
        input: serde_json::Value,
        version: Option<i64>,
    ) -> Result<Record, kith_core::Error> {
        let def = self.kith.object(object)?;
        let input = Input::from_json(&def, &input)?;
        let tx = self.tx().await;
        let record =
            kith_core::service::records::update(&tx, &self.kith.registry(), object, id, input, version).await?;
        tx.commit().await?;
        Ok(record)
    }

    /// Number of rows of a table.
    pub async fn count_rows(&self, table: &str) -> i64 {
        let row = self
            .kith
            .store
            .conn()
            .query_one_raw(sea_orm::Statement::from_string(
                self.kith.store.backend(),
                format!("SELECT COUNT(*) FROM {table}"),
            ))
            .await
            .expect("count")
            .expect("a row");
        row.try_get_by_index::<i64>(0).expect("count value")
    }

    /// Drops what the test made.
    pub async fn cleanup(mut self) {
        self.kith.store.clone().close().await.ok();
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some((admin_url, name)) = self.pg_admin.take() {
            drop_database(&admin_url, &name).await;
        }
    }
}

/// A test that panics never reaches `cleanup`: its database goes here. Best effort, like
/// `cleanup`: a database that cannot be dropped is left for the next `DROP`.
impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some((admin_url, name)) = self.pg_admin.take() {
            drop_database_now(admin_url, name);
        }
    }
}

/// A PostgreSQL database made for a test and not yet handed to its `TestDb`: (admin URL, name),
/// dropped unless taken.
struct Created(Option<(String, String)>);

impl Drop for Created {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = self.0.take() {
            drop_database_now(admin_url, name);
        }
    }
}

/// Drops a test database from synchronous code (a `Drop`), on a thread of its own with its own
/// runtime: the caller's runtime may be the one unwinding.
fn drop_database_now(admin_url: String, name: String) {
    let dropper = std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        runtime.block_on(drop_database(&admin_url, &name));
    });
    let _ = dropper.join();
}

/// Drops a test database, closing the connections still open to it.
async fn drop_database(admin_url: &str, name: &str) {
    if let Ok(admin) = Database::connect(admin_url).await {
        let _ = admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
        admin.close().await.ok();
    }
}

/// `KITH_TEST_DATABASE_URL`, when set and not empty.
pub fn postgres_admin_url() -> Option<String> {
    std::env::var("KITH_TEST_DATABASE_URL").ok().filter(|u| !u.is_empty())
}

/// Reports that `what` did not run for want of PostgreSQL. Written to the process's standard
/// error rather than with `eprintln!`, which the test harness captures and shows only for
/// failing tests: a skip must be seen in a passing run.
pub fn skipped(what: &str) {
    let _ = writeln!(std::io::stderr(), "SKIPPED (PostgreSQL): {what}: set KITH_TEST_DATABASE_URL");
}

/// The domain error inside a core error, or a panic naming what came instead.
#[track_caller]
pub fn domain_err<T: std::fmt::Debug>(res: Result<T, kith_core::Error>) -> kith_core::domain::DomainError {
    match res {
        Err(kith_core::Error::Domain(e)) => e,
        other => panic!("expected a domain error, got {other:?}"),
    }
}

/// This process's resident memory in MiB (Linux; 0 elsewhere), for benchmarks that watch it.
pub fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|k| k.parse::<f64>().ok()))
        .map_or(0.0, |kib| kib / 1024.0)
}
