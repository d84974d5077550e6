//! The bundled loyalty plugin end to end, on both databases: the guide of
//! `plugins/loyalty/README.md` through GraphQL over HTTP, and the ledger's invariant (every
//! balance is the sum of its ledger and never negative) after a randomised mix of concurrent
//! earns, refunds, redemptions, cancellations, awards, expiries and redelivered events.

use std::collections::HashMap;
use std::sync::Arc;

use kith_core::domain::actor::Role;
use kith_core::plugin::manager::{Grants, PluginManager};
use kith_tests::TestDb;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

use crate::util::{Server, admin, code, eventually, grants_pipeline, plugins_config, token};

/// A plugin runtime over `db` with the bundled loyalty plugin installed and enabled.
async fn loyalty_runtime(db: &TestDb) -> Arc<PluginManager> {
    let runtime = kith_core::plugin::start_runtime(&db.kith, &plugins_config()).await.unwrap();
    let loyalty = kith_core::plugin::bundled::BUNDLED.iter().find(|b| b.id == "loyalty").unwrap();
    runtime.install(&admin(), loyalty.manifest, loyalty.component).await.unwrap();
    runtime.enable(&admin(), "loyalty", Grants::All).await.unwrap();
    runtime.refresh().await.unwrap();
    runtime
}

fn data<'a>(answer: &'a Value, field: &str) -> &'a Value {
    assert!(answer["errors"].is_null(), "{field}: {answer}");
    &answer["data"][field]
}

fn id(answer: &Value, field: &str) -> String {
    data(answer, field)["id"].as_str().unwrap_or_else(|| panic!("{field}: {answer}")).to_owned()
}

async fn rows(db: &TestDb, sql: &str) -> Vec<sea_orm::QueryResult> {
    let conn = db.kith.store.conn();
    conn.query_all_raw(Statement::from_string(conn.get_database_backend(), sql.to_owned())).await.unwrap()
}

async fn execute(db: &TestDb, sql: &str) {
    let conn = db.kith.store.conn();
    conn.execute_raw(Statement::from_string(conn.get_database_backend(), sql.to_owned())).await.unwrap();
}

/// A member's balance as stored.
async fn stored_balance(db: &TestDb, member: &str) -> i64 {
    let sql = format!("SELECT balance FROM p_loyalty_loyalty_member WHERE CAST(id AS TEXT) = '{member}'");
    rows(db, &sql).await[0].try_get_by_index::<i64>(0).unwrap()
}

/// The invariant: every live member's balance is the sum of its live ledger, and not negative;
/// counters agree with the ledger's kinds. Returns the balances by member.
async fn check_ledger(db: &TestDb) -> HashMap<String, i64> {
    let sums: HashMap<String, i64> = rows(
        db,
        "SELECT CAST(member_id AS TEXT), CAST(SUM(points) AS BIGINT) FROM p_loyalty_loyalty_entry WHERE deleted_at IS NULL GROUP BY member_id",
    )
    .await
    .into_iter()
    .map(|r| (r.try_get_by_index::<String>(0).unwrap().to_lowercase(), r.try_get_by_index::<i64>(1).unwrap()))
    .collect();
    let members = rows(
        db,
        "SELECT CAST(id AS TEXT), balance, lifetime_points, redeemed_points, expired_points FROM p_loyalty_loyalty_member WHERE deleted_at IS NULL",
    )
    .await;
    let mut balances = HashMap::new();
    for member in members {
        let id = member.try_get_by_index::<String>(0).unwrap().to_lowercase();
        let balance: i64 = member.try_get_by_index(1).unwrap();
        assert!(balance >= 0, "{}: member {id} has a negative balance {balance}", db.name);
        assert_eq!(
            balance,
            sums.get(&id).copied().unwrap_or(0),
            "{}: member {id}'s balance is not its ledger's sum",
            db.name
        );
        let (lifetime, redeemed, expired): (i64, i64, i64) = (
            member.try_get_by_index(2).unwrap(),
            member.try_get_by_index(3).unwrap(),
            member.try_get_by_index(4).unwrap(),
        );
        assert!(redeemed >= 0 && expired >= 0, "{}: {id}: redeemed {redeemed}, expired {expired}", db.name);
        assert!(lifetime >= 0, "{}: {id}: lifetime {lifetime}", db.name);
        balances.insert(id, balance);
    }
    balances
}

