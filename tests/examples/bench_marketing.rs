//! The marketing plugin's goals, measured: a campaign to N consenting contacts queued by its
//! `send` job (each message rendered with its tracked links, pixel and unsubscribe link, each
//! send recorded); the queue delivered by the mail worker to a real SMTP server on loopback
//! (aiosmtpd) with the process's RSS along the way; the open-pixel and click routes' latency
//! over real HTTP (sequential requests); and a `sequences` tick over N enrolments all due (each
//! runs a WAIT step and moves on).
//!
//! `cargo run --release --example bench_marketing -- [CONTACTS] [ROUTE_REQUESTS]
//! [DELIVERY_SECONDS]` (defaults 100000, 2000, and until every message is delivered);
//! `KITH_TEST_DATABASE_URL=postgres://...` for PostgreSQL.

// A benchmark: a failed unwrap is a failed run.
#![allow(clippy::unwrap_used)]

/// The allocator `kith serve` runs with (see `core/src/main.rs`), so the figures are its.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kith_core::config::{MailConfig, MailTls, PluginsConfig, ServerConfig};
use kith_core::domain::actor::{Actor, Role};
use kith_core::plugin::manager::Grants;
use kith_core::plugin::{bundled, jobs, start_runtime};
use kith_core::service::import::{ImportOptions, import_csv};
use kith_core::service::input::Input;
use kith_core::service::mail::Mailer;
use kith_core::store::mail::{MailState, counts};
use kith_tests::smtp::SmtpSink;
use kith_tests::{TestDb, rss_mib};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Writes `fields` to `object`'s record `id` as the plugin itself (its internal fields).
async fn as_plugin(db: &TestDb, object: &str, id: uuid::Uuid, fields: serde_json::Value) {
    let tx = db.kith.store.begin(&Actor::plugin("marketing", Role::Admin, 0)).await.unwrap();
    let def = db.kith.object(object).unwrap();
    let input = Input::from_json(&def, &fields).unwrap();
    kith_core::service::records::update(&tx, &db.kith.registry(), object, id, input, None).await.unwrap();
    tx.commit().await.unwrap();
}

/// Imports `rows` of CSV text into `object`.
async fn import(db: &TestDb, object: &str, csv: &std::path::Path) -> u64 {
    let file = std::io::BufReader::with_capacity(1 << 16, std::fs::File::open(csv).unwrap());
    let report =
        import_csv(&db.kith, &Actor::system("bench"), object, file, &ImportOptions::default(), &|_| {}).await.unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected.first());
    report.created
}

