//! The statement and SQLite's plan of a contacts page, as Kith builds it from the planner
//! statistics of an existing database, and how long it takes: for finding out why a page got
//! slow (e.g. in `bench/soak.sh`'s database).
//!
//! `cargo run --example explain_page -- sqlite:///path/to/kith.db '{"lifecycleStage": {"eq": "CUSTOMER"}}' lastName`

// A diagnostic tool: a failed unwrap is a useful answer.
#![allow(clippy::unwrap_used)]

use kith_core::domain::filter::{Filter, OrderBy};
use kith_core::store::records::{ListQuery, PageRequest, list, list_statement_planned};
use kith_core::store::{Store, StoreOptions};
use sea_orm::{ConnectionTrait, Statement};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = args.get(1).expect("a database URL");
    let filter: serde_json::Value = serde_json::from_str(args.get(2).map_or("{}", String::as_str)).unwrap();
    let sort = args.get(3).map_or("lastName", String::as_str);
    let store = Store::open(&StoreOptions::new(url)).await.unwrap();
    let kith = kith_core::service::Kith::new(store);
    let conn = kith.store.conn();
    conn.stats().reload(conn).await.unwrap();
    println!("statistics: {:?}", conn.stats().table("contact").map(|t| (t.rows, t.indexes.len())));
    let def = kith.object("contact").unwrap();
    let query = ListQuery {
        filter: Filter::from_json(&def, &[], &filter).unwrap(),
        order: vec![OrderBy::asc(sort)],
        page: PageRequest::Forward { first: 50, after: None },
        include_deleted: false,
    };
    let statement = list_statement_planned(conn, &def, &query, None, &[]).unwrap();
    println!("{}", statement.sql);
    let values = statement.values.clone().map(|v| v.0).unwrap_or_default();
    let explain = Statement::from_sql_and_values(
        conn.get_database_backend(),
        format!("EXPLAIN QUERY PLAN {}", statement.sql),
        values,
    );
    for row in conn.query_all_raw(explain).await.unwrap() {
        println!("  {}", row.try_get::<String>("", "detail").unwrap());
    }
    let started = std::time::Instant::now();
    for _ in 0..20 {
        list(conn, &def, &query).await.unwrap();
    }
    println!("{:.2} ms a page", started.elapsed().as_secs_f64() * 1000.0 / 20.0);
}
