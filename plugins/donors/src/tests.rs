//! Unit tests of the donors plugin against the SDK's in-memory test host.

use kith_plugin_sdk::testing::TestHost;
use kith_plugin_sdk::{Call, Change, ErrorCode, Event, Verdict};
use serde_json::{Value as Json, json};

use crate::Donors;

const OWN: &[&str] = &[
    "fund",
    "campaign",
    "household",
    "householdMember",
    "recurringDonation",
    "pledge",
    "donation",
    "softCredit",
    "receipt",
];

fn host() -> TestHost {
    let mut host = TestHost::new()
        .grant("contacts:read")
        .grant("companies:read")
        .grant("activities:write")
        .grant("kv")
        .setting("currency", json!("USD"))
        .at("2026-06-15T10:00:00.000000Z");
    for object in OWN {
        host = host.own(object);
    }
    host
}

fn call(host: &TestHost, name: &str, arguments: Json) -> kith_plugin_sdk::Result<Json> {
    host.call::<Donors>(&Call::new(name, arguments), true)
}

fn gift(host: &TestHost, contact: &str, amount: &str, date: &str) -> String {
    host.insert(
        "donation",
        json!({"contactId": contact, "amount": amount, "amountCurrency": "USD", "receivedDate": date, "status": "RECEIVED"}),
    )
}

#[test]
fn record_donation_checks_its_arguments_and_writes_soft_credits() {
    let host = host();
    let ada = host.insert("contact", json!({"firstName": "Ada", "lastName": "Lovelace"}));
    let spouse = host.insert("contact", json!({"firstName": "William"}));
    let err = call(&host, "recordDonation", json!({"amount": "10"})).unwrap_err();
    assert_eq!((err.code, err.field.as_deref()), (ErrorCode::InvalidInput, Some("contactId")));
    let err = call(&host, "recordDonation", json!({"contactId": ada, "amount": "-5"})).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("amount"));
    let err = call(&host, "recordDonation", json!({"contactId": "nobody", "amount": "5"})).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("contactId"));
    let err =
        call(&host, "recordDonation", json!({"contactId": ada, "amount": "5", "currency": "DOLLARS"})).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("currency"));
    let err = call(
        &host,
        "recordDonation",
        json!({"contactId": ada, "amount": "5", "softCredits": [{"contactId": spouse, "amount": "50"}]}),
    )
    .unwrap_err();
    assert_eq!(err.field.as_deref(), Some("softCredits[0]"));
    assert!(host.records("donation").is_empty(), "nothing is written when an argument is bad");

    let id = call(
        &host,
        "recordDonation",
        json!({"contactId": ada, "amount": "120.50", "softCredits": [{"contactId": spouse, "role": "spouse"}], "tributeType": "IN_MEMORY", "tributeName": "Byron"}),
    )
    .unwrap();
    let gifts = host.records("donation");
    assert_eq!(gifts.len(), 1);
    assert_eq!(json!(gifts[0].id), id);
    assert_eq!(gifts[0].str("status"), Some("RECEIVED"));
    assert_eq!(gifts[0].str("receivedDate"), Some("2026-06-15"));
    assert_eq!(gifts[0].str("amountCurrency"), Some("USD"));
    let credits = host.records("softCredit");
    assert_eq!(credits.len(), 1);
    assert_eq!((credits[0].str("amount"), credits[0].str("role")), (Some("120.5"), Some("SPOUSE")));
}

#[test]
fn refunds_happen_once() {
    let host = host();
    let ada = host.insert("contact", json!({"firstName": "Ada"}));
    let id = gift(&host, &ada, "50", "2026-05-01");
    call(&host, "refundDonation", json!({"id": id, "reason": "card chargeback"})).unwrap();
    assert_eq!(host.record("donation", &id).unwrap().str("status"), Some("REFUNDED"));
    let err = call(&host, "refundDonation", json!({"id": id})).unwrap_err();
    assert_eq!(err.code, ErrorCode::Conflict);
    let err = call(&host, "refundDonation", json!({"id": "missing"})).unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
}

