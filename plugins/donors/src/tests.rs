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
    "exchangeRate",
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

/// Writes a record as Kith does: the plugin's before-write hook first, which refuses it or
/// completes it (the test host runs no hook on its own).
fn write(host: &TestHost, object: &str, fields: Json) -> Result<String, String> {
    let mut fields = fields;
    match host.before_write::<Donors>(&Change::create(object, fields.clone())) {
        Verdict::Allow => {}
        Verdict::Modify(changes) => fields.as_object_mut().unwrap().extend(changes),
        Verdict::Deny(reason) => return Err(reason),
        other => panic!("{other:?}"),
    }
    Ok(host.insert(object, fields))
}

/// Updates a record as Kith does, through the before-write hook.
fn change(host: &TestHost, object: &str, id: &str, changes: Json) -> Result<(), String> {
    let before = host.record(object, id).unwrap().fields;
    let mut after = before.clone();
    after.as_object_mut().unwrap().extend(changes.as_object().unwrap().clone());
    match host.before_write::<Donors>(&Change::update(object, before, after.clone())) {
        Verdict::Allow => {}
        Verdict::Modify(changes) => after.as_object_mut().unwrap().extend(changes),
        Verdict::Deny(reason) => return Err(reason),
        other => panic!("{other:?}"),
    }
    host.run(|| kith_plugin_sdk::records::update(object, id, &after, None)).unwrap();
    Ok(())
}

/// A rate in the rates table: one `currency` is worth `rate` USD from `from` on.
fn rate(host: &TestHost, currency: &str, rate: &str, from: &str) -> String {
    write(host, "exchangeRate", json!({"currency": currency, "rate": rate, "validFrom": from})).unwrap()
}

/// A received gift stored as before version 1.2.0: no rate, no base amount.
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
    let Verdict::Modify(fields) = check(json!({"companyId": "c", "amount": "5", "amountCurrency": "USD"})) else {
        panic!("a gift in the organisation's currency gets its base amount")
    };
    assert_eq!(
        Json::Object(fields),
        json!({"exchangeRate": "1", "baseAmount": "5", "baseAmountCurrency": "USD", "exchangeRateSource": "SAME_CURRENCY"})
    );
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

fn query(host: &TestHost, name: &str, arguments: Json) -> kith_plugin_sdk::Result<Json> {
    host.call::<Donors>(&Call::new(name, arguments), false)
}

fn summaries(host: &TestHost, ids: &[&String]) -> Vec<Json> {
    let ids: Vec<String> = ids.iter().map(|id| (*id).clone()).collect();
    host.compute_field::<Donors>("contact", "donorSummary", &ids).unwrap()
}

#[test]
fn the_rates_table_keeps_exact_rates_one_a_day() {
    let host = host();
    rate(&host, "eur", "1.10", "2026-01-01");
    rate(&host, "JPY", "0.006712", "2026-01-01");
    let table = host.records("exchangeRate");
    assert_eq!(
        (table[0].str("key"), table[0].str("rate"), table[0].str("baseCurrency")),
        (Some("EUR:USD:2026-01-01"), Some("1.1"), Some("USD"))
    );
    assert_eq!(table[1].str("rate"), Some("0.006712"), "more places than a decimal field keeps");
    let refused = |fields: Json| write(&host, "exchangeRate", fields).unwrap_err();
    assert!(refused(json!({"currency": "USD", "rate": "1", "validFrom": "2026-01-01"})).contains("always 1"));
    assert!(refused(json!({"currency": "GBP", "rate": "-2", "validFrom": "2026-01-01"})).contains("not a rate"));
    assert!(refused(json!({"currency": "GBP", "rate": "1.5 USD", "validFrom": "2026-01-01"})).contains("not a rate"));
}