/// `plugins/loyalty/README.md`'s guide, step by step, over GraphQL: a programme with two
/// tiers, an earn rule and a reward; purchases recorded by a script (a retry earns nothing);
/// a redemption; the liability report; a deal won earns and reopened gives back; people cannot
/// write the ledger; a VIEWER cannot record purchases.
#[tokio::test]
async fn the_guide_works_over_graphql() {
    for db in TestDb::all().await {
        let runtime = loyalty_runtime(&db).await;
        let server = Server::start(&db).await;
        let manager = token(&db, Role::Manager).await;
        let agent = token(&db, Role::Agent).await;
        let viewer = token(&db, Role::Viewer).await;
        let gql = |t: &str, q: &str, v: Value| {
            let (server, t, q) = (&server, t.to_owned(), q.to_owned());
            async move { server.gql(&t, &q, v).await }
        };
        // 1. A programme, two tiers, an earn rule and a reward.
        let answer = gql(
            &manager,
            "mutation { createLoyaltyProgramme(input: {name: \"Friends of the Park\", pointValue: \"0.01\", pointValueCurrency: \"EUR\", expiryMonths: 12, referralBonus: 100}) { id code status } }",
            json!({}),
        )
        .await;
        let programme = id(&answer, "createLoyaltyProgramme");
        assert_eq!(data(&answer, "createLoyaltyProgramme")["code"], "FRIE", "{answer}");
        assert_eq!(data(&answer, "createLoyaltyProgramme")["status"], "ACTIVE", "{answer}");
        let tier = "mutation($p: ID!, $n: String!, $t: Int!, $m: Decimal) { createLoyaltyTier(input: {programmeId: $p, name: $n, threshold: $t, multiplier: $m}) { id } }";
        let silver =
            id(&gql(&manager, tier, json!({"p": programme, "n": "Silver", "t": 0})).await, "createLoyaltyTier");
        let gold = id(
            &gql(&manager, tier, json!({"p": programme, "n": "Gold", "t": 1000, "m": "1.5"})).await,
            "createLoyaltyTier",
        );
        let rule = "mutation($p: ID!, $t: LoyaltyEarnRuleTrigger!, $c: String) { createLoyaltyEarnRule(input: {programmeId: $p, name: \"Shop\", trigger: $t, currency: $c, pointsPerUnit: \"1\"}) { id active } }";
        let answer = gql(&manager, rule, json!({"p": programme, "t": "PURCHASE", "c": "EUR"})).await;
        assert_eq!(data(&answer, "createLoyaltyEarnRule")["active"], true);
        gql(&manager, rule, json!({"p": programme, "t": "DEAL_WON", "c": "USD"})).await;
        // A rule that cannot work is refused with the reason.
        let answer = gql(&manager, rule, json!({"p": programme, "t": "PURCHASE", "c": null})).await;
        assert!(answer["errors"][0]["message"].as_str().unwrap_or_default().contains("currency"), "{answer}");
        let answer = gql(
            &manager,
            "mutation($p: ID!) { createLoyaltyReward(input: {programmeId: $p, name: \"Tote bag\", pointsCost: 300, stock: 2}) { id } }",
            json!({"p": programme}),
        )
        .await;
        let tote = id(&answer, "createLoyaltyReward");
        // 2. Purchases from a script (an app's token): the member is enrolled on the first.
        let contact = id(
            &gql(&agent, "mutation { createContact(input: {firstName: \"Ada\", lastName: \"Lovelace\", email: \"ada@example.org\"}) { id } }", json!({})).await,
            "createContact",
        );
        let purchase = "mutation($c: ID!, $a: Decimal!, $r: String!) { recordPurchase(contactId: $c, amount: $a, currency: \"EUR\", reference: $r) { memberId points balance duplicate } }";
        let answer = gql(&agent, purchase, json!({"c": contact, "a": "420.50", "r": "ORDER-1001"})).await;
        let first = data(&answer, "recordPurchase").clone();
        assert_eq!(first["points"], 420);
        assert_eq!(first["duplicate"], false);
        let member = first["memberId"].as_str().unwrap().to_owned();
        // The script retries (a timeout on its side): nothing more is earned.
        let again = gql(&agent, purchase, json!({"c": contact, "a": "420.50", "r": "ORDER-1001"})).await;
        assert_eq!(data(&again, "recordPurchase")["duplicate"], true);
        assert_eq!(data(&again, "recordPurchase")["balance"], 420);
        // 700 more qualify for Gold at once.
        let answer = gql(&agent, purchase, json!({"c": contact, "a": "700", "r": "ORDER-1002"})).await;
        assert_eq!(data(&answer, "recordPurchase")["balance"], 1120);
        let standing = "query($m: ID!) { loyaltyStanding(memberId: $m) { number balance lifetimePoints tier nextTier pointsToNextTier qualifyingPoints expiringSoon } }";
        let answer = gql(&viewer, standing, json!({"m": member})).await;
        let standing_now = data(&answer, "loyaltyStanding");
        assert_eq!(standing_now["tier"], "Gold", "{answer}");
        assert_eq!(standing_now["qualifyingPoints"], 1120);
        assert_eq!(standing_now["expiringSoon"], 0);
        assert!(standing_now["number"].as_str().unwrap().starts_with("FRIE-"));
        // Gold earns half as much again.
        let answer = gql(&agent, purchase, json!({"c": contact, "a": "100", "r": "ORDER-1003"})).await;
        assert_eq!(data(&answer, "recordPurchase")["points"], 150);
        // Bad input: named, nothing written.
        let answer = gql(&agent, purchase, json!({"c": contact, "a": "-5", "r": "ORDER-X"})).await;
        assert_eq!(code(&answer), "BAD_USER_INPUT", "{answer}");
        assert_eq!(answer["errors"][0]["extensions"]["field"], "amount", "{answer}");
        // A VIEWER cannot record purchases.
        let answer = gql(&viewer, purchase, json!({"c": contact, "a": "5", "r": "ORDER-V"})).await;
        assert_eq!(code(&answer), "FORBIDDEN", "{answer}");
        // 3. A redemption: a code, the balance and the stock taken; cancelling gives both back.
        let redeem = "mutation($m: ID!, $r: ID!) { redeemReward(memberId: $m, rewardId: $r) { redemptionId code points balance } }";
        let answer = gql(&agent, redeem, json!({"m": member, "r": tote})).await;
        let redeemed = data(&answer, "redeemReward").clone();
        assert_eq!(redeemed["balance"], 970);
        assert_eq!(redeemed["code"].as_str().unwrap().len(), 10);
        let answer = gql(
            &agent,
            "mutation($id: ID!) { cancelRedemption(id: $id) { points balance } }",
            json!({"id": redeemed["redemptionId"]}),
        )
        .await;
        assert_eq!(data(&answer, "cancelRedemption")["balance"], 1270);
        // 4. The liability report: 1,270 points at 0.01 EUR.
        let answer =
            gql(&viewer, "{ loyaltyLiability { programme members outstandingPoints liability currency } }", json!({}))
                .await;
        let liability = &data(&answer, "loyaltyLiability")[0];
        assert_eq!(liability["outstandingPoints"], 1270, "{answer}");
        assert_eq!(liability["liability"], "12.7");
        assert_eq!(liability["currency"], "EUR");
        // The contact shows their points; the tier history shows the upgrade.
        let answer = gql(
            &viewer,
            "query($id: ID!) { contact(id: $id) { loyaltyPoints loyaltyStandings { tier balance } } }",
            json!({"id": contact}),
        )
        .await;
        assert_eq!(data(&answer, "contact")["loyaltyPoints"], 1270, "{answer}");
        let answer =
            gql(&viewer, "{ loyaltyTierChanges(first: 10) { edges { node { toTierId reason } } } }", json!({})).await;
        let changes = &data(&answer, "loyaltyTierChanges")["edges"];
        assert_eq!(changes[0]["node"]["toTierId"], gold.as_str(), "{answer}");
        assert_eq!(changes[0]["node"]["reason"], "UPGRADE");
        let _ = silver;
        // 5. People cannot write the ledger or a balance.
        let answer = gql(
            &manager,
            "mutation($m: ID!, $p: ID!) { createLoyaltyEntry(input: {memberId: $m, programmeId: $p, kind: EARN, points: 1000000, sourceKey: \"x\"}) { id } }",
            json!({"m": member, "p": programme}),
        )
        .await;
        assert!(answer["errors"][0]["message"].as_str().unwrap_or_default().contains("append-only"), "{answer}");
        let answer = gql(
            &manager,
            "mutation($m: ID!) { updateLoyaltyMember(id: $m, input: {balance: 999999}) { id } }",
            json!({"m": member}),
        )
        .await;
        assert!(answer["errors"][0]["message"].as_str().unwrap_or_default().contains("balance"), "{answer}");
        // A refund gives back what its purchase earned.
        let answer =
            gql(&agent, "mutation { refundPurchase(reference: \"ORDER-1003\") { points balance } }", json!({})).await;
        assert_eq!(data(&answer, "refundPurchase")["points"], -150);
        // 6. A deal won earns (DEAL_WON, USD); reopened, it gives them back.
        let (pipeline, stages) = grants_pipeline(&db).await;
        let deal = id(
            &gql(
                &agent,
                "mutation($p: ID!, $s: ID!, $c: ID!) { createDeal(input: {title: \"Sponsorship\", pipelineId: $p, stageId: $s, contactId: $c, amount: \"2500\"}) { id } }",
                json!({"p": pipeline, "s": stages[0], "c": contact}),
            )
            .await,
            "createDeal",
        );
        let move_to = "mutation($id: ID!, $s: ID!) { updateDeal(id: $id, input: {stageId: $s}) { id } }";
        data(&gql(&agent, move_to, json!({"id": deal, "s": stages[2]})).await, "updateDeal");
        let balance = || async {
            let answer = server.gql(&viewer, standing, json!({"m": member})).await;
            data(&answer, "loyaltyStanding")["balance"].as_i64().unwrap()
        };
        eventually(30, "the deal's points", || async { (balance().await == 1120 + 3750).then_some(()) }).await;
        data(&gql(&agent, move_to, json!({"id": deal, "s": stages[1]})).await, "updateDeal");
        eventually(30, "the deal's points given back", || async { (balance().await == 1120).then_some(()) }).await;
        check_ledger(&db).await;
        runtime.stop().await;
        server.stop().await;
        db.cleanup().await;
    }
}

