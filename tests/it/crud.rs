//! Records through the GraphQL API over real HTTP, on both databases: create, read, update and
//! delete with filters and relations, the error code of every refusal (a missing record, a
//! failing database without its words), the transport's rules, batch creates and upserts,
//! concurrent creates, and segments' live members.

use kith_core::domain::actor::Role;
use kith_tests::TestDb;
use serde_json::{Value, json};

use crate::util::{Server, code, token};

#[tokio::test]
async fn crud_filters_relations_and_error_codes_over_http() {
    for db in TestDb::all().await {
        let server = Server::start(&db).await;
        let agent = token(&db, Role::Agent).await;
        let viewer = token(&db, Role::Viewer).await;
        let manager = token(&db, Role::Manager).await;

        let company = server
            .gql(
                &agent,
                "mutation($i: CompanyCreateInput!) { createCompany(input: $i) { id name domain } }",
                json!({"i": {"name": "Acme", "domain": "ACME.example"}}),
            )
            .await;
        assert_eq!(company["data"]["createCompany"]["domain"], "acme.example", "{}: {company}", db.name);
        let company_id = company["data"]["createCompany"]["id"].as_str().unwrap().to_owned();
        for (i, name) in ["Ada", "Grace", "Alan", "Edsger"].iter().enumerate() {
            let r = server
                .gql(
                    &agent,
                    "mutation($i: ContactCreateInput!) { createContact(input: $i) { id firstName lifecycleStage tags company { name } } }",
                    json!({"i": {"firstName": name, "email": format!("{}@acme.example", name.to_lowercase()), "companyId": company_id, "tags": if i % 2 == 0 { vec!["vip"] } else { vec![] }, "lifecycleStage": if i == 3 { "CUSTOMER" } else { "LEAD" }}}),
                )
                .await;
            assert_eq!(r["data"]["createContact"]["company"]["name"], "Acme", "{}: {r}", db.name);
        }

        let page = server
            .gql(
                &viewer,
                "query($f: ContactFilter) { contacts(filter: $f, orderBy: [{field: firstName, direction: DESC}], first: 2) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { firstName tags company { name contacts { totalCount } } } } } }",
                json!({"f": {"or": [{"tags": {"eq": "vip"}}, {"lifecycleStage": {"eq": "CUSTOMER"}}]}}),
            )
            .await;
        let contacts = &page["data"]["contacts"];
        assert_eq!(contacts["totalCount"], 3, "{}: {page}", db.name);
        let names: Vec<&str> =
            contacts["edges"].as_array().unwrap().iter().map(|e| e["node"]["firstName"].as_str().unwrap()).collect();
        assert_eq!(names, ["Edsger", "Alan"], "{}", db.name);
        assert_eq!(contacts["edges"][0]["node"]["company"]["contacts"]["totalCount"], 4);
        assert_eq!(contacts["pageInfo"]["hasNextPage"], true);
        let after = contacts["pageInfo"]["endCursor"].as_str().unwrap();
        let next = server
            .gql(&viewer, "query($a: String) { contacts(orderBy: [{field: firstName, direction: DESC}], first: 2, after: $a, filter: {or: [{tags: {eq: \"vip\"}}, {lifecycleStage: {eq: CUSTOMER}}]}) { edges { node { firstName } } pageInfo { hasNextPage } } }", json!({"a": after}))
            .await;
        assert_eq!(next["data"]["contacts"]["edges"][0]["node"]["firstName"], "Ada", "{}: {next}", db.name);
        assert_eq!(next["data"]["contacts"]["pageInfo"]["hasNextPage"], false);

        // Error codes.
        let (status, body) =
            server.post("application/json", None, &json!({"query": "{ contacts { totalCount } }"}).to_string()).await;
        assert_eq!(status, 401);
        assert_eq!(code(&serde_json::from_str(&body).unwrap()), "UNAUTHENTICATED");
        let (status, _) = server
            .post("application/json", Some("kith_nope"), &json!({"query": "{ contacts { totalCount } }"}).to_string())
            .await;
        assert_eq!(status, 401);
        let id = page["data"]["contacts"]["edges"][0]["node"]["firstName"].as_str().map(|_| ()).and(Some(()));
        assert!(id.is_some());
        let ada = server
            .gql(
                &viewer,
                "{ contacts(filter: {firstName: {eq: \"Ada\"}}) { edges { node { id version } } } }",
                json!({}),
            )
            .await;
        let ada_id = ada["data"]["contacts"]["edges"][0]["node"]["id"].as_str().unwrap().to_owned();
        let denied =
            server.gql(&viewer, "mutation($id: ID!) { deleteContact(id: $id) { id } }", json!({"id": ada_id})).await;
        assert_eq!(code(&denied), "FORBIDDEN", "{denied}");
        let denied =
            server.gql(&agent, "mutation($id: ID!) { deleteContact(id: $id) { id } }", json!({"id": ada_id})).await;
        assert_eq!(code(&denied), "FORBIDDEN", "agents do not delete: {denied}");
        let bad = server
            .gql(&agent, "mutation { createContact(input: {firstName: \"X\", email: \"nope\"}) { id } }", json!({}))
            .await;
        assert_eq!(code(&bad), "BAD_USER_INPUT", "{bad}");
        assert_eq!(bad["errors"][0]["extensions"]["field"], "email");
        let dup = server
            .gql(
                &agent,
                "mutation { createContact(input: {firstName: \"X\", email: \"ADA@acme.example\"}) { id } }",
                json!({}),
            )
            .await;
        assert_eq!(code(&dup), "CONFLICT", "{dup}");
        let ok = server.gql(&agent, "mutation($id: ID!) { updateContact(id: $id, input: {jobTitle: \"Countess\"}, expectedVersion: 1) { version } }", json!({"id": ada_id})).await;
        assert_eq!(ok["data"]["updateContact"]["version"], 2, "{ok}");
        let stale = server.gql(&agent, "mutation($id: ID!) { updateContact(id: $id, input: {jobTitle: \"Count\"}, expectedVersion: 1) { version } }", json!({"id": ada_id})).await;
        assert_eq!(code(&stale), "CONFLICT", "{stale}");
        let gone = server
            .gql(&manager, "mutation($id: ID!) { deleteContact(id: $id) { deletedAt } }", json!({"id": ada_id}))
            .await;
        assert!(gone["data"]["deleteContact"]["deletedAt"].is_string(), "{gone}");
        let missing = server.gql(&viewer, "query($id: ID!) { contact(id: $id) { id } }", json!({"id": ada_id})).await;
        assert!(missing["data"]["contact"].is_null(), "{missing}");
        let typo = server.gql(&viewer, "{ contacts(first: 500) { totalCount } }", json!({})).await;
        assert_eq!(code(&typo), "BAD_USER_INPUT", "{typo}");
        let malformed = server.gql(&viewer, "{ contacts( }", json!({})).await;
        assert!(malformed["errors"].is_array(), "{malformed}");

        // Transport rules.
        let (status, _) = server
            .post("text/plain", Some(&viewer), &json!({"query": "{ contacts { totalCount } }"}).to_string())
            .await;
        assert_eq!(status, 415, "text/plain is refused");
        let (status, _) = server.post("application/x-www-form-urlencoded", Some(&viewer), "query=%7B%7D").await;
        assert_eq!(status, 415, "forms are refused");
        let batch: Vec<Value> = (0..11).map(|_| json!({"query": "{ contacts { totalCount } }"})).collect();
        let (status, body) = server.post("application/json", Some(&viewer), &Value::Array(batch).to_string()).await;
        assert_eq!(status, 400, "{body}");
        let (status, _) = server.post("application/json", Some(&viewer), &"x".repeat(70 * 1024)).await;
        assert_eq!(status, 413, "bodies over the cap are refused");
        let (status, body) = server.post("application/json", Some(&viewer), "{not json").await;
        assert_eq!(status, 400, "{body}");
        server.stop().await;
        db.cleanup().await;
    }
}

