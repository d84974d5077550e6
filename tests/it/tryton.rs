//! The bundled Tryton connector against a real `trytond` on loopback (`kith_tests::tryton`),
//! on both databases, every check read back from Tryton over JSON-RPC: a company created in
//! Kith becomes a party (and again after a redelivery, not twice); a party edited in Tryton
//! updates its company, and a conflict goes to the field's owner; parties made in Tryton become
//! companies; contacts become the party's named contacts; a deal won becomes a confirmed sale
//! with its lines and total; its invoice, posted and then paid in Tryton, comes back with the
//! company's open balance going to zero; Tryton down loses nothing; a `kith serve` killed
//! with SIGKILL while it pushes creates no duplicate party.

use std::sync::Arc;
use std::time::Duration;

use kith_core::domain::actor::Role;
use kith_core::plugin::jobs;
use kith_core::plugin::manager::{Grants, PluginManager};
use kith_tests::TestDb;
use kith_tests::tryton::{PASSWORD, TrytonServer};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

use crate::util::{Server, admin, eventually, grants_pipeline, plugins_config, token};

/// The plugin's grants: its manifest's, with the URL the admin sets.
async fn connector(db: &TestDb, tryton: &TrytonServer) -> Arc<PluginManager> {
    let runtime = kith_core::plugin::start_runtime(&db.kith, &plugins_config()).await.unwrap();
    let bundled = kith_core::plugin::bundled::BUNDLED.iter().find(|b| b.id == "tryton").unwrap();
    runtime.install(&admin(), bundled.manifest, bundled.component).await.unwrap();
    runtime.set_setting(&admin(), "tryton", "url", Some(json!(tryton.url()))).await.unwrap();
    runtime.set_setting(&admin(), "tryton", "password", Some(json!(PASSWORD))).await.unwrap();
    runtime.enable(&admin(), "tryton", Grants::All).await.unwrap();
    runtime.refresh().await.unwrap();
    runtime
}

fn data<'a>(answer: &'a Value, field: &str) -> &'a Value {
    assert!(answer["errors"].is_null(), "{field}: {answer}");
    &answer["data"][field]
}

/// Runs the `sync` job now (its runs are batches until one writes nothing: a whole cycle),
/// after the scheduler's own run of it if one is under way (at a minute's turn).
async fn run_sync(runtime: &Arc<PluginManager>) -> kith_core::store::jobs::JobRun {
    for _ in 0..600 {
        match jobs::run_now(runtime, "tryton", "sync").await {
            Err(err) if err.to_string().contains("running already") => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return other.unwrap(),
        }
    }
    panic!("the sync job stayed busy for a minute");
}

/// [`run_sync`], which must succeed.
async fn sync(runtime: &Arc<PluginManager>) {
    let run = run_sync(runtime).await;
    assert_eq!(run.status, "succeeded", "{run:?}");
}

/// The parties carrying a Kith key.
async fn parties_with_key(tryton: &TrytonServer, key: &str) -> Vec<Value> {
    tryton.search_read("party.party", json!([["identifiers.code", "=", key]]), &["name"]).await
}

