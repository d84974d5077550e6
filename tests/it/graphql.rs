//! The GraphQL API over real HTTP on loopback, on both databases.

use std::net::SocketAddr;
use std::time::Duration;

use kith_core::config::{ApiConfig, ServerConfig};
use kith_core::domain::actor::{Actor, Role};
use kith_core::http::{AppState, app, serve};
use kith_core::service::users;
use kith_tests::TestDb;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    pub(crate) async fn start(db: &TestDb) -> Server {
        Server::start_with(db, ApiConfig::default()).await
    }

    pub(crate) async fn start_with_body(db: &TestDb, max_body_bytes: usize) -> Server {
        Server::start_full(db, ApiConfig::default(), max_body_bytes).await
    }

    pub(crate) async fn start_with(db: &TestDb, api: ApiConfig) -> Server {
        Server::start_full(db, api, 64 * 1024).await
    }

    async fn start_full(db: &TestDb, api: ApiConfig, max_body_bytes: usize) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let state = AppState::new(db.kith.clone(), &api).unwrap();
        let router = app(state, &ServerConfig { max_body_bytes, ..ServerConfig::default() });
        let task = tokio::spawn(serve(
            listener,
            router,
            async move {
                let _ = stopped.await;
            },
            Duration::from_secs(5),
        ));
        Server { addr, stop: Some(stop), task }
    }

    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = self.task.await;
    }

    /// Sends a raw POST and returns (status, body).
    pub(crate) async fn post(&self, content_type: &str, token: Option<&str>, body: &str) -> (u16, String) {
        let mut stream = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
        let request = format!(
            "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        stream.read_to_end(&mut out).await.unwrap();
        let text = String::from_utf8_lossy(&out).into_owned();
        let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
        (status, body)
    }

    pub(crate) async fn gql(&self, token: &str, query: &str, variables: Value) -> Value {
        let body = json!({"query": query, "variables": variables}).to_string();
        let (status, body) = self.post("application/json", Some(token), &body).await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
    }
}

pub(crate) async fn token(db: &TestDb, role: Role) -> String {
    let tx = db.kith.store.begin(&Actor::system("test")).await.unwrap();
    let (_, secret) = users::create_token(&tx, &format!("{role}"), role, None, None).await.unwrap();
    tx.commit().await.unwrap();
    secret
}

pub(crate) fn code(response: &Value) -> &str {
    response["errors"][0]["extensions"]["code"].as_str().unwrap_or("none")
}

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
async fn workflows_over_graphql() {
    let db = TestDb::sqlite().await;
    let server = Server::start(&db).await;
    let agent = token(&db, Role::Agent).await;
    let p = server
        .gql(&agent, "mutation { createPipeline(input: {name: \"Sales\", currency: \"EUR\"}) { id } }", json!({}))
        .await;
    let pid = p["data"]["createPipeline"]["id"].as_str().unwrap().to_owned();
    let mut stages = Vec::new();
    for (i, (name, prob, kind)) in [("Lead", 10, "OPEN"), ("Won", 100, "WON"), ("Lost", 0, "LOST")].iter().enumerate() {
        let s = server
            .gql(
                &agent,
                "mutation($i: StageCreateInput!) { createStage(input: $i) { id } }",
                json!({"i": {"pipelineId": pid, "name": name, "position": i, "probability": prob, "kind": kind}}),
            )
            .await;
        stages.push(s["data"]["createStage"]["id"].as_str().unwrap().to_owned());
    }
    let d = server
        .gql(&agent, "mutation($i: DealCreateInput!) { createDeal(input: $i) { id amount currency stage { name } pipeline { stages { totalCount } } } }", json!({"i": {"title": "Big", "amount": "99.90", "pipelineId": pid, "stageId": stages[0]}}))
        .await;
    assert_eq!(d["data"]["createDeal"]["amount"], "99.9", "{d}");
    assert_eq!(d["data"]["createDeal"]["pipeline"]["stages"]["totalCount"], 3);
    let deal_id = d["data"]["createDeal"]["id"].as_str().unwrap().to_owned();
    let lost = server.gql(&agent, "mutation($id: ID!) { closeDeal(id: $id, outcome: LOST, reason: \"price\") { lostReason closedAt stage { kind } } }", json!({"id": deal_id})).await;
    assert_eq!(lost["data"]["closeDeal"]["stage"]["kind"], "LOST", "{lost}");
    let t = server
        .gql(
            &agent,
            "mutation { createTicket(input: {subject: \"Help\", priority: HIGH}) { id number status } }",
            json!({}),
        )
        .await;
    assert_eq!(t["data"]["createTicket"]["number"], 1001, "{t}");
    let tid = t["data"]["createTicket"]["id"].as_str().unwrap().to_owned();
    let c = server
        .gql(
            &agent,
            "mutation($id: ID!) { addTicketComment(ticketId: $id, body: \"On it\") { public authorName } }",
            json!({"id": tid}),
        )
        .await;
    assert_eq!(c["data"]["addTicketComment"]["public"], true, "{c}");
    let bad = server
        .gql(&agent, "mutation($id: ID!) { changeTicketStatus(id: $id, status: NEW) { status } }", json!({"id": tid}))
        .await;
    assert_eq!(code(&bad), "CONFLICT", "{bad}");
    let solved = server
        .gql(&agent, "mutation($id: ID!) { changeTicketStatus(id: $id, status: SOLVED) { status firstRespondedAt comments { totalCount } timeline { kind summary } } }", json!({"id": tid}))
        .await;
    assert_eq!(solved["data"]["changeTicketStatus"]["status"], "SOLVED", "{solved}");
    assert_eq!(solved["data"]["changeTicketStatus"]["comments"]["totalCount"], 1);
    assert!(solved["data"]["changeTicketStatus"]["timeline"].as_array().unwrap().len() >= 3);
    server.stop().await;
    db.cleanup().await;
}

