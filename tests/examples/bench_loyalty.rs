//! The loyalty plugin's goals, measured: with MEMBERS members and ENTRIES ledger entries (one
//! contact each, seeded through Kith's bulk writes as the plugin would write them, balances
//! equal to their ledgers), over real HTTP on loopback:
//!
//! - a member's balance: `loyaltyStanding` (balance, expiring points, tier, qualifying points)
//!   and the generic `loyaltyMember(id) { balance }`, sequential requests, p50 / p99;
//! - the liability report (`loyaltyLiability`), p50 / p99;
//! - `recordPurchase` with 16 clients (`CLIENTS=n` for another number) for SECONDS, each
//!   purchase a new reference of a member;
//! - the daily `expiry` job with DUE members holding a lot that came due, to its end.
//!
//! `cargo run --release -p kith-tests --example bench_loyalty -- [MEMBERS] [ENTRIES] [DUE]
//! [SECONDS]` (defaults 100000, 1000000, 10000, 10); `KITH_TEST_DATABASE_URL=postgres://...` for
//! PostgreSQL, `SQLITE_SYNCHRONOUS=normal` for SQLite as `[database] sqlite_synchronous =
//! "normal"` runs it.

// A benchmark: a failed unwrap is a failed run.
#![allow(clippy::unwrap_used)]

