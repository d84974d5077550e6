//! Fields only some roles may read (`read_role` in a plugin's manifest; AGENT for a `personal`
//! field unless it says otherwise), over real HTTP on both databases: GraphQL fields answer null
//! with FORBIDDEN to a weaker role, one page at a time or field by field, in relations and in
//! mutation results; filters and sorts on them are FORBIDDEN; the console's lists, record pages,
//! forms and CSV exports leave them out; live events carry them only to roles that may read them;
//! and a plugin's aggregates over a personal field need the `personal:aggregate` grant.

use std::time::Duration;

use kith_core::domain::actor::Role;
use kith_core::plugin::manager::Grants;
use kith_core::plugin::start_runtime;
use kith_tests::TestDb;
use serde_json::{Value, json};

use crate::console::{csrf, signed_in};
use crate::plugin_objects::manifest;
use crate::util::{Server, admin, code, plugins_config, token, welcome};

/// A plugin object with a personal field read by AGENTs and up (`ssn`, required: so nullable in
/// the schema), a personal field read by MANAGERs and up (`salary`), and plain ones.
const STAFF: &str = r#"
[[objects]]
name = "member"
plural = "members"
description = "Someone on the payroll."
title = "{name} ({ssn})"
[[objects.fields]]
name = "name"
type = "text"
required = true
[[objects.fields]]
name = "ssn"
type = "text"
required = true
personal = true
[[objects.fields]]
name = "salary"
type = "decimal"
personal = true
read_role = "MANAGER"
[[objects.fields]]
name = "contactId"
type = "ref"
target = "contact"
"#;

const SSN: &str = "078-05-1120";
const SALARY: &str = "54321.5";

