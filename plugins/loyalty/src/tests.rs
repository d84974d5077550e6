//! Unit tests of the loyalty plugin against the SDK's in-memory test host (which neither
//! enforces unique fields nor rolls back, nor runs calls at once). Idempotency under real
//! concurrency, atomicity and the ledger invariant on both databases are in
//! `tests/it/loyalty.rs`.

use kith_plugin_sdk::testing::TestHost;
use kith_plugin_sdk::{Call, Change, Event, Verdict};
use serde_json::{Value as Json, json};

use crate::Loyalty;

const OWN: &[&str] = &[
    "loyaltyProgramme",
    "loyaltyTier",
    "loyaltyMember",
    "loyaltyEntry",
    "loyaltyEarnRule",
    "loyaltyReward",
    "loyaltyRedemption",
    "loyaltyPurchase",
    "loyaltyTierChange",
    "loyaltyNotice",
];

fn host() -> TestHost {
    let mut host = TestHost::new()
        .grant("contacts:read")
        .grant("contacts:write")
        .grant("deals:read")
        .grant("tickets:read")
        .grant("kv")
        .at("2026-06-15T10:00:00.000Z");
    for object in OWN {
        host = host.own(object);
    }
    host
}

fn call(host: &TestHost, name: &str, arguments: Json) -> kith_plugin_sdk::Result<Json> {
    host.call::<Loyalty>(&Call::new(name, arguments), true)
}

/// Writes a record as Kith does: the before-write hook first (as a user).
fn write(host: &TestHost, object: &str, fields: Json) -> Result<String, String> {
    let mut fields = fields;
    let mut change = Change::create(object, fields.clone());
    change.actor = "user:ada".into();
    match host.before_write::<Loyalty>(&change) {
        Verdict::Allow => {}
        Verdict::Modify(changes) => fields.as_object_mut().unwrap().extend(changes),
        Verdict::Deny(reason) => return Err(reason),
        other => panic!("{other:?}"),
    }
    Ok(host.insert(object, fields))
}

/// A programme (points worth 0.01 EUR, expiring after 12 months) with a PURCHASE rule of one
/// point per euro and two tiers: Silver from 0, Gold from 500 (×2).
fn programme(host: &TestHost) -> (String, String, String) {
    let programme = write(
        host,
        "loyaltyProgramme",
        json!({"name": "Friends", "pointValue": "0.01", "pointValueCurrency": "EUR", "expiryMonths": 12, "referralBonus": 50}),
    )
    .unwrap();
    write(host, "loyaltyEarnRule", json!({"programmeId": programme, "name": "Shop", "trigger": "PURCHASE", "currency": "EUR", "pointsPerUnit": "1"}))
        .unwrap();
    let silver =
        write(host, "loyaltyTier", json!({"programmeId": programme, "name": "Silver", "threshold": 0})).unwrap();
    let gold = write(
        host,
        "loyaltyTier",
        json!({"programmeId": programme, "name": "Gold", "threshold": 500, "multiplier": "2"}),
    )
    .unwrap();
    (programme, silver, gold)
}

fn contact(host: &TestHost, name: &str) -> String {
    host.insert("contact", json!({"firstName": name, "lastName": "Doe", "email": format!("{name}@example.org")}))
}

fn balance(host: &TestHost, member: &str) -> i64 {
    host.record("loyaltyMember", member).unwrap().fields["balance"].as_i64().unwrap()
}

/// The sum of a member's ledger.
fn ledger_sum(host: &TestHost, member: &str) -> i64 {
    host.records("loyaltyEntry")
        .iter()
        .filter(|e| e.str("memberId") == Some(member))
        .map(|e| e.fields["points"].as_i64().unwrap())
        .sum()
}

fn purchase(host: &TestHost, contact: &str, amount: &str, reference: &str) -> Json {
    call(
        host,
        "recordPurchase",
        json!({"contactId": contact, "amount": amount, "currency": "eur", "reference": reference}),
    )
    .unwrap()
}

