//! Shared helpers for Kith's end-to-end tests: a fresh database per test on SQLite (a real
//! file) and, when `KITH_TEST_DATABASE_URL` is set, on PostgreSQL (a new database each).

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
        let dir = temp_dir();
        let url = format!("sqlite://{}", dir.join("kith.db").display());
        let store = Store::open(&StoreOptions::new(&url)).await.expect("open sqlite");
        TestDb { name: "sqlite", url, kith: Kith::new(store), dir: Some(dir), pg_admin: None }
    }

    /// A new PostgreSQL database, migrated, when `KITH_TEST_DATABASE_URL` is set.
    pub async fn postgres() -> Option<TestDb> {
        let admin_url = std::env::var("KITH_TEST_DATABASE_URL").ok().filter(|u| !u.is_empty())?;
        let name = format!("kith_t_{}", uuid::Uuid::now_v7().simple());
        let admin =
            Database::connect(&admin_url).await.expect("KITH_TEST_DATABASE_URL is set but PostgreSQL is unreachable");
        admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create test database");
        admin.close().await.ok();
        let base = admin_url.rsplit_once('/').map(|(base, _)| base.to_owned()).unwrap_or(admin_url.clone());
        let url = format!("{base}/{name}");
        let mut options = StoreOptions::new(&url);
        options.max_connections = 8;
        let store = Store::open(&options).await.expect("open postgres");
        Some(TestDb { name: "postgres", url, kith: Kith::new(store), dir: None, pg_admin: Some((admin_url, name)) })
    }

    /// SQLite, plus PostgreSQL when configured.
    pub async fn all() -> Vec<TestDb> {
        let mut dbs = vec![TestDb::sqlite().await];
        if let Some(pg) = TestDb::postgres().await {
            dbs.push(pg);
        }
        dbs
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
    pub async fn cleanup(self) {
        self.kith.store.close().await.ok();
        if let Some(dir) = self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some((admin_url, name)) = self.pg_admin
            && let Ok(admin) = Database::connect(&admin_url).await
        {
            let _ = admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
            admin.close().await.ok();
        }
    }
}

/// The domain error inside a core error, or a panic naming what came instead.
#[track_caller]
pub fn domain_err<T: std::fmt::Debug>(res: Result<T, kith_core::Error>) -> kith_core::domain::DomainError {
    match res {
        Err(kith_core::Error::Domain(e)) => e,
        other => panic!("expected a domain error, got {other:?}"),
    }
}