/// `NOT_FOUND` for an id that names nothing, and `INTERNAL` when the database fails under a
/// running server: a generic message without the database's words, status 200, and the
/// server keeps answering everything else.
#[tokio::test]
async fn missing_records_are_not_found_and_database_failures_are_internal_without_detail() {
    use sea_orm::ConnectionTrait;
    for db in TestDb::all().await {
        let server = Server::start(&db).await;
        let manager = token(&db, Role::Manager).await;
        let nobody = uuid::Uuid::now_v7().to_string();
        for mutation in [
            "mutation($id: ID!) { updateContact(id: $id, input: {jobTitle: \"X\"}) { id } }",
            "mutation($id: ID!) { restoreContact(id: $id) { id } }",
            "mutation($id: ID!) { deleteCompany(id: $id) { id } }",
            "mutation($id: ID!) { moveDeal(id: $id, stageId: $id) { id } }",
        ] {
            let answer = server.gql(&manager, mutation, json!({"id": nobody})).await;
            assert_eq!(code(&answer), "NOT_FOUND", "{}: {mutation}: {answer}", db.name);
            assert!(answer["errors"][0]["message"].as_str().unwrap().contains(&nobody), "{answer}");
        }
        db.create("ticket", json!({"subject": "Printer on fire"})).await.unwrap();
        // The tickets' table disappears behind the server's back.
        db.kith.store.pool().execute_unprepared("ALTER TABLE ticket RENAME TO ticket_elsewhere").await.unwrap();
        let broken =
            server.gql(&manager, "{ tickets(first: 5) { totalCount edges { node { subject } } } }", json!({})).await;
        assert_eq!(code(&broken), "INTERNAL", "{}: {broken}", db.name);
        let message = broken["errors"][0]["message"].as_str().unwrap();
        assert_eq!(message, "internal error", "{}: no detail leaks: {broken}", db.name);
        assert!(!broken.to_string().contains("ticket_elsewhere") && !broken.to_string().contains("relation"));
        let fine = server.gql(&manager, "{ contacts(first: 1) { totalCount } }", json!({})).await;
        assert!(fine["errors"].is_null(), "{}: the server still answers: {fine}", db.name);
        db.kith.store.pool().execute_unprepared("ALTER TABLE ticket_elsewhere RENAME TO ticket").await.unwrap();
        let back = server.gql(&manager, "{ tickets(first: 5) { edges { node { subject } } } }", json!({})).await;
        assert_eq!(back["data"]["tickets"]["edges"][0]["node"]["subject"], "Printer on fire", "{}: {back}", db.name);
        server.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn batch_create_is_all_or_nothing_and_upserts_on_the_unique_key() {
    for db in TestDb::all().await {
        let server = Server::start(&db).await;
        let agent = token(&db, Role::Agent).await;
        let m = "mutation($i: [ContactCreateInput!]!, $u: Boolean) { createContacts(inputs: $i, upsert: $u) { firstName email version } }";
        let bad = server
            .gql(
                &agent,
                m,
                json!({"i": [{"firstName": "A", "email": "a@x.org"}, {"firstName": "B", "email": "broken"}]}),
            )
            .await;
        assert_eq!(bad["errors"][0]["extensions"]["field"], "inputs[1].email", "{}: {bad}", db.name);
        let none = server.gql(&agent, "{ contacts { totalCount } }", json!({})).await;
        assert_eq!(none["data"]["contacts"]["totalCount"], 0, "{}: nothing half-written", db.name);
        let ok = server
            .gql(
                &agent,
                m,
                json!({"i": [{"firstName": "A", "email": "a@x.org"}, {"firstName": "B", "email": "b@x.org"}]}),
            )
            .await;
        assert_eq!(ok["data"]["createContacts"].as_array().map(Vec::len), Some(2), "{ok}");
        let dup = server.gql(&agent, m, json!({"i": [{"firstName": "A2", "email": "A@x.org"}]})).await;
        assert_eq!(code(&dup), "CONFLICT", "{dup}");
        let up = server.gql(&agent, m, json!({"i": [{"firstName": "A2", "email": "A@x.org"}, {"firstName": "C", "email": "c@x.org"}], "u": true})).await;
        assert_eq!(up["data"]["createContacts"][0]["firstName"], "A2", "{}: {up}", db.name);
        assert_eq!(up["data"]["createContacts"][0]["version"], 2, "updated, not created");
        assert_eq!(up["data"]["createContacts"][1]["version"], 1);
        let all = server.gql(&agent, "{ contacts { totalCount } }", json!({})).await;
        assert_eq!(all["data"]["contacts"]["totalCount"], 3);
        let no_key = server.gql(&agent, "mutation { createDeals(inputs: [], upsert: true) { id } }", json!({})).await;
        assert_eq!(code(&no_key), "BAD_USER_INPUT", "{no_key}");
        server.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_over_http_each_get_their_own_answer_and_nothing_half_written() {
    for db in TestDb::all().await {
        let server = Server::start(&db).await;
        let agent = token(&db, Role::Agent).await;
        // The token's first use is recorded through the write group: before the count starts.
        server.gql(&agent, "{ contacts(first: 1) { totalCount } }", json!({})).await;
        let before = db.kith.store.group_stats();
        let mutation = "mutation($input: ContactCreateInput!) { createContact(input: $input) { id email } }";
        // 24 at once: 20 good ones, two that share an e-mail, one refused before any statement
        // (an undefined custom field) and one refused after a read (no such company).
        let mut inputs: Vec<Value> =
            (0..20).map(|i| json!({"firstName": "Http", "email": format!("http{i}@example.org")})).collect();
        inputs.push(json!({"firstName": "Twin", "email": "twin@example.org"}));
        inputs.push(json!({"firstName": "Twin", "email": "twin@example.org"}));
        inputs.push(json!({"firstName": "Custom", "customFields": {"undefinedKey": 1}}));
        inputs.push(json!({"firstName": "Nowhere", "companyId": uuid::Uuid::now_v7().to_string()}));
        let answers = futures_util::future::join_all(
            inputs.iter().map(|input| server.gql(&agent, mutation, json!({"input": input}))),
        )
        .await;
        let codes: Vec<&str> = answers.iter().map(code).collect();
        assert!(codes[..20].iter().all(|c| *c == "none"), "{}: {codes:?}", db.name);
        let mut twins = vec![codes[20], codes[21]];
        twins.sort_unstable();
        assert_eq!(twins, vec!["CONFLICT", "none"], "{}: one of the twins", db.name);
        assert_eq!(codes[22], "BAD_USER_INPUT", "{}: {}", db.name, answers[22]);
        assert_eq!(codes[23], "BAD_USER_INPUT", "{}: {}", db.name, answers[23]);
        // Every success is stored whole; nothing of the failures is.
        assert_eq!(db.count_rows("contact").await, 21, "{}", db.name);
        assert_eq!(db.count_rows("audit_log WHERE object = 'contact'").await, 21, "{}", db.name);
        assert_eq!(db.count_rows("event_outbox WHERE kind = 'contact.created'").await, 21, "{}", db.name);
        assert_eq!(db.count_rows("search_entry WHERE object = 'contact'").await, 21, "{}", db.name);
        for answer in &answers[..20] {
            let id = answer["data"]["createContact"]["id"].as_str().unwrap_or_default();
            let read = server.gql(&agent, "query($id: ID!) { contact(id: $id) { email } }", json!({"id": id})).await;
            assert_eq!(read["data"]["contact"]["email"], answer["data"]["createContact"]["email"], "{read}");
        }
        let after = db.kith.store.group_stats();
        assert_eq!(after.writes - before.writes, 21, "{}", db.name);
        server.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn segments_select_their_members_live() {
    for db in TestDb::all().await {
        let server = Server::start(&db).await;
        let agent = token(&db, Role::Agent).await;
        for (name, stage) in [("Ada", "CUSTOMER"), ("Bob", "LEAD"), ("Cy", "CUSTOMER")] {
            server.gql(&agent, "mutation($n: String!, $s: ContactLifecycleStage) { createContact(input: {firstName: $n, lifecycleStage: $s}) { id } }", json!({"n": name, "s": stage})).await;
        }
        let bad = server
            .gql(
                &agent,
                "mutation { createSegment(input: {name: \"x\", object: CONTACT, filter: {nope: {eq: 1}}}) { id } }",
                json!({}),
            )
            .await;
        assert_eq!(code(&bad), "BAD_USER_INPUT", "{}: {bad}", db.name);
        let seg = server
            .gql(&agent, "mutation { createSegment(input: {name: \"Customers\", object: CONTACT, filter: {lifecycleStage: {eq: \"CUSTOMER\"}}}) { id } }", json!({}))
            .await;
        let id = seg["data"]["createSegment"]["id"].as_str().unwrap_or_else(|| panic!("{seg}")).to_owned();
        let q = "query($id: ID!) { segment(id: $id) { name members(first: 10) { totalCount edges { node { __typename ... on Contact { firstName } } } } } }";
        let r = server.gql(&agent, q, json!({"id": id})).await;
        let members = &r["data"]["segment"]["members"];
        assert_eq!(members["totalCount"], 2, "{}: {r}", db.name);
        assert_eq!(members["edges"][0]["node"], json!({"__typename": "Contact", "firstName": "Ada"}));
        server
            .gql(
                &agent,
                "mutation { createContact(input: {firstName: \"Di\", lifecycleStage: CUSTOMER}) { id } }",
                json!({}),
            )
            .await;
        let again = server.gql(&agent, q, json!({"id": id})).await;
        assert_eq!(again["data"]["segment"]["members"]["totalCount"], 3, "{}: a segment is a live query", db.name);
        server.stop().await;
        db.cleanup().await;
    }
}

/// A write's references are checked together (one statement for all of them): each missing or
/// deleted one is refused naming its field, and the write leaves nothing.
#[tokio::test]
async fn every_reference_of_a_write_must_be_a_live_record() {
    for db in TestDb::all().await {
        let name = db.name;
        let server = Server::start(&db).await;
        let agent = token(&db, Role::Agent).await;
        let manager = token(&db, Role::Manager).await;
        let (pipeline, stages) = crate::util::grants_pipeline(&db).await;
        let id_of = |answer: &Value, field: &str| answer["data"][field]["id"].as_str().unwrap_or_default().to_owned();
        let kept = server
            .gql(
                &agent,
                "mutation { createCompany(input: {name: \"Kept\", domain: \"kept.example\"}) { id } }",
                json!({}),
            )
            .await;
        let kept = id_of(&kept, "createCompany");
        let gone = server
            .gql(
                &agent,
                "mutation { createCompany(input: {name: \"Gone\", domain: \"gone.example\"}) { id } }",
                json!({}),
            )
            .await;
        let gone = id_of(&gone, "createCompany");
        let deleted =
            server.gql(&manager, "mutation($id: ID!) { deleteCompany(id: $id) { id } }", json!({"id": gone})).await;
        assert!(deleted["errors"].is_null(), "{name}: {deleted}");
        let contact = server
            .gql(
                &agent,
                "mutation($c: ID!) { createContact(input: {firstName: \"Ref\", companyId: $c}) { id } }",
                json!({"c": kept}),
            )
            .await;
        let contact = id_of(&contact, "createContact");
        assert!(!contact.is_empty(), "{name}");
        let deal = "mutation($p: ID!, $s: ID!, $c: ID, $co: ID) { createDeal(input: {title: \"Ref\", pipelineId: $p, stageId: $s, contactId: $c, companyId: $co}) { id contact { firstName } company { name } } }";
        let missing = "00000000-0000-7000-8000-000000000001";
        for (contact_id, company_id, field) in [
            (contact.as_str(), gone.as_str(), "companyId"),
            (missing, kept.as_str(), "contactId"),
            (contact.as_str(), missing, "companyId"),
        ] {
            let answer = server
                .gql(&agent, deal, json!({"p": pipeline, "s": stages[0], "c": contact_id, "co": company_id}))
                .await;
            assert_eq!(code(&answer), "BAD_USER_INPUT", "{name}: {answer}");
            let message = answer["errors"][0]["message"].as_str().unwrap_or_default();
            assert!(message.contains(field) && message.contains("no "), "{name}: {field}: {message}");
        }
        let count = server.gql(&agent, "{ deals { totalCount } }", json!({})).await;
        assert_eq!(count["data"]["deals"]["totalCount"], 0, "{name}: refused writes leave nothing");
        // All of them live: written, with its relations.
        let answer = server.gql(&agent, deal, json!({"p": pipeline, "s": stages[0], "c": contact, "co": kept})).await;
        assert_eq!(answer["data"]["createDeal"]["contact"]["firstName"], "Ref", "{name}: {answer}");
        assert_eq!(answer["data"]["createDeal"]["company"]["name"], "Kept", "{name}: {answer}");
        db.cleanup().await;
    }
}