#[test]
fn gifts_in_other_currencies_count_at_their_rate() {
    let host = host();
    let ada = host.insert("contact", json!({"firstName": "Ada"}));
    rate(&host, "EUR", "1.1", "2026-01-01");
    rate(&host, "EUR", "1.2", "2026-05-01");
    rate(&host, "JPY", "0.006712", "2026-01-01");
    for gift in [
        // March: January's rate; June: May's.
        json!({"amount": "100", "currency": "EUR", "receivedDate": "2026-03-01"}),
        json!({"amount": "50", "currency": "EUR", "receivedDate": "2026-06-01"}),
        // A rate entered with the gift, and the amount the bank credited.
        json!({"amount": "10", "currency": "GBP", "exchangeRate": "1.25", "receivedDate": "2026-06-02"}),
        json!({"amount": "10000", "currency": "JPY", "receivedDate": "2026-06-03"}),
        json!({"amount": "20", "currency": "CHF", "baseAmount": "22.41", "receivedDate": "2026-06-04"}),
        json!({"amount": "5", "receivedDate": "2026-06-05"}),
    ] {
        let mut arguments = gift;
        arguments["contactId"] = json!(ada);
        call(&host, "recordDonation", arguments).unwrap();
    }
    let gifts = host.records("donation");
    let conversions: Vec<_> = gifts
        .iter()
        .map(|g| (g.str("baseAmount").unwrap(), g.str("exchangeRate").unwrap(), g.str("exchangeRateSource").unwrap()))
        .collect();
    assert_eq!(
        conversions,
        vec![
            ("110", "1.1", "TABLE"),
            ("60", "1.2", "TABLE"),
            ("12.5", "1.25", "ENTERED"),
            ("67.12", "0.006712", "TABLE"),
            ("22.41", "1.1205", "ENTERED"),
            ("5", "1", "SAME_CURRENCY"),
        ]
    );
    assert!(gifts.iter().all(|g| g.str("baseAmountCurrency") == Some("USD")));
    assert_eq!((gifts[0].str("amount"), gifts[0].str("amountCurrency")), (Some("100"), Some("EUR")), "kept as given");
    // 110 + 60 + 12.5 + 67.12 + 22.41 + 5
    let summary = &summaries(&host, &[&ada])[0];
    assert_eq!((summary["lifetimeGiving"].as_str(), summary["giftCount"].as_i64()), (Some("277.03"), Some(6)));
    assert_eq!((summary["largestGift"].as_str(), summary["currency"].as_str()), (Some("110"), Some("USD")));
    let by_month =
        call(&host, "givingSummary", json!({"from": "2026-01-01", "to": "2026-12-31", "groupBy": "MONTH"})).unwrap();
    assert_eq!(
        by_month,
        json!([
            {"key": "2026-03-01", "label": "2026-03", "total": "110", "gifts": 1, "donors": 1},
            {"key": "2026-06-01", "label": "2026-06", "total": "167.03", "gifts": 5, "donors": 1},
        ])
    );
}