/// A small deterministic generator (xorshift), so a failing mix can be run again.
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// The ledger's invariant after a randomised mix, run as concurrent GraphQL calls over HTTP:
/// purchases (a third of them repeats of earlier references), refunds (some twice),
/// redemptions of a limited reward, cancellations (some twice), manual awards and deductions,
/// expiries of lots made due (some while purchases run), two redemptions of a balance that
/// covers one, and every event delivered again. Only clear refusals are allowed as errors.
#[tokio::test]
async fn the_ledger_stays_exact_under_concurrency_retries_and_redelivery() {
    for db in TestDb::all().await {
        let runtime = loyalty_runtime(&db).await;
        let server = Server::start(&db).await;
        let manager = token(&db, Role::Manager).await;
        let agent = token(&db, Role::Agent).await;
        let answer = server
            .gql(
                &manager,
                "mutation { createLoyaltyProgramme(input: {name: \"Mix\", pointValue: \"0.01\", pointValueCurrency: \"EUR\", expiryMonths: 12, referralBonus: 10}) { id } }",
                json!({}),
            )
            .await;
        let programme = id(&answer, "createLoyaltyProgramme");
        let rule = "mutation($p: ID!, $t: LoyaltyEarnRuleTrigger!, $c: String) { createLoyaltyEarnRule(input: {programmeId: $p, name: \"r\", trigger: $t, currency: $c, pointsPerUnit: \"1\"}) { id } }";
        data(
            &server.gql(&manager, rule, json!({"p": programme, "t": "PURCHASE", "c": "EUR"})).await,
            "createLoyaltyEarnRule",
        );
        data(
            &server.gql(&manager, rule, json!({"p": programme, "t": "DEAL_WON", "c": "USD"})).await,
            "createLoyaltyEarnRule",
        );
        let reward = "mutation($p: ID!, $c: Int!, $s: Int) { createLoyaltyReward(input: {programmeId: $p, name: \"r\", pointsCost: $c, stock: $s}) { id } }";
        let mug =
            id(&server.gql(&manager, reward, json!({"p": programme, "c": 50, "s": null})).await, "createLoyaltyReward");
        let scarf =
            id(&server.gql(&manager, reward, json!({"p": programme, "c": 30, "s": 5})).await, "createLoyaltyReward");
        let mut contacts = Vec::new();
        let mut members = Vec::new();
        for i in 0..10 {
            let contact = db
                .create(
                    "contact",
                    json!({"firstName": format!("M{i}"), "lastName": "Mix", "email": format!("m{i}@example.org")}),
                )
                .await
                .unwrap()
                .id()
                .to_string();
            let answer = server
                .gql(
                    &agent,
                    "mutation($p: ID!, $c: ID!) { enrolMember(programmeId: $p, contactId: $c) }",
                    json!({"p": programme, "c": contact}),
                )
                .await;
            members.push(data(&answer, "enrolMember").as_str().unwrap().to_owned());
            contacts.push(contact);
        }
        let mut dice = Dice(0x5eed_1234_abcd_0001);
        let mut references: Vec<String> = Vec::new();
        let mut redemptions: Vec<String> = Vec::new();
        let mut succeeded: HashMap<String, usize> = HashMap::new();
        for round in 0..6 {
            let mut calls: Vec<(String, String, Value)> = Vec::new();
            for k in 0..16 {
                let member = dice.below(members.len() as u64) as usize;
                let (token, query, variables) = match dice.below(10) {
                    0..=3 => {
                        let reference = if !references.is_empty() && dice.below(3) == 0 {
                            references[dice.below(references.len() as u64) as usize].clone()
                        } else {
                            format!("R{round}-{k}")
                        };
                        references.push(reference.clone());
                        // A repeated reference goes with its first contact only when it was theirs.
                        let contact = &contacts[member];
                        (agent.clone(), "mutation($c: ID!, $a: Decimal!, $r: String!) { recordPurchase(contactId: $c, amount: $a, currency: \"EUR\", reference: $r) { points } }".to_owned(),
                            json!({"c": contact, "a": format!("{}.{}", 1 + dice.below(150), dice.below(100)), "r": reference}))
                    }
                    4 if !references.is_empty() => {
                        let reference = &references[dice.below(references.len() as u64) as usize];
                        (
                            agent.clone(),
                            "mutation($r: String!) { refundPurchase(reference: $r) { points } }".to_owned(),
                            json!({"r": reference}),
                        )
                    }
                    5 | 6 => {
                        let reward = if dice.below(2) == 0 { &mug } else { &scarf };
                        (
                            agent.clone(),
                            "mutation($m: ID!, $r: ID!) { redeemReward(memberId: $m, rewardId: $r) { redemptionId } }"
                                .to_owned(),
                            json!({"m": members[member], "r": reward}),
                        )
                    }
                    7 if !redemptions.is_empty() => {
                        let redemption = &redemptions[dice.below(redemptions.len() as u64) as usize];
                        (
                            agent.clone(),
                            "mutation($id: ID!) { cancelRedemption(id: $id) { points } }".to_owned(),
                            json!({"id": redemption}),
                        )
                    }
                    8 => {
                        let points = dice.below(80) as i64 - 40;
                        (manager.clone(), "mutation($m: ID!, $p: Int!) { awardPoints(memberId: $m, points: $p, reason: \"mix\") { points } }".to_owned(),
                            json!({"m": members[member], "p": if points == 0 { 5 } else { points }}))
                    }
                    _ => (
                        manager.clone(),
                        "mutation($p: ID!) { expirePoints(programmeId: $p) }".to_owned(),
                        json!({"p": programme}),
                    ),
                };
                calls.push((token, query, variables));
            }
            let answers =
                futures_util::future::join_all(calls.iter().map(|(t, q, v)| server.gql(t, q, v.clone()))).await;
            for answer in &answers {
                if answer["errors"].is_null() {
                    let operation =
                        answer["data"].as_object().and_then(|d| d.keys().next().cloned()).unwrap_or_default();
                    *succeeded.entry(operation).or_default() += 1;
                    if let Some(id) = answer["data"]["redeemReward"]["redemptionId"].as_str() {
                        redemptions.push(id.to_owned());
                    }
                    continue;
                }
                // Refusals the caller can act on: too few points, none in stock, an unknown or
                // foreign reference, a cancelled redemption, a busy balance.
                let answer_code = code(answer);
                assert!(
                    matches!(answer_code, "BAD_USER_INPUT" | "NOT_FOUND" | "CONFLICT"),
                    "{}: round {round}: {answer}",
                    db.name
                );
            }
            // Some lots become due now (as the passing of their year would make them): the
            // next expiry (of a later round, or the last) takes what is left of them.
            let now = kith_core::domain::value::format_datetime(chrono::Utc::now());
            execute(
                &db,
                &format!(
                    "UPDATE p_loyalty_loyalty_entry SET expires_at = {} WHERE lot = {} AND expires_at > {} AND (LENGTH(source_key) + {round}) % 3 = 0",
                    if db.name == "sqlite" { format!("'{now}'") } else { format!("TIMESTAMPTZ '{now}'") },
                    if db.name == "sqlite" { "1" } else { "TRUE" },
                    if db.name == "sqlite" { format!("'{now}'") } else { format!("TIMESTAMPTZ '{now}'") },
                ),
            )
            .await;
            check_ledger(&db).await;
        }
        for operation in
            ["recordPurchase", "refundPurchase", "redeemReward", "cancelRedemption", "awardPoints", "expirePoints"]
        {
            assert!(
                succeeded.get(operation).is_some_and(|n| *n > 0),
                "{}: no {operation} succeeded: {succeeded:?}",
                db.name
            );
        }
        // The last expiry takes what the lots made due leave; none of it twice.
        let before: i64 = check_ledger(&db).await.values().sum();
        let answer =
            server.gql(&manager, "mutation($p: ID!) { expirePoints(programmeId: $p) }", json!({"p": programme})).await;
        let expired = data(&answer, "expirePoints").as_i64().unwrap();
        let after: i64 = check_ledger(&db).await.values().sum();
        assert_eq!(after, before - expired, "{}", db.name);
        let answer =
            server.gql(&manager, "mutation($p: ID!) { expirePoints(programmeId: $p) }", json!({"p": programme})).await;
        assert_eq!(data(&answer, "expirePoints"), 0, "{}: expired twice", db.name);
        let expired_entries: i64 =
            rows(&db, "SELECT CAST(COUNT(*) AS BIGINT) FROM p_loyalty_loyalty_entry WHERE kind = 'EXPIRE'").await[0]
                .try_get_by_index(0)
                .unwrap();
        assert!(expired_entries > 0, "{}: the mix expired nothing: it tests nothing of expiry", db.name);
        // The scarf's stock and its live redemptions add up to 5.
        let stock: i64 =
            rows(&db, &format!("SELECT stock FROM p_loyalty_loyalty_reward WHERE CAST(id AS TEXT) = '{scarf}'")).await
                [0]
            .try_get_by_index(0)
            .unwrap();
        let issued: i64 = rows(
            &db,
            &format!(
                "SELECT CAST(COUNT(*) AS BIGINT) FROM p_loyalty_loyalty_redemption WHERE CAST(reward_id AS TEXT) = '{scarf}' AND status <> 'CANCELLED'"
            ),
        )
        .await[0]
        .try_get_by_index(0)
        .unwrap();
        assert_eq!(stock + issued, 5, "{}: stock {stock}, issued {issued}", db.name);
        assert!(stock >= 0);

        // Two redemptions of a balance that covers one: exactly one succeeds.
        let contact = db
            .create("contact", json!({"firstName": "Tight", "lastName": "Mix", "email": "tight@example.org"}))
            .await
            .unwrap()
            .id()
            .to_string();
        let answer = server
            .gql(
                &agent,
                "mutation($p: ID!, $c: ID!) { enrolMember(programmeId: $p, contactId: $c) }",
                json!({"p": programme, "c": contact}),
            )
            .await;
        let tight = data(&answer, "enrolMember").as_str().unwrap().to_owned();
        let award =
            "mutation($m: ID!) { awardPoints(memberId: $m, points: 50, reason: \"exactly one mug\") { balance } }";
        data(&server.gql(&manager, award, json!({"m": tight})).await, "awardPoints");
        let redeem = "mutation($m: ID!, $r: ID!) { redeemReward(memberId: $m, rewardId: $r) { balance } }";
        let both =
            futures_util::future::join_all((0..2).map(|_| server.gql(&agent, redeem, json!({"m": tight, "r": mug}))))
                .await;
        let ok = both.iter().filter(|a| a["errors"].is_null()).count();
        assert_eq!(ok, 1, "{}: {both:?}", db.name);
        assert!(both.iter().any(|a| code(a) == "BAD_USER_INPUT"), "{}: {both:?}", db.name);

        // A deal won earns once, even when every event is delivered again.
        let (pipeline, stages) = grants_pipeline(&db).await;
        let deal = db
            .create(
                "deal",
                json!({"title": "Big", "pipelineId": pipeline, "stageId": stages[0], "contactId": contacts[0], "amount": "300"}),
            )
            .await
            .unwrap()
            .id();
        let start = stored_balance(&db, &members[0]).await;
        db.update("deal", deal, json!({"stageId": stages[2]}), None).await.unwrap();
        eventually(30, "the deal's points", || async {
            (stored_balance(&db, &members[0]).await == start + 300).then_some(())
        })
        .await;
        // Every event of the run delivered again (a process that crashed before moving its cursor).
        execute(&db, "UPDATE plugin_delivery_part SET last_seq = 0 WHERE plugin_id = 'loyalty'").await;
        let end: i64 =
            rows(&db, "SELECT CAST(MAX(seq) AS BIGINT) FROM event_outbox").await[0].try_get_by_index(0).unwrap();
        eventually(60, "the redelivery", || async {
            let cursor: i64 =
                rows(&db, "SELECT CAST(MIN(last_seq) AS BIGINT) FROM plugin_delivery_part WHERE plugin_id = 'loyalty'")
                    .await[0]
                    .try_get_by_index(0)
                    .unwrap();
            (cursor >= end).then_some(())
        })
        .await;
        assert_eq!(
            stored_balance(&db, &members[0]).await,
            start + 300,
            "{}: a redelivered event earned again",
            db.name
        );
        check_ledger(&db).await;
        runtime.stop().await;
        server.stop().await;
        db.cleanup().await;
    }
}

