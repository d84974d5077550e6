//! E-mail throughput: N messages built and queued as a plugin's `mail.send` does (in
//! transactions of 1,000), then sent by the mail worker to a real SMTP server on loopback
//! (aiosmtpd, `kith_tests::smtp`), until every one is `sent`; the process's RSS along the way.
//!
//! `cargo run --release --example bench_mail -- [MESSAGES] [PER_SECOND] [CONNECTIONS]`
//! (defaults 20000, 2000, 8); `KITH_TEST_DATABASE_URL=postgres://...` for PostgreSQL.

// A benchmark: a failed unwrap is a failed run.
#![allow(clippy::unwrap_used)]

/// The allocator `kith serve` runs with (see `core/src/main.rs`), so the figures are its.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::{Duration, Instant};

use kith_core::config::{MailConfig, MailTls};
use kith_core::domain::actor::Actor;
use kith_core::service::mail::Mailer;
use kith_core::service::mail::message::Parts;
use kith_core::store::mail::{MailState, NewMessage, counts, queue};
use kith_tests::smtp::SmtpSink;
use kith_tests::{TestDb, rss_mib};

#[tokio::main]
async fn main() {
    let args: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let n = args.first().copied().unwrap_or(20_000);
    let per_second = args.get(1).copied().unwrap_or(2_000) as u32;
    let connections = args.get(2).copied().unwrap_or(8) as u32;
    let sink = SmtpSink::start().await.unwrap();
    let db = match TestDb::postgres().await {
        Some(db) => db,
        None => TestDb::sqlite().await,
    };
    let config = MailConfig {
        relay: "127.0.0.1".into(),
        port: sink.port,
        tls: MailTls::None,
        senders: vec!["@example.org".into()],
        per_second,
        connections,
        poll_interval_ms: 20,
        ..MailConfig::default()
    };
    let mailer = Arc::new(Mailer::new(&config).unwrap().unwrap());
    println!("{}: {n} messages, per_second {per_second}, {connections} connections", db.name);

    let started = Instant::now();
    let actor = Actor::plugin("bench", kith_core::domain::actor::Role::Agent, 1);
    let mut queued = 0;
    while queued < n {
        let tx = db.kith.store.begin(&actor).await.unwrap();
        for i in queued..(queued + 1_000).min(n) {
            let parts = Parts {
                from: "Park Friends <appeals@example.org>".into(),
                to: format!("donor{i}@example.net"),
                subject: format!("Spring appeal, donor {i}"),
                html: Some(format!(
                    "<p>Dear donor {i},</p><p>please help us plant a hundred trees this spring.</p>\
                     <p><a href=\"https://crm.example.org/p/marketing/c?i={i}\">Give</a></p>"
                )),
                headers: vec![
                    ("List-Unsubscribe".into(), format!("<https://crm.example.org/p/marketing/u?i={i}>")),
                    ("List-Unsubscribe-Post".into(), "List-Unsubscribe=One-Click".into()),
                ],
                reference: Some(format!("campaign:spring:{i}")),
                ..Parts::default()
            };
            let built = mailer.build(&parts, chrono::Utc::now()).unwrap();
            let row = NewMessage {
                id: uuid::Uuid::now_v7(),
                plugin_id: "bench".into(),
                message_id: built.message_id,
                sender: built.sender,
                recipient: built.recipient,
                subject: built.subject,
                message: built.message,
                reference: parts.reference,
            };
            queue(&tx, &row).await.unwrap();
        }
        tx.commit().await.unwrap();
        queued = (queued + 1_000).min(n);
    }
    let queue_time = started.elapsed();
    println!(
        "queued {n} in {:.2} s = {:.0} messages/s (RSS {:.0} MiB)",
        queue_time.as_secs_f64(),
        n as f64 / queue_time.as_secs_f64(),
        rss_mib()
    );

    let sending = Instant::now();
    let worker = kith_core::service::mail::worker::start(&db.kith, mailer);
    let mut peak = 0.0f64;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        peak = peak.max(rss_mib());
        let sent = counts(db.kith.store.conn()).await.unwrap();
        let done: i64 = sent.iter().filter(|(s, _)| *s != MailState::Queued).map(|(_, c)| c).sum();
        let elapsed = sending.elapsed().as_secs_f64();
        println!("{elapsed:6.1} s: {done} done ({:.0}/s), RSS {:.0} MiB", done as f64 / elapsed, rss_mib());
        if done as u64 >= n {
            break;
        }
    }
    let send_time = sending.elapsed();
    worker.stop().await;
    let received = sink.count();
    println!(
        "sent {n} in {:.2} s = {:.0} messages/s; the server received {received}; peak RSS {peak:.0} MiB",
        send_time.as_secs_f64(),
        n as f64 / send_time.as_secs_f64()
    );
    sink.stop().await;
    db.cleanup().await;
}