#[test]
fn a_received_gift_in_another_currency_without_a_rate_is_refused() {
    let host = host();
    let ada = host.insert("contact", json!({"firstName": "Ada", "email": "ada@example.org"}));
    rate(&host, "EUR", "1.1", "2026-04-01");
    let record = |extra: Json| {
        let mut arguments = json!({"contactId": ada, "amount": "100", "currency": "EUR", "receivedDate": "2026-03-31"});
        arguments.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        call(&host, "recordDonation", arguments)
    };
    let err = record(json!({})).unwrap_err();
    assert_eq!((err.code, err.field.as_deref()), (ErrorCode::InvalidInput, Some("exchangeRate")));
    assert!(err.message.starts_with("no exchange rate from EUR to USD valid on 2026-03-31"), "{}", err.message);
    let err = record(json!({"currency": "SEK", "receivedDate": "2026-05-01"})).unwrap_err();
    assert!(err.message.contains("from SEK to USD valid on 2026-05-01"), "{}", err.message);
    let err = record(json!({"exchangeRate": "0"})).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("exchangeRate"));
    let err = record(json!({"exchangeRate": "1.1", "baseAmount": "200"})).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("baseAmount"), "{}", err.message);
    assert!(err.message.contains("disagrees with exchangeRate"), "{}", err.message);
    assert!(host.records("donation").is_empty(), "nothing is written");
    // The generic createDonation is refused by the hook the same way.
    let received = json!({"contactId": ada, "amount": "100", "amountCurrency": "EUR", "receivedDate": "2026-03-31", "status": "RECEIVED"});
    let denied = write(&host, "donation", received.clone()).unwrap_err();
    assert!(denied.contains("EUR to USD valid on 2026-03-31") && denied.contains("createExchangeRate"), "{denied}");
    // An expected gift counts nowhere: it is stored without a base amount, and needs a rate
    // once it is received.
    let mut pledged = received;
    pledged["status"] = json!("PLEDGED");
    let pledged = write(&host, "donation", pledged).unwrap();
    assert_eq!(host.record("donation", &pledged).unwrap().str("baseAmount"), None);
    let err = change(&host, "donation", &pledged, json!({"status": "RECEIVED"})).unwrap_err();
    assert!(err.contains("valid on 2026-03-31"), "{err}");
    change(&host, "donation", &pledged, json!({"status": "RECEIVED", "receivedDate": "2026-04-02"})).unwrap();
    assert_eq!(host.record("donation", &pledged).unwrap().str("baseAmount"), Some("110"));
    // An import refuses the row without a rate, with its line, and takes a rate column.
    let csv = "email,amount,currency,date,rate\n\
               ada@example.org,10,EUR,2026-03-01,\n\
               ada@example.org,10,EUR,2026-03-01,1.05\n\
               ada@example.org,10,EUR,2026-05-01,\n";
    let report = call(&host, "importDonations", json!({"csv": csv})).unwrap();
    assert_eq!(report["imported"], 2, "{report}");
    assert_eq!(report["rejected"][0]["line"], 2);
    assert!(report["rejected"][0]["reason"].as_str().unwrap().contains("no exchange rate from EUR"), "{report}");
    let bases: Vec<_> =
        host.records("donation").iter().filter_map(|g| g.str("baseAmount").map(str::to_owned)).collect();
    assert_eq!(bases, vec!["110", "10.5", "11"]);
}

#[test]
fn a_gifts_rate_follows_its_changes() {
    let host = host();
    let ada = host.insert("contact", json!({"firstName": "Ada"}));
    let bob = host.insert("contact", json!({"firstName": "Bob"}));
    rate(&host, "EUR", "1.1", "2026-01-01");
    let id = write(
        &host,
        "donation",
        json!({"contactId": ada, "amount": "100", "amountCurrency": "EUR", "receivedDate": "2026-03-01", "status": "RECEIVED"}),
    )
    .unwrap();
    let state = |host: &TestHost| {
        let gift = host.record("donation", &id).unwrap();
        let field = |name: &str| gift.str(name).unwrap_or("-").to_owned();
        (field("baseAmount"), field("exchangeRate"), field("exchangeRateSource"))
    };
    let expect = |base: &str, rate: &str, source: &str| (base.to_owned(), rate.to_owned(), source.to_owned());
    assert_eq!(state(&host), expect("110", "1.1", "TABLE"));
    change(&host, "donation", &id, json!({"amount": "200"})).unwrap();
    assert_eq!(state(&host), expect("220", "1.1", "TABLE"));
    change(&host, "donation", &id, json!({"exchangeRate": "1.3"})).unwrap();
    assert_eq!(state(&host), expect("260", "1.3", "ENTERED"));
    change(&host, "donation", &id, json!({"amount": "100"})).unwrap();
    assert_eq!(state(&host), expect("130", "1.3", "ENTERED"), "an entered rate stays");
    change(&host, "donation", &id, json!({"exchangeRateSource": "TABLE"})).unwrap();
    assert_eq!(state(&host), expect("110", "1.1", "TABLE"), "back to the table's rate");
    change(&host, "donation", &id, json!({"baseAmount": "105"})).unwrap();
    assert_eq!(state(&host), expect("105", "1.05", "ENTERED"), "the amount credited decides");
    change(&host, "donation", &id, json!({"amountCurrency": "USD"})).unwrap();
    assert_eq!(state(&host), expect("100", "1", "SAME_CURRENCY"));
    // A change that leaves the money alone leaves the rate alone.
    let before = host.record("donation", &id).unwrap().fields;
    let mut after = before.clone();
    after["note"] = json!("thanked by phone");
    assert_eq!(host.before_write::<Donors>(&Change::update("donation", before, after)), Verdict::Allow);
    // A gift from before rates, in a currency with none: moving it to another contact (a
    // merge) goes through; changing its amount needs a rate.
    let old = host.insert(
        "donation",
        json!({"contactId": ada, "amount": "300", "amountCurrency": "SEK", "receivedDate": "2025-02-01", "status": "RECEIVED"}),
    );
    change(&host, "donation", &old, json!({"contactId": bob})).unwrap();
    assert_eq!(host.record("donation", &old).unwrap().str("baseAmount"), None);
    assert!(change(&host, "donation", &old, json!({"amount": "200"})).unwrap_err().contains("SEK"));
}