#[test]
fn donor_summaries_add_up_per_year_with_level_and_status() {
    let host = host().setting("levels", json!(["Friend:0", "Patron:100"]));
    let ada = host.insert("contact", json!({"firstName": "Ada"}));
    let bob = host.insert("contact", json!({"firstName": "Bob"}));
    let cy = host.insert("contact", json!({"firstName": "Cy"}));
    let nobody = host.insert("contact", json!({"firstName": "Nobody"}));
    gift(&host, &ada, "40", "2025-03-01");
    gift(&host, &ada, "70.25", "2026-02-01");
    gift(&host, &ada, "5", "2026-03-01");
    let refunded = gift(&host, &ada, "1000", "2026-04-01");
    host.run(|| kith_plugin_sdk::records::update("donation", &refunded, &json!({"status": "REFUNDED"}), None)).unwrap();
    host.insert("donation", json!({"contactId": ada, "amount": "9", "amountCurrency": "EUR", "receivedDate": "2026-04-01", "status": "RECEIVED"}));
    gift(&host, &bob, "10", "2025-12-31");
    gift(&host, &cy, "10", "2023-01-01");
    gift(&host, &cy, "15", "2026-01-10");
    let ids = [ada.clone(), bob.clone(), cy.clone(), nobody.clone()];
    let values = host.compute_field::<Donors>("contact", "donorSummary", &ids).unwrap();
    assert_eq!(values[0]["lifetimeGiving"], "115.25");
    assert_eq!(values[0]["giftCount"], 3);
    assert_eq!(values[0]["givingThisYear"], "75.25");
    assert_eq!(values[0]["givingLastYear"], "40");
    assert_eq!(values[0]["largestGift"], "70.25");
    assert_eq!(
        (values[0]["firstGiftDate"].as_str(), values[0]["lastGiftDate"].as_str()),
        (Some("2025-03-01"), Some("2026-03-01"))
    );
    assert_eq!((values[0]["level"].as_str(), values[0]["status"].as_str()), (Some("Patron"), Some("RETAINED")));
    assert_eq!((values[1]["level"].as_str(), values[1]["status"].as_str()), (Some("Friend"), Some("LAPSED")));
    assert_eq!(values[2]["status"], "RECOVERED");
    assert_eq!(values[3], Json::Null);
}

#[test]
fn retention_lybunt_and_sybunt_follow_feep() {
    let host = host();
    let people: Vec<String> =
        (0..6).map(|i| host.insert("contact", json!({"firstName": format!("P{i}"), "lastName": "Test"}))).collect();
    // P0 retained, P1 new, P2 recovered, P3 lapsed (gave last year), P4 long lapsed, P5 lapsed (two gifts last year).
    gift(&host, &people[0], "10", "2025-05-01");
    gift(&host, &people[0], "10", "2026-05-01");
    gift(&host, &people[1], "20", "2026-01-02");
    gift(&host, &people[2], "30", "2023-01-01");
    gift(&host, &people[2], "30", "2026-02-02");
    gift(&host, &people[3], "40", "2025-07-07");
    gift(&host, &people[4], "50", "2022-02-02");
    gift(&host, &people[5], "5", "2025-01-01");
    gift(&host, &people[5], "60", "2025-11-30");
    let report = call(&host, "donorRetention", json!({"year": 2026})).unwrap();
    assert_eq!(
        report,
        json!({"year": 2026, "donorsLastYear": 3, "donorsThisYear": 3, "newDonors": 1, "retainedDonors": 1,
               "recoveredDonors": 1, "lapsedDonors": 2, "retentionRate": 1.0 / 3.0})
    );
    let lybunt = call(&host, "lybunt", json!({"year": 2026})).unwrap();
    let rows = lybunt.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["contactId"], json!(people[5]), "the biggest last-year giver first");
    assert_eq!(
        (rows[0]["lastGiftDate"].as_str(), rows[0]["lastGiftAmount"].as_str()),
        (Some("2025-11-30"), Some("60"))
    );
    assert_eq!(rows[0]["lifetimeGiving"], "65");
    assert_eq!(rows[0]["name"], "P5 Test");
    let sybunt = call(&host, "sybunt", json!({"year": 2026, "first": 10})).unwrap();
    let ids: Vec<&Json> = sybunt.as_array().unwrap().iter().map(|r| &r["contactId"]).collect();
    assert_eq!(ids, vec![&json!(people[5]), &json!(people[3]), &json!(people[4])], "most recent first");
    let err = call(&host, "lybunt", json!({"year": 2026, "first": 0})).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("first"));
}

