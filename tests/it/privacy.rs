//! Personal data end to end, on SQLite and PostgreSQL: a person touched by every kind of record
//! (core objects, the donors plugin, a plugin object under each erasure policy) is exported
//! completely and erased without a trace a byte-level search of the database can find; consent
//! history; legal hold; retention policies; the CLI.

use chrono::Datelike;
use kith_core::domain::actor::Role;
use kith_core::plugin::manager::Grants;
use kith_tests::TestDb;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::plugin_objects::manifest;
use crate::util::{Server, admin, code, donors_runtime, exchange, run_cli, run_cli_env, token, welcome};

/// What the erased person is called, spelled so that nothing else in the database contains it.
const FIRST: &str = "Zelphine";
const LAST: &str = "Quarrendon";
const EMAIL: &str = "zelphine.quarrendon@erase.example";
const OLD_EMAIL: &str = "zq.earlier@erase.example";
const PHONE: &str = "+44 7700 900417";

/// A plugin (the welcome component) whose objects refer to contacts under each erasure policy.
const LEDGER: &str = r#"
[[objects]]
name = "membership"
plural = "memberships"
erasure = "keep"
legal_basis = "Statutes: the register of members is kept for ten years."
[[objects.fields]]
name = "contactId"
type = "ref"
target = "contact"
[[objects.fields]]
name = "number"
type = "text"

[[objects]]
name = "visit"
plural = "visits"
[[objects.fields]]
name = "contactId"
type = "ref"
target = "contact"
[[objects.fields]]
name = "room"
type = "text"
[[objects.fields]]
name = "notes"
type = "text"
personal = true
[[objects.fields]]
name = "diagnosis"
type = "text"
personal = true
read_role = "ADMIN"

[[objects]]
name = "badge"
plural = "badges"
erasure = "delete"
[[objects.fields]]
name = "contactId"
type = "ref"
target = "contact"
required = true
[[objects.fields]]
name = "label"
type = "text"
personal = true
"#;

fn data<'a>(response: &'a Value, field: &str) -> &'a Value {
    assert!(response["errors"].is_null(), "{response}");
    &response["data"][field]
}

/// The rows of every table holding `needle`, as `table: count` (PostgreSQL: every row as text;
/// SQLite: the bytes of the database file and its write-ahead log).
async fn traces(db: &TestDb, needle: &str) -> Vec<String> {
    let conn = db.kith.store.conn();
    if db.name == "postgres" {
        let tables = conn
            .query_all_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
            ))
            .await
            .unwrap();
        let mut found = Vec::new();
        for row in tables {
            let table: String = row.try_get("", "tablename").unwrap();
            let sql = format!("SELECT count(*) AS n FROM \"{table}\" t WHERE t::text ILIKE $1");
            let row = conn
                .query_one_raw(sea_orm::Statement::from_sql_and_values(
                    sea_orm::DbBackend::Postgres,
                    sql,
                    [format!("%{needle}%").into()],
                ))
                .await
                .unwrap()
                .unwrap();
            let n: i64 = row.try_get("", "n").unwrap();
            if n > 0 {
                found.push(format!("{table}: {n}"));
            }
        }
        found
    } else {
        let path = kith_core::store::sqlite_path(&db.url).unwrap();
        let mut found = Vec::new();
        for suffix in ["", "-wal"] {
            let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
            let Ok(bytes) = std::fs::read(&file) else { continue };
            let lower = bytes.to_ascii_lowercase();
            let needle = needle.to_ascii_lowercase();
            let n = lower.windows(needle.len()).filter(|w| *w == needle.as_bytes()).count();
            if n > 0 {
                found.push(format!("{}: {n} occurrence(s)", file.display()));
            }
        }
        found
    }
}