#[test]
fn purchases_earn_once_per_reference_and_upgrade_tiers_at_once() {
    let host = host();
    let (_, silver, gold) = programme(&host);
    let ada = contact(&host, "ada");
    let first = purchase(&host, &ada, "120.75", "ORDER-1");
    assert_eq!(first["points"], 120);
    assert_eq!(first["duplicate"], false);
    let member = first["memberId"].as_str().unwrap().to_owned();
    let record = host.record("loyaltyMember", &member).unwrap();
    assert_eq!(record.str("tierId"), Some(silver.as_str()), "enrolled at the entry tier");
    assert!(record.str("number").unwrap().starts_with("FRIE-"));
    // A retry of the same reference: nothing more.
    let again = purchase(&host, &ada, "120.75", "ORDER-1");
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["points"], 120);
    assert_eq!(balance(&host, &member), 120);
    // Reaching 500 qualifying points moves the member to Gold at once; Gold doubles.
    purchase(&host, &ada, "400", "ORDER-2");
    let record = host.record("loyaltyMember", &member).unwrap();
    assert_eq!(record.str("tierId"), Some(gold.as_str()));
    let changes = host.records("loyaltyTierChange");
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].str("reason"), Some("UPGRADE"));
    let doubled = purchase(&host, &ada, "10", "ORDER-3");
    assert_eq!(doubled["points"], 20);
    assert_eq!(balance(&host, &member), 540);
    assert_eq!(ledger_sum(&host, &member), 540);
    // Bad input is refused with the argument named.
    let err =
        call(&host, "recordPurchase", json!({"contactId": ada, "amount": "-3", "currency": "EUR", "reference": "X"}))
            .unwrap_err();
    assert_eq!(err.field.as_deref(), Some("amount"));
    let err =
        call(&host, "recordPurchase", json!({"contactId": ada, "amount": "3", "currency": "EURO", "reference": "X"}))
            .unwrap_err();
    assert_eq!(err.field.as_deref(), Some("currency"));
    let huge = "79228162514264337593543950335";
    let err =
        call(&host, "recordPurchase", json!({"contactId": ada, "amount": huge, "currency": "EUR", "reference": "Y"}))
            .unwrap_err();
    assert_eq!(err.field.as_deref(), Some("amount"), "{err:?}");
    // A refund gives back what the purchase earned, once.
    let refund = call(&host, "refundPurchase", json!({"reference": "ORDER-3"})).unwrap();
    assert_eq!(refund["points"], -20);
    let twice = call(&host, "refundPurchase", json!({"reference": "ORDER-3"})).unwrap();
    assert_eq!(twice["duplicate"], true);
    assert_eq!(balance(&host, &member), 520);
    assert_eq!(ledger_sum(&host, &member), 520);
}