#[test]
fn campaigns_and_giving_summaries() {
    let host = host();
    let ada = host.insert("contact", json!({"firstName": "Ada"}));
    let bob = host.insert("contact", json!({"firstName": "Bob"}));
    let fund = host.insert("fund", json!({"name": "General"}));
    let campaign = host.insert("campaign", json!({"name": "Spring", "goal": "200"}));
    for (who, amount, date) in [(&ada, "50", "2026-03-01"), (&bob, "25", "2026-03-20"), (&ada, "25", "2026-04-02")] {
        let id = gift(&host, who, amount, date);
        host.run(|| {
            kith_plugin_sdk::records::update("donation", &id, &json!({"campaignId": campaign, "fundId": fund}), None)
        })
        .unwrap();
    }
    gift(&host, &bob, "100", "2026-05-05");
    let progress = call(&host, "campaignProgress", json!({"id": campaign})).unwrap();
    assert_eq!(progress["raised"], "100");
    assert_eq!(progress["percentOfGoal"], 50.0);
    assert_eq!((progress["donors"].as_i64(), progress["gifts"].as_i64()), (Some(2), Some(3)));
    assert_eq!(progress["averageGift"], "33.33");
    let by_month =
        call(&host, "givingSummary", json!({"from": "2026-03-01", "to": "2026-04-30", "groupBy": "MONTH"})).unwrap();
    assert_eq!(
        by_month,
        json!([
            {"key": "2026-03-01", "label": "2026-03", "total": "75", "gifts": 2, "donors": 2},
            {"key": "2026-04-01", "label": "2026-04", "total": "25", "gifts": 1, "donors": 1},
        ])
    );
    let by_fund =
        call(&host, "givingSummary", json!({"from": "2026-01-01", "to": "2026-12-31", "groupBy": "FUND"})).unwrap();
    let labels: Vec<&Json> = by_fund.as_array().unwrap().iter().map(|r| &r["label"]).collect();
    assert!(labels.contains(&&json!("General")) && labels.contains(&&json!("(none)")), "{by_fund}");
    let err =
        call(&host, "givingSummary", json!({"from": "2026-05-01", "to": "2026-04-01", "groupBy": "FUND"})).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("to"));
}

#[test]
fn standing_orders_create_expected_gifts_once_and_lapse() {
    let host = host().setting("lapse_after_missed", json!(2));
    let ada = host.insert("contact", json!({"firstName": "Ada"}));
    let fields = json!({"contactId": ada, "amount": "15", "amountCurrency": "USD", "frequency": "MONTHLY", "startDate": "2026-04-15"});
    // A new standing order starts ACTIVE, due on its start date.
    let verdict = host.before_write::<Donors>(&Change::create("recurringDonation", fields.clone()));
    let Verdict::Modify(defaults) = verdict else { panic!("{verdict:?}") };
    assert_eq!(defaults["status"], "ACTIVE");
    assert_eq!(defaults["nextDueDate"], "2026-04-15");
    let mut fields = fields;
    fields.as_object_mut().unwrap().extend(defaults);
    let plan = host.insert("recurringDonation", fields);
    // Due on Apr 15, May 15 and Jun 15: three expected gifts, then the next due date is Jul 15.
    host.run_job::<Donors>("recurring").unwrap();
    host.run_job::<Donors>("recurring").unwrap();
    let expected = host.records("donation");
    assert_eq!(expected.len(), 3);
    assert!(expected.iter().all(|g| g.str("status") == Some("PLEDGED")));
    let record = host.record("recurringDonation", &plan).unwrap();
    assert_eq!(record.str("nextDueDate"), Some("2026-07-15"));
    // Apr and May are past and unpaid: two missed payments lapse the plan.
    assert_eq!(record.str("status"), Some("LAPSED"));
    let err = call(&host, "pauseRecurringDonation", json!({"id": plan})).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("id"));
    call(&host, "resumeRecurringDonation", json!({"id": plan})).unwrap();
    assert_eq!(host.record("recurringDonation", &plan).unwrap().str("status"), Some("ACTIVE"));
    call(&host, "pauseRecurringDonation", json!({"id": plan})).unwrap();
    assert_eq!(host.record("recurringDonation", &plan).unwrap().str("status"), Some("PAUSED"));
    let zero = json!({"contactId": ada, "amount": "0", "frequency": "MONTHLY", "startDate": "2026-04-15"});
    assert!(matches!(host.before_write::<Donors>(&Change::create("recurringDonation", zero)), Verdict::Deny(_)));
}