#[test]
fn gifts_from_before_rates_count_and_apply_exchange_rates_converts_them() {
    let host = host();
    let ada = host.insert("contact", json!({"firstName": "Ada"}));
    let bob = host.insert("contact", json!({"firstName": "Bob", "lastName": "Old"}));
    // Stored by version 1.1: no base amounts.
    gift(&host, &ada, "40", "2025-03-01");
    gift(&host, &bob, "70", "2025-06-01");
    host.insert(
        "donation",
        json!({"contactId": ada, "amount": "100", "amountCurrency": "EUR", "receivedDate": "2026-02-01", "status": "RECEIVED"}),
    );
    // Stored by this version.
    let usd = |who: &String, amount: &str, date: &str| {
        write(&host, "donation", json!({"contactId": who, "amount": amount, "amountCurrency": "USD", "receivedDate": date, "status": "RECEIVED"}))
            .unwrap()
    };
    usd(&ada, "5", "2025-04-01");
    usd(&bob, "10", "2024-01-01");
    // Old gifts in the organisation's currency count at their amount, merged with the new
    // ones; the old euro gift counts nowhere yet.
    let values = summaries(&host, &[&ada, &bob]);
    assert_eq!((values[0]["lifetimeGiving"].as_str(), values[0]["giftCount"].as_i64()), (Some("45"), Some(2)));
    assert_eq!(values[1]["lifetimeGiving"], "80");
    // Ranked over both: Bob gave most last year. Ada gave this year (in euros): not lapsed.
    let lybunt = call(&host, "lybunt", json!({"year": 2026})).unwrap();
    assert_eq!(
        lybunt,
        json!([{"contactId": bob, "name": "Bob Old", "email": null, "lastGiftDate": "2025-06-01", "lastGiftAmount": "70",
                "lifetimeGiving": "80", "lifetimeRecognition": "80"}])
    );
    let run = call(&host, "applyExchangeRates", json!({"first": 1})).unwrap();
    // Stopped after one: the other two are left to look at.
    assert_eq!(run, json!({"updated": 1, "remaining": 2, "missing": []}));
    let run = call(&host, "applyExchangeRates", json!({})).unwrap();
    assert_eq!(
        run,
        json!({"updated": 1, "remaining": 0, "missing": [{"currency": "EUR", "from": "2026-02-01", "to": "2026-02-01", "gifts": 1}]})
    );
    let converted: Vec<_> =
        host.records("donation").iter().map(|g| g.str("exchangeRateSource").map(str::to_owned)).collect();
    assert_eq!(converted.iter().filter(|s| s.as_deref() == Some("SAME_CURRENCY")).count(), 4);
    rate(&host, "EUR", "1.1", "2026-01-01");
    host.run_job::<Donors>("exchange-rates").unwrap();
    assert!(host.logs().iter().any(|l| l.contains("\"updated\":1")), "{:?}", host.logs());
    assert_eq!(summaries(&host, &[&ada])[0]["lifetimeGiving"], "155");
    assert_eq!(
        call(&host, "applyExchangeRates", json!({})).unwrap(),
        json!({"updated": 0, "remaining": 0, "missing": []})
    );
    let err = call(&host, "applyExchangeRates", json!({"first": 0})).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("first"));
}

