//! The test helpers themselves: what `TestDb` leaves behind.

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
    let admin = Database::connect(&admin_url).await.unwrap();
    let left = admin
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT COUNT(*) FROM pg_database WHERE datname = $1",
            [name.clone().into()],
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<i64>(0)
        .unwrap();
    assert_eq!(left, 0, "{name} is still on the server");
    admin.close().await.ok();
}