#[tokio::test]
async fn a_person_is_exported_completely_then_erased_without_a_trace() {
    for db in TestDb::all().await {
        let name = db.name;
        let server = Server::start_with_body(&db, 1 << 20).await;
        let runtime = donors_runtime(&db).await;
        let ledger = manifest("ledger", "1.0.0", LEDGER);
        runtime.install(&admin(), &ledger, &welcome().1).await.unwrap();
        runtime.enable(&admin(), "ledger", Grants::All).await.unwrap();
        runtime.refresh().await.unwrap();
        let agent = token(&db, Role::Agent).await;
        let manager = token(&db, Role::Manager).await;
        let admin_token = token(&db, Role::Admin).await;
        let gql = |token: &str, query: &str, vars: Value| {
            let (server, token, query) = (&server, token.to_owned(), query.to_owned());
            async move { server.gql(&token, &query, vars).await }
        };

        // The person, a duplicate of her merged into her, a colleague who must stay whole.
        let company = data(
            &gql(&agent, "mutation { createCompany(input: {name: \"Orbital Looms\"}) { id } }", json!({})).await,
            "createCompany",
        )["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let r = gql(
            &admin_token,
            "mutation { defineCustomField(object: \"contact\", key: \"nickname\", label: \"Nickname\", kind: TEXT) { key } }",
            json!({}),
        )
        .await;
        data(&r, "defineCustomField");
        let create = "mutation($i: ContactCreateInput!) { createContact(input: $i) { id } }";
        // Created with an idempotency key: its stored answer holds her e-mail.
        let body = json!({"query": create, "variables": {"i": {"firstName": FIRST, "lastName": LAST, "email": EMAIL,
            "phone": PHONE, "companyId": company, "lifecycleStage": "CUSTOMER", "tags": ["vip"],
            "customFields": {"nickname": "Zelphie"}}}})
        .to_string();
        let reply = exchange(server.addr, "POST", "/graphql", Some(&agent), b"Idempotency-Key: zq-1\r\n", &body).await;
        let zel =
            reply.json()["data"]["createContact"]["id"].as_str().unwrap_or_else(|| panic!("{}", reply.body)).to_owned();
        let dup = data(
            &gql(&agent, create, json!({"i": {"firstName": FIRST, "lastName": LAST, "email": OLD_EMAIL}})).await,
            "createContact",
        )["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let other = data(
            &gql(
                &agent,
                create,
                json!({"i": {"firstName": "Ottoline", "lastName": "Brisk", "email": "otto@keep.example"}}),
            )
            .await,
            "createContact",
        )["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let r = gql(
            &manager,
            "mutation($k: ID!, $m: ID!) { mergeContacts(keepId: $k, mergeId: $m) { id } }",
            json!({"k": zel, "m": dup}),
        )
        .await;
        data(&r, "mergeContacts");

        // Consent history.
        let r = gql(
            &agent,
            "mutation($c: ID!) { recordConsent(contactId: $c, channel: EMAIL, status: GRANTED, source: \"web form\", statement: \"Newsletter consent v3\") { id channel status } }",
            json!({"c": zel}),
        )
        .await;
        assert_eq!(data(&r, "recordConsent")["status"], "GRANTED", "{name}");
        let r = gql(
            &agent,
            "mutation($c: ID!) { updateContact(id: $c, input: {doNotContact: true}) { id } }",
            json!({"c": zel}),
        )
        .await;
        data(&r, "updateContact");

        // Activities, a ticket with a comment, a deal.
        let r = gql(&agent, "mutation($c: ID!) { createActivity(input: {kind: CALL, subject: \"Call back Zelphine Quarrendon\", contactId: $c}) { id } }", json!({"c": zel})).await;
        let call = data(&r, "createActivity")["id"].as_str().unwrap().to_owned();
        let r = gql(&agent, "mutation($c: ID!, $co: ID!) { createActivity(input: {kind: MEETING, subject: \"Loom tour\", contactId: $c, companyId: $co}) { id } }", json!({"c": zel, "co": company})).await;
        let meeting = data(&r, "createActivity")["id"].as_str().unwrap().to_owned();
        let r = gql(&agent, "mutation($c: ID!) { createTicket(input: {subject: \"Zelphine Quarrendon cannot sign in\", contactId: $c}) { id } }", json!({"c": zel})).await;
        let ticket = data(&r, "createTicket")["id"].as_str().unwrap().to_owned();
        let r = gql(&agent, "mutation($t: ID!) { addTicketComment(ticketId: $t, body: \"Hello Zelphine Quarrendon, try again\", public: true) { id } }", json!({"t": ticket})).await;
        data(&r, "addTicketComment");
        let (pipeline, stages) = crate::util::grants_pipeline(&db).await;
        let r = gql(&agent, "mutation($p: ID!, $s: ID!, $c: ID!) { createDeal(input: {title: \"Loom renewal\", pipelineId: $p, stageId: $s, contactId: $c, amount: \"900\"}) { id } }", json!({"p": pipeline, "s": stages[0], "c": zel})).await;
        let deal = data(&r, "createDeal")["id"].as_str().unwrap().to_owned();
        let r = gql(
            &admin_token,
            "mutation($f: JSON!) { createSegment(input: {name: \"Customers\", object: CONTACT, filter: $f}) { id } }",
            json!({"f": {"lifecycleStage": {"eq": "CUSTOMER"}}}),
        )
        .await;
        data(&r, "createSegment");

        // Donors: her gift with a personal note, a soft credit to her on her colleague's gift, a
        // year-end receipt.
        let year = chrono::Utc::now().year();
        let record = "mutation($c: ID, $a: Decimal!, $d: Date, $n: String, $soft: JSON) { recordDonation(contactId: $c, amount: $a, receivedDate: $d, note: $n, softCredits: $soft) }";
        let last_year = format!("{}-06-01", year - 1);
        let r = gql(
            &agent,
            record,
            json!({"c": zel, "a": "50", "d": last_year, "n": "From Zelphine Quarrendon with love"}),
        )
        .await;
        let gift = data(&r, "recordDonation").as_str().unwrap().to_owned();
        let r = gql(&agent, record, json!({"c": other, "a": "80", "d": last_year, "soft": [{"contactId": zel, "amount": "80", "role": "SPOUSE"}]})).await;
        let other_gift = data(&r, "recordDonation").as_str().unwrap().to_owned();
        let r =
            gql(&manager, "mutation($y: Int!) { issueYearEndReceipts(year: $y) { issued } }", json!({"y": year - 1}))
                .await;
        assert!(data(&r, "issueYearEndReceipts")["issued"].as_i64().unwrap() >= 2, "{name}: {r}");

        // The ledger plugin's objects, one per policy.
        for (mutation, input) in [
            ("createMembership", json!({"contactId": zel, "number": "M-77"})),
            (
                "createVisit",
                json!({"contactId": zel, "room": "Weaving hall", "notes": "Zelphine Quarrendon brought her loom",
                    "diagnosis": "sprained wrist"}),
            ),
            ("createBadge", json!({"contactId": zel, "label": "Zelphine Quarrendon, member"})),
        ] {
            let query = format!("mutation($i: {}CreateInput!) {{ {mutation}(input: $i) {{ id }} }}", &mutation[6..]);
            let r = gql(&agent, &query, json!({"i": input})).await;
            data(&r, mutation);
        }
        // Wait for the donors plugin's thank-you tasks (activities about her) to be written.
        crate::util::eventually(20, "the thank-you tasks", || async {
            let r = gql(&agent, "query($c: ID!) { contact(id: $c) { activities { totalCount } } }", json!({"c": zel}))
                .await;
            (r["data"]["contact"]["activities"]["totalCount"].as_i64().unwrap_or(0) >= 3).then_some(())
        })
        .await;

        // An import whose rejected row holds her phone number.
        let csv = format!("firstName,email,phone\nZed,not-an-address,{PHONE}\n");
        let r = gql(
            &agent,
            "mutation($csv: String!) { startImport(object: \"contacts\", csv: $csv) { id } }",
            json!({"csv": csv}),
        )
        .await;
        let run = data(&r, "startImport")["id"].as_str().unwrap().to_owned();
        crate::util::eventually(20, "the import to end", || async {
            let r =
                gql(&agent, "query($id: ID!) { importRun(id: $id) { state rejectedCount } }", json!({"id": run})).await;
            (r["data"]["importRun"]["state"] == "DONE").then_some(())
        })
        .await;

        // Export: only managers, audited, and complete.
        let export = "mutation($c: ID!) { exportPersonalData(contactId: $c) }";
        assert_eq!(code(&gql(&agent, export, json!({"c": zel})).await), "FORBIDDEN", "{name}");
        let doc = data(&gql(&manager, export, json!({"c": zel})).await, "exportPersonalData").clone();
        assert_eq!(doc["format"], "kith.personal-data.v1", "{name}");
        // A field only admins read is left out of a manager's export, which says so.
        assert_eq!(doc["complete"], false, "{name}: {}", doc["plugins"]["ledger"]["visit"]);
        assert_eq!(doc["restrictedFields"], json!(["Visit.diagnosis"]), "{name}");
        assert!(doc["plugins"]["ledger"]["visit"]["records"][0].get("diagnosis").is_none(), "{name}");
        let full = data(&gql(&admin_token, export, json!({"c": zel})).await, "exportPersonalData").clone();
        assert_eq!(full["complete"], true, "{name}: {full}");
        assert_eq!(full["plugins"]["ledger"]["visit"]["records"][0]["diagnosis"], "sprained wrist", "{name}");
        let contacts = doc["contacts"].as_array().unwrap();
        assert_eq!(contacts.len(), 2, "{name}: she and the contact merged into her");
        assert_eq!(contacts[0]["email"], EMAIL, "{name}");
        assert_eq!(contacts[0]["phone"], PHONE, "{name}");
        assert_eq!(contacts[0]["tags"], json!(["vip"]), "{name}");
        assert_eq!(contacts[0]["customFields"]["nickname"], "Zelphie", "{name}");
        assert!(contacts.iter().any(|c| c["email"] == OLD_EMAIL), "{name}: the merged contact's e-mail");
        let ids = |object: &Value| -> Vec<String> {
            object["records"]
                .as_array()
                .unwrap_or(&Vec::new())
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_owned())
                .collect()
        };
        let core = &doc["records"];
        assert!(ids(&core["activity"]).contains(&call) && ids(&core["activity"]).contains(&meeting), "{name}: {core}");
        assert_eq!(ids(&core["ticket"]), std::slice::from_ref(&ticket), "{name}");
        assert_eq!(core["ticketComment"]["records"].as_array().map(Vec::len), Some(1), "{name}");
        assert_eq!(ids(&core["deal"]), std::slice::from_ref(&deal), "{name}");
        let consents = core["consent"]["records"].as_array().unwrap();
        assert_eq!(consents.len(), 2, "{name}: {consents:?}");
        assert!(
            consents.iter().any(|c| c["statement"] == "Newsletter consent v3" && c["source"] == "web form"),
            "{name}"
        );
        assert!(consents.iter().any(|c| c["channel"] == "ALL" && c["status"] == "WITHDRAWN"), "{name}");
        assert!(
            core["activity"]["schema"]["fields"].as_array().unwrap().iter().any(|f| f["name"] == "subject"),
            "{name}"
        );
        assert_eq!(doc["segments"][0]["name"], "Customers", "{name}");
        assert!(doc["audit"].as_array().unwrap().iter().any(|e| e["action"] == "merge"), "{name}");
        let donors = &doc["plugins"]["donors"];
        assert!(ids(&donors["donation"]).contains(&gift), "{name}: {donors}");
        assert_eq!(donors["softCredit"]["records"][0]["donationId"], other_gift, "{name}");
        assert_eq!(donors["receipt"]["records"].as_array().map(Vec::len), Some(1), "{name}");
        assert!(
            donors["donation"]["schema"]["fields"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["name"] == "note" && f["personal"] == true),
            "{name}"
        );
        for object in ["membership", "visit", "badge"] {
            assert_eq!(
                doc["plugins"]["ledger"][object]["records"].as_array().map(Vec::len),
                Some(1),
                "{name}: {object}"
            );
        }
        assert!(
            doc["pluginExports"]["donors"].is_object(),
            "{name}: the donors plugin's own part: {}",
            doc["pluginExports"]
        );
        let audit = gql(
            &manager,
            "query($c: ID!) { auditLog(object: \"contact\", id: $c, first: 50) { action } }",
            json!({"c": zel}),
        )
        .await;
        assert!(audit.to_string().contains("\"export\""), "{name}: the export is audited: {audit}");

        // Erasure: a plan first, then only an admin, with the confirmation, not on legal hold.
        let plan = gql(&admin_token, "query($c: ID!) { erasurePlan(contactId: $c) { dryRun lines { object plugin policy legalBasis records } } }", json!({"c": zel})).await;
        let lines = data(&plan, "erasurePlan")["lines"].as_array().unwrap().clone();
        let line = |object: &str| lines.iter().find(|l| l["object"] == object).cloned().unwrap_or(Value::Null);
        assert_eq!(line("contact")["records"], 2, "{name}: {lines:?}");
        assert_eq!(line("membership")["policy"], "keep", "{name}");
        assert_eq!(
            line("membership")["legalBasis"],
            "Statutes: the register of members is kept for ten years.",
            "{name}"
        );
        assert_eq!(line("visit")["policy"], "anonymise", "{name}");
        assert_eq!(line("badge")["policy"], "delete", "{name}");
        assert_eq!(line("deal")["policy"], "unlink", "{name}");
        assert_eq!(line("ticket")["policy"], "delete", "{name}");
        let erase = "mutation($c: ID!, $r: String!, $x: String!) { erasePersonalData(contactId: $c, reason: $r, confirm: $x) { dryRun lines { object policy records } } }";
        let vars = |confirm: &str| json!({"c": zel, "r": "Request of 2026-12-06, ref. DSR-12", "x": confirm});
        assert_eq!(code(&gql(&manager, erase, vars("ERASE")).await), "FORBIDDEN", "{name}");
        assert_eq!(code(&gql(&admin_token, erase, vars("yes")).await), "BAD_USER_INPUT", "{name}");
        let hold = "mutation($c: ID!) { updateContact(id: $c, input: {legalHold: true}) { legalHold } }";
        assert_eq!(code(&gql(&agent, hold, json!({"c": zel})).await), "FORBIDDEN", "{name}: holds are for managers");
        let r = gql(&manager, hold, json!({"c": zel})).await;
        assert_eq!(data(&r, "updateContact")["legalHold"], true, "{name}");
        assert_eq!(code(&gql(&admin_token, erase, vars("ERASE")).await), "CONFLICT", "{name}: on legal hold");
        let r = gql(
            &manager,
            "mutation($c: ID!) { updateContact(id: $c, input: {legalHold: false}) { legalHold } }",
            json!({"c": zel}),
        )
        .await;
        data(&r, "updateContact");
        let r = gql(&admin_token, erase, vars("ERASE")).await;
        assert_eq!(data(&r, "erasePersonalData")["dryRun"], false, "{name}");

        // What remains.
        let r = gql(
            &manager,
            "query($c: ID!, $d: ID!) { contact(id: $c) { id } d: contact(id: $d) { id } }",
            json!({"c": zel, "d": dup}),
        )
        .await;
        assert!(r["data"]["contact"].is_null() && r["data"]["d"].is_null(), "{name}: {r}");
        let r = gql(&manager, "query($o: ID!) { contact(id: $o) { email } }", json!({"o": other})).await;
        assert_eq!(data(&r, "contact")["email"], "otto@keep.example", "{name}: the colleague is whole");
        let r = gql(&manager, "query($d: ID!, $m: ID!, $c: ID!, $t: ID!) { deal(id: $d) { contactId title } meeting: activity(id: $m) { contactId companyId } call: activity(id: $c) { id } ticket(id: $t) { id } }", json!({"d": deal, "m": meeting, "c": call, "t": ticket})).await;
        assert_eq!(r["data"]["deal"], json!({"contactId": null, "title": "Loom renewal"}), "{name}: {r}");
        assert_eq!(r["data"]["meeting"], json!({"contactId": null, "companyId": company}), "{name}: {r}");
        assert!(r["data"]["call"].is_null() && r["data"]["ticket"].is_null(), "{name}: {r}");
        let r = gql(&manager, "query($g: ID!) { donation(id: $g) { contactId note amount } memberships { edges { node { contactId number } } } visits { edges { node { contactId notes room } } } badges { edges { node { id } } } softCredits { edges { node { id } } } receipts { edges { node { contactId } } } }", json!({"g": gift})).await;
        assert_eq!(
            r["data"]["donation"],
            json!({"contactId": null, "note": null, "amount": "50"}),
            "{name}: the gift is kept, anonymised: {r}"
        );
        assert_eq!(
            r["data"]["memberships"]["edges"][0]["node"],
            json!({"contactId": zel, "number": "M-77"}),
            "{name}: kept"
        );
        assert_eq!(
            r["data"]["visits"]["edges"][0]["node"],
            json!({"contactId": null, "notes": null, "room": "Weaving hall"}),
            "{name}"
        );
        assert_eq!(r["data"]["badges"]["edges"], json!([]), "{name}");
        assert_eq!(r["data"]["softCredits"]["edges"], json!([]), "{name}");
        assert_eq!(
            r["data"]["receipts"]["edges"].as_array().map(Vec::len),
            Some(1),
            "{name}: only the colleague's receipt: {r}"
        );
        let r = gql(
            &agent,
            "query($id: ID!) { importRun(id: $id) { rejectedCount rejected { line } } }",
            json!({"id": run}),
        )
        .await;
        assert_eq!(
            data(&r, "importRun"),
            &json!({"rejectedCount": 0, "rejected": []}),
            "{name}: her row left the import run"
        );
        let r = gql(&manager, "query { search(query: \"Quarrendon\") { recordId } }", json!({})).await;
        assert_eq!(data(&r, "search"), &json!([]), "{name}");
        let audit = gql(
            &manager,
            "query($c: ID!) { auditLog(object: \"contact\", id: $c, first: 50) { action changes } }",
            json!({"c": zel}),
        )
        .await;
        let entries = data(&audit, "auditLog").as_array().unwrap().clone();
        let erased: Vec<&Value> = entries.iter().filter(|e| e["action"] == "erase").collect();
        assert_eq!(erased.len(), 1, "{name}: one erasure entry: {entries:?}");
        assert_eq!(erased[0]["changes"]["reason"], "Request of 2026-12-06, ref. DSR-12", "{name}");
        let created = entries.iter().find(|e| e["action"] == "create").expect("the entries stay");
        assert_eq!(created["changes"]["email"]["after"], "[erased]", "{name}: without values: {created}");

        // Nothing a byte-level search finds, in any table, on either database.
        drop(runtime);
        server.stop().await;
        for needle in [EMAIL, OLD_EMAIL, PHONE, LAST, "Zelphie", "sprained wrist"] {
            assert_eq!(traces(&db, needle).await, Vec::<String>::new(), "{name}: `{needle}` survives");
        }
        assert!(!traces(&db, "otto@keep.example").await.is_empty(), "{name}: the search does find what is there");
        db.cleanup().await;
    }
}