#[tokio::test]
async fn admin_operations_custom_fields_and_audit_log() {
    for db in TestDb::all().await {
        let server = Server::start(&db).await;
        let admin = token(&db, Role::Admin).await;
        let agent = token(&db, Role::Agent).await;
        let define = "mutation { defineCustomField(object: \"contact\", key: \"tier\", label: \"Tier\", kind: SELECT, options: [\"gold\", \"silver\"]) { key kind options } }";
        assert_eq!(code(&server.gql(&agent, define, json!({})).await), "FORBIDDEN");
        let defined = server.gql(&admin, define, json!({})).await;
        assert_eq!(
            defined["data"]["defineCustomField"]["options"],
            json!(["gold", "silver"]),
            "{}: {defined}",
            db.name
        );
        let again = server.gql(&admin, define, json!({})).await;
        assert_eq!(code(&again), "CONFLICT", "{again}");
        let bad = server
            .gql(
                &agent,
                "mutation { createContact(input: {firstName: \"A\", customFields: {tier: \"bronze\"}}) { id } }",
                json!({}),
            )
            .await;
        assert_eq!(bad["errors"][0]["extensions"]["field"], "customFields.tier", "{bad}");
        let ok = server.gql(&agent, "mutation { createContact(input: {firstName: \"A\", customFields: {tier: \"gold\"}}) { id customFields } }", json!({})).await;
        assert_eq!(ok["data"]["createContact"]["customFields"], json!({"tier": "gold"}), "{ok}");
        let id = ok["data"]["createContact"]["id"].as_str().unwrap().to_owned();
        let found = server
            .gql(&agent, "{ contacts(filter: {customFields: {tier: {eq: \"gold\"}}}) { totalCount } }", json!({}))
            .await;
        assert_eq!(found["data"]["contacts"]["totalCount"], 1, "{found}");
        // Ordering by a custom field (the definitions are loaded only when one is named).
        server
            .gql(
                &agent,
                "mutation { createContact(input: {firstName: \"B\", customFields: {tier: \"silver\"}}) { id } }",
                json!({}),
            )
            .await;
        let ordered = server
            .gql(
                &agent,
                "{ contacts(filter: {customFields: {tier: {isNull: false}}}, orderBy: [{customField: \"tier\", direction: DESC}]) { edges { node { firstName customFields } } } }",
                json!({}),
            )
            .await;
        let names: Vec<&str> = ordered["data"]["contacts"]["edges"]
            .as_array()
            .unwrap_or_else(|| panic!("{ordered}"))
            .iter()
            .map(|e| e["node"]["firstName"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["B", "A"], "silver sorts after gold descending: {ordered}");
        let unknown =
            server.gql(&agent, "{ contacts(orderBy: [{customField: \"nope\"}]) { totalCount } }", json!({})).await;
        assert_eq!(code(&unknown), "BAD_USER_INPUT", "{unknown}");

        assert_eq!(
            code(
                &server
                    .gql(
                        &agent,
                        "query($id: ID) { auditLog(object: \"contact\", id: $id) { action } }",
                        json!({"id": id})
                    )
                    .await
            ),
            "FORBIDDEN"
        );
        let audit = server
            .gql(
                &admin,
                "query($id: ID) { auditLog(object: \"contact\", id: $id) { action actorKind actorName changes } }",
                json!({"id": id}),
            )
            .await;
        assert_eq!(audit["data"]["auditLog"][0]["action"], "create", "{audit}");
        assert_eq!(audit["data"]["auditLog"][0]["actorKind"], "token");
        assert_eq!(audit["data"]["auditLog"][0]["changes"]["firstName"]["after"], "A");

        let created =
            server.gql(&admin, "mutation { createApiToken(name: \"zapier\", role: VIEWER) }", json!({})).await;
        let new_token = created["data"]["createApiToken"].as_str().unwrap().to_owned();
        let read = server.gql(&new_token, "{ contacts { totalCount } }", json!({})).await;
        assert_eq!(read["data"]["contacts"]["totalCount"], 2, "{read}");
        let revoked = server.gql(&admin, "mutation { revokeApiToken(idOrName: \"zapier\") }", json!({})).await;
        assert_eq!(revoked["data"]["revokeApiToken"], 1);
        let (status, _) = server
            .post("application/json", Some(&new_token), &json!({"query": "{ contacts { totalCount } }"}).to_string())
            .await;
        assert_eq!(status, 401, "a revoked token is refused");

        let user = server.gql(&admin, "mutation { createUser(email: \"ops@example.org\", name: \"Ops\", role: MANAGER, password: \"long enough password\") { id role active } }", json!({})).await;
        assert_eq!(user["data"]["createUser"]["role"], "MANAGER", "{user}");
        let session = server
            .gql(
                &admin,
                "mutation { login(email: \"OPS@example.org\", password: \"long enough password\") { token role } }",
                json!({}),
            )
            .await;
        let session_token = session["data"]["login"]["token"].as_str().unwrap().to_owned();
        let wrong = server
            .gql(
                &admin,
                "mutation { login(email: \"ops@example.org\", password: \"nope nope nope\") { token } }",
                json!({}),
            )
            .await;
        assert_eq!(code(&wrong), "FORBIDDEN", "{wrong}");
        let as_manager = server
            .gql(
                &session_token,
                "query($id: ID) { auditLog(object: \"contact\", id: $id) { action } }",
                json!({"id": id}),
            )
            .await;
        assert!(as_manager["data"]["auditLog"].is_array(), "{as_manager}");
        server.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn a_page_with_relations_costs_a_fixed_number_of_queries() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let db = TestDb::sqlite().await;
    let queries = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut store = kith_core::store::Store::open(&kith_core::store::StoreOptions::new(&db.url)).await.unwrap();
    let (counter, log) = (queries.clone(), seen.clone());
    // Authentication is cached for a few seconds; on a slow machine the cache may expire between
    // the two measured requests, so token lookups are not what this test counts.
    store.observe_queries(move |sql| {
        if !sql.contains("api_token") {
            counter.fetch_add(1, Ordering::SeqCst);
            log.lock().unwrap().push(sql.to_owned());
        }
    });
    let observed = db.sharing(kith_core::service::Kith::new(store));
    let server = Server::start(&observed).await;
    let agent = token(&db, Role::Agent).await;
    for c in 0..10 {
        let company = db.create("company", json!({"name": format!("Company {c}")})).await.unwrap();
        for p in 0..6 {
            db.create("contact", json!({"firstName": format!("P{c}-{p}"), "companyId": company.id(), "tags": ["t"]}))
                .await
                .unwrap();
        }
    }
    // Warm the token cache so both measured requests do the same authentication work.
    server.gql(&agent, "{ contacts(first: 1) { totalCount } }", json!({})).await;
    let mut counts = Vec::new();
    for first in [5, 50] {
        let before = queries.load(Ordering::SeqCst);
        let page = server
            .gql(&agent, "query($n: Int) { contacts(first: $n) { edges { node { firstName tags company { name owner { name } } } } } }", json!({"n": first}))
            .await;
        assert_eq!(page["data"]["contacts"]["edges"].as_array().unwrap().len(), first, "{page}");
        assert!(page["data"]["contacts"]["edges"][first - 1]["node"]["company"]["name"].is_string());
        counts.push(queries.load(Ordering::SeqCst) - before);
    }
    // The page, its companies (read ahead by the connection) and its tags: three statements
    // for 5 contacts as for 50. The tags go through a DataLoader, which batches the loads made
    // within 1 ms: on a loaded machine (tests run in parallel on two cores) the nodes' loads can
    // straddle that window and take a second batch, so one more statement is allowed; 50
    // contacts one by one would be 50.
    for n in &counts {
        assert!(
            (3..=4).contains(n),
            "5 and 50 contacts with companies and tags cost three statements: {counts:?}; {:#?}",
            seen.lock().unwrap()
        );
    }
    // Without tags the page is answered directly, its companies joined: one statement.
    for first in [5, 50] {
        let before = queries.load(Ordering::SeqCst);
        let page = server
            .gql(
                &agent,
                "query($n: Int) { contacts(first: $n) { edges { node { firstName company { name } } } } }",
                json!({"n": first}),
            )
            .await;
        assert_eq!(page["data"]["contacts"]["edges"].as_array().unwrap().len(), first, "{page}");
        assert!(page["data"]["contacts"]["edges"][first - 1]["node"]["company"]["name"].is_string(), "{page}");
        assert_eq!(queries.load(Ordering::SeqCst) - before, 1, "{first} contacts with their companies");
    }
    // A deleted company reads as null on the page, read ahead or not.
    let manager = token(&db, Role::Manager).await;
    let first = server.gql(&agent, "{ contacts(first: 1) { edges { node { companyId } } } }", json!({})).await;
    let company_id = first["data"]["contacts"]["edges"][0]["node"]["companyId"].clone();
    let deleted =
        server.gql(&manager, "mutation($id: ID!) { deleteCompany(id: $id) { id } }", json!({"id": company_id})).await;
    assert!(deleted["errors"].is_null(), "{deleted}");
    let page = server
        .gql(&agent, "{ contacts(first: 12) { edges { node { companyId company { name } } } } }", json!({}))
        .await;
    let edges = page["data"]["contacts"]["edges"].as_array().unwrap().clone();
    let (gone, kept): (Vec<_>, Vec<_>) = edges.iter().partition(|e| e["node"]["companyId"] == company_id);
    assert_eq!(gone.len(), 6, "{page}");
    assert!(gone.iter().all(|e| e["node"]["company"].is_null()), "{page}");
    assert!(kept.iter().all(|e| e["node"]["company"]["name"].is_string()), "{page}");
    server.stop().await;
    observed.cleanup().await;
    db.cleanup().await;
}

async fn node_id(server: &Server, token: &str) -> String {
    let page = server.gql(token, "{ contacts(first: 1) { edges { node { id } } } }", json!({})).await;
    page["data"]["contacts"]["edges"][0]["node"]["id"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_page_reads_only_the_columns_it_selects() {
    use std::sync::{Arc, Mutex};
    let db = TestDb::sqlite().await;
    let statements = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut store = kith_core::store::Store::open(&kith_core::store::StoreOptions::new(&db.url)).await.unwrap();
    let seen = statements.clone();
    store.observe_queries(move |sql| seen.lock().unwrap().push(sql.to_owned()));
    let observed = db.sharing(kith_core::service::Kith::new(store));
    let server = Server::start(&observed).await;
    let agent = token(&db, Role::Agent).await;
    let acme = db.create("company", json!({"name": "Acme"})).await.unwrap();
    db.create(
        "contact",
        json!({"firstName": "Ada", "lastName": "Lovelace", "jobTitle": "Countess", "companyId": acme.id(), "tags": ["vip"]}),
    )
    .await
    .unwrap();
    let contact_selects = || -> Vec<String> {
        statements.lock().unwrap().iter().filter(|s| s.contains("FROM \"contact\"")).cloned().collect()
    };
    statements.lock().unwrap().clear();
    // A fragment, an alias, a relation and tags: each is read, nothing else.
    let page = server
        .gql(
            &agent,
            "{ contacts(first: 5, orderBy: [{field: lastName}]) { edges { cursor node { ...Who job: jobTitle company { name } tags } } } } \
             fragment Who on Contact { firstName }",
            json!({}),
        )
        .await;
    let node = &page["data"]["contacts"]["edges"][0]["node"];
    assert_eq!(node["firstName"], "Ada", "{page}");
    assert_eq!(node["job"], "Countess", "{page}");
    assert_eq!(node["company"]["name"], "Acme", "{page}");
    assert_eq!(node["tags"], json!(["vip"]), "{page}");
    let sql = contact_selects();
    assert_eq!(sql.len(), 1, "{sql:?}");
    for column in ["first_name", "job_title", "company_id", "last_name", "\"id\""] {
        assert!(sql[0].contains(column), "{column} is read: {}", sql[0]);
    }
    for column in ["email", "phone", "birthday", "custom_fields", "address_city"] {
        assert!(!sql[0].contains(column), "{column} is not read: {}", sql[0]);
    }
    // The cursor (sort keys + id) still pages correctly.
    let cursor = page["data"]["contacts"]["edges"][0]["cursor"].as_str().unwrap().to_owned();
    let next = server
        .gql(
            &agent,
            "query($c: String) { contacts(first: 5, after: $c, orderBy: [{field: lastName}]) { edges { node { id } } pageInfo { hasPreviousPage } } }",
            json!({"c": cursor}),
        )
        .await;
    assert_eq!(next["data"]["contacts"]["edges"], json!([]), "{next}");
    assert_eq!(next["data"]["contacts"]["pageInfo"]["hasPreviousPage"], true, "{next}");
    // One record by id: its selected fields too, and what tells a deleted one.
    let id = node_id(&server, &agent).await;
    statements.lock().unwrap().clear();
    let one = server
        .gql(&agent, "query($id: ID!) { contact(id: $id) { firstName company { name } } }", json!({"id": id}))
        .await;
    assert_eq!(one["data"]["contact"]["firstName"], "Ada", "{one}");
    assert_eq!(one["data"]["contact"]["company"]["name"], "Acme", "{one}");
    let sql = contact_selects();
    assert_eq!(sql.len(), 1, "{sql:?}");
    for column in ["first_name", "company_id", "deleted_at", "\"id\""] {
        assert!(sql[0].contains(column), "{column} is read: {}", sql[0]);
    }
    for column in ["email", "last_name", "custom_fields", "job_title"] {
        assert!(!sql[0].contains(column), "{column} is not read: {}", sql[0]);
    }
    // A deleted record is still not found when only other fields are selected.
    let manager = token(&db, Role::Manager).await;
    let deleted = server.gql(&manager, "mutation($id: ID!) { deleteContact(id: $id) { id } }", json!({"id": id})).await;
    assert!(deleted["errors"].is_null(), "{deleted}");
    let gone = server.gql(&agent, "query($id: ID!) { contact(id: $id) { firstName } }", json!({"id": id})).await;
    assert!(gone["data"]["contact"].is_null(), "{gone}");
    server.stop().await;
    observed.cleanup().await;
    db.cleanup().await;
}

#[tokio::test]
async fn requests_over_the_per_token_budget_are_rate_limited() {
    let db = TestDb::sqlite().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state =
        AppState::new(db.kith.clone(), &ApiConfig { rate_limit_per_minute: 3, ..ApiConfig::default() }).unwrap();
    let task = tokio::spawn(serve(
        listener,
        app(state, &ServerConfig::default()),
        async move {
            let _ = stopped.await;
        },
        Duration::from_secs(5),
    ));
    let server = Server { addr, stop: Some(stop), task };
    let limited = token(&db, Role::Viewer).await;
    let other = token(&db, Role::Viewer).await;
    let body = json!({"query": "{ contacts { totalCount } }"}).to_string();
    for _ in 0..3 {
        assert_eq!(server.post("application/json", Some(&limited), &body).await.0, 200);
    }
    let (status, reply) = server.post("application/json", Some(&limited), &body).await;
    assert_eq!(status, 429, "{reply}");
    assert_eq!(code(&serde_json::from_str(&reply).unwrap()), "RATE_LIMITED");
    assert_eq!(server.post("application/json", Some(&other), &body).await.0, 200, "budgets are per token");
    server.stop().await;
    db.cleanup().await;
}

#[tokio::test]
async fn depth_complexity_page_size_and_introspection_limits() {
    let db = TestDb::sqlite().await;
    let api = ApiConfig {
        max_depth: 5,
        max_complexity: 60,
        max_page_size: 20,
        introspection: false,
        suggestions: false,
        ..ApiConfig::default()
    };
    let server = Server::start_with(&db, api).await;
    let viewer = token(&db, Role::Viewer).await;
    let deep = server
        .gql(&viewer, "{ contacts { edges { node { company { contacts { edges { node { id } } } } } } } }", json!({}))
        .await;
    assert!(deep["errors"][0]["message"].as_str().unwrap_or_default().contains("too deep"), "{deep}");
    let wide = server.gql(&viewer, "{ a: contacts { totalCount } b: contacts { totalCount } c: contacts { totalCount } d: companies { totalCount } e: deals { totalCount } f: tickets { totalCount } g: activities { totalCount } h: stages { totalCount } i: pipelines { totalCount } j: segments { totalCount } k: users { totalCount } l: contacts { totalCount } m: contacts { totalCount } n: contacts { totalCount } o: contacts { totalCount } p: contacts { totalCount } q: contacts { totalCount } r: contacts { totalCount } s: contacts { totalCount } t: contacts { totalCount } u: contacts { totalCount } v: contacts { totalCount } w: contacts { totalCount } x: contacts { totalCount } y: contacts { totalCount } z: contacts { totalCount } aa: contacts { totalCount } ab: contacts { totalCount } ac: contacts { totalCount } ad: contacts { totalCount } ae: contacts { totalCount } }", json!({})).await;
    assert!(wide["errors"][0]["message"].as_str().unwrap_or_default().contains("complex"), "{wide}");
    assert_eq!(code(&wide), "TOO_COMPLEX", "{wide}");
    let big = server.gql(&viewer, "{ contacts(first: 21) { totalCount } }", json!({})).await;
    assert_eq!(code(&big), "BAD_USER_INPUT", "{big}");
    let introspection = server.gql(&viewer, "{ __schema { types { name } } }", json!({})).await;
    assert!(introspection["data"].is_null() || introspection["errors"].is_array(), "{introspection}");
    assert!(
        introspection.to_string().contains("introspection") || introspection["data"]["__schema"].is_null(),
        "{introspection}"
    );
    let typo = server.gql(&viewer, "{ contactz { totalCount } }", json!({})).await;
    assert!(!typo.to_string().contains("Did you mean"), "no suggestions: {typo}");
    server.stop().await;
    db.cleanup().await;
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

#[tokio::test]
async fn search_is_ranked_kept_in_sync_and_safe_with_any_input() {
    for db in TestDb::all().await {
        let server = Server::start(&db).await;
        let agent = token(&db, Role::Manager).await;
        let create = "mutation($i: ContactCreateInput!) { createContact(input: $i) { id } }";
        let ada = server
            .gql(
                &agent,
                create,
                json!({"i": {"firstName": "Ada", "lastName": "Lovelace", "email": "ada@engines.example"}}),
            )
            .await;
        let ada_id = ada["data"]["createContact"]["id"].as_str().unwrap().to_owned();
        server.gql(&agent, create, json!({"i": {"firstName": "Adam", "lastName": "Smith"}})).await;
        server
            .gql(
                &agent,
                "mutation { createCompany(input: {name: \"Lovelace Engines\", domain: \"engines.example\"}) { id } }",
                json!({}),
            )
            .await;
        server
            .gql(&agent, "mutation { createTicket(input: {subject: \"Lovelace cannot log in\"}) { id } }", json!({}))
            .await;

        let q = "query($q: String!, $t: [SearchType!]) { search(query: $q, types: $t, first: 10) { object recordId title score } }";
        let hits = server.gql(&agent, q, json!({"q": "lovelace"})).await;
        let objects: Vec<&str> =
            hits["data"]["search"].as_array().unwrap().iter().map(|h| h["object"].as_str().unwrap()).collect();
        assert_eq!(objects.len(), 3, "{}: {hits}", db.name);
        for object in ["CONTACT", "COMPANY", "TICKET"] {
            assert!(objects.contains(&object), "{}: {hits}", db.name);
        }
        let prefix = server.gql(&agent, q, json!({"q": "ada love", "t": ["CONTACT"]})).await;
        assert_eq!(
            prefix["data"]["search"].as_array().unwrap().len(),
            1,
            "{}: every word, prefixes: {prefix}",
            db.name
        );
        assert_eq!(prefix["data"]["search"][0]["title"], "Ada Lovelace");
        // An e-mail address, its domain, a word of it and a word without its diacritics find the
        // same records on both databases (PostgreSQL's own parser kept the address as one token).
        server.gql(&agent, create, json!({"i": {"firstName": "José", "lastName": "Müller-Lüdenscheidt"}})).await;
        for (query, title) in [
            ("ada@engines.example", "Ada Lovelace"),
            ("engines.example", "Ada Lovelace"),
            ("engines", "Ada Lovelace"),
            ("jose muller", "José Müller-Lüdenscheidt"),
            ("JOSÉ lüdenscheidt", "José Müller-Lüdenscheidt"),
        ] {
            let hits = server.gql(&agent, q, json!({"q": query, "t": ["CONTACT"]})).await;
            let titles: Vec<&str> =
                hits["data"]["search"].as_array().unwrap().iter().map(|h| h["title"].as_str().unwrap()).collect();
            assert_eq!(titles, [title], "{}: {query}: {hits}", db.name);
        }
        // Query syntax never reaches the index.
        for hostile in ["\"", "ada OR", "*", "love' --", "NEAR(", "a & | !"] {
            let r = server.gql(&agent, q, json!({"q": hostile})).await;
            assert!(r["errors"].is_null(), "{}: {hostile}: {r}", db.name);
        }
        // Updates and deletes keep the index in step.
        server
            .gql(
                &agent,
                "mutation($id: ID!) { updateContact(id: $id, input: {lastName: \"Byron\"}) { id } }",
                json!({"id": ada_id}),
            )
            .await;
        let renamed = server.gql(&agent, q, json!({"q": "byron"})).await;
        assert_eq!(renamed["data"]["search"].as_array().unwrap().len(), 1, "{}: {renamed}", db.name);
        server.gql(&agent, "mutation($id: ID!) { deleteContact(id: $id) { id } }", json!({"id": ada_id})).await;
        let gone = server.gql(&agent, q, json!({"q": "byron"})).await;
        assert_eq!(gone["data"]["search"], json!([]), "{}: {gone}", db.name);
        server.gql(&agent, "mutation($id: ID!) { restoreContact(id: $id) { id } }", json!({"id": ada_id})).await;
        let back = server.gql(&agent, q, json!({"q": "byron"})).await;
        assert_eq!(back["data"]["search"].as_array().unwrap().len(), 1, "{}: {back}", db.name);
        server.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn a_word_in_more_records_than_the_cap_is_ranked_cheaply_and_titles_first() {
    for db in TestDb::all().await {
        let mut csv = String::from("first_name,last_name,job_title\n");
        let n = kith_core::store::search::MAX_CANDIDATES + 50;
        for i in 0..n {
            csv.push_str(&format!("Person{i},Family{i},Plumber\n"));
        }
        let report = kith_core::service::import::import_csv(
            &db.kith,
            &Actor::system("test"),
            "contact",
            csv.into_bytes().as_slice(),
            &kith_core::service::import::ImportOptions::default(),
            &|_| {},
        )
        .await
        .unwrap();
        assert_eq!(report.created, n, "{}", db.name);
        db.create("contact", json!({"firstName": "Plumber", "lastName": "Joe", "jobTitle": "Plumber"})).await.unwrap();
        let server = Server::start(&db).await;
        let agent = token(&db, Role::Agent).await;
        let q = "query($q: String!) { search(query: $q, first: 5) { title score } }";
        let hits = server.gql(&agent, q, json!({"q": "plumber"})).await;
        let hits = hits["data"]["search"].as_array().unwrap().clone();
        assert_eq!(hits.len(), 5, "{}: {hits:?}", db.name);
        let scores: Vec<f64> = hits.iter().map(|h| h["score"].as_f64().unwrap()).collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{}: ranked: {scores:?}", db.name);
        if db.name == "sqlite" {
            // The newest matches are ranked, and a title hit beats a body hit.
            assert_eq!(hits[0]["title"], "Plumber Joe", "{}: {hits:?}", db.name);
        }
        // PostgreSQL remembers the word as common: the next search reads the newest matches
        // from the primary key instead of counting, so it ranks them like SQLite.
        let again = server.gql(&agent, q, json!({"q": "plumber"})).await;
        assert_eq!(again["data"]["search"][0]["title"], "Plumber Joe", "{}: {again}", db.name);
        assert_eq!(again["data"]["search"].as_array().map(Vec::len), Some(5), "{}: {again}", db.name);
        if db.name == "postgres" {
            // Remembered wrongly (another database, where the word is rare): one extra query
            // finds too few, and the full search answers.
            let other = TestDb::postgres().await.unwrap();
            for name in ["Ann", "Bob", "Cy"] {
                other.create("contact", json!({"firstName": name, "jobTitle": "Plumber"})).await.unwrap();
            }
            let other_server = Server::start(&other).await;
            let other_agent = token(&other, Role::Agent).await;
            let few = other_server.gql(&other_agent, q, json!({"q": "plumber"})).await;
            assert_eq!(few["data"]["search"].as_array().map(Vec::len), Some(3), "{few}");
            // Ranked by the database (ts_rank), not by the cheap common-word score (1 and up).
            let scores: Vec<f64> =
                few["data"]["search"].as_array().unwrap().iter().map(|h| h["score"].as_f64().unwrap()).collect();
            assert!(scores.iter().all(|s| *s < 1.0), "{few}");
            other_server.stop().await;
            other.cleanup().await;
        }
        // The type filter applies to the common-word path too.
        let typed = "query($q: String!, $t: [SearchType!]) { search(query: $q, types: $t, first: 5) { object } }";
        let companies = server.gql(&agent, typed, json!({"q": "plumber", "t": ["COMPANY"]})).await;
        assert_eq!(companies["data"]["search"], json!([]), "{}: {companies}", db.name);
        let contacts = server.gql(&agent, typed, json!({"q": "plumber", "t": ["CONTACT", "DEAL"]})).await;
        assert_eq!(contacts["data"]["search"].as_array().map(Vec::len), Some(5), "{}: {contacts}", db.name);
        // A rarer word still goes through the database's ranking, prefixes included.
        let rare = server.gql(&agent, q, json!({"q": "person104"})).await;
        let titles: Vec<&str> =
            rare["data"]["search"].as_array().unwrap().iter().map(|h| h["title"].as_str().unwrap()).collect();
        assert!(titles.contains(&"Person104 Family104"), "{}: {rare}", db.name);
        assert!(titles.iter().all(|t| t.starts_with("Person104")), "{}: {rare}", db.name);
        server.stop().await;
        db.cleanup().await;
    }
}

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

/// Issue 21: 1,000 aliases of a long daily growth report used to count 2,000 (async-graphql
/// counts each field once) and ran for seconds; now each costs its points, and the request is
/// refused before any resolver runs.
#[tokio::test]
async fn many_long_growth_reports_are_refused_before_running_and_one_still_answers() {
    for db in TestDb::all().await {
        let server = Server::start_with_body(&db, 1 << 20).await;
        let manager = token(&db, Role::Manager).await;
        for name in ["A", "B", "C"] {
            db.create("contact", json!({"firstName": name})).await.unwrap();
        }
        let to = chrono::Utc::now().date_naive() + chrono::Duration::days(1);
        let range = json!({"f": (to - chrono::Duration::days(999)).to_string(), "t": to.to_string()});
        let aliases = |n: usize, fields: &str| {
            let body: String = (0..n)
                .map(|i| format!("a{i}: contactGrowth(from: $f, to: $t, interval: DAY) {{ {fields} }} "))
                .collect();
            format!("query($f: Date!, $t: Date!) {{ {body}}}")
        };
        let refused = server.gql(&manager, &aliases(1000, "newContacts"), range.clone()).await;
        assert_eq!(code(&refused), "TOO_COMPLEX", "{}: {refused}", db.name);
        assert!(refused["data"].is_null(), "{}: nothing ran: {refused}", db.name);
        assert_eq!(refused["errors"].as_array().map(Vec::len), Some(1), "{}: one error, not one per alias", db.name);
        let message = refused["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("limit of 2000") && message.contains("`a0: contactGrowth` alone costs 1049 (999 items)"),
            "{}: {message}",
            db.name
        );
        // Ranges over the cap are refused by each resolver before reading: they still cost
        // their base, so a thousand of them are refused whole too.
        let over_cap = json!({"f": "2020-01-01", "t": "2030-01-01"});
        let refused = server.gql(&manager, &aliases(1000, "newContacts"), over_cap).await;
        assert_eq!(code(&refused), "TOO_COMPLEX", "{}: {refused}", db.name);

        let one = server.gql(&manager, &aliases(1, "periodStart newContacts totalContacts"), range).await;
        let points = one["data"]["a0"].as_array().unwrap_or_else(|| panic!("{}: {one}", db.name));
        assert_eq!(points.len(), 999, "{}", db.name);
        assert_eq!(points.iter().map(|p| p["newContacts"].as_i64().unwrap_or(0)).sum::<i64>(), 3);
        assert_eq!(points[998]["totalContacts"], 3, "{}: {one}", db.name);
        server.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn a_growth_report_costs_its_range() {
    let db = TestDb::sqlite().await;
    let server = Server::start_with(&db, ApiConfig { max_complexity: 500, ..ApiConfig::default() }).await;
    let manager = token(&db, Role::Manager).await;
    let q = "query($f: Date!, $t: Date!, $i: GrowthInterval!) { contactGrowth(from: $f, to: $t, interval: $i) { periodStart newContacts } }";
    let growth = |days: i64, interval: &str| json!({"f": "2024-01-01", "t": (chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap() + chrono::Duration::days(days)).to_string(), "i": interval});
    // 600 days: 50 + 600 points, over a limit of 500; 300 days fit, and so do 600 days by week.
    let long = server.gql(&manager, q, growth(600, "DAY")).await;
    assert_eq!(code(&long), "TOO_COMPLEX", "{long}");
    assert!(
        long["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("`contactGrowth` alone costs 650 (600 items)"),
        "{long}"
    );
    let short = server.gql(&manager, q, growth(300, "DAY")).await;
    assert_eq!(short["data"]["contactGrowth"].as_array().map(Vec::len), Some(300), "{short}");
    let weekly = server.gql(&manager, q, growth(600, "WEEK")).await;
    assert_eq!(weekly["data"]["contactGrowth"].as_array().map(Vec::len), Some(86), "{weekly}");
    // Lists cost their `first`: 500 audit entries are over the limit, 50 fit.
    let audit = |first: i64| format!("{{ auditLog(object: \"contact\", first: {first}) {{ action }} }}");
    assert_eq!(code(&server.gql(&manager, &audit(500), json!({})).await), "TOO_COMPLEX");
    let fits = server.gql(&manager, &audit(50), json!({})).await;
    assert!(fits["data"]["auditLog"].is_array(), "{fits}");
    server.stop().await;
    db.cleanup().await;
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

#[tokio::test]
async fn record_changed_subscription_over_websocket() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    for db in TestDb::all().await {
        let server = Server::start(&db).await;
        let agent = token(&db, Role::Agent).await;
        let connect = || async {
            let mut request = format!("ws://{}/graphql/ws", server.addr).into_client_request().unwrap();
            request.headers_mut().insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse().unwrap());
            tokio_tungstenite::connect_async(request).await.unwrap().0
        };
        // A bad token is refused at connection_init.
        let mut refused = connect().await;
        refused
            .send(Message::text(
                json!({"type": "connection_init", "payload": {"Authorization": "Bearer kith_nope"}}).to_string(),
            ))
            .await
            .unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(5), refused.next()).await.unwrap();
        assert!(
            !matches!(&answer, Some(Ok(Message::Text(t))) if t.contains("connection_ack")),
            "{}: {answer:?}",
            db.name
        );

        let mut ws = connect().await;
        ws.send(Message::text(
            json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {agent}")}}).to_string(),
        ))
        .await
        .unwrap();
        let ack = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap().unwrap().unwrap();
        assert!(ack.to_text().unwrap().contains("connection_ack"), "{ack:?}");
        let subscribe = json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription { recordChanged(object: \"contact\") { kind object recordId payload } }"}});
        ws.send(Message::text(subscribe.to_string())).await.unwrap();
        // The subscription registers at some point after `subscribe`: change things (a company,
        // then a contact) every 200 ms until the first event arrives; it must be a contact's.
        let mut ids = Vec::new();
        let message = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                server
                    .gql(&agent, "mutation { createCompany(input: {name: \"Not a contact\"}) { id } }", json!({}))
                    .await;
                let created = server
                    .gql(&agent, "mutation { createContact(input: {firstName: \"Live\"}) { id } }", json!({}))
                    .await;
                ids.push(created["data"]["createContact"]["id"].as_str().unwrap().to_owned());
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
        let body: Value = serde_json::from_str(message.to_text().unwrap()).unwrap();
        let change = &body["payload"]["data"]["recordChanged"];
        assert_eq!(change["kind"], "contact.created", "{}: only contact events: {body}", db.name);
        let record_id = change["recordId"].as_str().unwrap_or_default();
        assert!(ids.iter().any(|id| id == record_id), "{}: one of ours: {body}", db.name);
        assert_eq!(change["payload"]["record"]["firstName"], "Live");
        server.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_its_time_is_stopped_with_timeout_and_writes_nothing() {
    use sea_orm::ConnectionTrait;
    for db in TestDb::all().await {
        let server = Server::start_with(&db, ApiConfig { timeout_ms: 300, ..ApiConfig::default() }).await;
        let agent = token(&db, Role::Agent).await;
        let warm = server.gql(&agent, "{ contacts { totalCount } }", json!({})).await;
        assert_eq!(warm["data"]["contacts"]["totalCount"], 0, "{warm}");
        // Something else holds the database: on SQLite the write lock (the mutation cannot
        // start), on PostgreSQL a lock on the contact table that even reads wait for.
        let blocker = db.kith.store.begin(&Actor::system("test")).await.unwrap();
        let sqlite = db.kith.store.backend() == sea_orm::DbBackend::Sqlite;
        let query = if sqlite {
            "mutation { createContact(input: {firstName: \"Late\"}) { id } }"
        } else {
            blocker.conn().execute_unprepared("LOCK TABLE contact IN ACCESS EXCLUSIVE MODE").await.unwrap();
            "{ contacts(filter: {firstName: {eq: \"Late\"}}) { totalCount } }"
        };
        let body = json!({ "query": query }).to_string();
        let (status, reply) = server.post("application/json", Some(&agent), &body).await;
        assert_eq!(status, 504, "{}: {reply}", db.name);
        let reply: Value = serde_json::from_str(&reply).unwrap();
        assert_eq!(code(&reply), "TIMEOUT", "{}: {reply}", db.name);
        assert!(reply["errors"][0]["message"].as_str().unwrap_or_default().contains("300 ms"), "{reply}");
        blocker.rollback().await.unwrap();
        // The stopped mutation never runs, even once the lock is free; the server serves on.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let after = server.gql(&agent, "{ contacts { totalCount } }", json!({})).await;
        assert_eq!(after["data"]["contacts"]["totalCount"], 0, "{}: {after}", db.name);
        let made =
            server.gql(&agent, "mutation { createContact(input: {firstName: \"Now\"}) { id } }", json!({})).await;
        assert!(made["data"]["createContact"]["id"].is_string(), "{}: {made}", db.name);
        server.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn cursors_come_with_whichever_part_of_a_connection_asks_for_them() {
    for db in TestDb::all().await {
        let server = Server::start(&db).await;
        let agent = token(&db, Role::Agent).await;
        for name in ["Ann", "Bob", "Cy"] {
            db.create("contact", json!({"firstName": name})).await.unwrap();
        }
        let order = "orderBy: [{field: firstName}]";
        // Only the edges' cursors.
        let edges = server
            .gql(
                &agent,
                &format!("{{ contacts(first: 1, {order}) {{ edges {{ cursor node {{ firstName }} }} }} }}"),
                json!({}),
            )
            .await;
        let cursor = edges["data"]["contacts"]["edges"][0]["cursor"].as_str().unwrap_or_default().to_owned();
        assert!(!cursor.is_empty(), "{edges}");
        // Only pageInfo: the same cursor.
        let info = server
            .gql(
                &agent,
                &format!("{{ contacts(first: 1, {order}) {{ pageInfo {{ startCursor endCursor }} }} }}"),
                json!({}),
            )
            .await;
        assert_eq!(info["data"]["contacts"]["pageInfo"]["endCursor"], cursor.as_str(), "{info}");
        assert_eq!(info["data"]["contacts"]["pageInfo"]["startCursor"], cursor.as_str(), "{info}");
        // Neither: nodes alone; then the cursor still pages, through the same cached query
        // text with other variables.
        let query = format!(
            "query($after: String) {{ contacts(first: 1, after: $after, {order}) {{ edges {{ node {{ firstName }} }} }} }}"
        );
        let plain = server.gql(&agent, &query, json!({})).await;
        assert_eq!(plain["data"]["contacts"]["edges"][0]["node"]["firstName"], "Ann", "{plain}");
        let next = server.gql(&agent, &query, json!({"after": cursor})).await;
        assert_eq!(next["data"]["contacts"]["edges"][0]["node"]["firstName"], "Bob", "{next}");
        // A cached query text is still checked on every request: a wrong variable type fails.
        let wrong = server.gql(&agent, &query, json!({"after": 5})).await;
        assert!(wrong["data"].is_null(), "{wrong}");
        assert!(wrong["errors"][0]["message"].as_str().unwrap_or_default().contains("after"), "{wrong}");
        server.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn a_mutation_sees_what_an_earlier_mutation_of_the_operation_changed_not_what_a_page_read_ahead() {
    for db in TestDb::all().await {
        let server = Server::start(&db).await;
        let agent = token(&db, Role::Agent).await;
        let acme = db.create("company", json!({"name": "Acme"})).await.unwrap();
        let ada = db.create("contact", json!({"firstName": "Ada", "companyId": acme.id()})).await.unwrap();
        let result = server
            .gql(
                &agent,
                "mutation($company: ID!, $contact: ID!) { \
                   one: updateCompany(id: $company, input: {name: \"Acme One\"}) { contacts { edges { node { company { name } } } } } \
                   two: updateCompany(id: $company, input: {name: \"Acme Two\"}) { name } \
                   three: updateContact(id: $contact, input: {jobTitle: \"Countess\"}) { company { name } } }",
                json!({"company": acme.id(), "contact": ada.id()}),
            )
            .await;
        assert!(result["errors"].is_null(), "{}: {result}", db.name);
        let read_ahead = &result["data"]["one"]["contacts"]["edges"][0]["node"]["company"]["name"];
        assert_eq!(read_ahead, "Acme One", "{}: {result}", db.name);
        assert_eq!(result["data"]["three"]["company"]["name"], "Acme Two", "{}: {result}", db.name);
        server.stop().await;
        db.cleanup().await;
    }
}

/// A page's `edges` answered directly from the page (`api::direct`) give exactly what the
/// executor gives field by field: the same keys in the same order and the same values, for
/// aliases, `__typename`, cursors, enums, missing and deleted relation targets, nested pages and
/// fields merged from two selections of one key. What does not qualify is left to the executor.
#[tokio::test]
async fn edges_answered_directly_match_the_executor() {
    use kith_core::api::direct::DirectEdges;
    use kith_core::api::schema::{build_schema, request_data};
    for db in TestDb::all().await {
        let acme = db.create("company", json!({"name": "Acme", "domain": "acme.example"})).await.unwrap();
        let gone = db.create("company", json!({"name": "Gone"})).await.unwrap();
        db.create("company", json!({"name": "Empty"})).await.unwrap();
        for (name, company, stage) in [
            ("Ada", Some(acme.id()), Some("CUSTOMER")),
            ("Bob", None, None),
            ("Cy", Some(gone.id()), Some("LEAD")),
            ("Dee", Some(acme.id()), None),
        ] {
            let mut input = json!({"firstName": name, "lastName": format!("{name}son"), "tags": ["t"]});
            if let Some(company) = company {
                input["companyId"] = json!(company);
            }
            if let Some(stage) = stage {
                input["lifecycleStage"] = json!(stage);
            }
            db.create("contact", input).await.unwrap();
        }
        let schema = build_schema(&db.kith.registry(), Some(db.kith.clone()), ApiConfig::default()).unwrap();
        let actor = Actor::system("test");
        let run = |query: String| {
            let schema = schema.clone();
            let request = request_data(async_graphql::Request::new(query), &db.kith, Some(actor.clone()));
            async move {
                let direct = DirectEdges::default();
                let response = schema.execute(request.data(direct.clone())).await;
                assert!(response.errors.is_empty(), "{:?}", response.errors);
                assert_eq!(direct.waiting(), 0);
                // async-graphql's value keeps the response order; its text shows it.
                (serde_json::to_string(&response.data).unwrap(), direct.answered())
            }
        };
        let deleted = run(format!("mutation {{ deleteCompany(id: \"{}\") {{ id }} }}", gone.id())).await;
        assert_eq!(deleted.1, 0);
        // A fragment (`... on ContactEdge { cursor }`) changes nothing in the answer, but leaves
        // the field to the executor.
        let page = |cursor: &str| {
            format!(
                "{{ contacts(first: 10, orderBy: [{{field: firstName}}]) {{ totalCount pageInfo {{ endCursor }} \
                   edges {{ __typename {cursor} node {{ __typename id who: firstName lastName lifecycleStage companyId \
                   company {{ __typename name domain id }} }} }} }} }}"
            )
        };
        let (text, answered) = run(page("cursor")).await;
        let (executed, executor_answered) = run(page("... on ContactEdge { cursor }")).await;
        assert_eq!((answered, executor_answered), (1, 0), "{}", db.name);
        assert_eq!(text, executed, "{}: the same text, keys in the same order", db.name);
        let node = &text[text.find("\"node\"").unwrap()..];
        let at = |key: &str| node.find(&format!("\"{key}\":")).unwrap();
        let order = ["__typename", "id", "who", "lastName", "lifecycleStage", "companyId", "company"].map(at);
        assert!(order.windows(2).all(|w| w[0] < w[1]), "response order: {order:?} in {text}");
        let direct: Value = serde_json::from_str(&text).unwrap();
        let edges = direct["contacts"]["edges"].as_array().unwrap();
        assert_eq!(edges.len(), 4, "{direct}");
        assert_eq!(edges[0]["__typename"], "ContactEdge");
        assert_eq!(edges[0]["node"]["company"]["name"], "Acme", "{direct}");
        assert_eq!(edges[0]["node"]["lifecycleStage"], "CUSTOMER", "{direct}");
        assert!(edges[1]["node"]["company"].is_null(), "no company: {direct}");
        assert!(edges[2]["node"]["company"].is_null(), "a deleted company: {direct}");
        assert!(edges[2]["node"]["companyId"].is_string(), "{direct}");
        assert_eq!(edges[3]["cursor"], direct["contacts"]["pageInfo"]["endCursor"], "{direct}");
        // `@skip` and `@include` are applied before execution: what they leave is answered directly.
        let (skipped, answered) = run(page("cursor @skip(if: true)")).await;
        let skipped: Value = serde_json::from_str(&skipped).unwrap();
        assert_eq!(answered, 1);
        assert!(skipped["contacts"]["edges"][0].get("cursor").is_none(), "{skipped}");
        assert_eq!(skipped["contacts"]["edges"][0]["node"], direct["contacts"]["edges"][0]["node"]);
        // Tags are not on the page: the executor answers, the same way.
        let tagged =
            "{ contacts(first: 10, orderBy: [{field: firstName}]) { edges { node { who: firstName tags } } } }";
        let (tags, answered) = run(tagged.to_owned()).await;
        let tags: Value = serde_json::from_str(&tags).unwrap();
        assert_eq!(answered, 0);
        assert_eq!(tags["contacts"]["edges"][3]["node"], json!({"who": "Dee", "tags": ["t"]}), "{tags}");
        // A page inside a page: each company's contacts directly, the companies by the executor.
        let nested = |cursor: &str| {
            format!(
                "{{ companies(orderBy: [{{field: name}}]) {{ edges {{ node {{ name contacts(orderBy: [{{field: firstName}}]) \
                   {{ edges {{ {cursor} node {{ firstName company {{ name }} }} }} }} }} }} }} }}"
            )
        };
        let (direct, answered) = run(nested("cursor")).await;
        let (executed, executor_answered) = run(nested("... on ContactEdge { cursor }")).await;
        assert_eq!((answered, executor_answered), (2, 0), "two live companies, {}", db.name);
        assert_eq!(direct, executed, "{}", db.name);
        let direct: Value = serde_json::from_str(&direct).unwrap();
        assert_eq!(direct["companies"]["edges"][0]["node"]["contacts"]["edges"][1]["node"]["firstName"], "Dee");
        assert_eq!(direct["companies"]["edges"][1]["node"]["contacts"]["edges"], json!([]), "Empty: {direct}");
        // One response key selected twice: the executor merges the two answers, node by node.
        let merged = "{ contacts(first: 3, orderBy: [{field: firstName}]) { edges { node { firstName } } } \
                      contacts(first: 3, orderBy: [{field: firstName}]) { edges { node { lastName } } } }";
        let (merged, answered) = run(merged.to_owned()).await;
        let merged: Value = serde_json::from_str(&merged).unwrap();
        assert_eq!(answered, 2);
        assert_eq!(merged["contacts"]["edges"][2]["node"], json!({"firstName": "Cy", "lastName": "Cyson"}), "{merged}");
        // A field selected twice (values are moved out of the page only when each is read once).
        let twice = "{ contacts(first: 1, orderBy: [{field: firstName}]) { edges { node { a: firstName b: firstName \
                     company { x: name y: name } } } } }";
        let (twice, answered) = run(twice.to_owned()).await;
        assert_eq!(answered, 1);
        let twice: Value = serde_json::from_str(&twice).unwrap();
        assert_eq!(
            twice["contacts"]["edges"][0]["node"],
            json!({"a": "Ada", "b": "Ada", "company": {"x": "Acme", "y": "Acme"}}),
            "{twice}"
        );
        // One relation under two keys, the first reading the target's `id` (which also tells
        // whether there is a target), and two `edges` of one page: nothing is moved out of a
        // row that another key still reads.
        let shared = |edges: &str| {
            format!(
                "{{ contacts(first: 10, orderBy: [{{field: firstName}}]) {{ pageInfo {{ startCursor endCursor }} \
                   a: edges {{ {edges} }} b: edges {{ node {{ firstName c2: company {{ name }} }} }} }} }}"
            )
        };
        let fields = "cursor node { company { id } c2: company { name } firstName }";
        let (direct, answered) = run(shared(fields)).await;
        let (executed, executor_answered) = run(shared(&format!("... on ContactEdge {{ {fields} }}"))).await;
        assert_eq!((answered, executor_answered), (2, 0), "{}", db.name);
        assert_eq!(direct, executed, "{}", db.name);
        let direct: Value = serde_json::from_str(&direct).unwrap();
        let a = &direct["contacts"]["a"];
        assert_eq!(a[0]["node"], json!({"company": {"id": acme.id()}, "c2": {"name": "Acme"}, "firstName": "Ada"}));
        assert_eq!(a[1]["node"], json!({"company": null, "c2": null, "firstName": "Bob"}), "{direct}");
        assert_eq!(direct["contacts"]["b"][3]["node"], json!({"firstName": "Dee", "c2": {"name": "Acme"}}));
        assert_eq!(a[0]["cursor"], direct["contacts"]["pageInfo"]["startCursor"], "{direct}");
        assert_eq!(a[3]["cursor"], direct["contacts"]["pageInfo"]["endCursor"], "{direct}");
        // Each value read once, cursors and pageInfo too: the rows give their values away, and
        // the next page starts where the cursor says.
        let once = "{ contacts(first: 2, orderBy: [{field: lastName}]) { pageInfo { hasNextPage endCursor } \
                    edges { cursor node { id lastName company { name } } } } }";
        let (first, answered) = run(once.to_owned()).await;
        assert_eq!(answered, 1);
        let first: Value = serde_json::from_str(&first).unwrap();
        assert_eq!(first["contacts"]["pageInfo"]["hasNextPage"], true, "{first}");
        assert_eq!(first["contacts"]["edges"][1]["node"]["lastName"], "Bobson", "{first}");
        let after = first["contacts"]["pageInfo"]["endCursor"].as_str().unwrap().to_owned();
        let next = once.replace("first: 2,", &format!("first: 2, after: \"{after}\","));
        let (next, _) = run(next).await;
        let next: Value = serde_json::from_str(&next).unwrap();
        let names: Vec<&Value> =
            next["contacts"]["edges"].as_array().unwrap().iter().map(|e| &e["node"]["lastName"]).collect();
        assert_eq!(names, vec!["Cyson", "Deeson"], "{next}");
        assert_eq!(next["contacts"]["pageInfo"]["hasNextPage"], false, "{next}");
        // Two pages under aliases, each its own.
        let aliased = "{ a: contacts(first: 1, orderBy: [{field: firstName}]) { edges { node { firstName } } } \
                       b: contacts(last: 1, orderBy: [{field: firstName}]) { edges { node { firstName } } } }";
        let (aliased, answered) = run(aliased.to_owned()).await;
        let aliased: Value = serde_json::from_str(&aliased).unwrap();
        assert_eq!(answered, 2);
        assert_eq!(
            aliased,
            json!({"a": {"edges": [{"node": {"firstName": "Ada"}}]}, "b": {"edges": [{"node": {"firstName": "Dee"}}]}})
        );
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