#[test]
fn pledges_schedule_installments_and_track_the_balance() {
    let host = host();
    let ada = host.insert("contact", json!({"firstName": "Ada"}));
    let fields = json!({"contactId": ada, "total": "100", "totalCurrency": "USD", "installments": 3, "frequency": "QUARTERLY", "startDate": "2026-01-01"});
    assert_eq!(host.before_write::<Donors>(&Change::create("pledge", fields.clone())), Verdict::Allow);
    let bad = json!({"contactId": ada, "total": "100", "installments": 0});
    assert!(matches!(host.before_write::<Donors>(&Change::create("pledge", bad)), Verdict::Deny(_)));
    let pledge = host.insert("pledge", fields.clone());
    let event = Event::new("pledge.created", "pledge", Some(&pledge), fields);
    host.on_event::<Donors>(&event).unwrap();
    let mut gifts = host.records("donation");
    gifts.sort_by(|a, b| a.str("receivedDate").cmp(&b.str("receivedDate")));
    let amounts: Vec<_> = gifts.iter().map(|g| (g.str("receivedDate").unwrap(), g.str("amount").unwrap())).collect();
    assert_eq!(amounts, vec![("2026-01-01", "33.33"), ("2026-04-01", "33.33"), ("2026-07-01", "33.34")]);
    host.run(|| kith_plugin_sdk::records::update("donation", &gifts[0].id, &json!({"status": "RECEIVED"}), None))
        .unwrap();
    let progress = host.compute_field::<Donors>("pledge", "progress", std::slice::from_ref(&pledge)).unwrap();
    assert_eq!(progress[0], json!({"paid": "33.33", "balance": "66.67", "installmentsPaid": 1, "installmentsDue": 1}));
}

#[test]
fn year_end_receipts_are_numbered_once_per_donor() {
    let host = host().at("2027-01-05T09:00:00.000000Z");
    let ada = host.insert("contact", json!({"firstName": "Ada", "lastName": "Lovelace"}));
    let bob = host.insert("contact", json!({"firstName": "Bob"}));
    gift(&host, &ada, "10", "2026-02-01");
    gift(&host, &ada, "15", "2026-12-24");
    gift(&host, &bob, "7", "2026-06-01");
    gift(&host, &bob, "99", "2025-06-01");
    let first = call(&host, "issueYearEndReceipts", json!({"year": 2026, "first": 1})).unwrap();
    assert_eq!((first["issued"].as_i64(), first["remaining"].as_i64()), (Some(1), Some(1)));
    let second = call(&host, "issueYearEndReceipts", json!({"year": 2026})).unwrap();
    assert_eq!((second["issued"].as_i64(), second["alreadyIssued"].as_i64()), (Some(1), Some(1)));
    let again = call(&host, "issueYearEndReceipts", json!({"year": 2026})).unwrap();
    assert_eq!((again["issued"].as_i64(), again["alreadyIssued"].as_i64()), (Some(0), Some(2)));
    let mut numbers: Vec<String> =
        host.records("receipt").iter().map(|r| r.str("number").unwrap().to_owned()).collect();
    numbers.sort();
    assert_eq!(numbers, vec!["R-2026-000001", "R-2026-000002"]);
    let ada_receipt = host.records("receipt").into_iter().find(|r| r.str("contactId") == Some(ada.as_str())).unwrap();
    assert_eq!(ada_receipt.str("total"), Some("25"));
    let text = ada_receipt.str("text").unwrap();
    assert!(text.contains("Ada Lovelace") && text.contains("2026-12-24") && text.contains("Total: 25 USD"), "{text}");
    let notes = host.records("activity");
    assert_eq!(notes.len(), 2);
    assert!(
        host.records("donation")
            .iter()
            .filter(|g| g.str("receivedDate").unwrap().starts_with("2026"))
            .all(|g| g.str("receiptNumber").is_some())
    );
    let err = call(&host, "issueYearEndReceipts", json!({"year": 2027})).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("year"));
}

#[test]
fn imports_report_each_bad_row_and_keep_the_rest() {
    let host = host();
    host.insert("contact", json!({"firstName": "Ada", "email": "ada@example.org"}));
    let csv = "Email,Amount,Date,Fund,Method\n\
               ada@example.org,25.00,2026-01-02,General,card\n\
               nobody@example.org,10,2026-01-02,,\n\
               ada@example.org,-3,2026-01-02,,\n\
               ada@example.org,5,2026-02-30,,\n\
               ADA@example.org,7,2026-03-03,General,bank transfer\n\
               ada@example.org,9,2026-03-03,,cheque-ish\n";
    let report = call(&host, "importDonations", json!({"csv": csv})).unwrap();
    assert_eq!(report["imported"], 2);
    let lines: Vec<i64> = report["rejected"].as_array().unwrap().iter().map(|r| r["line"].as_i64().unwrap()).collect();
    assert_eq!(lines, vec![3, 4, 5, 7]);
    assert!(report["rejected"][0]["reason"].as_str().unwrap().contains("nobody@example.org"));
    // The same lines in a file saved with CRLF line ends.
    let report = call(&host, "importDonations", json!({"csv": csv.replace('\n', "\r\n")})).unwrap();
    let lines: Vec<i64> = report["rejected"].as_array().unwrap().iter().map(|r| r["line"].as_i64().unwrap()).collect();
    assert_eq!(lines, vec![3, 4, 5, 7]);
    assert_eq!(host.records("fund").len(), 1, "funds are found by name, created once");
    let err = call(&host, "importDonations", json!({"csv": "name,total\nx,1\n"})).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("csv"));
}