#[test]
fn recognition_adds_soft_credits_once_per_gift() {
    let host = host();
    let ada = host.insert("contact", json!({"firstName": "Ada"}));
    let bob = host.insert("contact", json!({"firstName": "Bob", "lastName": "Spouse"}));
    let cy = host.insert("contact", json!({"firstName": "Cy"}));
    rate(&host, "EUR", "1.1", "2026-01-01");
    let record = |arguments: Json| call(&host, "recordDonation", arguments).unwrap().as_str().unwrap().to_owned();
    // Ada's gifts, crediting Bob (all of each) and Cy (40 of the first).
    let first = record(json!({"contactId": ada, "amount": "100", "receivedDate": "2026-02-01",
        "softCredits": [{"contactId": bob, "role": "SPOUSE"}, {"contactId": cy, "amount": "40", "role": "FUNDRAISER"}]}));
    record(
        json!({"contactId": ada, "amount": "50", "currency": "EUR", "receivedDate": "2026-03-01", "softCredits": [{"contactId": bob}]}),
    );
    record(
        json!({"contactId": ada, "amount": "30", "receivedDate": "2025-06-01", "softCredits": [{"contactId": bob}]}),
    );
    let bobs = record(json!({"contactId": bob, "amount": "20", "receivedDate": "2025-05-01"}));
    // A refunded gift's credit counts nowhere.
    let refunded = record(
        json!({"contactId": ada, "amount": "70", "receivedDate": "2026-04-01", "softCredits": [{"contactId": cy}]}),
    );
    call(&host, "refundDonation", json!({"id": refunded})).unwrap();
    // Refused: crediting the donor; crediting someone twice.
    let err =
        call(&host, "recordDonation", json!({"contactId": ada, "amount": "5", "softCredits": [{"contactId": ada}]}))
            .unwrap_err();
    assert_eq!(err.field.as_deref(), Some("softCredits[0]"));
    let err = call(
        &host,
        "recordDonation",
        json!({"contactId": ada, "amount": "5", "softCredits": [{"contactId": bob}, {"contactId": bob}]}),
    )
    .unwrap_err();
    assert_eq!(err.field.as_deref(), Some("softCredits[1]"));
    // The hook refuses a new credit to the gift's donor; one there already (from a merge) and
    // a second credit on a gift count once.
    let own = json!({"donationId": bobs, "contactId": bob, "amount": "20", "amountCurrency": "USD"});
    assert!(write(&host, "softCredit", own.clone()).unwrap_err().contains("donor"));
    host.insert("softCredit", own);
    write(
        &host,
        "softCredit",
        json!({"donationId": first, "contactId": bob, "amount": "10", "amountCurrency": "USD", "role": "HOUSEHOLD"}),
    )
    .unwrap();
    let euros = json!({"donationId": first, "contactId": cy, "amount": "10", "amountCurrency": "EUR"});
    assert!(write(&host, "softCredit", euros).unwrap_err().contains("currency"));

    let values = summaries(&host, &[&ada, &bob, &cy]);
    let totals = |v: &Json| {
        ["lifetimeGiving", "softCredits", "recognitionTotal", "recognitionThisYear", "recognitionLastYear"]
            .map(|f| v[f].as_str().unwrap().to_owned())
    };
    // Ada: 100 + 55 + 30, the refund left out; nobody credits her.
    assert_eq!(totals(&values[0]), ["185", "0", "185", "155", "30"]);
    // Bob: his own 20, credited with 100 + 55 + 30.
    assert_eq!(totals(&values[1]), ["20", "185", "205", "155", "50"]);
    // Cy never gave: credited with 40.
    assert_eq!(totals(&values[2]), ["0", "40", "40", "40", "0"]);
    assert_eq!((values[2]["giftCount"].as_i64(), values[2]["status"].as_str()), (Some(0), None));
    // Hard totals count each gift once: a household of Ada and Bob gave 205, not 390.
    let household = host.insert("household", json!({"name": "Lovelace"}));
    for member in [&ada, &bob] {
        host.insert("householdMember", json!({"householdId": household, "contactId": member}));
    }
    let giving = host.compute_field::<Donors>("household", "giving", std::slice::from_ref(&household)).unwrap();
    assert_eq!(giving[0]["lifetimeGiving"], "205");
    // Bob gave last year, not this year: LYBUNT, with what he was credited with before this year.
    let lybunt = call(&host, "lybunt", json!({"year": 2026})).unwrap();
    assert_eq!(lybunt[0]["contactId"], json!(bob));
    assert_eq!(
        (lybunt[0]["lifetimeGiving"].as_str(), lybunt[0]["lifetimeRecognition"].as_str()),
        (Some("20"), Some("50"))
    );
}