/// The guide in `plugins/loyalty/README.md`, word for word: its `sh` blocks run in one `bash`
/// (with `set -euo pipefail`), `kith` being the binary's entry point (`kith-child`) on the
/// database of a running server whose GraphQL endpoint is `API`; what they print must contain
/// the guide's `text` blocks, line by line and in order (`…` standing for anything).
#[tokio::test]
async fn the_readme_guide_runs_word_for_word() {
    let (script, expected) = crate::util::guide(include_str!("../../plugins/loyalty/README.md"));
    assert!(expected.len() >= 6, "the guide shows what it prints");
    let missing = crate::util::missing_tools(&["bash", "curl", "jq"]);
    if !missing.is_empty() {
        // In CI a missing tool is a failure: `.ci/run` installs them.
        assert!(std::env::var_os("CI").is_none(), "CI must run the loyalty guide: missing {missing:?}");
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED ({}): the loyalty guide word for word: install them",
            missing.join(", ")
        );
        return;
    }
    for db in TestDb::all().await {
        let runtime = loyalty_runtime(&db).await;
        let server = Server::start(&db).await;
        let bin = std::env::temp_dir().join(format!("kith-guide-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_kith-child"), bin.join("kith")).unwrap();
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
        let output = tokio::process::Command::new("bash")
            .arg("-c")
            .arg(&script)
            .current_dir(&bin)
            .env_clear()
            .env("PATH", path)
            .env("HOME", &bin)
            .env("KITH_DATABASE_URL", &db.url)
            .env("API", format!("http://{}/graphql", server.addr))
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{}: the guide failed: {}\n{stdout}\n{stderr}", db.name, output.status);
        crate::util::assert_prints(&stdout, &stderr, &expected, db.name);
        std::fs::remove_dir_all(&bin).ok();
        runtime.stop().await;
        server.stop().await;
        db.cleanup().await;
    }
}