#[test]
fn redemptions_take_the_balance_and_the_stock_and_cancelling_gives_both_back() {
    let host = host();
    let (programme, _, _) = programme(&host);
    let ada = contact(&host, "ada");
    let member = purchase(&host, &ada, "150", "O-1")["memberId"].as_str().unwrap().to_owned();
    let mug =
        write(&host, "loyaltyReward", json!({"programmeId": programme, "name": "Mug", "pointsCost": 100, "stock": 1}))
            .unwrap();
    let redeemed = call(&host, "redeemReward", json!({"memberId": member, "rewardId": mug, "key": "k1"})).unwrap();
    assert_eq!(redeemed["balance"], 50);
    assert_eq!(redeemed["code"].as_str().unwrap().len(), 10);
    // The same key: the same redemption.
    let again = call(&host, "redeemReward", json!({"memberId": member, "rewardId": mug, "key": "k1"})).unwrap();
    assert_eq!(again["redemptionId"], redeemed["redemptionId"]);
    assert_eq!(host.record("loyaltyReward", &mug).unwrap().fields["stock"], 0);
    // Not enough points; then none left in stock.
    let err = call(&host, "redeemReward", json!({"memberId": member, "rewardId": mug})).unwrap_err();
    assert!(err.message.contains("50 points available"), "{err:?}");
    purchase(&host, &ada, "100", "O-2");
    let err = call(&host, "redeemReward", json!({"memberId": member, "rewardId": mug})).unwrap_err();
    assert!(err.message.contains("out of stock"), "{err:?}");
    // Cancelling gives the points and the mug back, once.
    let id = redeemed["redemptionId"].as_str().unwrap();
    let cancelled = call(&host, "cancelRedemption", json!({"id": id})).unwrap();
    assert_eq!(cancelled["points"], 100);
    assert_eq!(call(&host, "cancelRedemption", json!({"id": id})).unwrap()["duplicate"], true);
    assert_eq!(host.record("loyaltyReward", &mug).unwrap().fields["stock"], 1);
    assert_eq!(balance(&host, &member), 250);
    assert_eq!(ledger_sum(&host, &member), 250);
    let member_record = host.record("loyaltyMember", &member).unwrap();
    assert_eq!(member_record.fields["redeemedPoints"], 0);
    // A cancelled redemption cannot be fulfilled.
    let err = call(&host, "fulfilRedemption", json!({"id": id})).unwrap_err();
    assert!(err.message.contains("cancelled"), "{err:?}");
}

#[test]
fn expiry_takes_only_what_the_balance_holds_beyond_valid_lots() {
    let host = host();
    let (programme, _, _) = programme(&host);
    let ada = contact(&host, "ada");
    let member = call(&host, "enrolMember", json!({"programmeId": programme, "contactId": ada})).unwrap();
    let member = member.as_str().unwrap().to_owned();
    // Lots as the ledger holds them: 100 expired last month, 50 valid till next year; 70 spent.
    let lot = |points: i64, expires: &str, key: &str| {
        host.insert(
            "loyaltyEntry",
            json!({"memberId": member, "programmeId": programme, "contactId": ada, "kind": "EARN", "points": points,
                   "lot": true, "qualifying": true, "expiresAt": expires, "sourceKey": key}),
        )
    };
    lot(100, "2026-05-01T00:00:00.000000Z", "a");
    lot(50, "2027-05-01T00:00:00.000000Z", "b");
    host.insert(
        "loyaltyEntry",
        json!({"memberId": member, "programmeId": programme, "kind": "REDEEM", "points": -70, "lot": false, "sourceKey": "c"}),
    );
    let current = host.record("loyaltyMember", &member).unwrap();
    host.run(|| {
        kith_plugin_sdk::records::update("loyaltyMember", &member, &json!({"balance": 80}), Some(current.version))
            .unwrap()
    });
    // Of the 80 left, 50 are still valid: 30 expire (the other 70 of the old lot were spent).
    let expired = call(&host, "expirePoints", json!({"programmeId": programme})).unwrap();
    assert_eq!(expired, 30);
    assert_eq!(balance(&host, &member), 50);
    assert_eq!(ledger_sum(&host, &member), 50);
    // Again: nothing more.
    assert_eq!(call(&host, "expirePoints", json!({"programmeId": programme})).unwrap(), 0);
    host.run_job::<Loyalty>("expiry").unwrap();
    assert_eq!(balance(&host, &member), 50);
    let expires = host.records("loyaltyEntry").into_iter().filter(|e| e.str("kind") == Some("EXPIRE")).count();
    assert_eq!(expires, 1);
}

