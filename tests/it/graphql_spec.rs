//! The API as standard GraphQL clients expect it: graphql-js's standard introspection query
//! passes the depth limit (which still guards data), and errors follow the GraphQL spec and
//! GraphQL over HTTP (codes, one-line messages, valid locations, paths, 400 for a request that
//! never ran in `application/graphql-response+json`, one answer for every token that is not
//! valid).

use kith_core::config::ApiConfig;
use kith_core::domain::actor::Role;
use kith_tests::TestDb;
use serde_json::{Value, json};

use crate::util::{Reply, Server, code, exchange, token};

/// graphql-js 16's `getIntrospectionQuery` with every option on.
const STANDARD: &str = include_str!("../../core/src/api/depth/introspection.graphql");

const GRAPHQL_JSON: &[u8] = b"Accept: application/graphql-response+json\r\n";

async fn post(server: &Server, token: Option<&str>, accept: &[u8], query: &str, variables: Value) -> Reply {
    let body = json!({"query": query, "variables": variables}).to_string();
    exchange(server.addr, "POST", "/graphql", token, accept, &body).await
}

/// Every error's locations start at line 1, column 1, and every error has a code.
#[track_caller]
fn well_formed(answer: &Value) {
    for error in answer["errors"].as_array().into_iter().flatten() {
        assert!(error["extensions"]["code"].is_string(), "an error without a code: {error}");
        let message = error["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty() && !message.contains('\n'), "a message on one line: {error}");
        for location in error["locations"].as_array().into_iter().flatten() {
            assert!(location["line"].as_u64() >= Some(1) && location["column"].as_u64() >= Some(1), "{error}");
        }
    }
}

#[tokio::test]
async fn the_standard_introspection_query_passes_while_the_depth_limit_guards_data() {
    let db = TestDb::sqlite().await;
    let server = Server::start(&db).await;
    let viewer = token(&db, Role::Viewer).await;
    assert_eq!(ApiConfig::default().max_depth, 12, "the default limit that refused it");
    for (who, bearer) in [("anonymous", None), ("viewer", Some(viewer.as_str()))] {
        for accept in [&b""[..], GRAPHQL_JSON] {
            let reply = post(&server, bearer, accept, STANDARD, json!({})).await;
            assert_eq!(reply.status, 200, "{who}: {}", reply.body);
            let answer = reply.json();
            assert!(answer["errors"].is_null(), "{who}: {answer}");
            let types = answer["data"]["__schema"]["types"].as_array().expect("types");
            let contact = types.iter().find(|t| t["name"] == "Contact").expect("Contact is described");
            let company = contact["fields"].as_array().unwrap().iter().find(|f| f["name"] == "company").unwrap();
            assert_eq!(company["type"]["name"], "Company", "{who}");
            let contacts = types.iter().find(|t| t["name"] == "Query").unwrap()["fields"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["name"] == "contacts")
                .unwrap()
                .clone();
            assert_eq!(contacts["type"]["kind"], "NON_NULL", "{who}: {contacts}");
            assert!(answer["data"]["__schema"]["directives"].as_array().is_some_and(|d| !d.is_empty()));
        }
    }
    // Data is still held to depth 12, with its own code, located where it crosses the limit.
    let deep = "{ contacts { edges { node { company { contacts { edges { node { company { contacts { edges { node { company { name } } } } } } } } } } } } }";
    let answer = server.gql(&viewer, deep, json!({})).await;
    assert_eq!(code(&answer), "QUERY_TOO_DEEP", "{answer}");
    assert!(answer["errors"][0]["message"].as_str().unwrap().contains("13 levels"), "{answer}");
    assert_eq!(answer["errors"][0]["locations"][0]["line"], 1, "{answer}");
    assert!(answer.get("data").is_none(), "nothing ran: {answer}");
    well_formed(&answer);
    // A "circular" introspection query, which multiplies types by fields by fields, is refused.
    let circular = "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }";
    let answer = server.gql(&viewer, circular, json!({})).await;
    assert_eq!(code(&answer), "QUERY_TOO_DEEP", "{answer}");
    well_formed(&answer);
    server.stop().await;

    // Introspection can be turned off for production, and then the standard query is refused.
    let closed = Server::start_with(&db, ApiConfig { introspection: false, ..ApiConfig::default() }).await;
    let answer = closed.gql(&viewer, STANDARD, json!({})).await;
    assert!(answer["data"].is_null(), "{answer}");
    assert_eq!(code(&answer), "GRAPHQL_VALIDATION_FAILED", "{answer}");
    let messages: Vec<&str> =
        answer["errors"].as_array().unwrap().iter().filter_map(|e| e["message"].as_str()).collect();
    assert!(messages.iter().any(|m| m.contains("Unknown field \"__schema\"")), "{answer}");
    closed.stop().await;
    db.cleanup().await;
}

#[tokio::test]
async fn parse_and_validation_errors_are_coded_located_and_400_in_the_graphql_media_type() {
    let db = TestDb::sqlite().await;
    let server = Server::start(&db).await;
    let viewer = token(&db, Role::Viewer).await;
    let cases = [
        ("{ contacts { totalCount ", json!({}), "GRAPHQL_PARSE_FAILED"),
        ("{ contacts { totalCont } }", json!({}), "GRAPHQL_VALIDATION_FAILED"),
        ("query($n: Int) { contacts(first: $n) { totalCount } }", json!({"n": "many"}), "GRAPHQL_VALIDATION_FAILED"),
        ("query($n: Int!) { contacts(first: $n) { totalCount } }", json!({}), "GRAPHQL_VALIDATION_FAILED"),
        ("{ contacts(first: \"x\") { totalCount } }", json!({}), "GRAPHQL_VALIDATION_FAILED"),
    ];
    for (query, variables, expected) in cases {
        // `application/json`: 200, as GraphQL over HTTP keeps for older clients.
        let plain = post(&server, Some(&viewer), b"", query, variables.clone()).await;
        assert_eq!(plain.status, 200, "{query}: {}", plain.body);
        assert!(plain.head.contains("content-type: application/json"), "{}", plain.head);
        assert_eq!(plain.code(), expected, "{query}: {}", plain.body);
        well_formed(&plain.json());
        // `application/graphql-response+json`: 400, no data.
        let strict = post(&server, Some(&viewer), GRAPHQL_JSON, query, variables).await;
        assert_eq!(strict.status, 400, "{query}: {}", strict.body);
        assert!(strict.head.contains("content-type: application/graphql-response+json"), "{}", strict.head);
        let answer = strict.json();
        assert_eq!(code(&answer), expected, "{query}: {answer}");
        assert!(answer.get("data").is_none(), "{query}: {answer}");
        well_formed(&answer);
    }
    // A parse error points at where the document stops making sense.
    let answer = post(&server, Some(&viewer), b"", "{ contacts { totalCount ", json!({})).await.json();
    let message = answer["errors"][0]["message"].as_str().unwrap();
    assert!(message.starts_with("syntax error: expected"), "{answer}");
    assert_eq!(answer["errors"][0]["locations"][0]["line"], 1, "{answer}");
    // An unknown field is located at the field.
    let answer = post(&server, Some(&viewer), b"", "{\n  contacts { totalCont }\n}", json!({})).await.json();
    assert_eq!(answer["errors"][0]["locations"][0], json!({"line": 2, "column": 14}), "{answer}");
    // An operation name the document does not hold.
    let reply = post(&server, Some(&viewer), GRAPHQL_JSON, "query A { __typename }", json!({})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = json!({"query": "query A { __typename }", "operationName": "B"}).to_string();
    let reply = exchange(server.addr, "POST", "/graphql", Some(&viewer), GRAPHQL_JSON, &body).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(reply.code(), "GRAPHQL_VALIDATION_FAILED", "{}", reply.body);
    well_formed(&reply.json());
    // Too costly: 400 too, with its own code.
    let costly =
        format!("{{ {} }}", (0..60).map(|i| format!("a{i}: search(query: \"x\") {{ recordId }}")).collect::<String>());
    let reply = post(&server, Some(&viewer), GRAPHQL_JSON, &costly, json!({})).await;
    assert_eq!((reply.status, reply.code()), (400, "QUERY_TOO_COMPLEX".to_owned()), "{}", reply.body);
    server.stop().await;
    db.cleanup().await;
}

#[tokio::test]
async fn field_errors_carry_their_path_and_leave_the_rest_of_the_answer() {
    let db = TestDb::sqlite().await;
    let server = Server::start(&db).await;
    let viewer = token(&db, Role::Viewer).await;
    let agent = token(&db, Role::Agent).await;
    let created = server
        .gql(
            &agent,
            "mutation { createContact(input: { firstName: \"Ada\", email: \"ada@example.org\" }) { id } }",
            json!({}),
        )
        .await;
    let id = created["data"]["createContact"]["id"].as_str().expect("created").to_owned();
    // One field fails (an id that is not one), the others answer; the failed field is null.
    for accept in [&b""[..], GRAPHQL_JSON] {
        let query = "query($id: ID!) { bad: contact(id: \"nope\") { id } good: contact(id: $id) { firstName } n: contacts { totalCount } }";
        let reply = post(&server, Some(&viewer), accept, query, json!({"id": id})).await;
        assert_eq!(reply.status, 200, "a request that ran is a 200: {}", reply.body);
        let answer = reply.json();
        assert_eq!(code(&answer), "BAD_USER_INPUT", "{answer}");
        assert_eq!(answer["errors"][0]["path"], json!(["bad"]), "{answer}");
        assert_eq!(
            answer["data"],
            json!({"bad": null, "good": {"firstName": "Ada"}, "n": {"totalCount": 1}}),
            "{answer}"
        );
        well_formed(&answer);
    }
    // A non-null root field that fails takes `data` with it (spec: errors propagate to the
    // nearest nullable place), and the error still names its path.
    let answer = server
        .gql(
            &viewer,
            "{ big: contacts(first: 5000) { totalCount } small: contacts(first: 1) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&answer), "BAD_USER_INPUT", "{answer}");
    assert_eq!(answer["errors"][0]["path"], json!(["big"]), "{answer}");
    assert!(answer["data"].is_null(), "{answer}");
    // A mutation the role may not run: the error names the mutation's path.
    let answer = server.gql(&viewer, "mutation($id: ID!) { deleteContact(id: $id) { id } }", json!({"id": id})).await;
    assert_eq!(code(&answer), "FORBIDDEN", "{answer}");
    assert_eq!(answer["errors"][0]["path"], json!(["deleteContact"]), "{answer}");
    well_formed(&answer);
    // A stale version, deep in the answer's path.
    let answer = server
        .gql(
            &agent,
            "mutation($id: ID!) { updateContact(id: $id, input: { lastName: \"L\" }, expectedVersion: 7) { id } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(code(&answer), "CONFLICT", "{answer}");
    assert_eq!(answer["errors"][0]["path"], json!(["updateContact"]), "{answer}");
    server.stop().await;
    db.cleanup().await;
}

#[tokio::test]
async fn a_missing_and_a_bad_token_get_the_same_answer() {
    let db = TestDb::sqlite().await;
    let server = Server::start(&db).await;
    let viewer = token(&db, Role::Viewer).await;
    let revoked = token(&db, Role::Viewer).await;
    let answer = server.gql(&viewer, "{ __typename }", json!({})).await;
    assert_eq!(answer["data"]["__typename"], "Query");
    let query = "{ contacts { totalCount } }";
    let mut replies = Vec::new();
    for bearer in [None, Some("not-a-token"), Some(&revoked[..revoked.len() - 1])] {
        for accept in [&b""[..], GRAPHQL_JSON] {
            let reply = post(&server, bearer, accept, query, json!({})).await;
            assert_eq!(reply.status, 401, "{bearer:?}: {}", reply.body);
            assert!(reply.head.contains("www-authenticate: bearer"), "{}", reply.head);
            assert_eq!(reply.code(), "UNAUTHENTICATED");
            well_formed(&reply.json());
            replies.push(reply.body);
        }
    }
    assert!(replies.iter().all(|body| *body == replies[0]), "one answer for all: {replies:#?}");
    // Without a token, introspection still runs; with a bad one nothing does.
    let anonymous = post(&server, None, b"", "{ __schema { queryType { name } } }", json!({})).await;
    assert_eq!(anonymous.status, 200, "{}", anonymous.body);
    server.stop().await;
    db.cleanup().await;
}