/// The console covers the plugin: a list page for each of its objects, a form for each of its
/// operations (`/ops`), and a purchase recorded through its form shows on the contact's page.
#[tokio::test]
async fn the_console_has_a_page_for_every_object_and_a_form_for_every_operation() {
    let loyalty = kith_core::plugin::bundled::BUNDLED.iter().find(|b| b.id == "loyalty").unwrap();
    let manifest = kith_core::plugin::manifest::Manifest::parse(loyalty.manifest).unwrap();
    for db in TestDb::all().await {
        let name = db.name;
        let runtime = loyalty_runtime(&db).await;
        let server = Server::start(&db).await;
        let manager = token(&db, Role::Manager).await;
        let answer = server
            .gql(
                &manager,
                "mutation { createLoyaltyProgramme(input: {name: \"Club\", pointValue: \"0.05\", pointValueCurrency: \"GBP\"}) { id } }",
                json!({}),
            )
            .await;
        let programme = id(&answer, "createLoyaltyProgramme");
        let rule = "mutation($p: ID!) { createLoyaltyEarnRule(input: {programmeId: $p, name: \"Shop\", trigger: PURCHASE, currency: \"GBP\", pointsPerUnit: \"2\"}) { id } }";
        data(&server.gql(&manager, rule, json!({"p": programme})).await, "createLoyaltyEarnRule");
        let contact = db
            .create("contact", json!({"firstName": "Grace", "lastName": "Hopper", "email": "grace@example.org"}))
            .await
            .unwrap()
            .id()
            .to_string();
        let mut browser = crate::console::signed_in(&db, &server, "mia@example.org", Role::Manager).await;
        for object in &manifest.objects {
            let page = browser.get(&format!("/o/{}", object.plural)).await;
            assert_eq!(page.status, 200, "{name}: /o/{}: {}", object.plural, page.body);
        }
        let index = browser.get("/ops").await;
        for operation in manifest.queries.iter().chain(&manifest.mutations) {
            let path = format!("/ops/loyalty/{}", operation.name);
            assert!(index.body.contains(&path), "{name}: {path} is not offered: {}", index.body);
            let form = browser.get(&path).await;
            assert_eq!(form.status, 200, "{name}: {path}: {}", form.body);
        }
        let form = browser.get("/ops/loyalty/recordPurchase").await;
        let done = browser
            .post(
                "/ops/loyalty/recordPurchase",
                &[
                    ("_csrf", &crate::console::csrf(&form)),
                    ("contactId", &contact),
                    ("amount", "12.50"),
                    ("currency", "GBP"),
                    ("reference", "TILL-7"),
                    ("programmeId", &programme),
                ],
            )
            .await;
        assert_eq!(done.status, 200, "{name}: {}", done.body);
        assert!(done.body.contains("25"), "{name}: the answer shows the points: {}", done.body);
        let page = browser.get(&format!("/o/contacts/{contact}")).await;
        assert!(page.body.contains("Loyalty points"), "{name}: {}", page.body);
        assert!(page.body.contains("Loyalty members (1)"), "{name}: {}", page.body);
        runtime.stop().await;
        server.stop().await;
        db.cleanup().await;
    }
}