/// The errors of an answer as (path, code, message).
fn errors(answer: &Value) -> Vec<(String, String, String)> {
    answer["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let path: Vec<String> = e["path"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| p.to_string().trim_matches('"').to_owned())
                .collect();
            (
                path.join("."),
                e["extensions"]["code"].as_str().unwrap_or_default().to_owned(),
                e["message"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Whether every error of `answer` is FORBIDDEN and each field in `fields` has one.
#[track_caller]
fn forbidden_fields(answer: &Value, fields: &[&str]) {
    let found = errors(answer);
    assert!(found.iter().all(|(_, code, _)| code == "FORBIDDEN"), "{answer}");
    for field in fields {
        assert!(found.iter().any(|(path, _, _)| path.ends_with(field)), "no FORBIDDEN for {field}: {answer}");
    }
}

/// A server with the staff plugin enabled and a member of `contact`'s: (server, runtime, the
/// member's id, the contact's id).
async fn staff(db: &TestDb) -> (Server, std::sync::Arc<kith_core::plugin::PluginManager>, String, String) {
    let server = Server::start(db).await;
    let runtime = start_runtime(&db.kith, &plugins_config()).await.unwrap();
    runtime.install(&admin(), &manifest("staff", "1.0.0", STAFF), &welcome().1).await.unwrap();
    runtime.enable(&admin(), "staff", Grants::All).await.unwrap();
    runtime.refresh().await.unwrap();
    let ada = db.create("contact", json!({"firstName": "Ada", "lastName": "Lovelace"})).await.unwrap().id().to_string();
    let member = db
        .create("member", json!({"name": "Ada", "ssn": SSN, "salary": SALARY, "contactId": ada}))
        .await
        .unwrap()
        .id()
        .to_string();
    (server, runtime, member, ada)
}

#[tokio::test]
async fn fields_answer_only_roles_that_may_read_them() {
    for db in TestDb::all().await {
        let name = db.name;
        let (server, runtime, member, ada) = staff(&db).await;
        let viewer = token(&db, Role::Viewer).await;
        let agent = token(&db, Role::Agent).await;
        let manager = token(&db, Role::Manager).await;

        // A page: plain fields are answered in one pass; a field the role may not read makes
        // the page go field by field, and answers null with FORBIDDEN (the others still read).
        let page = "{ members(first: 10) { edges { node { id name ssn salary } } } }";
        let as_viewer = server.gql(&viewer, page, json!({})).await;
        let node = &as_viewer["data"]["members"]["edges"][0]["node"];
        assert_eq!((node["id"].as_str(), &node["name"]), (Some(member.as_str()), &json!("Ada")), "{name}: {as_viewer}");
        // Present, and null (not left out).
        assert_eq!(
            (node.get("ssn"), node.get("salary")),
            (Some(&Value::Null), Some(&Value::Null)),
            "{name}: {as_viewer}"
        );
        forbidden_fields(&as_viewer, &["ssn", "salary"]);
        let message = &errors(&as_viewer)[0].2;
        assert!(message.contains("Member.") && message.contains("needs the") && message.contains("you have VIEWER"));
        let plain = server.gql(&viewer, "{ members(first: 10) { edges { node { name } } } }", json!({})).await;
        assert_eq!(plain["data"]["members"]["edges"][0]["node"]["name"], "Ada", "{name}: {plain}");
        assert!(plain["errors"].is_null(), "{name}: {plain}");

        // AGENT reads the personal field (default AGENT), not the MANAGER one; MANAGER both.
        let as_agent = server.gql(&agent, page, json!({})).await;
        let node = &as_agent["data"]["members"]["edges"][0]["node"];
        assert_eq!((&node["ssn"], &node["salary"]), (&json!(SSN), &Value::Null), "{name}: {as_agent}");
        forbidden_fields(&as_agent, &["salary"]);
        assert!(
            errors(&as_agent)[0].2.contains("`Member.salary` needs the MANAGER role; you have AGENT"),
            "{as_agent}"
        );
        let as_manager = server.gql(&manager, page, json!({})).await;
        let node = &as_manager["data"]["members"]["edges"][0]["node"];
        assert_eq!((&node["ssn"], &node["salary"]), (&json!(SSN), &json!(SALARY)), "{name}: {as_manager}");
        assert!(as_manager["errors"].is_null(), "{name}: {as_manager}");

        // One record, field by field.
        let one = "query($id: ID!) { member(id: $id) { name ssn salary } }";
        let answer = server.gql(&viewer, one, json!({"id": member})).await;
        assert_eq!(answer["data"]["member"]["name"], "Ada", "{name}: {answer}");
        forbidden_fields(&answer, &["member.ssn", "member.salary"]);

        // Through relations: the contact's members, and a member from a page of contacts.
        let related = "query($id: ID!) { contact(id: $id) { members(first: 5) { edges { node { name ssn } } } } }";
        let answer = server.gql(&viewer, related, json!({"id": ada})).await;
        assert_eq!(answer["data"]["contact"]["members"]["edges"][0]["node"]["name"], "Ada", "{name}: {answer}");
        forbidden_fields(&answer, &["ssn"]);
        let answer = server.gql(&agent, related, json!({"id": ada})).await;
        assert_eq!(answer["data"]["contact"]["members"]["edges"][0]["node"]["ssn"], SSN, "{name}: {answer}");

        // Filters and sorts that would tell the value: refused, naming the field and role.
        for (what, query) in [
            ("filter", format!("{{ members(filter: {{ssn: {{eq: \"{SSN}\"}}}}) {{ totalCount }} }}")),
            (
                "nested filter",
                "{ members(filter: {or: [{name: {eq: \"x\"}}, {not: {ssn: {isNull: true}}}]}) { totalCount } }"
                    .to_owned(),
            ),
            ("sort", "{ members(orderBy: [{field: ssn}]) { edges { node { name } } } }".to_owned()),
        ] {
            let answer = server.gql(&viewer, &query, json!({})).await;
            assert_eq!(code(&answer), "FORBIDDEN", "{name}: {what}: {answer}");
            let message = &errors(&answer)[0].2;
            assert!(message.contains("`Member.ssn` needs the AGENT role"), "{name}: {what}: {answer}");
            assert!(answer["data"].is_null() || answer["data"]["members"].is_null(), "{name}: {what}: {answer}");
        }
        let answer = server.gql(&agent, "{ members(orderBy: [{field: salary}]) { totalCount } }", json!({})).await;
        assert!(errors(&answer)[0].2.contains("`Member.salary` needs the MANAGER role"), "{name}: {answer}");
        let answer = server
            .gql(&agent, &format!("{{ members(filter: {{ssn: {{eq: \"{SSN}\"}}}}) {{ totalCount }} }}"), json!({}))
            .await;
        assert_eq!(answer["data"]["members"]["totalCount"], 1, "{name}: AGENT filters on what it reads: {answer}");

        // What a write answers is read with the writer's role.
        let create = "mutation($i: MemberCreateInput!) { createMember(input: $i) { id name ssn salary } }";
        let created =
            server.gql(&agent, create, json!({"i": {"name": "Grace", "ssn": "219-09-9999", "salary": "1"}})).await;
        let node = &created["data"]["createMember"];
        assert_eq!(
            (&node["name"], &node["ssn"], &node["salary"]),
            (&json!("Grace"), &json!("219-09-9999"), &Value::Null)
        );
        forbidden_fields(&created, &["salary"]);
        let id = node["id"].as_str().unwrap_or_else(|| panic!("{name}: {created}")).to_owned();
        let update = "mutation($id: ID!) { updateMember(id: $id, input: {salary: \"2\"}) { salary } }";
        let updated = server.gql(&agent, update, json!({"id": id})).await;
        forbidden_fields(&updated, &["salary"]);
        let check = server.gql(&manager, one, json!({"id": id})).await;
        assert_eq!(check["data"]["member"]["salary"], "2", "{name}: the write went through: {check}");

        runtime.stop().await;
        server.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn live_events_carry_only_what_the_subscriber_may_read() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    for db in TestDb::all().await {
        let name = db.name;
        let (server, runtime, _, _) = staff(&db).await;
        let viewer = token(&db, Role::Viewer).await;
        let agent = token(&db, Role::Agent).await;
        let mut request = format!("ws://{}/graphql/ws", server.addr).into_client_request().unwrap();
        request.headers_mut().insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse().unwrap());
        let mut ws = tokio_tungstenite::connect_async(request).await.unwrap().0;
        let init = json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {viewer}")}});
        ws.send(Message::text(init.to_string())).await.unwrap();
        let ack = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap().unwrap().unwrap();
        assert!(ack.to_text().unwrap().contains("connection_ack"), "{ack:?}");
        let subscribe = json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription { recordChanged(object: \"member\") { kind payload } }"}});
        ws.send(Message::text(subscribe.to_string())).await.unwrap();
        // The subscription registers some time after `subscribe`: write until an event arrives.
        let create = "mutation($i: MemberCreateInput!) { createMember(input: $i) { id } }";
        let message = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                let input = json!({"i": {"name": "Live", "ssn": SSN, "salary": SALARY}});
                server.gql(&agent, create, input).await;
                let next = tokio::time::timeout(Duration::from_millis(200), async {
                    loop {
                        let msg = ws.next().await.unwrap().unwrap();
                        if msg.to_text().unwrap_or_default().contains("\"next\"") {
                            return msg;
                        }
                    }
                })
                .await;
                if let Ok(msg) = next {
                    return msg;
                }
            }
        })
        .await
        .expect("an event arrives");
        let text = message.to_text().unwrap().to_owned();
        let body: Value = serde_json::from_str(&text).unwrap();
        let change = &body["payload"]["data"]["recordChanged"];
        assert_eq!(change["kind"], "member.created", "{name}: {body}");
        let record = &change["payload"]["record"];
        assert!(
            record["name"].is_string() && record.get("ssn").is_none() && record.get("salary").is_none(),
            "{name}: {body}"
        );
        assert!(
            !text.contains(SSN) && !text.contains("54321"),
            "{name}: a VIEWER's event holds no restricted value: {body}"
        );
        runtime.stop().await;
        server.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn the_console_shows_a_role_only_what_it_may_read() {
    for db in TestDb::all().await {
        let name = db.name;
        let (server, runtime, member, _) = staff(&db).await;
        let mut viewer = signed_in(&db, &server, "vera@example.org", Role::Viewer).await;
        let mut agent = signed_in(&db, &server, "alan@example.org", Role::Agent).await;

        // The list: no column, filter or sort of what the role may not read, and no value.
        let list = viewer.get("/o/members").await;
        assert_eq!(list.status, 200, "{name}: {}", list.body);
        assert!(
            list.body.contains("Ada") && !list.body.contains(SSN) && !list.body.contains("54321"),
            "{name}: {}",
            list.body
        );
        assert!(
            !list.body.contains("value=\"ssn\"") && !list.body.contains("value=\"salary\""),
            "{name}: {}",
            list.body
        );
        // Asking for the column anyway shows nothing more.
        let asked = viewer.get("/o/members?cols=name,ssn,salary").await;
        assert!(asked.body.contains("Ada") && !asked.body.contains(SSN), "{name}: {}", asked.body);
        // A filter on it is the API's refusal, not an empty list.
        let filtered = viewer.get(&format!("/o/members?f=ssn&op=eq&v={SSN}")).await;
        assert!(filtered.body.contains("`Member.ssn` needs the AGENT role"), "{name}: {}", filtered.body);

        // The record page: named without the restricted field, the value "Restricted".
        let page = viewer.get(&format!("/o/members/{member}")).await;
        assert_eq!(page.status, 200, "{name}: {}", page.body);
        assert!(page.body.contains("<h1>Ada</h1>") && page.body.contains("Restricted"), "{name}: {}", page.body);
        assert!(!page.body.contains(SSN) && !page.body.contains("54321"), "{name}: {}", page.body);
        // An AGENT sees the title that shows the number, still not the salary.
        let agent_page = agent.get(&format!("/o/members/{member}")).await;
        assert!(
            agent_page.body.contains(&format!("Ada ({SSN})")) && !agent_page.body.contains("54321"),
            "{name}: {}",
            agent_page.body
        );

        // The edit form: the AGENT edits what it may read; the salary is neither shown nor sent.
        let form = agent.get(&format!("/o/members/{member}/edit")).await;
        assert_eq!(form.status, 200, "{name}: {}", form.body);
        assert!(form.body.contains("name=\"ssn\"") && !form.body.contains("name=\"salary\""), "{name}: {}", form.body);
        assert!(form.body.contains("Restricted") && !form.body.contains("54321"), "{name}: {}", form.body);
        assert!(form.body.contains("name=\"_version\" value=\"1\""), "{name}: {}", form.body);
        let saved = agent
            .post(
                &format!("/o/members/{member}"),
                &[("_csrf", &csrf(&form)), ("_version", "1"), ("name", "Ada L."), ("ssn", SSN)],
            )
            .await;
        assert_eq!(saved.status, 303, "{name}: {}", saved.body);
        let kept = db.kith.registry();
        let def = kept.get("member").unwrap();
        let record =
            kith_core::store::records::get(db.kith.store.conn(), def, member.parse().unwrap()).await.unwrap().unwrap();
        assert_eq!(record.get("salary").to_string(), SALARY, "{name}: an edit keeps what it did not show");

        // CSV exports: of the list, and of ticked records.
        let csv = viewer.get("/o/members/export.csv?cols=name,ssn,salary").await;
        assert_eq!(csv.status, 200, "{name}: {}", csv.body);
        assert!(csv.body.starts_with("id,name\r\n") || csv.body.starts_with("id,name\n"), "{name}: {}", csv.body);
        assert!(!csv.body.contains(SSN) && !csv.body.contains("54321"), "{name}: {}", csv.body);
        let csv = agent.get("/o/members/export.csv?cols=name,ssn,salary").await;
        assert!(csv.body.contains(SSN) && !csv.body.contains("54321"), "{name}: {}", csv.body);
        let list = viewer.get("/o/members").await;
        let ticked =
            viewer.post("/o/members/bulk", &[("_csrf", &csrf(&list)), ("action", "export"), ("id", &member)]).await;
        assert_eq!(ticked.status, 200, "{name}: {}", ticked.body);
        assert!(ticked.body.contains("Ada") && !ticked.body.contains(SSN), "{name}: {}", ticked.body);

        runtime.stop().await;
        server.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn plugin_aggregates_over_personal_fields_need_their_grant() {
    for db in TestDb::all().await {
        let name = db.name;
        let server = Server::start(&db).await;
        let agent = token(&db, Role::Agent).await;
        let runtime = start_runtime(&db.kith, &plugins_config()).await.unwrap();
        // The welcome plugin, with whom it greeted marked personal: `Contact.welcomeStatus`
        // groups greetings by `contactId`.
        let personal = welcome().0.replace(
            "unique = true\ndescription = \"The contact greeted.\"",
            "unique = true\npersonal = true\ndescription = \"The contact greeted.\"",
        );
        assert_ne!(personal, welcome().0);
        runtime.install(&admin(), &personal, &welcome().1).await.unwrap();
        runtime.enable(&admin(), "welcome", Grants::All).await.unwrap();
        runtime.refresh().await.unwrap();
        let ada = db.create("contact", json!({"firstName": "Ada"})).await.unwrap().id().to_string();
        crate::util::eventually(10, "a greeting", || async {
            (db.count_rows("p_welcome_greeting").await == 1).then_some(())
        })
        .await;
        let status = "query($id: ID!) { contact(id: $id) { firstName welcomeStatus } }";
        let refused = server.gql(&agent, status, json!({"id": ada})).await;
        assert!(refused["data"]["contact"]["welcomeStatus"].is_null(), "{name}: {refused}");
        let message = errors(&refused).first().map(|e| e.2.clone()).unwrap_or_default();
        assert!(message.contains("personal:aggregate"), "{name}: {refused}");

        // Granted: the same aggregate works.
        let granted = personal.replace("version = \"1.2.0\"\nsdk", "version = \"1.2.1\"\nsdk").replace(
            "capabilities = [\"contacts:read\", \"activities:write\"]",
            "capabilities = [\"contacts:read\", \"activities:write\", \"personal:aggregate\"]",
        );
        assert_ne!(granted, personal);
        runtime.upgrade(&admin(), &granted, &welcome().1, &["personal:aggregate".to_owned()]).await.unwrap();
        runtime.refresh().await.unwrap();
        let answer = server.gql(&agent, status, json!({"id": ada})).await;
        assert_eq!(answer["data"]["contact"]["welcomeStatus"], "GREETED", "{name}: {answer}");

        runtime.stop().await;
        server.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn search_and_exports_hold_only_what_a_role_may_read() {
    use kith_core::domain::object::{FieldDef, ObjectDef};
    use kith_core::domain::value::FieldKind;
    use kith_core::service::export::{Format, export};
    for db in TestDb::all().await {
        let name = db.name;
        // A searchable object whose title and search fields include a field for MANAGERs.
        let mut tax_id = FieldDef::new("taxId", FieldKind::Text);
        tax_id.read_role = Role::Manager;
        let def = ObjectDef::new("payee", "payees", "Someone paid.")
            .field(FieldDef::new("name", FieldKind::Text).required())
            .field(tax_id)
            .titled(&["{name} ({taxId})", "Payee {name}"], "name")
            .with(|def| {
                def.exportable = true;
                def.search_fields = vec!["name".into(), "taxId".into()];
            })
            .finish();
        kith_core::store::plugin_objects::create_table(db.kith.store.conn(), &def).await.unwrap();
        let mut registry = (*db.kith.registry()).clone();
        registry.extend(vec![def]).unwrap();
        db.kith.set_registry(registry);
        let server = Server::start(&db).await;
        let manager = token(&db, Role::Manager).await;
        db.create("payee", json!({"name": "Grace", "taxId": "DE-99"})).await.unwrap();

        // The index holds what every role may read: the title without the tax id, and no
        // search by it (that would tell who has which).
        let hits = server.gql(&manager, "{ search(query: \"grace\") { title } }", json!({})).await;
        assert_eq!(hits["data"]["search"], json!([{"title": "Payee Grace"}]), "{name}: {hits}");
        let hits = server.gql(&manager, "{ search(query: \"DE-99\") { title } }", json!({})).await;
        assert_eq!(hits["data"]["search"], json!([]), "{name}: {hits}");

        // Exports leave out what the reader may not read, column and all.
        for (reader, shows) in [(Role::Viewer, false), (Role::Manager, true)] {
            let mut csv = Vec::new();
            export(&db.kith, "payee", reader, Format::Csv, &mut csv).await.unwrap();
            let csv = String::from_utf8(csv).unwrap();
            assert_eq!(csv.contains("taxId") && csv.contains("DE-99"), shows, "{name}: {reader}: {csv}");
            assert!(csv.contains("Grace"), "{name}: {csv}");
            let mut json = Vec::new();
            export(&db.kith, "payee", reader, Format::Json, &mut json).await.unwrap();
            let json: Value = serde_json::from_slice(&json).unwrap();
            assert_eq!(json[0].get("taxId").is_some(), shows, "{name}: {reader}: {json}");
        }
        server.stop().await;
        db.cleanup().await;
    }
}