#[test]
fn every_donation_write_needs_a_donor_and_a_positive_amount() {
    let host = host();
    let check = |after: Json| host.before_write::<Donors>(&Change::create("donation", after));
    assert!(matches!(check(json!({"amount": "5"})), Verdict::Deny(_)));
    assert!(matches!(check(json!({"contactId": "c", "amount": "0"})), Verdict::Deny(_)));
    assert_eq!(check(json!({"companyId": "c", "amount": "5"})), Verdict::Allow);
}

#[test]
fn a_received_gift_gets_one_thank_you_task() {
    let host = host();
    let ada = host.insert("contact", json!({"firstName": "Ada", "ownerId": "u-1"}));
    let gift = json!({"contactId": ada, "amount": "25", "amountCurrency": "USD", "receivedDate": "2026-06-14", "status": "RECEIVED"});
    let id = host.insert("donation", gift.clone());
    let event = Event::new("donation.created", "donation", Some(&id), gift.clone());
    host.on_event::<Donors>(&event).unwrap();
    host.on_event::<Donors>(&event).unwrap();
    let tasks = host.records("activity");
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].str("subject"), Some("Thank Ada for their gift of 25 USD"));
    assert_eq!(tasks[0].str("ownerId"), Some("u-1"));
    assert_eq!(tasks[0].str("dueAt"), Some("2026-06-18T09:00:00.000000Z"));
    // Old (imported) gifts and pledges get none.
    let old = json!({"contactId": ada, "amount": "25", "receivedDate": "2020-01-01", "status": "RECEIVED"});
    host.on_event::<Donors>(&Event::new("donation.created", "donation", Some("old"), old)).unwrap();
    let pledged = json!({"contactId": ada, "amount": "25", "receivedDate": "2026-06-14", "status": "PLEDGED"});
    host.on_event::<Donors>(&Event::new("donation.created", "donation", Some("p"), pledged)).unwrap();
    assert_eq!(host.records("activity").len(), 1);
}

#[test]
fn standing_orders_keep_their_day_of_the_month() {
    let host = host().at("2026-04-01T10:00:00.000000Z");
    let ada = host.insert("contact", json!({"firstName": "Ada"}));
    host.insert(
        "recurringDonation",
        json!({"contactId": ada, "amount": "5", "amountCurrency": "USD", "frequency": "MONTHLY",
               "startDate": "2026-01-31", "nextDueDate": "2026-01-31", "status": "ACTIVE"}),
    );
    host.run_job::<Donors>("recurring").unwrap();
    let mut dates: Vec<String> =
        host.records("donation").iter().map(|g| g.str("receivedDate").unwrap().to_owned()).collect();
    dates.sort();
    assert_eq!(dates, vec!["2026-01-31", "2026-02-28", "2026-03-31"]);
    assert_eq!(host.records("recurringDonation")[0].str("nextDueDate"), Some("2026-04-30"));
}

#[test]
fn receipt_numbers_are_never_reused() {
    let host = host().at("2027-01-05T09:00:00.000000Z");
    let ada = host.insert("contact", json!({"firstName": "Ada"}));
    let bob = host.insert("contact", json!({"firstName": "Bob"}));
    gift(&host, &ada, "10", "2026-02-01");
    call(&host, "issueYearEndReceipts", json!({"year": 2026})).unwrap();
    assert_eq!(host.run(|| kith_plugin_sdk::kv::get_json::<usize>("receipt-seq:2026")).unwrap(), Some(1));
    // Receipts 2 to 5 were issued and then deleted: they are not listed, but their numbers
    // stay used.
    host.run(|| kith_plugin_sdk::kv::set_json("receipt-seq:2026", &5usize)).unwrap();
    gift(&host, &bob, "7", "2026-06-01");
    let second = call(&host, "issueYearEndReceipts", json!({"year": 2026})).unwrap();
    assert_eq!(second["receiptNumbers"], json!(["R-2026-000006"]));
}