/// With the donors plugin on: a received gift earns under a GIFT rule (the `gifts` job) and
/// pays the referral bonus to both sides at the referred member's first gift; a refunded gift
/// gives its points back; running the job again changes nothing.
#[tokio::test]
async fn gifts_of_the_donors_plugin_earn_pay_referrals_and_refunds_give_back() {
    for db in TestDb::all().await {
        let name = db.name;
        let runtime = crate::util::donors_runtime(&db).await;
        let loyalty = kith_core::plugin::bundled::BUNDLED.iter().find(|b| b.id == "loyalty").unwrap();
        runtime.install(&admin(), loyalty.manifest, loyalty.component).await.unwrap();
        runtime.enable(&admin(), "loyalty", Grants::All).await.unwrap();
        runtime.refresh().await.unwrap();
        let server = Server::start(&db).await;
        let manager = token(&db, Role::Manager).await;
        let gql = |q: &str, v: Value| {
            let (server, manager, q) = (&server, manager.clone(), q.to_owned());
            async move { server.gql(&manager, &q, v).await }
        };
        let answer = gql(
            "mutation { createLoyaltyProgramme(input: {name: \"Supporters\", pointValue: \"0.01\", pointValueCurrency: \"USD\", referralBonus: 20}) { id } }",
            json!({}),
        )
        .await;
        let programme = id(&answer, "createLoyaltyProgramme");
        let rule = "mutation($p: ID!) { createLoyaltyEarnRule(input: {programmeId: $p, name: \"Gifts\", trigger: GIFT, currency: \"USD\", pointsPerUnit: \"2\"}) { id } }";
        data(&gql(rule, json!({"p": programme})).await, "createLoyaltyEarnRule");
        let person = |first: &str| {
            let db = &db;
            let first = first.to_owned();
            async move {
                let email = format!("{}@example.org", first.to_lowercase());
                db.create("contact", json!({"firstName": first, "lastName": "Giver", "email": email}))
                    .await
                    .unwrap()
                    .id()
                    .to_string()
            }
        };
        let (ada, bob) = (person("Ada").await, person("Bob").await);
        let enrol =
            "mutation($p: ID!, $c: ID!, $r: String) { enrolMember(programmeId: $p, contactId: $c, referralCode: $r) }";
        let ada_member =
            data(&gql(enrol, json!({"p": programme, "c": ada})).await, "enrolMember").as_str().unwrap().to_owned();
        let code: String = rows(
            &db,
            &format!("SELECT referral_code FROM p_loyalty_loyalty_member WHERE CAST(id AS TEXT) = '{ada_member}'"),
        )
        .await[0]
            .try_get_by_index(0)
            .unwrap();
        let bob_member = data(&gql(enrol, json!({"p": programme, "c": bob, "r": code})).await, "enrolMember")
            .as_str()
            .unwrap()
            .to_owned();
        let gift = "mutation($c: ID!, $a: Decimal!) { createDonation(input: {contactId: $c, amount: $a, amountCurrency: \"USD\", status: RECEIVED}) { id } }";
        let first = id(&gql(gift, json!({"c": bob, "a": "50"})).await, "createDonation");
        id(&gql(gift, json!({"c": bob, "a": "10.75"})).await, "createDonation");
        let run = kith_core::plugin::jobs::run_now(&runtime, "loyalty", "gifts").await.unwrap();
        assert_eq!(run.status, "succeeded", "{name}: {run:?}");
        assert_eq!(
            stored_balance(&db, &bob_member).await,
            100 + 21 + 20,
            "{name}: two gifts at 2 a dollar and the bonus"
        );
        assert_eq!(stored_balance(&db, &ada_member).await, 20, "{name}: the referrer's bonus");
        // Refunded: its points go back; the job again changes nothing else.
        data(
            &gql(
                "mutation($id: ID!) { updateDonation(id: $id, input: {status: REFUNDED}) { id } }",
                json!({"id": first}),
            )
            .await,
            "updateDonation",
        );
        for _ in 0..2 {
            let run = kith_core::plugin::jobs::run_now(&runtime, "loyalty", "gifts").await.unwrap();
            assert_eq!(run.status, "succeeded", "{name}: {run:?}");
        }
        assert_eq!(stored_balance(&db, &bob_member).await, 21 + 20, "{name}");
        assert_eq!(stored_balance(&db, &ada_member).await, 20, "{name}");
        check_ledger(&db).await;
        runtime.stop().await;
        server.stop().await;
        db.cleanup().await;
    }
}