#[test]
fn users_cannot_write_the_ledger_or_edit_balances_and_members_get_their_numbers() {
    let host = host();
    let (programme, silver, _) = programme(&host);
    let ada = contact(&host, "ada");
    let err = write(&host, "loyaltyEntry", json!({"kind": "EARN", "points": 1000})).unwrap_err();
    assert!(err.contains("append-only"), "{err}");
    // Enrolled through the generic API (or an import): number, codes and counters filled in.
    let member = write(&host, "loyaltyMember", json!({"programmeId": programme, "contactId": ada})).unwrap();
    let record = host.record("loyaltyMember", &member).unwrap();
    assert_eq!(record.fields["balance"], 0);
    assert_eq!(record.str("tierId"), Some(silver.as_str()));
    assert_eq!(record.str("referralCode").unwrap().len(), 8);
    // Twice: refused.
    let err = write(&host, "loyaltyMember", json!({"programmeId": programme, "contactId": ada})).unwrap_err();
    assert!(err.contains("already a member"), "{err}");
    let err =
        write(&host, "loyaltyMember", json!({"programmeId": programme, "contactId": ada, "balance": 10})).unwrap_err();
    assert!(err.contains("starts at 0"), "{err}");
    // Editing the balance by hand is refused; the status may change.
    let before = record.fields.clone();
    let mut after = before.clone();
    after["balance"] = json!(1_000_000);
    let mut change = Change::update("loyaltyMember", before.clone(), after);
    change.actor = "user:ada".into();
    assert!(matches!(host.before_write::<Loyalty>(&change), Verdict::Deny(_)));
    let mut after = before.clone();
    after["status"] = json!("SUSPENDED");
    let mut change = Change::update("loyaltyMember", before, after);
    change.actor = "user:ada".into();
    assert!(matches!(host.before_write::<Loyalty>(&change), Verdict::Allow));
    // Whoever referred them is a member of the same programme.
    let other =
        write(&host, "loyaltyProgramme", json!({"name": "Other", "pointValue": "1", "pointValueCurrency": "EUR"}))
            .unwrap();
    let bob = contact(&host, "bob");
    let err = write(&host, "loyaltyMember", json!({"programmeId": other, "contactId": bob, "referredById": member}))
        .unwrap_err();
    assert!(err.contains("same programme"), "{err}");
    // Programmes, rules and rewards are checked.
    assert!(write(&host, "loyaltyProgramme", json!({"name": "Bad", "pointValue": "0"})).is_err());
    assert!(
        write(
            &host,
            "loyaltyEarnRule",
            json!({"programmeId": programme, "name": "x", "trigger": "EVENT", "event": "ticket", "points": 5})
        )
        .is_err()
    );
    assert!(write(&host, "loyaltyReward", json!({"programmeId": programme, "name": "x", "pointsCost": 0})).is_err());
}

#[test]
fn event_rules_earn_once_per_record_and_deals_reopened_give_back() {
    let host = host();
    let (programme, _, _) = programme(&host);
    write(
        &host,
        "loyaltyEarnRule",
        json!({"programmeId": programme, "name": "Five stars", "trigger": "EVENT", "event": "ticket.updated", "points": 25, "conditions": {"satisfaction": 5}}),
    )
    .unwrap();
    write(&host, "loyaltyEarnRule", json!({"programmeId": programme, "name": "Deals", "trigger": "DEAL_WON", "currency": "EUR", "pointsPerUnit": "0.1"}))
        .unwrap();
    let ada = contact(&host, "ada");
    let rated = |id: &str, satisfaction: i64| {
        Event::new("ticket.updated", "ticket", Some(id), json!({"contactId": ada, "satisfaction": satisfaction}))
    };
    host.on_events::<Loyalty>(&[rated("t1", 4), rated("t1", 5), rated("t1", 5), rated("t2", 5)]).unwrap();
    let member = host.records("loyaltyMember")[0].id.clone();
    assert_eq!(balance(&host, &member), 50, "25 for each ticket rated 5, once each");
    let mut won =
        Event::new("deal.won", "deal", Some("d1"), json!({"contactId": ada, "amount": "1000", "currency": "EUR"}));
    won.id = "e-won".into();
    host.on_event::<Loyalty>(&won).unwrap();
    host.on_event::<Loyalty>(&won).unwrap();
    assert_eq!(balance(&host, &member), 150, "a redelivered event earns once");
    let mut reopened =
        Event::new("deal.stage_changed", "deal", Some("d1"), json!({"contactId": ada, "amount": "1000"}));
    reopened.payload["stageKind"] = json!("OPEN");
    reopened.id = "e-open".into();
    host.on_event::<Loyalty>(&reopened).unwrap();
    host.on_event::<Loyalty>(&reopened).unwrap();
    assert_eq!(balance(&host, &member), 50);
    assert_eq!(ledger_sum(&host, &member), 50);
}