#[tokio::test]
async fn companies_and_parties_stay_in_step_both_ways() {
    for db in TestDb::all().await {
        let Some(tryton) = TrytonServer::start_or_skip("tryton::companies_and_parties_stay_in_step_both_ways").await
        else {
            return;
        };
        let runtime = connector(&db, &tryton).await;
        let server = Server::start(&db).await;
        let manager = token(&db, Role::Manager).await;
        // The `url` setting grants an origin: it must be one.
        let bad = runtime.set_setting(&admin(), "tryton", "url", Some(json!("ftp://erp.internal/acme"))).await;
        let bad = bad.map(|_| ()).unwrap_err().to_string();
        assert!(bad.contains("http:// or https:// URL"), "{}: {bad}", db.name);

        // A company made in Kith: a party with its address, tax identifier and contact mechanisms.
        let answer = server
            .gql(
                &manager,
                "mutation { createCompany(input: {name: \"Acme Ltd\", domain: \"acme.test\", addressStreet: \"1 Main St\", addressCity: \"Springfield\", addressPostalCode: \"12345\", customFields: {taxIdentifier: \"BE0897290877\", email: \"ap@acme.test\", phone: \"+32 2 555 01 01\"}}) { id } }",
                json!({}),
            )
            .await;
        let acme = data(&answer, "createCompany")["id"].as_str().unwrap().to_owned();
        let key = format!("kith:company:{acme}");
        let party = eventually(30, "the company's party in Tryton", || async {
            parties_with_key(&tryton, &key).await.into_iter().next()
        })
        .await;
        let party_id = party["id"].as_i64().unwrap();
        assert_eq!(party["name"], "Acme Ltd", "{}", db.name);
        let address = tryton
            .search_read("party.address", json!([["party", "=", party_id]]), &["street", "city", "postal_code"])
            .await;
        assert_eq!(address.len(), 1, "{}: {address:?}", db.name);
        assert_eq!(
            (address[0]["street"].as_str(), address[0]["city"].as_str()),
            (Some("1 Main St"), Some("Springfield"))
        );
        let mechanisms =
            tryton.search_read("party.contact_mechanism", json!([["party", "=", party_id]]), &["type", "value"]).await;
        let values: Vec<(&str, &str)> =
            mechanisms.iter().map(|m| (m["type"].as_str().unwrap(), m["value"].as_str().unwrap())).collect();
        assert!(
            values.contains(&("email", "ap@acme.test")) && values.contains(&("website", "acme.test")),
            "{values:?}"
        );
        assert!(values.iter().any(|(t, _)| *t == "phone"), "{values:?}");
        let identifiers = tryton.search_read("party.identifier", json!([["party", "=", party_id]]), &["code"]).await;
        assert!(identifiers.iter().any(|i| i["code"] == "BE0897290877"), "{identifiers:?}");

        // A contact of the company: a named contact of the party.
        let ada = created(
            &server,
            &manager,
            "mutation($c: ID!) { createContact(input: {firstName: \"Ada\", lastName: \"Lovelace\", email: \"ada@acme.test\", companyId: $c}) { id } }",
            json!({"c": acme}),
            "createContact",
        )
        .await;
        eventually(30, "the contact as a named contact mechanism", || async {
            let found = tryton
                .search_read(
                    "party.contact_mechanism",
                    json!([["party", "=", party_id], ["name", "=", "Ada Lovelace"]]),
                    &["value"],
                )
                .await;
            found.iter().any(|m| m["value"] == "ada@acme.test").then_some(())
        })
        .await;
        // Ada asks to be erased: she goes from the party too, and the link keeps nothing of her.
        let eraser = admin_token(&db).await;
        let erased = server
            .gql(
                &eraser,
                "mutation($c: ID!) { erasePersonalData(contactId: $c, reason: \"DSR-1\", confirm: \"ERASE\") { dryRun } }",
                json!({"c": ada}),
            )
            .await;
        assert_eq!(data(&erased, "erasePersonalData")["dryRun"], false, "{}", db.name);
        eventually(30, "Ada gone from the party", || async {
            let found = tryton
                .search_read(
                    "party.contact_mechanism",
                    json!([["party", "=", party_id], ["value", "=", "ada@acme.test"]]),
                    &["id"],
                )
                .await;
            found.is_empty().then_some(())
        })
        .await;
        let conn = db.kith.store.conn();
        let kept = conn
            .query_all_raw(Statement::from_string(
                conn.get_database_backend(),
                "SELECT CAST(synced AS TEXT) FROM p_tryton_erp_link WHERE kind = 'CONTACT'".to_owned(),
            ))
            .await
            .unwrap();
        for row in kept {
            let synced: Option<String> = row.try_get_by_index(0).unwrap();
            assert!(!synced.unwrap_or_default().contains("ada@acme.test"), "{}: the link forgot her", db.name);
        }

        // Edited in Tryton (by its own client): the name (only there) and the billing city.
        tryton
            .ctl(&[
                "write-party",
                &party_id.to_string(),
                r#"{"name": "Acme Limited", "address": {"city": "Shelbyville"}}"#,
            ])
            .await;
        sync(&runtime).await;
        let company = server
            .gql(
                &manager,
                "query($id: ID!) { company(id: $id) { name addressCity customFields } }",
                json!({"id": acme}),
            )
            .await;
        let company = data(&company, "company");
        assert_eq!(company["name"], "Acme Limited", "{}: a change made only in Tryton comes back", db.name);
        assert_eq!(company["addressCity"], "Shelbyville", "{}", db.name);

        // Both sides change the name: the CRM owns it. Both change the city: the ERP owns it.
        tryton
            .ctl(&[
                "write-party",
                &party_id.to_string(),
                r#"{"name": "Acme (ERP)", "address": {"city": "Capital City"}}"#,
            ])
            .await;
        server
            .gql(
                &manager,
                "mutation($id: ID!) { updateCompany(id: $id, input: {name: \"Acme (CRM)\", addressCity: \"Ogdenville\"}) { id } }",
                json!({"id": acme}),
            )
            .await;
        eventually(30, "the CRM's name in Tryton", || async {
            let party = tryton.search_read("party.party", json!([["id", "=", party_id]]), &["name"]).await;
            (party[0]["name"] == "Acme (CRM)").then_some(())
        })
        .await;
        sync(&runtime).await;
        let company = server
            .gql(&manager, "query($id: ID!) { company(id: $id) { name addressCity } }", json!({"id": acme}))
            .await;
        assert_eq!(data(&company, "company")["name"], "Acme (CRM)", "{}", db.name);
        assert_eq!(
            data(&company, "company")["addressCity"],
            "Capital City",
            "{}: the ERP owns the billing address",
            db.name
        );
        let address = tryton.search_read("party.address", json!([["party", "=", party_id]]), &["city"]).await;
        assert_eq!(address[0]["city"], "Capital City", "{}", db.name);
        let conflicts = server
            .gql(
                &manager,
                "{ erpConflicts(first: 10) { edges { node { field winner crmValue erpValue } } } }",
                json!({}),
            )
            .await;
        let conflicts: Vec<(String, String)> = data(&conflicts, "erpConflicts")["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (e["node"]["field"].as_str().unwrap().to_owned(), e["node"]["winner"].as_str().unwrap().to_owned())
            })
            .collect();
        assert!(conflicts.contains(&("name".into(), "CRM".into())), "{}: {conflicts:?}", db.name);
        assert!(conflicts.contains(&("addressCity".into(), "ERP".into())), "{}: {conflicts:?}", db.name);

        // A party made in Tryton becomes a company; the organisation's own party does not. The
        // dry run shows it first, and writes nothing.
        let made = tryton.ctl(&["create-party", "Globex Corporation"]).await;
        let admin_t = admin_token(&db).await;
        let dry = server.gql(&admin_t, "{ syncDryRun(limit: 50) }", json!({})).await;
        let dry = data(&dry, "syncDryRun");
        let parties = dry["streams"].as_array().unwrap().iter().find(|s| s["stream"] == "parties").unwrap();
        let planned: Vec<&str> =
            parties["create"].as_array().unwrap().iter().filter_map(|c| c["fields"]["name"].as_str()).collect();
        assert_eq!(planned, ["Globex Corporation"], "{}: {dry}", db.name);
        let status = server.gql(&manager, "{ syncStatus }", json!({})).await;
        let status = data(&status, "syncStatus");
        assert_eq!(status["url"], tryton.url(), "{}: {status}", db.name);
        assert!(status["links"]["COMPANY"].as_i64().unwrap() >= 1, "{}: {status}", db.name);
        assert!(status["positions"]["parties"].is_object(), "{}: {status}", db.name);
        assert!(!status.to_string().contains(PASSWORD), "{}: the password is never shown", db.name);
        let before = server.gql(&manager, "{ companies(first: 50) { totalCount } }", json!({})).await;
        sync(&runtime).await;
        let found =
            server.gql(&manager, "{ companies(first: 50) { totalCount edges { node { name } } } }", json!({})).await;
        assert_eq!(
            data(&found, "companies")["totalCount"].as_i64(),
            data(&before, "companies")["totalCount"].as_i64().map(|n| n + 1),
            "{}: the dry run wrote nothing, the sync one company",
            db.name
        );
        let names: Vec<&str> = data(&found, "companies")["edges"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["node"]["name"].as_str())
            .collect();
        assert!(names.contains(&"Globex Corporation"), "{}: {names:?} ({made})", db.name);
        assert!(!names.contains(&"Kith Test Organisation"), "{}: {names:?}", db.name);

        // A full resync, and the company's event delivered again: no second party.
        let resync = server.gql(&admin_t, "mutation { resync }", json!({})).await;
        assert!(data(&resync, "resync").as_i64().unwrap() >= 2, "{resync}");
        sync(&runtime).await;
        runtime.replay(&admin(), "tryton").await.unwrap();
        assert_eq!(parties_with_key(&tryton, &key).await.len(), 1, "{}", db.name);
        let globex = tryton.search_read("party.party", json!([["name", "=", "Globex Corporation"]]), &["name"]).await;
        assert_eq!(globex.len(), 1, "{}", db.name);

        server.stop().await;
        runtime.stop().await;
        db.cleanup().await;
    }
}