/// Members imported from a spreadsheet with `kith import loyaltyMembers FILE.csv`: found by
/// e-mail, with opening balances and referral codes; bad rows named by line, the others
/// imported; importing the file again adds nothing.
#[tokio::test]
async fn the_cli_imports_members_with_opening_balances_once() {
    for db in TestDb::all().await {
        let name = db.name;
        let runtime = loyalty_runtime(&db).await;
        let programme = {
            let server = Server::start(&db).await;
            let manager = token(&db, Role::Manager).await;
            let answer = server
                .gql(
                    &manager,
                    "mutation { createLoyaltyProgramme(input: {name: \"Imported\", pointValue: \"0.01\", pointValueCurrency: \"EUR\", expiryMonths: 12}) { id } }",
                    json!({}),
                )
                .await;
            server.stop().await;
            id(&answer, "createLoyaltyProgramme")
        };
        runtime.stop().await;
        for first in ["Ada", "Bob"] {
            let email = format!("{}@example.org", first.to_lowercase());
            db.create("contact", json!({"firstName": first, "lastName": "Moved", "email": email})).await.unwrap();
        }
        let env = vec![("KITH_PLUGINS__CACHE_DIR".to_owned(), plugins_config().cache_dir)];
        let dir = kith_tests::temp_dir();
        let csv = dir.join("members.csv");
        std::fs::write(
            &csv,
            "email,points\nADA@example.org,\"1,250\"\nbob@example.org,40\ncarol@example.org,10\nbob@example.org,-5\n",
        )
        .unwrap();
        for round in 0..2 {
            let out = crate::util::run_kith(
                &["--database", &db.url, "import", "loyaltyMembers", csv.to_str().unwrap()],
                env.clone(),
            )
            .await;
            assert_eq!(out.status, 1, "{name}: {}", out.stderr);
            assert!(
                out.stderr.contains("line 4: no contact has the e-mail carol@example.org"),
                "{name}: {}",
                out.stderr
            );
            assert!(out.stderr.contains("line 5: points `-5` is not a whole number from 0"), "{name}: {}", out.stderr);
            assert!(
                out.stderr.contains("imported 2 loyaltyMembers (2 rejected)"),
                "{name} round {round}: {}",
                out.stderr
            );
        }
        let balances = check_ledger(&db).await;
        let mut got: Vec<i64> = balances.values().copied().collect();
        got.sort_unstable();
        assert_eq!(got, vec![40, 1250], "{name}: opening balances, once");
        let members: i64 =
            rows(&db, &format!("SELECT CAST(COUNT(*) AS BIGINT) FROM p_loyalty_loyalty_member WHERE CAST(programme_id AS TEXT) = '{programme}'"))
                .await[0]
                .try_get_by_index(0)
                .unwrap();
        assert_eq!(members, 2, "{name}");
        std::fs::remove_dir_all(&dir).ok();
        db.cleanup().await;
    }
}