#[test]
fn a_referral_pays_both_sides_once_at_the_first_purchase() {
    let host = host();
    let (programme, _, _) = programme(&host);
    let ada = contact(&host, "ada");
    let bob = contact(&host, "bob");
    let ada_member = call(&host, "enrolMember", json!({"programmeId": programme, "contactId": ada})).unwrap();
    let ada_member = ada_member.as_str().unwrap();
    let code = host.record("loyaltyMember", ada_member).unwrap().str("referralCode").unwrap().to_owned();
    let err = call(&host, "enrolMember", json!({"programmeId": programme, "contactId": bob, "referralCode": "NOPE"}))
        .unwrap_err();
    assert_eq!(err.field.as_deref(), Some("referralCode"));
    let bob_member = call(
        &host,
        "enrolMember",
        json!({"programmeId": programme, "contactId": bob, "referralCode": code.to_lowercase()}),
    )
    .unwrap();
    let bob_member = bob_member.as_str().unwrap();
    purchase(&host, &bob, "10", "B-1");
    purchase(&host, &bob, "10", "B-2");
    assert_eq!(balance(&host, bob_member), 70, "20 earned and the 50 bonus once");
    assert_eq!(balance(&host, ada_member), 50);
}

#[test]
fn reports_add_up_the_ledger() {
    let host = host();
    let (programme, _, _) = programme(&host);
    for (i, name) in ["ada", "bob", "cy"].iter().enumerate() {
        let c = contact(&host, name);
        purchase(&host, &c, &format!("{}", 100 * (i + 1)), &format!("R-{i}"));
    }
    let liability = call(&host, "loyaltyLiability", json!({"programmeId": programme})).unwrap();
    assert_eq!(liability[0]["outstandingPoints"], 600);
    assert_eq!(liability[0]["liability"], "6");
    assert_eq!(liability[0]["members"], 3);
    let top = call(&host, "loyaltyTopMembers", json!({"programmeId": programme, "first": 2})).unwrap();
    assert_eq!(top.as_array().unwrap().len(), 2);
    assert_eq!(top[0]["balance"], 300);
    let tiers = call(&host, "loyaltyTierDistribution", json!({"programmeId": programme})).unwrap();
    assert_eq!(tiers[0]["tier"], "Silver");
    assert_eq!(tiers[0]["members"], 3);
    let months = call(&host, "loyaltyEarnAndBurn", json!({"programmeId": programme, "months": 2})).unwrap();
    assert_eq!(months.as_array().unwrap().len(), 2);
    assert_eq!(months[1]["earned"], 600, "{months}");
    let points =
        host.compute_field::<Loyalty>("contact", "loyaltyPoints", &[host.records("contact")[2].id.clone()]).unwrap();
    assert_eq!(points, vec![json!(300)]);
}

