//! Pages (connections) through the GraphQL API: a fixed number of statements per page whatever
//! its size, only the selected columns read, cursors for whichever part asks, `edges` answered
//! directly exactly as the executor answers them, and relations read ahead for a page never
//! hiding what a later mutation of the operation changed.

use kith_core::config::ApiConfig;
use kith_core::domain::actor::{Actor, Role};
use kith_tests::TestDb;
use serde_json::{Value, json};

use crate::util::{Server, token};

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
    // the two measured requests, so token lookups are not what this test counts; nor the live
    // events' poll of the outbox's end, which runs on its own timer and can land in a request.
    store.observe_queries(move |sql| {
        if !sql.contains("api_token") && !sql.contains("FROM event_outbox") {
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
        assert_eq!(
            queries.load(Ordering::SeqCst) - before,
            1,
            "{first} contacts with their companies: {:#?}",
            seen.lock().unwrap()
        );
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