/// `[before_write] own_writes = false`: the plugin's own writes (a purchase writes three
/// records) are spared a call into its hook, as the metrics count; people's writes to its
/// objects are still vetted.
#[tokio::test]
async fn the_plugins_own_writes_skip_its_hook_and_peoples_do_not() {
    use crate::observability::{metrics_on_main, sample, scrape};
    for db in TestDb::all().await {
        let name = db.name;
        let runtime = loyalty_runtime(&db).await;
        let state = kith_core::http::AppState::new(db.kith.clone(), &kith_core::config::ApiConfig::default())
            .unwrap()
            .with_metrics(kith_core::http::metrics::Exporter::new(&metrics_on_main()).unwrap());
        let server =
            Server::start_router(kith_core::http::app(state, &kith_core::config::ServerConfig::default())).await;
        let admin_token = token(&db, Role::Admin).await;
        let hooks =
            |text: &str| sample(text, "kith_plugin_calls_total", &[("plugin", "loyalty"), ("export", "before-write")]);
        let (_, before) = scrape(&server, Some(&admin_token)).await;
        let answer = server
            .gql(
                &admin_token,
                "mutation { createLoyaltyProgramme(input: {name: \"Hooks\", pointValue: \"0.01\", pointValueCurrency: \"EUR\"}) { id } }",
                json!({}),
            )
            .await;
        let programme = id(&answer, "createLoyaltyProgramme");
        let rule = "mutation($p: ID!) { createLoyaltyEarnRule(input: {programmeId: $p, name: \"Shop\", trigger: PURCHASE, currency: \"EUR\", pointsPerUnit: \"1\"}) { id } }";
        data(&server.gql(&admin_token, rule, json!({"p": programme})).await, "createLoyaltyEarnRule");
        let (_, vetted) = scrape(&server, Some(&admin_token)).await;
        assert!(hooks(&vetted) - hooks(&before) >= 2.0, "{name}: people's writes are vetted: {vetted}");
        let contact = db
            .create("contact", json!({"firstName": "Ada", "lastName": "Hook", "email": "ada@example.org"}))
            .await
            .unwrap();
        let purchase = "mutation($c: ID!) { recordPurchase(contactId: $c, amount: \"10\", currency: \"EUR\", reference: \"H-1\") { points } }";
        let answer = server.gql(&admin_token, purchase, json!({"c": contact.id().to_string()})).await;
        assert_eq!(data(&answer, "recordPurchase")["points"], 10, "{name}");
        let (_, after) = scrape(&server, Some(&admin_token)).await;
        assert_eq!(
            hooks(&after),
            hooks(&vetted),
            "{name}: the plugin's own writes (member, entry, purchase) called no hook"
        );
        runtime.stop().await;
        server.stop().await;
        db.cleanup().await;
    }
}
