//! Planner statistics and the plans Kith chooses from them (`store::stats`): a bulk load leaves
//! its table analysed, and on SQLite a page filtered by an unselective equality and sorted by
//! another indexed column reads the sort key's index in order instead of sorting every match,
//! with the same rows as before, page after page.

use kith_core::domain::actor::Actor;
use kith_core::domain::filter::{Filter, OrderBy};
use kith_core::store::records::{ListQuery, PageRequest, list, list_statement_planned};
use kith_tests::TestDb;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::json;

use crate::util::query_plan;

const STAGES: [&str; 6] = ["SUBSCRIBER", "LEAD", "PROSPECT", "CUSTOMER", "CHURNED", "OTHER"];

/// Imports `n` contacts: stages cycling over six values, 40 last names, every 25th without one.
async fn import_contacts(db: &TestDb, n: usize) {
    let mut csv = String::from("first_name,last_name,email,lifecycle_stage\n");
    for i in 0..n {
        let last = if i % 25 == 0 { String::new() } else { format!("Last{:02}", i % 40) };
        csv.push_str(&format!("First{i},{last},p{i}@example.org,{}\n", STAGES[i % 6]));
    }
    let report = kith_core::service::import::import_csv(
        &db.kith,
        &Actor::system("test"),
        "contact",
        csv.as_bytes(),
        &kith_core::service::import::ImportOptions { batch_size: 1_000, ..Default::default() },
        &|_| {},
    )
    .await
    .unwrap();
    assert_eq!(report.created, n as u64, "{}: {:?}", db.name, report.rejected);
}

