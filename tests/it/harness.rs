//! The test helpers themselves: what `TestDb` leaves behind, when a test fails and when making
//! its database does.

use kith_tests::{TestDb, postgres_admin_url, skipped};
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};

/// A test that panicked never reached `cleanup`, and its PostgreSQL database stayed on the
/// server, one more per failing run. Dropping the `TestDb` (here while a panic unwinds) removes it.
#[tokio::test]
async fn a_panicking_test_leaves_no_postgres_database_behind() {
    let Some(admin_url) = postgres_admin_url() else {
        skipped(std::thread::current().name().unwrap_or("a test"));
        return;
    };
    let (sender, receiver) = std::sync::mpsc::channel();
    // A test of its own, on its own thread and runtime, that fails after making its database.
    let failed = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let db = TestDb::postgres().await.unwrap();
            db.create("contact", serde_json::json!({"firstName": "Ada"})).await.unwrap();
            sender.send(db.url.rsplit('/').next().unwrap().to_owned()).unwrap();
            panic!("the failing test (expected by a_panicking_test_leaves_no_postgres_database_behind)");
        })
    })
    .join();
    assert!(failed.is_err(), "the inner test failed");
    let name = receiver.recv().unwrap();
    assert!(!database_exists(&admin_url, &name).await, "{name} is still on the server");
}

/// A store that cannot be opened over a new database (a broken migration, say) fails every
/// test before it has a `TestDb` to drop: the database made for it is dropped all the same.
#[tokio::test]
async fn a_test_database_whose_store_fails_to_open_is_dropped() {
    let Some(admin_url) = postgres_admin_url() else {
        skipped(std::thread::current().name().unwrap_or("a test"));
        return;
    };
    let (sender, receiver) = std::sync::mpsc::channel();
    let failed = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            TestDb::postgres_opened_by(|options| async move {
                sender.send(options.url.rsplit('/').next().unwrap().to_owned()).unwrap();
                panic!("the store did not open (expected by a_test_database_whose_store_fails_to_open_is_dropped)")
            })
            .await
        })
    })
    .join();
    assert!(failed.is_err(), "making the database failed");
    let name = receiver.recv().unwrap();
    assert!(!database_exists(&admin_url, &name).await, "{name} is still on the server");
}

/// Whether PostgreSQL has a database of this name.
async fn database_exists(admin_url: &str, name: &str) -> bool {
    let admin = Database::connect(admin_url).await.unwrap();
    let count = admin
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT COUNT(*) FROM pg_database WHERE datname = $1",
            [name.into()],
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<i64>(0)
        .unwrap();
    admin.close().await.ok();
    count > 0
}