/// One GET over a kept-alive connection; the status.
async fn get(stream: &mut tokio::net::TcpStream, path: &str) -> u16 {
    let request = format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n");
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
    text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// Runs `job` until a run ends before its budget (the job had nothing more to do); prints how
/// long that took over `n` records.
async fn settle(runtime: &kith_core::plugin::PluginManager, job: &str, n: u64) {
    let started = Instant::now();
    let mut runs = 0;
    loop {
        match jobs::run_now(runtime, "marketing", job).await {
            Ok(run) => {
                assert_eq!(run.status, "succeeded", "{run:?}");
                runs += 1;
                if run.duration_ms.unwrap_or(0) < 29_000 {
                    break;
                }
            }
            Err(kith_core::plugin::PluginError::Conflict(_)) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(err) => panic!("{err}"),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!("{job}: {runs} job runs over {n} contacts in {elapsed:.2} s = {:.0}/s", n as f64 / elapsed);
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let args: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let n = args.first().copied().unwrap_or(100_000);
    let route_requests = args.get(1).copied().unwrap_or(2_000);
    let delivery_seconds = args.get(2).copied().unwrap_or(u64::MAX) as f64;
    let sink = SmtpSink::start().await.unwrap();
    let db = match TestDb::postgres().await {
        Some(db) => db,
        None => TestDb::sqlite().await,
    };
    println!("{}: {n} contacts", db.name);

    // N consenting contacts in one city, and one who did not consent.
    let dir = std::env::temp_dir().join(format!("kith-bench-marketing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("contacts.csv");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&csv).unwrap());
    writeln!(out, "firstName,lastName,email,emailOptIn,addressCity").unwrap();
    for i in 0..n {
        writeln!(out, "Donor{i},Friend,donor{i}@example.net,true,Springfield").unwrap();
    }
    writeln!(out, "Quiet,Friend,quiet@example.net,false,Springfield").unwrap();
    drop(out);
    let started = Instant::now();
    import(&db, "contact", &csv).await;
    println!("seeded {} contacts in {:.1} s", n + 1, started.elapsed().as_secs_f64());

    let config = MailConfig {
        relay: "127.0.0.1".into(),
        port: sink.port,
        tls: MailTls::None,
        senders: vec!["@parkfriends.example".into()],
        per_second: 5_000,
        connections: 8,
        poll_interval_ms: 20,
        ..MailConfig::default()
    };
    let mailer = Arc::new(Mailer::new(&config).unwrap().unwrap());
    db.kith.configure_mail(Some(mailer.clone()));
    let plugins = PluginsConfig { install_bundled: false, ..PluginsConfig::default() };
    let runtime = start_runtime(&db.kith, &plugins).await.unwrap();
    let marketing = bundled::BUNDLED.iter().find(|b| b.id == "marketing").unwrap();
    runtime.install(&Actor::system("bench"), marketing.manifest, marketing.component).await.unwrap();
    runtime.enable(&Actor::system("bench"), "marketing", Grants::All).await.unwrap();
    runtime
        .set_setting(
            &Actor::system("bench"),
            "marketing",
            "from",
            Some(json!("Park Friends <appeals@parkfriends.example>")),
        )
        .await
        .unwrap();
    runtime.set_setting(&Actor::system("bench"), "marketing", "batch_size", Some(json!(2000))).await.unwrap();
    runtime.refresh().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    db.kith.set_public_url(&format!("http://{addr}"));
    let state = kith_core::http::AppState::new(db.kith.clone(), &kith_core::config::ApiConfig::default()).unwrap();
    let router = kith_core::http::app(state, &ServerConfig::default());
    tokio::spawn(kith_core::http::serve(listener, router, std::future::pending(), Duration::from_secs(1)));

    // The engagement job's first scoring of every contact, timed on its own and finished
    // before the campaign is scheduled, so the measurements below do not share the database
    // with it (left to the scheduler, it starts at the next ten minutes past and lands in one
    // of them).
    settle(&runtime, "engagement", n).await;

    let segment = db
        .create(
            "segment",
            json!({"name": "Springfield", "object": "CONTACT", "filter": {"addressCity": {"eq": "Springfield"}}}),
        )
        .await
        .unwrap()
        .id();
    let template = db
        .create(
            "emailTemplate",
            json!({
                "name": "Spring appeal",
                "subject": "Spring is here, {{contact.firstName|friend}}",
                "html": "<p>Dear {{contact.firstName|friend}},</p><p>please help us plant a hundred trees this spring.</p><p><a href=\"https://parkfriends.example/give?appeal=spring\">Give</a> or <a href=\"https://parkfriends.example/volunteer\">volunteer</a>.</p>",
            }),
        )
        .await
        .unwrap()
        .id();
    let campaign = db
        .create(
            "emailCampaign",
            json!({"name": "Spring appeal", "templateId": template.to_string(), "segmentId": segment.to_string()}),
        )
        .await
        .unwrap()
        .id();
    as_plugin(&db, "emailCampaign", campaign, json!({"status": "SCHEDULED", "scheduledAt": "2026-01-01T00:00:00Z"}))
        .await;

    // Queueing: the send job, run until the campaign is SENT (each run works through batches
    // for up to its 30 s budget).
    let started = Instant::now();
    let mut runs = 0;
    loop {
        // The scheduler's own run (every minute) may be the one queueing: wait for it.
        match jobs::run_now(&runtime, "marketing", "send").await {
            Ok(run) => assert_eq!(run.status, "succeeded", "{run:?}"),
            Err(kith_core::plugin::PluginError::Conflict(_)) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(err) => panic!("{err}"),
        }
        runs += 1;
        let record = db.kith.store.conn();
        let def = db.kith.object("emailCampaign").unwrap();
        let row = kith_core::store::records::get(record, &def, campaign).await.unwrap().unwrap();
        if row.get("status").as_text() == Some("SENT") {
            println!(
                "queued {} messages in {:.2} s ({runs} job runs) = {:.0} messages/s (RSS {:.0} MiB)",
                row.get("recipients").as_int().unwrap_or(0),
                started.elapsed().as_secs_f64(),
                n as f64 / started.elapsed().as_secs_f64(),
                rss_mib()
            );
            break;
        }
    }

    // Delivery.
    let sending = Instant::now();
    let worker = kith_core::service::mail::worker::start(&db.kith, mailer);
    let mut peak = 0.0f64;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        peak = peak.max(rss_mib());
        let done: i64 = counts(db.kith.store.conn())
            .await
            .unwrap()
            .iter()
            .filter(|(s, _)| *s != MailState::Queued)
            .map(|(_, c)| c)
            .sum();
        let elapsed = sending.elapsed().as_secs_f64();
        println!("{elapsed:6.1} s: {done} delivered ({:.0}/s), RSS {:.0} MiB", done as f64 / elapsed, rss_mib());
        if done as u64 >= n || elapsed >= delivery_seconds {
            println!(
                "delivered {done} of {n} in {elapsed:.2} s = {:.0} messages/s; the server received {}; peak RSS {peak:.0} MiB",
                done as f64 / elapsed,
                sink.count()
            );
            break;
        }
    }
    worker.stop().await;

    // The outcomes: the plugin marks each delivered send (and writes its timeline activity) as
    // the `mail.sent` events reach it; wait until every delivered one is marked, so the
    // measurements below do not share the database with that backlog.
    let draining = Instant::now();
    let sends = db.kith.object("emailSend").unwrap();
    let queued_sends =
        kith_core::domain::filter::Filter::from_json(&sends, &[], &json!({"status": {"eq": "QUEUED"}})).unwrap();
    loop {
        let unmarked =
            kith_core::store::records::count(db.kith.store.conn(), &sends, &queued_sends, false).await.unwrap();
        let unsent: i64 = counts(db.kith.store.conn())
            .await
            .unwrap()
            .iter()
            .filter(|(s, _)| *s == MailState::Queued)
            .map(|(_, c)| c)
            .sum();
        if unmarked <= unsent {
            println!(
                "outcomes recorded {:.1} s after delivery stopped ({} sends marked in all)",
                draining.elapsed().as_secs_f64(),
                n as i64 - unmarked
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // The open pixel and a click, as the messages link them.
    let key = kith_core::store::plugins::link_key(db.kith.store.conn(), "marketing").await.unwrap();
    let sends = db.kith.object("emailSend").unwrap();
    let some = kith_core::store::records::list(
        db.kith.store.conn(),
        &sends,
        &kith_core::store::records::ListQuery {
            filter: kith_core::domain::filter::Filter::all(),
            order: Vec::new(),
            page: kith_core::store::records::PageRequest::Forward { first: route_requests, after: None },
            include_deleted: false,
        },
    )
    .await
    .unwrap();
    let base = format!("http://{addr}");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    for (route, extra) in [("/o", None), ("/c", Some("https://parkfriends.example/give?appeal=spring"))] {
        let mut latencies = Vec::new();
        for (_, send) in &some.records {
            let mut params = vec![("s".to_owned(), send.id().to_string())];
            if let Some(url) = extra {
                params.push(("u".to_owned(), url.to_owned()));
            }
            let link = kith_core::plugin::links::sign(&key, &base, "marketing", route, &params, None).unwrap();
            let path = link.trim_start_matches(&base).to_owned();
            let started = Instant::now();
            let status = get(&mut stream, &path).await;
            latencies.push(started.elapsed().as_secs_f64() * 1000.0);
            assert!(status == 200 || status == 302, "{route}: {status}");
        }
        latencies.sort_by(f64::total_cmp);
        println!(
            "route {route}: {} requests, p50 {:.2} ms, p99 {:.2} ms",
            latencies.len(),
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99)
        );
    }

    // A tick over N enrolments, all due: each runs a WAIT step.
    let sequence = db.create("sequence", json!({"name": "Nurture", "trigger": "MANUAL"})).await.unwrap().id();
    db.create(
        "sequenceStep",
        json!({"sequenceId": sequence.to_string(), "position": 1, "kind": "WAIT", "waitDays": 7}),
    )
    .await
    .unwrap();
    // N enrolments, written as the plugin writes them (transactions of 1,000), due only once
    // the tick is timed: else the scheduler's own minute run may start on them meanwhile.
    let contacts = db.kith.object("contact").unwrap();
    let enrolments = db.kith.object("sequenceEnrolment").unwrap();
    let started = Instant::now();
    let mut after = None;
    let mut enrolled = 0;
    loop {
        let page = kith_core::store::records::list(
            db.kith.store.conn(),
            &contacts,
            &kith_core::store::records::ListQuery {
                filter: kith_core::domain::filter::Filter::all(),
                order: Vec::new(),
                page: kith_core::store::records::PageRequest::Forward { first: 1_000, after: after.clone() },
                include_deleted: false,
            },
        )
        .await
        .unwrap();
        let tx = db.kith.store.begin(&Actor::plugin("marketing", Role::Admin, 0)).await.unwrap();
        for (_, contact) in &page.records {
            let id = contact.id();
            let fields = json!({"key": format!("{sequence}:{id}"), "sequenceId": sequence.to_string(), "contactId": id.to_string(),
                "status": "ACTIVE", "position": 1, "nextAt": "2099-01-01T00:00:00Z", "round": 1});
            let input = Input::from_json(&enrolments, &fields).unwrap();
            kith_core::service::records::create(&tx, &db.kith.registry(), "sequenceEnrolment", input).await.unwrap();
            enrolled += 1;
        }
        tx.commit().await.unwrap();
        if !page.has_next || enrolled >= n {
            break;
        }
        after = page.records.last().map(|(c, _)| c.clone());
    }
    println!("enrolled {enrolled} contacts in {:.1} s", started.elapsed().as_secs_f64());
    {
        use sea_orm::ConnectionTrait;
        let table = &enrolments.table;
        let sql = format!("UPDATE \"{table}\" SET next_at = '2026-01-01T00:00:00.000000Z'");
        db.kith.store.conn().execute_unprepared(&sql).await.unwrap();
        // PostgreSQL: what autovacuum would do in time after rewriting every row at once (the
        // index would otherwise hold each enrolment twice, once dead).
        if db.kith.store.backend() == sea_orm::DbBackend::Postgres {
            db.kith.store.conn().execute_unprepared(&format!("VACUUM ANALYZE \"{table}\"")).await.unwrap();
        }
    }
    let started = Instant::now();
    let mut runs = 0;
    loop {
        // The scheduler's own run (every minute) may be the one moving them: wait for it.
        match jobs::run_now(&runtime, "marketing", "sequences").await {
            Ok(run) => {
                assert_eq!(run.status, "succeeded", "{run:?}");
                runs += 1;
            }
            Err(kith_core::plugin::PluginError::Conflict(_)) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(err) => panic!("{err}"),
        }
        // Whether any enrolment is still due: the first one, through the `nextAt` index (a count
        // would read every one still due after each run, and be timed with the tick).
        let enrolment = db.kith.object("sequenceEnrolment").unwrap();
        let still_due = kith_core::store::records::list(
            db.kith.store.conn(),
            &enrolment,
            &kith_core::store::records::ListQuery {
                filter: kith_core::domain::filter::Filter::from_json(
                    &enrolment,
                    &[],
                    &json!({"nextAt": {"lte": "2026-02-01T00:00:00Z"}}),
                )
                .unwrap(),
                order: vec![kith_core::domain::filter::OrderBy::asc("nextAt")],
                page: kith_core::store::records::PageRequest::Forward { first: 1, after: None },
                include_deleted: false,
            },
        )
        .await
        .unwrap();
        let due = still_due.records.len();
        if due == 0 {
            break;
        }
    }
    println!(
        "sequence tick over {enrolled} due enrolments: {:.2} s ({runs} job runs) = {:.0} enrolments/s",
        started.elapsed().as_secs_f64(),
        enrolled as f64 / started.elapsed().as_secs_f64()
    );
    runtime.stop().await;
    sink.stop().await;
    db.cleanup().await;
    let _ = std::fs::remove_dir_all(&dir);
}