#[test]
fn tiers_go_down_only_when_the_window_ends_and_the_history_says_why() {
    let host = host();
    let (programme, silver, gold) = programme(&host);
    let ada = contact(&host, "ada");
    let member = call(&host, "enrolMember", json!({"programmeId": programme, "contactId": ada})).unwrap();
    let member = member.as_str().unwrap().to_owned();
    // 600 qualifying points earned 14 months ago: Gold then; the window ended last month.
    host.insert(
        "loyaltyEntry",
        json!({"memberId": member, "programmeId": programme, "kind": "EARN", "points": 600, "lot": true, "qualifying": true,
               "sourceKey": "old", "createdAt": "2025-04-15T10:00:00.000000Z"}),
    );
    let current = host.record("loyaltyMember", &member).unwrap();
    host.run(|| {
        kith_plugin_sdk::records::update(
            "loyaltyMember",
            &member,
            &json!({"balance": 600, "tierId": gold, "tierReviewAt": "2026-05-15T10:00:00.000000Z"}),
            Some(current.version),
        )
        .unwrap()
    });
    // A member whose window has not ended keeps their tier whatever they earned lately.
    let bob = contact(&host, "bob");
    let bob_member = call(&host, "enrolMember", json!({"programmeId": programme, "contactId": bob})).unwrap();
    let bob_member = bob_member.as_str().unwrap().to_owned();
    let moved = call(&host, "reviewTiers", json!({"programmeId": programme})).unwrap();
    assert_eq!(moved, 1);
    let record = host.record("loyaltyMember", &member).unwrap();
    assert_eq!(record.str("tierId"), Some(silver.as_str()), "down to what the last 12 months reach");
    assert_eq!(record.str("tierReviewAt"), Some("2027-06-15T10:00:00.000000Z"), "a new window");
    let change = host.records("loyaltyTierChange").into_iter().last().unwrap();
    assert_eq!(change.str("reason"), Some("DOWNGRADE"));
    assert_eq!(change.fields["qualifyingPoints"], 0);
    assert_eq!(host.record("loyaltyMember", &bob_member).unwrap().str("tierId"), Some(silver.as_str()));
    // Reviewing again moves nobody.
    assert_eq!(call(&host, "reviewTiers", json!({"programmeId": programme})).unwrap(), 0);
}

#[test]
fn points_about_to_expire_are_noticed_once_and_forecast() {
    let host = host().setting("expiring_days", json!(30));
    let (programme, _, _) = programme(&host);
    let ada = contact(&host, "ada");
    let member = call(&host, "enrolMember", json!({"programmeId": programme, "contactId": ada})).unwrap();
    let member = member.as_str().unwrap().to_owned();
    let lot = |points: i64, expires: &str, key: &str| {
        host.insert(
            "loyaltyEntry",
            json!({"memberId": member, "programmeId": programme, "contactId": ada, "kind": "EARN", "points": points,
                   "lot": true, "qualifying": true, "expiresAt": expires, "sourceKey": key}),
        )
    };
    // 100 expire in ten days, 40 in two months; 30 were spent.
    lot(100, "2026-06-25T00:00:00.000000Z", "a");
    lot(40, "2026-08-20T00:00:00.000000Z", "b");
    let current = host.record("loyaltyMember", &member).unwrap();
    host.run(|| {
        kith_plugin_sdk::records::update("loyaltyMember", &member, &json!({"balance": 110}), Some(current.version))
            .unwrap()
    });
    let standing = call(&host, "loyaltyStanding", json!({"memberId": member})).unwrap();
    assert_eq!(standing["expiringSoon"], 70, "of 110, the 40 of the later lot stay: {standing}");
    host.run_job::<Loyalty>("expiry").unwrap();
    host.run_job::<Loyalty>("expiry").unwrap();
    let notices = host.records("loyaltyNotice");
    assert_eq!(notices.len(), 1, "once per member and expiry day");
    assert_eq!(notices[0].fields["points"], 70);
    assert_eq!(notices[0].str("expiresAt"), Some("2026-06-25T00:00:00.000000Z"));
    let contact = host.record("contact", &ada).unwrap();
    assert_eq!(contact.fields["customFields"]["loyaltyPointsExpiring"], 70);
    // The forecast: 70 by the end of June, all 110 by the end of August.
    let forecast = call(&host, "loyaltyExpiryForecast", json!({"programmeId": programme, "months": 3})).unwrap();
    assert_eq!(forecast[0], json!({"month": "2026-06-01", "points": 70, "members": 1}));
    assert_eq!(forecast[1]["points"], 70);
    assert_eq!(forecast[2], json!({"month": "2026-08-01", "points": 110, "members": 1}));
}
