//! Reports through the GraphQL API, on both databases: the pipeline report (counts, exact sums,
//! forecast, win rate), the ticket report over a period (percentiles, SLA, satisfaction) and
//! contact growth in day, week and month buckets.

use kith_core::domain::actor::Role;
use kith_tests::TestDb;
use serde_json::json;

use crate::util::{Server, code, token};

#[tokio::test]
async fn pipeline_report_counts_sums_forecasts_and_rates() {
    for db in TestDb::all().await {
        let server = Server::start(&db).await;
        let manager = token(&db, Role::Manager).await;
        let agent = token(&db, Role::Agent).await;
        let p = server
            .gql(&manager, "mutation { createPipeline(input: {name: \"Sales\", currency: \"EUR\"}) { id } }", json!({}))
            .await;
        let pid = p["data"]["createPipeline"]["id"].as_str().unwrap().to_owned();
        let mut stages = Vec::new();
        for (i, (name, prob, kind)) in
            [("Lead", 10, "OPEN"), ("Proposal", 50, "OPEN"), ("Won", 100, "WON"), ("Lost", 0, "LOST")]
                .iter()
                .enumerate()
        {
            let s = server
                .gql(
                    &manager,
                    "mutation($i: StageCreateInput!) { createStage(input: $i) { id } }",
                    json!({"i": {"pipelineId": pid, "name": name, "position": i, "probability": prob, "kind": kind}}),
                )
                .await;
            stages.push(s["data"]["createStage"]["id"].as_str().unwrap().to_owned());
        }
        let deal = |amount: &str, stage: usize, currency: &str| json!({"i": {"title": "D", "amount": amount, "currency": currency, "pipelineId": pid, "stageId": stages[stage]}});
        let create = "mutation($i: DealCreateInput!) { createDeal(input: $i) { id } }";
        for (amount, stage, currency) in [
            ("100.10", 0, "EUR"),
            ("200", 0, "EUR"),
            ("1000", 1, "EUR"),
            ("50", 1, "USD"),
            ("300", 2, "EUR"),
            ("70", 3, "EUR"),
            ("80", 3, "EUR"),
        ] {
            server.gql(&manager, create, deal(amount, stage, currency)).await;
        }
        let q = "query($p: ID!) { pipelineReport(pipelineId: $p) { stages { name count amounts { currency amount } } forecast { currency amount } winRate averageDaysToClose } }";
        assert_eq!(code(&server.gql(&agent, q, json!({"p": pid})).await), "FORBIDDEN", "reports need MANAGER");
        let r = server.gql(&manager, q, json!({"p": pid})).await;
        let report = &r["data"]["pipelineReport"];
        assert_eq!(report["stages"][0]["count"], 2, "{}: {r}", db.name);
        assert_eq!(
            report["stages"][0]["amounts"],
            json!([{"currency": "EUR", "amount": "300.1"}]),
            "{}: exact sums",
            db.name
        );
        assert_eq!(
            report["stages"][1]["amounts"],
            json!([{"currency": "EUR", "amount": "1000"}, {"currency": "USD", "amount": "50"}])
        );
        // 300.10 × 10% + 1000 × 50% = 530.01 EUR; 50 × 50% = 25 USD.
        assert_eq!(
            report["forecast"],
            json!([{"currency": "EUR", "amount": "530.01"}, {"currency": "USD", "amount": "25"}]),
            "{}",
            db.name
        );
        let rate = report["winRate"].as_f64().unwrap();
        assert!((rate - 1.0 / 3.0).abs() < 1e-9, "{rate}");
        assert!(report["averageDaysToClose"].as_f64().unwrap() >= 0.0);
        server.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn ticket_report_over_a_period() {
    for db in TestDb::all().await {
        let server = Server::start(&db).await;
        let manager = token(&db, Role::Manager).await;
        let mut ids = Vec::new();
        for subject in ["a", "b", "c"] {
            let t = server
                .gql(
                    &manager,
                    "mutation($s: String!) { createTicket(input: {subject: $s}) { id } }",
                    json!({"s": subject}),
                )
                .await;
            ids.push(t["data"]["createTicket"]["id"].as_str().unwrap().to_owned());
        }
        for id in &ids[..2] {
            server
                .gql(
                    &manager,
                    "mutation($id: ID!) { addTicketComment(ticketId: $id, body: \"hi\") { id } }",
                    json!({"id": id}),
                )
                .await;
        }
        server
            .gql(
                &manager,
                "mutation($id: ID!) { changeTicketStatus(id: $id, status: SOLVED) { id } }",
                json!({"id": ids[0]}),
            )
            .await;
        server
            .gql(&manager, "mutation($id: ID!) { rateTicket(id: $id, rating: 4) { id } }", json!({"id": ids[0]}))
            .await;
        let q = "query($f: DateTime!, $t: DateTime!) { ticketReport(from: $f, to: $t) { volume firstResponseMinutesP50 firstResponseMinutesP90 resolutionMinutesP50 slaBreachRate csatAverage rated } }";
        let now = chrono::Utc::now();
        let window = json!({"f": (now - chrono::Duration::hours(1)).to_rfc3339(), "t": (now + chrono::Duration::hours(1)).to_rfc3339()});
        let r = server.gql(&manager, q, window).await;
        let report = &r["data"]["ticketReport"];
        assert_eq!(report["volume"], 3, "{}: {r}", db.name);
        assert_eq!(report["rated"], 1);
        assert_eq!(report["csatAverage"], 4.0);
        assert_eq!(report["slaBreachRate"], 0.0, "nothing is late yet");
        assert!(report["firstResponseMinutesP90"].as_f64().is_some_and(|m| (0.0..5.0).contains(&m)), "{r}");
        assert!(report["resolutionMinutesP50"].as_f64().is_some());
        let empty = server.gql(&manager, q, json!({"f": "2020-01-01T00:00:00Z", "t": "2020-02-01T00:00:00Z"})).await;
        assert_eq!(empty["data"]["ticketReport"]["volume"], 0, "{empty}");
        assert!(empty["data"]["ticketReport"]["csatAverage"].is_null());
        let backwards =
            server.gql(&manager, q, json!({"f": "2021-01-01T00:00:00Z", "t": "2020-01-01T00:00:00Z"})).await;
        assert_eq!(code(&backwards), "BAD_USER_INPUT", "{backwards}");
        server.stop().await;
        db.cleanup().await;
    }
}

#[test]
fn percentiles_by_nearest_rank() {
    use kith_core::service::reports::percentile;
    let values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
    for (q, expected) in [(0.5, Some(5.0)), (0.9, Some(9.0)), (1.0, Some(10.0)), (0.0, Some(1.0))] {
        assert_eq!(percentile(&values, q), expected, "{q}");
    }
    assert_eq!(percentile(&[], 0.5), None);
}

#[tokio::test]
async fn contact_growth_buckets_with_running_totals() {
    for db in TestDb::all().await {
        let server = Server::start(&db).await;
        let manager = token(&db, Role::Manager).await;
        for name in ["A", "B", "C"] {
            server
                .gql(
                    &manager,
                    "mutation($n: String!) { createContact(input: {firstName: $n}) { id } }",
                    json!({"n": name}),
                )
                .await;
        }
        let today = chrono::Utc::now().date_naive();
        let q = "query($f: Date!, $t: Date!, $i: GrowthInterval!) { contactGrowth(from: $f, to: $t, interval: $i) { periodStart newContacts totalContacts } }";
        let days = server
            .gql(&manager, q, json!({"f": (today - chrono::Duration::days(2)).to_string(), "t": (today + chrono::Duration::days(1)).to_string(), "i": "DAY"}))
            .await;
        let points = days["data"]["contactGrowth"].as_array().unwrap_or_else(|| panic!("{days}"));
        assert_eq!(points.len(), 3, "{}: {days}", db.name);
        assert_eq!(points.iter().map(|p| p["newContacts"].as_i64().unwrap()).collect::<Vec<_>>(), [0, 0, 3]);
        assert_eq!(points[2]["totalContacts"], 3);
        assert_eq!(points[2]["periodStart"], today.to_string());
        let later = server
            .gql(
                &manager,
                q,
                json!({"f": today.to_string(), "t": (today + chrono::Duration::days(40)).to_string(), "i": "MONTH"}),
            )
            .await;
        let months = later["data"]["contactGrowth"].as_array().unwrap();
        // Buckets are whole months: the first starts on the 1st and holds today's contacts.
        assert_eq!(months[0]["periodStart"], bucket_of_month(today), "{}: {later}", db.name);
        assert!(months.iter().all(|p| p["totalContacts"] == 3), "{}: totals carry over: {later}", db.name);
        assert_eq!(months.iter().map(|p| p["newContacts"].as_i64().unwrap()).sum::<i64>(), 3);
        let too_many = server.gql(&manager, q, json!({"f": "2000-01-01", "t": "2030-01-01", "i": "DAY"})).await;
        assert_eq!(code(&too_many), "BAD_USER_INPUT", "{too_many}");
        assert_eq!(too_many["errors"][0]["extensions"]["field"], "to", "{too_many}");
        let message = too_many["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains("at most 1000 points") && message.contains("10958 of a day"), "{too_many}");
        server.stop().await;
        db.cleanup().await;
    }
}

fn bucket_of_month(date: chrono::NaiveDate) -> String {
    kith_core::service::reports::bucket_start(date, "MONTH").to_string()
}

#[test]
fn growth_buckets_start_on_mondays_and_first_days() {
    use kith_core::service::reports::bucket_start;
    let d = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    assert_eq!(bucket_start(d("2026-11-22"), "WEEK"), d("2026-11-16"), "a Sunday belongs to the week from Monday");
    assert_eq!(bucket_start(d("2026-11-16"), "WEEK"), d("2026-11-16"));
    assert_eq!(bucket_start(d("2026-11-22"), "MONTH"), d("2026-11-01"));
    assert_eq!(bucket_start(d("2026-11-22"), "DAY"), d("2026-11-22"));
}