#[test]
fn companies_get_year_end_receipts_too() {
    let host = host().at("2027-01-05T09:00:00.000000Z");
    let acme = host.insert("company", json!({"name": "Acme Ltd"}));
    let ada = host.insert("contact", json!({"firstName": "Ada", "lastName": "Lovelace"}));
    rate(&host, "EUR", "1.1", "2026-01-01");
    for arguments in [
        json!({"companyId": acme, "amount": "500", "receivedDate": "2026-03-01"}),
        json!({"companyId": acme, "amount": "100", "currency": "EUR", "receivedDate": "2026-09-01"}),
        // A gift with a contact is the contact's, whoever's company paid it.
        json!({"contactId": ada, "companyId": acme, "amount": "10", "receivedDate": "2026-05-05"}),
    ] {
        call(&host, "recordDonation", arguments).unwrap();
    }
    let run = call(&host, "issueYearEndReceipts", json!({"year": 2026})).unwrap();
    assert_eq!(
        run,
        json!({"year": 2026, "issued": 2, "alreadyIssued": 0, "remaining": 0, "skipped": 0,
               "receiptNumbers": ["R-2026-000001", "R-2026-000002"]})
    );
    let receipts = host.records("receipt");
    let company = receipts.iter().find(|r| r.str("companyId") == Some(acme.as_str())).unwrap();
    assert_eq!(company.str("key"), Some(format!("2026:company:{acme}").as_str()));
    assert_eq!(
        (company.str("contactId"), company.str("total"), company.fields["gifts"].as_i64()),
        (None, Some("610"), Some(2))
    );
    let text = company.str("text").unwrap();
    assert!(text.contains("Donor: Acme Ltd"), "{text}");
    assert!(text.contains("2026-09-01  110 USD (100 EUR at 1.1)") && text.contains("Total: 610 USD"), "{text}");
    let note = host.records("activity").into_iter().find(|a| a.str("companyId") == Some(acme.as_str())).unwrap();
    assert_eq!(note.str("subject"), Some("Year-end receipt R-2026-000002 (2026)"));
    let person = receipts.iter().find(|r| r.str("contactId") == Some(ada.as_str())).unwrap();
    assert_eq!((person.str("key"), person.str("total")), (Some(format!("2026:{ada}").as_str()), Some("10")));
    let again = call(&host, "issueYearEndReceipts", json!({"year": 2026})).unwrap();
    assert_eq!((again["issued"].as_i64(), again["alreadyIssued"].as_i64()), (Some(0), Some(2)));
    // A deleted donor (Kith's host no longer finds them) gets none.
    gift(&host, "00000000-0000-7000-8000-0000000000ff", "9", "2026-02-02");
    let run = call(&host, "issueYearEndReceipts", json!({"year": 2026})).unwrap();
    assert_eq!((run["issued"].as_i64(), run["skipped"].as_i64()), (Some(0), Some(1)));
}