#[tokio::test]
async fn consent_is_kept_as_history() {
    for db in TestDb::all().await {
        let name = db.name;
        let server = Server::start(&db).await;
        let agent = token(&db, Role::Agent).await;
        let viewer = token(&db, Role::Viewer).await;
        let r = server
            .gql(&agent, "mutation { createContact(input: {firstName: \"Ines\", emailOptIn: true, emailOptInSource: \"signup form\"}) { id emailOptInAt } }", json!({}))
            .await;
        let id = data(&r, "createContact")["id"].as_str().unwrap().to_owned();
        let r = server
            .gql(
                &agent,
                "mutation($c: ID!) { updateContact(id: $c, input: {emailOptIn: false}) { emailOptIn emailOptInAt } }",
                json!({"c": id}),
            )
            .await;
        assert_eq!(data(&r, "updateContact")["emailOptInAt"], Value::Null, "{name}: the field forgets…");
        let r = server
            .gql(&agent, "mutation($c: ID!) { recordConsent(contactId: $c, channel: SMS, status: GRANTED, source: \"phone call\", statement: \"SMS reminders, script v2\", occurredAt: \"2026-12-01T09:00:00Z\") { channel status source statement occurredAt recordedBy } }", json!({"c": id}))
            .await;
        let sms = data(&r, "recordConsent");
        assert_eq!(sms["statement"], "SMS reminders, script v2", "{name}");
        assert!(sms["occurredAt"].as_str().unwrap().starts_with("2026-12-01T09:00:00"), "{name}: {sms}");
        assert!(
            sms["recordedBy"].as_str().is_some_and(|by| !by.is_empty() && !by.starts_with("system")),
            "{name}: {sms}"
        );
        // Bad input: clear errors, nothing recorded (the history below holds three entries).
        let r = server
            .gql(
                &agent,
                "mutation($c: ID!) { recordConsent(contactId: $c, channel: FAX, status: GRANTED) { id } }",
                json!({"c": id}),
            )
            .await;
        assert!(r["errors"][0]["message"].as_str().unwrap_or_default().contains("FAX"), "{name}: {r}");
        let r = server
            .gql(
                &agent,
                "mutation($c: ID!) { recordConsent(contactId: $c, channel: EMAIL, status: GRANTED, occurredAt: \"2999-01-01T00:00:00Z\") { id } }",
                json!({"c": id}),
            )
            .await;
        assert_eq!(code(&r), "BAD_USER_INPUT", "{name}: {r}");
        assert!(r["errors"][0]["message"].as_str().unwrap_or_default().contains("occurredAt"), "{name}: {r}");
        let r = server
            .gql(
                &agent,
                "mutation($c: ID!) { recordConsent(contactId: $c, channel: SMS, status: GRANTED) { id } }",
                json!({"c": uuid::Uuid::now_v7().to_string()}),
            )
            .await;
        assert_eq!(code(&r), "NOT_FOUND", "{name}: {r}");
        let (manager, admin_token) = (token(&db, Role::Manager).await, token(&db, Role::Admin).await);
        let nobody = json!({"c": uuid::Uuid::now_v7().to_string()});
        let r = server.gql(&manager, "mutation($c: ID!) { exportPersonalData(contactId: $c) }", nobody.clone()).await;
        assert_eq!(code(&r), "NOT_FOUND", "{name}: {r}");
        let r =
            server.gql(&admin_token, "query($c: ID!) { erasurePlan(contactId: $c) { dryRun } }", nobody.clone()).await;
        assert_eq!(code(&r), "NOT_FOUND", "{name}: {r}");
        let r = server
            .gql(
                &admin_token,
                "mutation($c: ID!) { erasePersonalData(contactId: $c, reason: \"  \", confirm: \"ERASE\") { dryRun } }",
                json!({"c": id}),
            )
            .await;
        assert_eq!(code(&r), "BAD_USER_INPUT", "{name}: a reason is required: {r}");
        let r = server
            .gql(
                &viewer,
                "mutation($c: ID!) { recordConsent(contactId: $c, channel: EMAIL, status: GRANTED) { id } }",
                json!({"c": id}),
            )
            .await;
        assert_eq!(code(&r), "FORBIDDEN", "{name}");
        let r = server
            .gql(&viewer, "query($c: ID!) { contact(id: $c) { emailOptIn consents(orderBy: [{field: occurredAt, direction: ASC}]) { edges { node { channel status source statement } } } } }", json!({"c": id}))
            .await;
        let history: Vec<Value> =
            data(&r, "contact")["consents"]["edges"].as_array().unwrap().iter().map(|e| e["node"].clone()).collect();
        assert_eq!(history.len(), 3, "{name}: …the history keeps: {history:?}");
        assert!(
            history.iter().any(|c| c["channel"] == "EMAIL" && c["status"] == "GRANTED" && c["source"] == "signup form"),
            "{name}: {history:?}"
        );
        assert!(history.iter().any(|c| c["channel"] == "EMAIL" && c["status"] == "WITHDRAWN"), "{name}: {history:?}");
        assert!(
            history.iter().any(|c| c["channel"] == "SMS" && c["statement"] == "SMS reminders, script v2"),
            "{name}"
        );
        server.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn the_cli_exports_erases_and_applies_retention_policies() {
    for db in TestDb::all().await {
        let name = db.name;
        let keep =
            db.create("contact", json!({"firstName": "Recent", "email": "recent@ret.example"})).await.unwrap().id();
        let old = db
            .create("contact", json!({"firstName": "Long", "lastName": "Gone", "email": "long.gone@ret.example"}))
            .await
            .unwrap()
            .id();
        let held = db
            .create("contact", json!({"firstName": "Held", "email": "held@ret.example", "legalHold": true}))
            .await
            .unwrap()
            .id();
        let busy = db.create("contact", json!({"firstName": "Busy", "email": "busy@ret.example"})).await.unwrap().id();
        db.create("activity", json!({"kind": "NOTE", "subject": "fresh note", "contactId": busy.to_string()}))
            .await
            .unwrap();
        // Three of them untouched for five years; the busy one has a fresh activity.
        let backend = db.kith.store.conn().get_database_backend();
        let past = if backend == sea_orm::DbBackend::Postgres {
            "now() - interval '5 years'".to_owned()
        } else {
            "'2020-01-01T00:00:00.000000Z'".to_owned()
        };
        for id in [old, held, busy] {
            let sql = format!("UPDATE contact SET updated_at = {past}, created_at = {past} WHERE id = '{id}'");
            db.kith.store.conn().execute_unprepared(&sql).await.unwrap();
        }
        let dir = kith_tests::temp_dir();
        let config = dir.join("kith.toml");
        std::fs::write(&config, "[privacy]\nretention = [{ name = \"four years\", inactive_days = 1461 }]\n").unwrap();
        let config = config.display().to_string();

        // Export by e-mail to a file.
        let file = dir.join("export.json");
        let out = run_cli(
            &db.url,
            &["privacy", "export", "--email", "LONG.GONE@ret.example", "--output", &file.display().to_string()],
            "",
        )
        .await
        .unwrap();
        assert!(out.stderr.contains("exported"), "{name}: {out:?}");
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert_eq!(doc["contacts"][0]["id"], old.to_string(), "{name}");
        let err = run_cli(&db.url, &["privacy", "export", "--email", "nobody@ret.example"], "").await.unwrap_err();
        assert!(err.to_string().contains("no contact"), "{name}: {err}");

        // Retention: a dry run lists, a run erases, with an audit entry each.
        let out = run_cli(&db.url, &["--config", &config, "privacy", "retention", "--dry-run"], "").await.unwrap();
        assert_eq!(out.stdout.lines().count(), 1, "{name}: only the long-gone one: {out:?}");
        assert!(out.stdout.contains(&old.to_string()) && out.stdout.contains("would be erased"), "{name}: {out:?}");
        let out = run_cli(&db.url, &["--config", &config, "privacy", "retention"], "").await.unwrap();
        assert!(out.stdout.contains(&format!("{old}\terased")), "{name}: {out:?}");
        let contact = db.kith.object("contact").unwrap();
        for (id, gone) in [(old, true), (held, false), (busy, false), (keep, false)] {
            let found = kith_core::store::records::get(db.kith.store.conn(), &contact, id).await.unwrap();
            assert_eq!(found.is_none(), gone, "{name}: {id}");
        }
        let entries = kith_core::store::audit::list(db.kith.store.conn(), "contact", Some(old), 10).await.unwrap();
        assert!(
            entries.iter().any(|e| e.action == "erase" && e.changes["reason"].as_str().unwrap().contains("four years")),
            "{name}"
        );

        // Erase by id: a dry run changes nothing; without a reason nothing happens.
        let out =
            run_cli(&db.url, &["privacy", "erase", "--contact", &busy.to_string(), "--dry-run"], "").await.unwrap();
        assert!(out.stdout.contains("core\tactivity\tdelete\t1"), "{name}: {out:?}");
        let err = run_cli(&db.url, &["privacy", "erase", "--contact", &busy.to_string()], "").await.unwrap_err();
        assert!(err.to_string().contains("--reason"), "{name}: {err}");
        assert!(
            kith_core::store::records::get(db.kith.store.conn(), &contact, busy).await.unwrap().is_some(),
            "{name}"
        );
        let out = run_cli_env(
            &db.url,
            &["privacy", "erase", "--email", "busy@ret.example", "--reason", "asked by letter"],
            "",
            Vec::new(),
        )
        .await
        .unwrap();
        assert!(out.stderr.contains("did erase"), "{name}: {out:?}");
        assert!(
            kith_core::store::records::get(db.kith.store.conn(), &contact, busy).await.unwrap().is_none(),
            "{name}"
        );
        let err = run_cli(&db.url, &["privacy", "erase", "--contact", &held.to_string(), "--reason", "x"], "")
            .await
            .unwrap_err();
        assert!(format!("{err:#}").contains("legal hold"), "{name}: {err:#}");
        std::fs::remove_dir_all(&dir).ok();
        db.cleanup().await;
    }
}

#[tokio::test]
async fn staff_handle_a_privacy_request_in_the_console() {
    use crate::console::{csrf, location, signed_in};
    for db in TestDb::all().await {
        let name = db.name;
        let server = Server::start(&db).await;
        let id = db
            .create(
                "contact",
                json!({"firstName": "Wenna", "lastName": "Trevithick", "email": "wenna@console.example"}),
            )
            .await
            .unwrap()
            .id()
            .to_string();
        let mut viewer = signed_in(&db, &server, "viewer@kith.example", Role::Viewer).await;
        let page = viewer.get(&format!("/privacy/{id}")).await;
        assert_eq!(page.status, 200, "{name}: {}", page.body);
        assert!(!page.body.contains("/export\"") && !page.body.contains("/erase\""), "{name}: a viewer only reads");
        let mut staff = signed_in(&db, &server, "admin@kith.example", Role::Admin).await;
        let record = staff.get(&format!("/o/contacts/{id}")).await;
        assert!(record.body.contains(&format!("href=\"/privacy/{id}\"")), "{name}: the contact page links to it");
        let page = staff.get(&format!("/privacy/{id}")).await;
        assert!(page.body.contains("deleted"), "{name}: the erasure plan: {}", page.body);
        let token = csrf(&page);

        // A consent given on the phone.
        let reply = staff
            .post(
                &format!("/privacy/{id}/consent"),
                &[
                    ("_csrf", &token),
                    ("channel", "PHONE"),
                    ("status", "GRANTED"),
                    ("source", "phone call"),
                    ("statement", "Calls about events, v1"),
                ],
            )
            .await;
        assert_eq!(
            (reply.status, location(&reply)),
            (303, format!("/privacy/{id}#consents")),
            "{name}: {}",
            reply.body
        );
        let page = staff.get(&format!("/privacy/{id}")).await;
        assert!(page.body.contains("Calls about events, v1") && page.body.contains("phone call"), "{name}");

        // The download.
        let reply = staff.post(&format!("/privacy/{id}/export"), &[("_csrf", &token)]).await;
        assert_eq!(reply.status, 200, "{name}: {}", reply.body);
        assert!(reply.head.contains("content-disposition: attachment"), "{name}: {}", reply.head);
        let doc: Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(doc["contacts"][0]["email"], "wenna@console.example", "{name}");

        // On hold, the erasure form is gone and the API refuses; lifted, a wrong confirmation
        // is refused; then the person is erased.
        let reply = staff.post(&format!("/privacy/{id}/hold"), &[("_csrf", &token), ("hold", "true")]).await;
        assert_eq!(reply.status, 303, "{name}: {}", reply.body);
        let page = staff.get(&format!("/privacy/{id}")).await;
        assert!(page.body.contains("On legal hold") && !page.body.contains("/erase\""), "{name}");
        let reply = staff
            .post(&format!("/privacy/{id}/erase"), &[("_csrf", &token), ("reason", "DSR-7"), ("confirm", "ERASE")])
            .await;
        assert_eq!(reply.status, 422, "{name}: {}", reply.body);
        assert!(reply.body.contains("legal hold"), "{name}");
        staff.post(&format!("/privacy/{id}/hold"), &[("_csrf", &token), ("hold", "false")]).await;
        let reply = staff
            .post(&format!("/privacy/{id}/erase"), &[("_csrf", &token), ("reason", "DSR-7"), ("confirm", "erase it")])
            .await;
        assert_eq!(reply.status, 422, "{name}: {}", reply.body);
        assert!(reply.body.contains("ERASE"), "{name}");
        let reply = staff
            .post(&format!("/privacy/{id}/erase"), &[("_csrf", &token), ("reason", "DSR-7"), ("confirm", "ERASE")])
            .await;
        assert_eq!(reply.status, 200, "{name}: {}", reply.body);
        assert!(reply.body.contains("The person was erased"), "{name}");
        assert_eq!(staff.get(&format!("/privacy/{id}")).await.status, 404, "{name}");
        // Without the form's token, nothing happens.
        let reply = staff.post(&format!("/privacy/{id}/erase"), &[("reason", "x"), ("confirm", "ERASE")]).await;
        assert_eq!(reply.status, 403, "{name}");
        server.stop().await;
        db.cleanup().await;
    }
}

/// A process that does not run plugins cannot see their objects: it refuses a request rather
/// than miss the records they hold about the person.
#[tokio::test]
async fn a_process_without_the_plugin_runtime_refuses_requests_when_plugins_are_installed() {
    use kith_core::service::{Kith, privacy};
    for db in TestDb::all().await {
        let name = db.name;
        let id = db.create("contact", json!({"firstName": "Ivo", "email": "ivo@plugins.example"})).await.unwrap().id();
        let runtime = donors_runtime(&db).await;
        let bare = Kith::new(db.kith.store.clone());
        let err = privacy::erase(&bare, &admin(), id, "request").await.unwrap_err().to_string();
        assert!(err.contains("does not run them"), "{name}: {err}");
        assert!(privacy::export(&bare, &admin(), id).await.is_err(), "{name}");
        // With the runtime, it goes ahead.
        privacy::erase(&db.kith, &admin(), id, "request").await.unwrap();
        drop(runtime);
        db.cleanup().await;
    }
}

/// A disabled plugin's objects keep their tables: an export reads them and an erasure applies
/// their policies there too.
#[tokio::test]
async fn a_disabled_plugins_records_are_exported_and_erased_too() {
    use kith_core::service::privacy;
    for db in TestDb::all().await {
        let name = db.name;
        let runtime = kith_core::plugin::start_runtime(&db.kith, &crate::util::plugins_config()).await.unwrap();
        runtime.install(&admin(), &manifest("ledger", "1.0.0", LEDGER), &welcome().1).await.unwrap();
        runtime.enable(&admin(), "ledger", Grants::All).await.unwrap();
        runtime.refresh().await.unwrap();
        let id =
            db.create("contact", json!({"firstName": "Dora", "email": "dora@dormant.example"})).await.unwrap().id();
        let visit = db
            .create("visit", json!({"contactId": id.to_string(), "room": "Annex", "notes": "Dora Dormant came by"}))
            .await
            .unwrap()
            .id();
        runtime.disable(&admin(), "ledger").await.unwrap();
        runtime.refresh().await.unwrap();
        assert!(db.kith.registry().get("visit").is_none(), "{name}: the object left the API");
        let doc = privacy::export(&db.kith, &admin(), id).await.unwrap();
        let visits = &doc["plugins"]["ledger"]["visit"];
        assert_eq!(visits["pluginDisabled"], true, "{name}: {doc}");
        assert_eq!(visits["records"][0]["notes"], "Dora Dormant came by", "{name}");
        let report = privacy::erase(&db.kith, &admin(), id, "request").await.unwrap();
        assert!(report.lines.iter().any(|l| l.object == "visit" && l.policy == "anonymise"), "{name}: {report:?}");
        runtime.enable(&admin(), "ledger", Grants::All).await.unwrap();
        runtime.refresh().await.unwrap();
        let def = db.kith.object("visit").unwrap();
        let row = kith_core::store::records::get(db.kith.store.conn(), &def, visit).await.unwrap().unwrap();
        assert!(row.get("notes").is_null() && row.get("contactId").is_null(), "{name}: {row:?}");
        assert_eq!(row.get("room").as_text(), Some("Annex"), "{name}");
        drop(runtime);
        db.cleanup().await;
    }
}