/// The allocator `kith serve` runs with (see `core/src/main.rs`), so the figures are its.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kith_core::config::{ApiConfig, PluginsConfig, ServerConfig};
use kith_core::domain::actor::{Actor, Role};
use kith_core::plugin::manager::Grants;
use kith_core::plugin::{bundled, jobs, start_runtime};
use kith_core::service::import::{ImportOptions, import_csv};
use kith_core::service::input::Input;
use kith_tests::TestDb;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One POST of GraphQL over a kept-alive connection: the answer.
async fn post(stream: &mut tokio::net::TcpStream, token: &str, query: &str, variables: Value) -> Value {
    let body = json!({"query": query, "variables": variables}).to_string();
    let request = format!(
        "POST /graphql HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let length: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.unwrap();
    serde_json::from_slice(&body).unwrap_or(Value::Null)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// Times `n` sequential requests of `query` (variables from `vars(i)`); prints p50 / p99.
async fn latency(
    addr: std::net::SocketAddr,
    token: &str,
    what: &str,
    n: usize,
    query: &str,
    vars: impl Fn(usize) -> Value,
) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut times = Vec::with_capacity(n);
    for i in 0..n + 10 {
        let started = Instant::now();
        let answer = post(&mut stream, token, query, vars(i)).await;
        assert!(answer["errors"].is_null(), "{what}: {answer}");
        if i >= 10 {
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    times.sort_by(f64::total_cmp);
    println!("{what}: p50 {:.2} ms, p99 {:.2} ms over {n} requests", percentile(&times, 0.5), percentile(&times, 0.99));
}

/// Creates `items` of `object` as the loyalty plugin, a thousand per transaction; their ids.
async fn create_as_plugin(db: &TestDb, object: &str, items: Vec<Value>) -> Vec<String> {
    let def = db.kith.object(object).unwrap();
    let mut ids = Vec::with_capacity(items.len());
    for chunk in items.chunks(1_000) {
        let tx = db.kith.store.begin(&Actor::plugin("loyalty", Role::Agent, 0)).await.unwrap();
        let inputs = chunk.iter().map(|item| Input::from_json(&def, item).unwrap()).collect();
        let created = kith_core::service::bulk::create_many(&tx, &db.kith.registry(), object, inputs).await.unwrap();
        for record in created {
            ids.push(record.unwrap().id().to_string());
        }
        tx.commit().await.unwrap();
    }
    ids
}

#[tokio::main]
async fn main() {
    let args: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let members = args.first().copied().unwrap_or(100_000) as usize;
    let entries = args.get(1).copied().unwrap_or(1_000_000) as usize;
    let due = (args.get(2).copied().unwrap_or(10_000) as usize).min(members);
    let seconds = args.get(3).copied().unwrap_or(10);
    let per_member = (entries / members).max(2);
    let db = match TestDb::postgres().await {
        Some(db) => db,
        // `SQLITE_SYNCHRONOUS=normal`: as `[database] sqlite_synchronous = "normal"`.
        None => {
            let full = std::env::var("SQLITE_SYNCHRONOUS").map_or(true, |v| v != "normal");
            TestDb::sqlite_with(|options| options.sqlite_synchronous_full = full).await
        }
    };
    println!("{}: {members} members, {} entries, {due} with a lot due", db.name, per_member * members);

    let dir = std::env::temp_dir().join(format!("kith-bench-loyalty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("contacts.csv");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&csv).unwrap());
    writeln!(out, "firstName,lastName,email").unwrap();
    for i in 0..members {
        writeln!(out, "Member{i},Friend,member{i}@example.net").unwrap();
    }
    drop(out);
    let started = Instant::now();
    let file = std::io::BufReader::with_capacity(1 << 16, std::fs::File::open(&csv).unwrap());
    let report = import_csv(&db.kith, &Actor::system("bench"), "contact", file, &ImportOptions::default(), &|_| {})
        .await
        .unwrap();
    assert!(report.rejected.is_empty());
    println!("imported {} contacts in {:.1} s", report.created, started.elapsed().as_secs_f64());

    let plugins = PluginsConfig { install_bundled: false, ..PluginsConfig::default() };
    let runtime = start_runtime(&db.kith, &plugins).await.unwrap();
    let loyalty = bundled::BUNDLED.iter().find(|b| b.id == "loyalty").unwrap();
    runtime.install(&Actor::system("bench"), loyalty.manifest, loyalty.component).await.unwrap();
    runtime.enable(&Actor::system("bench"), "loyalty", Grants::All).await.unwrap();
    runtime.refresh().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let api = ApiConfig { rate_limit_per_minute: 0, ..ApiConfig::default() };
    let state = kith_core::http::AppState::new(db.kith.clone(), &api).unwrap();
    let router = kith_core::http::app(state, &ServerConfig::default());
    tokio::spawn(kith_core::http::serve(listener, router, std::future::pending(), Duration::from_secs(1)));
    let token = {
        let tx = db.kith.store.begin(&Actor::system("bench")).await.unwrap();
        let (_, secret) =
            kith_core::service::users::create_token(&tx, "bench", Role::Manager, None, None).await.unwrap();
        tx.commit().await.unwrap();
        secret
    };
    let mut setup = tokio::net::TcpStream::connect(addr).await.unwrap();
    let answer = post(
        &mut setup,
        &token,
        "mutation { createLoyaltyProgramme(input: {name: \"Bench\", pointValue: \"0.01\", pointValueCurrency: \"EUR\", expiryMonths: 24}) { id } }",
        json!({}),
    )
    .await;
    let programme = answer["data"]["createLoyaltyProgramme"]["id"].as_str().unwrap().to_owned();
    let mut entry_tier = String::new();
    for (tier, threshold) in [("Friend", 0), ("Guardian", 5_000)] {
        let answer = post(
            &mut setup,
            &token,
            "mutation($p: ID!, $n: String!, $t: Int!) { createLoyaltyTier(input: {programmeId: $p, name: $n, threshold: $t, multiplier: \"1.5\"}) { id } }",
            json!({"p": programme, "n": tier, "t": threshold}),
        )
        .await;
        assert!(answer["errors"].is_null(), "{answer}");
        if threshold == 0 {
            answer["data"]["createLoyaltyTier"]["id"].as_str().unwrap().clone_into(&mut entry_tier);
        }
    }
    let answer = post(
        &mut setup,
        &token,
        "mutation($p: ID!) { createLoyaltyEarnRule(input: {programmeId: $p, name: \"Shop\", trigger: PURCHASE, currency: \"EUR\", pointsPerUnit: \"1\"}) { id } }",
        json!({"p": programme}),
    )
    .await;
    assert!(answer["errors"].is_null(), "{answer}");

    // Members and their ledgers, as the plugin writes them: lots of 10..100 points, one of them
    // due for the first `due` members, and a redemption.
    let started = Instant::now();
    let mut contacts: Vec<String> = Vec::with_capacity(members);
    let mut after = Value::Null;
    loop {
        let page = post(
            &mut setup,
            &token,
            "query($a: String) { contacts(first: 100, after: $a) { edges { node { id } } pageInfo { endCursor hasNextPage } } }",
            json!({"a": after}),
        )
        .await;
        let connection = &page["data"]["contacts"];
        contacts.extend(
            connection["edges"].as_array().unwrap().iter().map(|e| e["node"]["id"].as_str().unwrap().to_owned()),
        );
        if connection["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = connection["pageInfo"]["endCursor"].clone();
    }
    let contacts = Arc::new(contacts);
    let now = chrono::Utc::now();
    let stamp = |t: chrono::DateTime<chrono::Utc>| kith_core::domain::value::format_datetime(t);
    let lot_points = |m: usize, k: usize| 10 + ((m * 7 + k * 13) % 91) as i64;
    let mut member_items = Vec::with_capacity(members);
    for (m, contact) in contacts.iter().enumerate() {
        let earned: i64 = (0..per_member - 1).map(|k| lot_points(m, k)).sum();
        let balance = earned - 10;
        member_items.push(json!({
            "programmeId": programme,
            "contactId": contact,
            "memberKey": format!("{programme}:{contact}"),
            "number": format!("BENC-{m:08}"),
            "referralCode": format!("R{m:08}"),
            "status": "ACTIVE",
            "balance": balance,
            "lifetimePoints": earned,
            "redeemedPoints": 10,
            "expiredPoints": 0,
            "referralRewarded": false,
            "enrolledAt": stamp(now),
            // In the entry tier from enrolment, as `enrolLoyaltyMember` puts them.
            "tierId": entry_tier,
            "tierSince": stamp(now),
            "tierReviewAt": stamp(now + chrono::Duration::days(365)),
        }));
    }
    let member_ids = create_as_plugin(&db, "loyaltyMember", member_items).await;
    println!("seeded {members} members in {:.1} s", started.elapsed().as_secs_f64());
    let started = Instant::now();
    let mut seeded = 0;
    for block in (0..members).collect::<Vec<_>>().chunks(5_000) {
        let mut items = Vec::with_capacity(block.len() * per_member);
        for &m in block {
            for k in 0..per_member - 1 {
                let expires = if k == 0 && m < due {
                    now - chrono::Duration::minutes(5)
                } else {
                    now + chrono::Duration::days(30 + ((m + k * 37) % 700) as i64)
                };
                items.push(json!({
                    "memberId": member_ids[m], "programmeId": programme, "contactId": contacts[m],
                    "kind": "EARN", "points": lot_points(m, k), "lot": true, "qualifying": true,
                    "expiresAt": stamp(expires), "sourceKey": format!("seed:{m}:{k}"), "source": "seed",
                }));
            }
            items.push(json!({
                "memberId": member_ids[m], "programmeId": programme, "contactId": contacts[m],
                "kind": "REDEEM", "points": -10, "lot": false, "qualifying": false, "sourceKey": format!("seed:{m}:r"),
            }));
        }
        seeded += items.len();
        create_as_plugin(&db, "loyaltyEntry", items).await;
    }
    println!(
        "seeded {seeded} entries in {:.1} s = {:.0}/s",
        started.elapsed().as_secs_f64(),
        seeded as f64 / started.elapsed().as_secs_f64()
    );
    if db.name == "postgres" {
        use sea_orm::ConnectionTrait;
        db.kith.store.conn().execute_unprepared("VACUUM ANALYZE").await.unwrap();
    }

    // Reads.
    let ids = Arc::new(member_ids.clone());
    let pick = |i: usize| ids[(i * 7919) % ids.len()].clone();
    latency(
        addr,
        &token,
        "loyaltyStanding",
        1_000,
        "query($m: ID!) { loyaltyStanding(memberId: $m) { balance expiringSoon tier qualifyingPoints } }",
        |i| json!({"m": pick(i)}),
    )
    .await;
    latency(
        addr,
        &token,
        "loyaltyMember(id) { balance }",
        1_000,
        "query($m: ID!) { loyaltyMember(id: $m) { balance } }",
        |i| json!({"m": pick(i)}),
    )
    .await;
    latency(
        addr,
        &token,
        "loyaltyLiability",
        50,
        "{ loyaltyLiability { outstandingPoints liability } }",
        |_| json!({}),
    )
    .await;

    // recordPurchase with 16 clients.
    let client_count: usize = std::env::var("CLIENTS").ok().and_then(|c| c.parse().ok()).unwrap_or(16);
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut clients = Vec::new();
    for client in 0..client_count {
        let (contacts, done, failed, token) = (contacts.clone(), done.clone(), failed.clone(), token.clone());
        clients.push(tokio::spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            let mut i = 0usize;
            let mut times = Vec::new();
            while Instant::now() < until {
                let contact = contacts[(client * 104_729 + i * 16) % contacts.len()].clone();
                let started = Instant::now();
                let answer = post(
                    &mut stream,
                    &token,
                    "mutation($c: ID!, $r: String!) { recordPurchase(contactId: $c, amount: \"42.50\", currency: \"EUR\", reference: $r) { points } }",
                    json!({"c": contact, "r": format!("P-{client}-{i}")}),
                )
                .await;
                times.push(started.elapsed().as_secs_f64() * 1000.0);
                if answer["errors"].is_null() {
                    done.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                    if failed.load(Ordering::Relaxed) < 3 {
                        println!("recordPurchase failed: {answer}");
                    }
                }
                i += 1;
            }
            times
        }));
    }
    let started = Instant::now();
    let mut times = Vec::new();
    for client in clients {
        times.extend(client.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    times.sort_by(f64::total_cmp);
    println!(
        "recordPurchase, {client_count} clients: {} in {elapsed:.1} s = {:.0}/s (p50 {:.1} ms, p99 {:.1} ms), {} failed",
        done.load(Ordering::Relaxed),
        done.load(Ordering::Relaxed) as f64 / elapsed,
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        failed.load(Ordering::Relaxed)
    );

    // The daily expiry, to its end.
    let started = Instant::now();
    let mut runs = 0;
    loop {
        match jobs::run_now(&runtime, "loyalty", "expiry").await {
            Ok(run) => assert_eq!(run.status, "succeeded", "{run:?}"),
            // The scheduler's own run: wait for it.
            Err(kith_core::plugin::PluginError::Conflict(_)) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            Err(err) => panic!("{err}"),
        }
        runs += 1;
        use sea_orm::ConnectionTrait;
        let conn = db.kith.store.conn();
        let one = |sql: &str| sea_orm::Statement::from_string(conn.get_database_backend(), sql.to_owned());
        let expired: i64 = conn
            .query_one_raw(one("SELECT COUNT(*) FROM p_loyalty_loyalty_entry WHERE kind = 'EXPIRE'"))
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index(0)
            .unwrap();
        // The sweep is over when the programme has its mark and no place in a sweep.
        let over: i64 = conn
            .query_one_raw(one(
                "SELECT COUNT(*) FROM p_loyalty_loyalty_programme WHERE expired_through IS NOT NULL AND expiry_cursor IS NULL",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index(0)
            .unwrap();
        if over == 1 {
            println!(
                "expiry: {expired} members' lots expired in {runs} job runs, {:.2} s",
                started.elapsed().as_secs_f64()
            );
            break;
        }
    }
    runtime.stop().await;
    db.cleanup().await;
    std::fs::remove_dir_all(&dir).ok();
}