/// Runs a create mutation and answers the new record's id.
async fn created(server: &Server, token: &str, query: &str, variables: Value, field: &str) -> String {
    let answer = server.gql(token, query, variables).await;
    data(&answer, field)["id"].as_str().unwrap_or_else(|| panic!("{field}: {answer}")).to_owned()
}

/// Waits for `check`, for at most `secs` seconds; on a timeout, fails showing the connector's
/// listed failures and its jobs' last runs.
async fn wait_for<T, F, Fut>(runtime: &Arc<PluginManager>, db: &TestDb, secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if std::time::Instant::now() > deadline {
            let conn = db.kith.store.conn();
            let failures = conn
                .query_all_raw(Statement::from_string(
                    conn.get_database_backend(),
                    "SELECT kind, kith_id, status, message FROM p_tryton_erp_sync_error".to_owned(),
                ))
                .await
                .unwrap()
                .iter()
                .map(|r| {
                    format!(
                        "{:?}",
                        (
                            r.try_get_by_index::<String>(0),
                            r.try_get_by_index::<String>(1),
                            r.try_get_by_index::<String>(2),
                            r.try_get_by_index::<Option<String>>(3)
                        )
                    )
                })
                .collect::<Vec<_>>();
            let runs = jobs::history(runtime, "tryton", None, 5).await.unwrap();
            let row = runtime
                .list()
                .await
                .unwrap()
                .into_iter()
                .find(|p| p.id == "tryton")
                .map(|p| (p.status, p.consecutive_failures));
            panic!(
                "{}: timed out waiting for {what}; failures: {failures:?}; runs: {runs:?}; plugin: {row:?}",
                db.name
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The identifiers of parties Kith made.
async fn linked(tryton: &TrytonServer) -> Vec<Value> {
    tryton.search_read("party.identifier", json!([["code", "like", "kith:company:%"]]), &["code"]).await
}

async fn admin_token(db: &TestDb) -> String {
    token(db, Role::Admin).await
}

#[tokio::test]
async fn a_deal_won_becomes_a_sale_and_its_invoice_comes_back_paid() {
    for db in TestDb::all().await {
        let Some(tryton) =
            TrytonServer::start_or_skip("tryton::a_deal_won_becomes_a_sale_and_its_invoice_comes_back_paid").await
        else {
            return;
        };
        let runtime = connector(&db, &tryton).await;
        let server = Server::start(&db).await;
        let manager = token(&db, Role::Manager).await;
        let (pipeline, stages) = grants_pipeline(&db).await;

        // A product made in Tryton, mirrored for deal lines.
        tryton.ctl(&["create-product", "CONSULT", "Consulting day", "800"]).await;
        sync(&runtime).await;
        let products = server
            .gql(
                &manager,
                "{ erpProducts(first: 10) { edges { node { id code name listPrice listPriceCurrency } } } }",
                json!({}),
            )
            .await;
        let products = data(&products, "erpProducts")["edges"].as_array().unwrap().clone();
        let consult =
            products.iter().find(|p| p["node"]["code"] == "CONSULT").unwrap_or_else(|| panic!("{products:?}"));
        assert_eq!(consult["node"]["listPrice"], "800", "{}", db.name);
        let service = products.iter().find(|p| p["node"]["code"] == "KITH-SERVICE").unwrap();

        let company = created(
            &server,
            &manager,
            "mutation { createCompany(input: {name: \"Initech\"}) { id } }",
            json!({}),
            "createCompany",
        )
        .await;
        let deal = created(&server, &manager, "mutation($p: ID!, $s: ID!, $c: ID!) { createDeal(input: {title: \"Migration\", pipelineId: $p, stageId: $s, companyId: $c, amount: \"2100\", currency: \"USD\"}) { id } }", json!({"p": pipeline, "s": stages[0], "c": company}), "createDeal").await;
        let line = "mutation($d: ID!, $p: ID!, $q: Decimal!, $u: Decimal) { createDealLine(input: {dealId: $d, productId: $p, quantity: $q, unitPrice: $u, unitPriceCurrency: \"USD\"}) { id } }";
        data(
            &server.gql(&manager, line, json!({"d": deal, "p": consult["node"]["id"], "q": "2", "u": null})).await,
            "createDealLine",
        );
        data(
            &server.gql(&manager, line, json!({"d": deal, "p": service["node"]["id"], "q": "1", "u": "500"})).await,
            "createDealLine",
        );

        // Won: a confirmed sale with the two lines, 2 × 800 + 500.
        server
            .gql(
                &manager,
                "mutation($id: ID!, $s: ID!) { updateDeal(id: $id, input: {stageId: $s}) { id } }",
                json!({"id": deal, "s": stages[2]}),
            )
            .await;
        let key = format!("kith:deal:{deal}");
        let sale = wait_for(&runtime, &db, 30, "the deal's sale", || async {
            tryton
                .search_read(
                    "sale.sale",
                    json!([["reference", "=", key]]),
                    &["number", "state", "total_amount", "lines"],
                )
                .await
                .into_iter()
                .next()
                .filter(|s| s["state"] != "draft" && s["state"] != "quotation")
        })
        .await;
        assert!(matches!(sale["state"].as_str(), Some("confirmed" | "processing")), "{}: confirmed ({sale})", db.name);
        assert_eq!(sale["total_amount"]["decimal"], "2100.00", "{}: {sale}", db.name);
        let lines = tryton
            .search_read("sale.line", json!([["sale", "=", sale["id"]]]), &["product.code", "quantity", "unit_price"])
            .await;
        let mut got: Vec<(String, f64, String)> = lines
            .iter()
            .map(|l| {
                (
                    l["product."]["code"].as_str().unwrap_or_default().to_owned(),
                    l["quantity"].as_f64().unwrap(),
                    l["unit_price"]["decimal"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        got.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            got,
            vec![("CONSULT".into(), 2.0, "800".into()), ("KITH-SERVICE".into(), 1.0, "500".into())],
            "{}",
            db.name
        );
        let number = sale["number"].as_str().unwrap().to_owned();
        eventually(30, "the sale's number on the deal", || async {
            let deal =
                server.gql(&manager, "query($id: ID!) { deal(id: $id) { customFields } }", json!({"id": deal})).await;
            (data(&deal, "deal")["customFields"]["erpSaleNumber"] == number.as_str()).then_some(())
        })
        .await;

        // Its invoice, posted in Tryton: in Kith with what is due, and an activity.
        // Tryton processes a confirmed sale after its transaction: then the invoice exists.
        let invoice = wait_for(&runtime, &db, 30, "the sale's invoice", || async {
            tryton
                .search_read("account.invoice", json!([["sales", "=", sale["id"]]]), &["state"])
                .await
                .into_iter()
                .next()
        })
        .await;
        let invoice_id = invoice["id"].as_i64().unwrap().to_string();
        tryton.ctl(&["post-invoice", &invoice_id]).await;
        sync(&runtime).await;
        let balance = "query($id: ID!) { company(id: $id) { openBalance erpInvoices(first: 5) { edges { node { number state total amountDue } } } activities(first: 10) { edges { node { subject } } } } }";
        let seen = server.gql(&manager, balance, json!({"id": company})).await;
        let seen = data(&seen, "company");
        assert_eq!(seen["openBalance"], "2100", "{}: {seen}", db.name);
        assert_eq!(seen["erpInvoices"]["edges"][0]["node"]["state"], "POSTED", "{}: {seen}", db.name);
        // Paid in Tryton: the balance goes to zero.
        tryton.ctl(&["pay-invoice", &invoice_id]).await;
        sync(&runtime).await;
        let seen = server.gql(&manager, balance, json!({"id": company})).await;
        let seen = data(&seen, "company");
        assert_eq!(seen["openBalance"], "0", "{}: {seen}", db.name);
        assert_eq!(seen["erpInvoices"]["edges"][0]["node"]["state"], "PAID", "{}: {seen}", db.name);
        let subjects: Vec<&str> = seen["activities"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["node"]["subject"].as_str())
            .collect();
        assert!(subjects.iter().any(|s| s.ends_with("posted: 2100 USD")), "{}: {subjects:?}", db.name);
        assert!(subjects.iter().any(|s| s.ends_with(" paid")), "{}: {subjects:?}", db.name);
        // The sale's state as Tryton has it now comes back to the deal.
        let state =
            tryton.search_read("sale.sale", json!([["id", "=", sale["id"]]]), &["state"]).await[0]["state"].clone();
        let deal_now =
            server.gql(&manager, "query($id: ID!) { deal(id: $id) { customFields } }", json!({"id": deal})).await;
        assert_eq!(data(&deal_now, "deal")["customFields"]["erpSaleState"], state, "{}", db.name);

        // A deal won without lines: one line of the service product for its amount.
        let plain = created(&server, &manager, "mutation($p: ID!, $s: ID!, $c: ID!) { createDeal(input: {title: \"Support plan\", pipelineId: $p, stageId: $s, companyId: $c, amount: \"990\"}) { id } }", json!({"p": pipeline, "s": stages[2], "c": company}), "createDeal").await;
        let key = format!("kith:deal:{plain}");
        let sale = eventually(30, "the plain deal's sale", || async {
            tryton
                .search_read(
                    "sale.sale",
                    json!([["reference", "=", key], ["state", "in", ["confirmed", "processing"]]]),
                    &["total_amount"],
                )
                .await
                .into_iter()
                .next()
        })
        .await;
        assert_eq!(sale["total_amount"]["decimal"], "990.00", "{}", db.name);

        server.stop().await;
        runtime.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn tryton_down_loses_nothing() {
    for db in TestDb::all().await {
        let Some(mut tryton) = TrytonServer::start_or_skip("tryton::tryton_down_loses_nothing").await else { return };
        let runtime = connector(&db, &tryton).await;
        let server = Server::start(&db).await;
        let manager = token(&db, Role::Manager).await;
        let admin_token = admin_token(&db).await;
        sync(&runtime).await;
        tryton.stop().await;

        // While it is down: a company and a deal won are listed, to be retried.
        let company = created(
            &server,
            &manager,
            "mutation { createCompany(input: {name: \"Umbrella\"}) { id } }",
            json!({}),
            "createCompany",
        )
        .await;
        let (pipeline, stages) = grants_pipeline(&db).await;
        let deal = created(&server, &manager, "mutation($p: ID!, $s: ID!, $c: ID!) { createDeal(input: {title: \"Outage deal\", pipelineId: $p, stageId: $s, companyId: $c, amount: \"75\"}) { id } }", json!({"p": pipeline, "s": stages[2], "c": company}), "createDeal").await;
        let errors = "{ erpSyncErrors(first: 10) { edges { node { id kind kithId status attempts message } } } }";
        let listed = wait_for(&runtime, &db, 30, "both failures listed", || async {
            let answer = server.gql(&admin_token, errors, json!({})).await;
            let edges = data(&answer, "erpSyncErrors")["edges"].as_array().unwrap().clone();
            (edges.len() == 2).then_some(edges)
        })
        .await;
        for edge in &listed {
            assert_eq!(edge["node"]["status"], "PENDING", "{}: {edge}", db.name);
        }
        // The admin sees them in the console, with why, and a form to retry each; every
        // object has its page and every operation its form.
        let mut browser = crate::console::signed_in(&db, &server, "ops@example.org", Role::Admin).await;
        let page = browser.get("/o/erpSyncErrors").await;
        assert_eq!(page.status, 200, "{}: {}", db.name, page.body);
        assert!(page.body.contains("Connection refused"), "{}: the list shows why: {}", db.name, page.body);
        let manifest = kith_core::plugin::manifest::Manifest::parse(
            kith_core::plugin::bundled::BUNDLED.iter().find(|b| b.id == "tryton").unwrap().manifest,
        )
        .unwrap();
        for object in &manifest.objects {
            let page = browser.get(&format!("/o/{}", object.plural)).await;
            assert_eq!(page.status, 200, "{}: /o/{}: {}", db.name, object.plural, page.body);
        }
        for operation in manifest.queries.iter().chain(&manifest.mutations) {
            let form = browser.get(&format!("/ops/tryton/{}", operation.name)).await;
            assert_eq!(form.status, 200, "{}: {}: {}", db.name, operation.name, form.body);
        }

        // A sync meanwhile fails, and moves no cursor.
        let run = run_sync(&runtime).await;
        assert_eq!(run.status, "failed", "{}: {run:?}", db.name);

        // Back up: the job retries them once due (made due now instead of in a minute), in order.
        tryton.resume().await.unwrap();
        let statement = "UPDATE p_tryton_erp_sync_error SET next_attempt_at = '2000-01-01T00:00:00Z'";
        let conn = db.kith.store.conn();
        conn.execute_raw(Statement::from_string(conn.get_database_backend(), statement.to_owned())).await.unwrap();
        sync(&runtime).await;
        let answer = server.gql(&admin_token, errors, json!({})).await;
        for edge in data(&answer, "erpSyncErrors")["edges"].as_array().unwrap() {
            assert_eq!(edge["node"]["status"], "RESOLVED", "{}: {edge}", db.name);
        }
        assert_eq!(parties_with_key(&tryton, &format!("kith:company:{company}")).await.len(), 1, "{}", db.name);
        let sales =
            tryton.search_read("sale.sale", json!([["reference", "=", format!("kith:deal:{deal}")]]), &["state"]).await;
        assert_eq!(sales.len(), 1, "{}: {sales:?}", db.name);
        assert_eq!(sales[0]["state"], "processing", "{}", db.name);

        // A failure an admin retries by hand: `retrySync` answers its status.
        tryton.stop().await;
        server
            .gql(
                &manager,
                "mutation($id: ID!) { updateCompany(id: $id, input: {name: \"Umbrella Corp\"}) { id } }",
                json!({"id": company}),
            )
            .await;
        let failure = eventually(30, "the rename listed", || async {
            let answer = server.gql(&admin_token, errors, json!({})).await;
            data(&answer, "erpSyncErrors")["edges"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["node"]["status"] == "PENDING")
                .map(|e| e["node"]["id"].as_str().unwrap().to_owned())
        })
        .await;
        tryton.resume().await.unwrap();
        let retried =
            server.gql(&admin_token, "mutation($id: ID!) { retrySync(id: $id) }", json!({"id": failure})).await;
        assert_eq!(data(&retried, "retrySync"), "RESOLVED", "{}: {retried}", db.name);
        let party = parties_with_key(&tryton, &format!("kith:company:{company}")).await;
        assert_eq!(party[0]["name"], "Umbrella Corp", "{}", db.name);

        server.stop().await;
        runtime.stop().await;
        db.cleanup().await;
    }
}

/// `kith serve` (a child process) killed with SIGKILL while it pushes new companies: after a
/// restart each has exactly one party (a create interrupted before its link committed is
/// found again by its key).
#[tokio::test]
async fn a_kill_while_pushing_creates_no_duplicate_party() {
    for db in TestDb::all().await {
        let Some(tryton) = TrytonServer::start_or_skip("tryton::a_kill_while_pushing_creates_no_duplicate_party").await
        else {
            return;
        };
        let offline = PluginManager::new(db.kith.clone(), &plugins_config()).unwrap();
        let bundled = kith_core::plugin::bundled::BUNDLED.iter().find(|b| b.id == "tryton").unwrap();
        offline.install(&admin(), bundled.manifest, bundled.component).await.unwrap();
        offline.set_setting(&admin(), "tryton", "url", Some(json!(tryton.url()))).await.unwrap();
        offline.set_setting(&admin(), "tryton", "password", Some(json!(PASSWORD))).await.unwrap();
        offline.enable(&admin(), "tryton", Grants::All).await.unwrap();
        let mut ids = Vec::new();
        for i in 0..40 {
            ids.push(db.create("company", json!({"name": format!("Kill test {i}")})).await.unwrap().id().to_string());
        }
        let cache = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/plugin-cache-test").to_owned();
        let env = vec![
            ("KITH_LOG_FORMAT", "json".to_owned()),
            ("KITH_PLUGINS__INSTALL_BUNDLED", "false".to_owned()),
            ("KITH_PLUGINS__CACHE_DIR", cache),
            ("KITH_PLUGINS__POLL_INTERVAL_MS", "20".to_owned()),
        ];
        let (mut first, _, _) = crate::observability::spawn_serve(&db.url, &env).await;
        eventually(60, "some parties made by the first process", || async {
            (linked(&tryton).await.len() >= 5).then_some(())
        })
        .await;
        first.start_kill().unwrap();
        let _ = first.wait().await;
        let before = linked(&tryton).await.len();
        assert!(before < ids.len(), "{}: the kill came too late to mean anything ({before} made)", db.name);

        let (mut second, _, _) = crate::observability::spawn_serve(&db.url, &env).await;
        eventually(120, "every company's party after the restart", || async {
            (linked(&tryton).await.len() >= ids.len()).then_some(())
        })
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let codes: Vec<String> = linked(&tryton).await.iter().map(|i| i["code"].as_str().unwrap().to_owned()).collect();
        for id in &ids {
            let copies = codes.iter().filter(|c| **c == format!("kith:company:{id}")).count();
            assert_eq!(copies, 1, "{}: company {id} has {copies} parties", db.name);
        }
        second.start_kill().unwrap();
        let _ = second.wait().await;
        db.cleanup().await;
    }
}

/// The guide in `plugins/tryton/README.md`, word for word: its `sh` blocks run in one `bash`
/// (with `set -euo pipefail`) in an empty directory holding this repository's `tests/tryton`,
/// `kith` being the binary's entry point (`kith-child`) on the database of a running server
/// whose GraphQL endpoint is `API`, Tryton installed from PyPI by the guide itself (pip's
/// cache kept in `target/pip-cache`) on a free `TRYTON_PORT`; what they print must contain the
/// guide's `text` blocks, line by line and in order (`…` standing for anything). On SQLite, as
/// the guide's reader runs Kith; the connector on PostgreSQL is the other tests' part.
#[tokio::test]
async fn the_readme_guide_runs_word_for_word() {
    let (script, expected) = crate::util::guide(include_str!("../../plugins/tryton/README.md"));
    assert!(expected.len() >= 2, "the guide shows what it prints");
    let missing = crate::util::missing_tools(&["bash", "curl", "jq", "python3"]);
    if !missing.is_empty() {
        assert!(std::env::var_os("CI").is_none(), "CI must run the Tryton guide: missing {missing:?}");
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED ({}): the Tryton guide word for word: install them",
            missing.join(", ")
        );
        return;
    }
    let db = TestDb::sqlite().await;
    let runtime = kith_core::plugin::start_runtime(&db.kith, &plugins_config()).await.unwrap();
    let bundled = kith_core::plugin::bundled::BUNDLED.iter().find(|b| b.id == "tryton").unwrap();
    runtime.install(&admin(), bundled.manifest, bundled.component).await.unwrap();
    runtime.enable(&admin(), "tryton", Grants::All).await.unwrap();
    runtime.refresh().await.unwrap();
    let server = Server::start(&db).await;
    let dir = std::env::temp_dir().join(format!("kith-tryton-guide-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(dir.join("tests")).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_kith-child"), dir.join("kith")).unwrap();
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    std::os::unix::fs::symlink(repo.join("tryton"), dir.join("tests").join("tryton")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default());
    let child = tokio::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(&dir)
        .env_clear()
        .env("PATH", path)
        .env("HOME", &dir)
        .env("PIP_CACHE_DIR", repo.join("../target/pip-cache"))
        .env("KITH_DATABASE_URL", &db.url)
        .env("API", format!("http://{}/graphql", server.addr))
        .env("TRYTON_PORT", port.to_string())
        .process_group(0)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let group = child.id().unwrap();
    let output = tokio::time::timeout(Duration::from_secs(900), child.wait_with_output()).await;
    // The Tryton the guide left running, with the rest of its process group.
    let _ = std::process::Command::new("kill").args(["-TERM", "--", &format!("-{group}")]).status();
    let output = output.expect("the guide within 15 minutes").unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the guide failed: {}\n{stdout}\n{stderr}", output.status);
    crate::util::assert_prints(&stdout, &stderr, &expected, "sqlite");
    std::fs::remove_dir_all(&dir).ok();
    runtime.stop().await;
    server.stop().await;
    db.cleanup().await;
}