/// How many times PostgreSQL's `ANALYZE` ran on `table` (by hand, not by autovacuum).
async fn pg_analyze_count(db: &TestDb, table: &str) -> i64 {
    let conn = db.kith.store.conn();
    let row = conn
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            format!("SELECT analyze_count FROM pg_stat_user_tables WHERE relname = '{table}'"),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

fn by_last_name(filter: serde_json::Value, db: &TestDb, first: u64, after: Option<String>) -> ListQuery {
    let def = db.kith.object("contact").unwrap();
    ListQuery {
        filter: Filter::from_json(&def, &[], &filter).unwrap(),
        order: vec![OrderBy::asc("lastName")],
        page: PageRequest::Forward { first, after },
        include_deleted: false,
    }
}

#[tokio::test]
async fn an_import_analyses_its_table_and_an_unselective_filter_pages_from_the_sort_index() {
    for db in TestDb::all().await {
        let n = 6_000;
        import_contacts(&db, n).await;
        let def = db.kith.object("contact").unwrap();
        let conn = db.kith.store.conn();
        if db.name == "sqlite" {
            let stats = conn.stats().table("contact").expect("the import analysed the contacts");
            assert_eq!(stats.rows, n as u64, "{}", db.name);
        } else {
            // Each time the import doubled the table (1,000, 2,000 and 4,000 rows), and at its end.
            let analysed = pg_analyze_count(&db, "contact").await;
            assert!(analysed >= 3, "{}: contact analysed {analysed} times", db.name);
        }

        // A sixth of the rows are customers: the page reads the names' index in order (SQLite:
        // no sort of every match, only of the runs of equal names by id).
        let query = by_last_name(json!({"lifecycleStage": {"eq": "CUSTOMER"}}), &db, 50, None);
        let statement = list_statement_planned(conn, &def, &query, None, &[]).unwrap();
        let plan = query_plan(&db, &statement).await;
        let text = format!("{}\n{}", statement.sql, plan.join("\n"));
        if db.name == "sqlite" {
            assert!(text.contains("ix_contact_last_name_first_name_id"), "{}: the names' index:\n{text}", db.name);
            assert!(
                !plan.iter().any(|line| line == "USE TEMP B-TREE FOR ORDER BY"),
                "{}: no full sort:\n{text}",
                db.name
            );
        }
        // A selective filter (one e-mail) keeps its index.
        let one = by_last_name(json!({"email": {"eq": "p42@example.org"}}), &db, 50, None);
        let statement = list_statement_planned(conn, &def, &one, None, &[]).unwrap();
        let plan = query_plan(&db, &statement).await.join("\n");
        assert!(plan.contains("email"), "{}: the e-mail's index:\n{}\n{plan}", db.name, statement.sql);

        // The same rows as the order says, page after page (nulls last, then by id).
        let mut expected: Vec<(Option<String>, uuid::Uuid)> = Vec::new();
        let everyone = kith_core::store::records::select_where(conn, &def, &Filter::And(vec![])).await.unwrap();
        for record in &everyone {
            if record.get("lifecycleStage").as_text() == Some("CUSTOMER") {
                expected.push((record.get("lastName").as_text().map(str::to_owned), record.id()));
            }
        }
        expected.sort_by(|a, b| match (&a.0, &b.0) {
            (Some(x), Some(y)) => x.cmp(y).then(a.1.cmp(&b.1)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.1.cmp(&b.1),
        });
        assert_eq!(expected.len(), n / 6, "{}", db.name);
        let mut got = Vec::new();
        let mut after = None;
        loop {
            let page = list(conn, &def, &by_last_name(json!({"lifecycleStage": {"eq": "CUSTOMER"}}), &db, 37, after))
                .await
                .unwrap();
            for (_, record) in &page.records {
                got.push((record.get("lastName").as_text().map(str::to_owned), record.id()));
            }
            if !page.has_next {
                break;
            }
            after = page.records.last().map(|(cursor, _)| cursor.clone());
        }
        assert_eq!(got, expected, "{}: every customer once, in order", db.name);
        db.cleanup().await;
    }
}

/// The server's upkeep analyses a table whose statistics are missing (SQLite; PostgreSQL's
/// autovacuum does it there), plugin objects' tables included, and a page of a plugin object
/// then reads its declared sort index in order too.
#[tokio::test]
async fn upkeep_analyses_tables_without_statistics_plugin_objects_too() {
    let db = TestDb::sqlite().await;
    let runtime = crate::util::donors_runtime(&db).await;
    let admin = Actor::system("test");
    let contact = db.create("contact", json!({"firstName": "Ada", "lastName": "Lovelace"})).await.unwrap().id();
    let give = |from: u64, to: u64| {
        let db = &db;
        let admin = admin.clone();
        async move {
            use kith_core::domain::value::Value;
            let tx = db.kith.store.begin(&admin).await.unwrap();
            for i in from..to {
                let status = if i % 10 == 0 { "PLEDGED" } else { "RECEIVED" };
                let date = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + chrono::Days::new(i % 300);
                let input = kith_core::service::input::Input {
                    fields: [
                        ("contactId".to_owned(), Value::Uuid(contact)),
                        ("amount".to_owned(), Value::Decimal((10 + i % 90).into())),
                        ("amountCurrency".to_owned(), Value::Text("USD".to_owned())),
                        ("receivedDate".to_owned(), Value::Date(date)),
                        ("status".to_owned(), Value::Text(status.to_owned())),
                    ]
                    .into_iter()
                    .collect(),
                    ..Default::default()
                };
                kith_core::service::records::create(&tx, &db.kith.registry(), "donation", input).await.unwrap();
            }
            tx.commit().await.unwrap();
        }
    };
    give(0, 600).await;
    let conn = db.kith.store.conn();
    // No statistics yet (a database that grew through the API, not by an import).
    assert!(conn.stats().table("p_donors_donation").is_none());
    db.kith.upkeep_statistics().await.unwrap();
    let stats = conn.stats().table("p_donors_donation").expect("the donations' statistics");
    assert_eq!(stats.rows, 600);
    assert!(conn.stats().table("contact").is_some());
    // Nothing has changed since: nothing to analyse.
    assert!(db.kith.upkeep_statistics().await.unwrap().is_empty());
    // More than doubled: analysed again (PRAGMA optimize waits for a far larger change).
    give(600, 1_300).await;
    let analysed = db.kith.upkeep_statistics().await.unwrap();
    assert!(analysed.contains(&"p_donors_donation".to_owned()), "analysed: {analysed:?}");
    assert_eq!(conn.stats().table("p_donors_donation").unwrap().rows, 1_300);
    // Nine in ten donations are received: the newest received ones come from the date's index.
    let def = db.kith.object("donation").unwrap();
    let query = ListQuery {
        filter: Filter::from_json(&def, &[], &json!({"status": {"eq": "RECEIVED"}})).unwrap(),
        order: vec![OrderBy {
            target: kith_core::domain::filter::Target::Field("receivedDate".into()),
            desc: true,
            nulls_first: true,
        }],
        page: PageRequest::Forward { first: 20, after: None },
        include_deleted: false,
    };
    let statement = list_statement_planned(conn, &def, &query, None, &[]).unwrap();
    let plan = query_plan(&db, &statement).await;
    let text = format!("{}\n{}", statement.sql, plan.join("\n"));
    assert!(text.contains("ix_p_donors_donation__received_date"), "the date's index:\n{text}");
    assert!(!plan.iter().any(|line| line == "USE TEMP B-TREE FOR ORDER BY"), "no full sort:\n{text}");
    let page = list(conn, &def, &query).await.unwrap();
    assert_eq!(page.records.len(), 20);
    assert!(page.records.iter().all(|(_, r)| r.get("status").as_text() == Some("RECEIVED")));
    runtime.stop().await;
    db.cleanup().await;
}

/// SQLite's statistics, table by table: `sqlite_stat1`, and `sqlite_stat4`'s samples.
async fn sqlite_stat_rows(db: &TestDb, table: &str) -> Vec<String> {
    let conn = db.kith.store.conn();
    let mut out = Vec::new();
    for sql in [
        format!("SELECT idx || ' ' || stat FROM sqlite_stat1 WHERE tbl = '{table}' ORDER BY idx"),
        format!(
            "SELECT idx || ' ' || neq || ' ' || nlt || ' ' || ndlt || ' ' || hex(sample) FROM sqlite_stat4 WHERE tbl = '{table}' ORDER BY idx, nlt"
        ),
    ] {
        for row in conn.query_all_raw(Statement::from_string(DbBackend::Sqlite, sql)).await.unwrap() {
            out.push(row.try_get_by_index::<String>(0).unwrap());
        }
    }
    out
}

/// SQLite analyses a table index by index (each `ANALYZE` holds the write lock only for its own
/// index, so writers are not held up for the whole table) and the statistics are exactly those
/// of one `ANALYZE` of the table; the upkeep writes them for every index, then makes every
/// connection load them (a schema change).
#[tokio::test]
async fn sqlite_analyses_index_by_index_with_the_statistics_of_a_whole_analyze() {
    let db = TestDb::sqlite().await;
    import_contacts(&db, 3_000).await;
    let conn = db.kith.store.conn();
    conn.execute_unprepared("DELETE FROM sqlite_stat1; DELETE FROM sqlite_stat4").await.unwrap();
    conn.stats().reload(conn).await.unwrap();
    assert!(conn.stats().table("contact").is_none());
    let schema_version = || async {
        conn.query_one_raw(Statement::from_string(DbBackend::Sqlite, "PRAGMA schema_version"))
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index::<i64>(0)
            .unwrap()
    };
    let before = schema_version().await;
    let analysed = db.kith.upkeep_statistics().await.unwrap();
    assert!(analysed.contains(&"contact".to_owned()), "{analysed:?}");
    // Every pooled connection reads the schema, and the new statistics, again.
    assert!(schema_version().await > before, "the schema changed, so every connection reloads");
    let by_index = sqlite_stat_rows(&db, "contact").await;
    let indexes = conn
        .query_all_raw(Statement::from_string(
            DbBackend::Sqlite,
            "SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'contact'",
        ))
        .await
        .unwrap()[0]
        .try_get_by_index::<i64>(0)
        .unwrap() as usize;
    assert!(indexes >= 10, "contact's analysed indexes: {by_index:#?}");
    assert!(by_index.iter().any(|row| row.starts_with("ix_contact_last_name_first_name_id 3000 ")), "{by_index:#?}");
    assert!(by_index.len() > indexes, "stat4 samples too: {by_index:#?}");
    conn.execute_unprepared("ANALYZE contact").await.unwrap();
    assert_eq!(sqlite_stat_rows(&db, "contact").await, by_index, "the same as one ANALYZE of the table");
    db.cleanup().await;
}

/// PostgreSQL: a new record's search entry goes straight into the full-text index, not into the
/// GIN pending list that every search would otherwise read until autovacuum merges it (the
/// rare-word search lost two thirds of its speed after 100,000 creates with autovacuum off); and
/// the upkeep analyses a table that changed by more than a tenth since its statistics.
#[tokio::test]
async fn postgres_search_entries_skip_the_pending_list_and_stale_tables_are_analysed() {
    let Some(db) = TestDb::postgres_or_skip().await else { return };
    let conn = db.kith.store.conn();
    let one = |sql: &str| {
        let sql = sql.to_owned();
        async move {
            let row = conn.query_one_raw(Statement::from_string(DbBackend::Postgres, sql)).await.unwrap().unwrap();
            row.try_get_by_index::<i64>(0).unwrap()
        }
    };
    conn.execute_unprepared("CREATE EXTENSION IF NOT EXISTS pgstattuple").await.unwrap();
    import_contacts(&db, 2_000).await;
    let server = crate::util::Server::start(&db).await;
    let token = crate::util::token(&db, kith_core::domain::actor::Role::Admin).await;
    for i in 0..200 {
        let create = "mutation($e: String!) { createContact(input: {firstName: \"Grown\", lastName: \"Rarename\", email: $e}) { id } }";
        let reply = server.gql(&token, create, json!({"e": format!("grown{i}@example.org")})).await;
        assert!(reply["errors"].is_null(), "{reply}");
    }
    let pending = one("SELECT pending_tuples::bigint FROM pgstatginindex('ix_search_entry_document')").await;
    assert_eq!(pending, 0, "no entry waits in the pending list");
    // The entries are found (a page of 50 of the 200).
    let hits = server.gql(&token, "{ search(query: \"rarename\", first: 50) { recordId } }", json!({})).await;
    assert_eq!(hits["data"]["search"].as_array().map(Vec::len), Some(50), "{hits}");
    // A table changed by more than a tenth of its rows plus 50 since its last ANALYZE is analysed
    // by the upkeep. (Whether 200 changes after the import count as stale depends on when the
    // import's connections flushed their counters, a second apart at most: the upkeep runs first
    // so the count starts from an analysed table.)
    db.kith.upkeep_statistics().await.unwrap();
    let changes = "SELECT n_mod_since_analyze FROM pg_stat_user_tables WHERE relname = 'contact'";
    let settled = one(changes).await;
    let before = pg_analyze_count(&db, "contact").await;
    for i in 200..700 {
        db.create("contact", json!({"firstName": "More", "email": format!("more{i}@example.org")})).await.unwrap();
    }
    // The statistics collector counts changes when a transaction ends; give it a moment.
    crate::util::eventually(30, "the changes counted", || async {
        (one(changes).await >= settled + 500).then_some(())
    })
    .await;
    let analysed = db.kith.upkeep_statistics().await.unwrap();
    assert!(analysed.contains(&"contact".to_owned()), "{analysed:?}");
    assert_eq!(pg_analyze_count(&db, "contact").await, before + 1);
    // Analysed, it is not stale any more.
    let analysed = db.kith.upkeep_statistics().await.unwrap();
    assert!(!analysed.contains(&"contact".to_owned()), "{analysed:?}");
    drop(server);
    db.cleanup().await;
}

/// SQLite: records created one by one leave the full-text index in many small segments, which
/// every search reads; the upkeep merges them, a step per transaction, until nothing is left to
/// merge, and the records are still found.
#[tokio::test]
async fn upkeep_merges_the_search_index_segments() {
    let db = TestDb::sqlite().await;
    for i in 0..120 {
        db.create("contact", json!({"firstName": format!("Seg{i}"), "lastName": "Mentedname"})).await.unwrap();
    }
    let budget = std::time::Duration::from_secs(30);
    let steps = db.kith.store.merge_search_segments(budget).await.unwrap();
    assert!(steps > 0, "120 single creates left segments to merge");
    assert_eq!(db.kith.store.merge_search_segments(budget).await.unwrap(), 0, "and none after");
    let hits = kith_core::store::search::search(db.kith.store.conn(), "mentedname", &[], 200).await.unwrap();
    assert_eq!(hits.len(), 120);
    let one = kith_core::store::search::search(db.kith.store.conn(), "seg77", &[], 10).await.unwrap();
    assert_eq!(one.len(), 1);
    db.cleanup().await;
}

/// A page sorted by a column that is never NULL, then by the id (as plugins page their work
/// queues), reads the index in order on both databases: no `NULLS LAST` on such a key keeps
/// SQLite from sorting every row the filter matches; the id ends the order. The pages are the
/// same rows in the same order as one sorted read.
#[tokio::test]
async fn a_page_sorted_by_never_null_keys_then_the_id_reads_the_index_in_order() {
    for db in TestDb::all().await {
        import_contacts(&db, 600).await;
        let conn = db.kith.store.conn();
        let def = db.kith.object("contact").unwrap();
        let mut id_asc = OrderBy::asc("id");
        id_asc.nulls_first = false;
        let page = |after: Option<String>| ListQuery {
            filter: Filter::all(),
            order: vec![OrderBy::asc("createdAt"), id_asc.clone()],
            page: PageRequest::Forward { first: 50, after },
            include_deleted: false,
        };
        let statement = list_statement_planned(conn, &def, &page(None), None, &[]).unwrap();
        assert!(!statement.sql.contains("NULLS"), "no NULLS clause on never-null keys: {}", statement.sql);
        if db.kith.store.backend() == DbBackend::Sqlite {
            let plan = query_plan(&db, &statement).await;
            let text = format!("{}\n{}", statement.sql, plan.join("\n"));
            assert!(!plan.iter().any(|line| line.starts_with("USE TEMP B-TREE")), "no sort:\n{text}");
        }
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let result = list(conn, &def, &page(after)).await.unwrap();
            seen.extend(result.records.iter().map(|(_, r)| (r.get("createdAt").clone(), r.id())));
            if !result.has_next {
                break;
            }
            after = result.records.last().map(|(cursor, _)| cursor.clone());
        }
        let mut sorted = seen.clone();
        sorted.sort_by_key(|a| (a.0.as_datetime(), a.1));
        assert_eq!(seen.len(), 600);
        assert_eq!(seen, sorted);
        db.cleanup().await;
    }
}