#[test]
fn lapsed_lists_leave_deleted_donors_out_and_name_everyone() {
    let host = host();
    let ada = host.insert("contact", json!({"firstName": "Ada", "lastName": "Lovelace"}));
    let nameless = host.insert("contact", json!({"email": "nameless@example.org"}));
    // A contact deleted since their gift: Kith's host does not find deleted records.
    let deleted = "00000000-0000-7000-8000-0000000000ff";
    gift(&host, &ada, "10", "2025-03-01");
    gift(&host, &nameless, "20", "2025-04-01");
    gift(&host, deleted, "500", "2025-05-01");
    let lybunt = call(&host, "lybunt", json!({"year": 2026})).unwrap();
    let rows: Vec<(&Json, &Json)> = lybunt.as_array().unwrap().iter().map(|r| (&r["contactId"], &r["name"])).collect();
    assert_eq!(rows, vec![(&json!(nameless), &json!("nameless@example.org")), (&json!(ada), &json!("Ada Lovelace"))]);
    let top = call(&host, "lybunt", json!({"year": 2026, "first": 1})).unwrap();
    assert_eq!(top[0]["contactId"], json!(nameless), "the deleted donor takes no place");
    let sybunt = call(&host, "sybunt", json!({"year": 2026})).unwrap();
    assert_eq!(sybunt.as_array().unwrap().len(), 2);
    assert!(!lybunt.to_string().contains("(unnamed)") && !sybunt.to_string().contains(deleted));
    // Retention counts gifts received: the deleted donor's too.
    assert_eq!(call(&host, "donorRetention", json!({"year": 2026})).unwrap()["lapsedDonors"], 3);
}

#[test]
fn the_privacy_export_lists_receipts_and_remembered_thanks() {
    let host = host();
    let ada = host.insert("contact", json!({"firstName": "Ada", "lastName": "Lovelace", "ownerId": "u-1"}));
    let bob = host.insert("contact", json!({"firstName": "Bob"}));
    let covered = [gift(&host, &ada, "10", "2025-03-01"), gift(&host, &ada, "15", "2025-07-01")];
    gift(&host, &bob, "5", "2025-01-01");
    call(&host, "issueYearEndReceipts", json!({"year": 2025})).unwrap();
    let recent = json!({"contactId": ada, "amount": "25", "amountCurrency": "USD", "receivedDate": "2026-06-14", "status": "RECEIVED"});
    let thanked = host.insert("donation", recent.clone());
    host.on_event::<Donors>(&Event::new("donation.created", "donation", Some(&thanked), recent)).unwrap();
    let task = host.records("activity").into_iter().find(|a| a.str("kind") == Some("TASK")).unwrap();

    let export = query(&host, "donorPrivacyExport", json!({"contactId": ada})).unwrap();
    assert_eq!((export["plugin"].as_str(), export["contactId"].as_str()), (Some("donors"), Some(ada.as_str())));
    let receipts = export["receipts"].as_array().unwrap();
    assert_eq!(receipts.len(), 1);
    let receipt = &receipts[0];
    assert_eq!(
        (receipt["number"].as_str(), receipt["year"].as_i64(), receipt["total"].as_str(), receipt["gifts"].as_i64()),
        (Some("R-2025-000001"), Some(2025), Some("25"), Some(2))
    );
    assert_eq!(receipt["currency"], "USD");
    assert_eq!(receipt["donationIds"], json!(covered));
    assert!(receipt["text"].as_str().unwrap().contains("Donor: Ada Lovelace"));
    assert_eq!(
        export["keyValue"],
        json!([{"key": format!("thanked:{thanked}"), "value": task.id, "donationId": thanked,
                "meaning": "the thank-you task (an activity id) created for this person's gift"}])
    );
    assert_eq!(export["computed"]["donorSummary"]["lifetimeGiving"], "50");
    // Only what is about them.
    let other = query(&host, "donorPrivacyExport", json!({"contactId": bob})).unwrap();
    assert_eq!(
        (other["receipts"][0]["total"].as_str(), other["keyValue"].as_array().map(Vec::len)),
        (Some("5"), Some(0))
    );
    let nobody =
        query(&host, "donorPrivacyExport", json!({"contactId": "00000000-0000-7000-8000-0000000000ff"})).unwrap();
    assert_eq!(
        (nobody["receipts"].as_array().map(Vec::len), nobody["computed"]["donorSummary"].is_null()),
        (Some(0), true)
    );
}
