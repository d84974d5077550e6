//! Access that must not outlive its grant, nor come before it: the caller is checked before its
//! arguments, failed logins are throttled, revoked and expired tokens lose their live
//! subscriptions, and subscribers hear only what their role may read.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use kith_core::domain::actor::{Actor, Role};
use kith_core::service::{Kith, users};
use kith_core::store::{Store, StoreOptions};
use kith_tests::TestDb;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::util::{Server, code, token};

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A second Kith over the same database: what another process sharing it would be.
async fn other_process(db: &TestDb) -> Kith {
    Kith::new(Store::connect(&StoreOptions::new(&db.url)).await.expect("a second store"))
}

/// A subscription socket signed in with `token` (acknowledged).
async fn signed_in_socket(server: &Server, token: &str) -> Socket {
    let mut request = format!("ws://{}/graphql/ws", server.addr).into_client_request().unwrap();
    request.headers_mut().insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse().unwrap());
    let mut ws = tokio_tungstenite::connect_async(request).await.unwrap().0;
    let init = json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}});
    ws.send(Message::text(init.to_string())).await.unwrap();
    let ack = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap().unwrap().unwrap();
    assert!(ack.to_text().unwrap().contains("connection_ack"), "{ack:?}");
    ws
}

/// Waits (at most `secs`) for the server to close `ws`, skipping other messages; the close code.
async fn closed_with(ws: &mut Socket, secs: u64) -> Option<u16> {
    let wait = async {
        while let Some(message) = ws.next().await {
            match message {
                Ok(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
        None
    };
    tokio::time::timeout(Duration::from_secs(secs), wait).await.unwrap_or_else(|_| panic!("not closed in {secs} s"))
}

#[tokio::test]
async fn an_anonymous_caller_hears_unauthenticated_before_anything_about_its_arguments() {
    let db = TestDb::sqlite().await;
    let server = Server::start(&db).await;
    for query in [
        // Semantically wrong input (an empty name) and input of the wrong type: both would say
        // what is wrong with them if they were looked at.
        "mutation { createPipeline(input: {name: \"\"}) { id } }",
        "mutation { createPipeline(input: {name: 5}) { id } }",
        "mutation { createContact(input: {}) { id } }",
        "{ contacts { totalCount } }",
        "query { __typename contacts { totalCount } }",
        "mutation { ...M } fragment M on Mutation { revokeApiToken(idOrName: \"x\") }",
        "{ not valid graphql",
    ] {
        let (status, body) = server.post("application/json", None, &json!({"query": query}).to_string()).await;
        assert_eq!(status, 401, "{query}: {body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(code(&body), "UNAUTHENTICATED", "{query}: {body}");
    }
    // Introspection and `login` need no token.
    let (status, body) = server
        .post("application/json", None, &json!({"query": "{ __schema { queryType { name } } }"}).to_string())
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"Query\""), "{body}");
    let login = json!({"query": "mutation { login(email: \"nobody@example.org\", password: \"x\") { token } }"});
    let (status, body) = server.post("application/json", None, &login.to_string()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(code(&serde_json::from_str(&body).unwrap()), "FORBIDDEN", "{body}");
    server.stop().await;
    db.cleanup().await;
}

/// A GraphQL literal of type `ty` (an introspection type reference) that the schema accepts
/// but that is wrong in every way a resolver checks: ids that name nothing, empty names,
/// negative numbers.
fn bad_literal(ty: &Value, types: &[Value]) -> String {
    match ty["kind"].as_str().unwrap_or_default() {
        "NON_NULL" => bad_literal(&ty["ofType"], types),
        "LIST" => "[]".to_owned(),
        "ENUM" => {
            let def = types.iter().find(|t| t["name"] == ty["name"]).expect("the enum");
            def["enumValues"][0]["name"].as_str().unwrap().to_owned()
        }
        "INPUT_OBJECT" => {
            let def = types.iter().find(|t| t["name"] == ty["name"]).expect("the input type");
            let fields: Vec<String> = def["inputFields"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| f["type"]["kind"] == "NON_NULL")
                .map(|f| format!("{}: {}", f["name"].as_str().unwrap(), bad_literal(&f["type"], types)))
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
        _ => match ty["name"].as_str().unwrap_or_default() {
            "Int" => "-1".to_owned(),
            "Float" => "-1.5".to_owned(),
            "Boolean" => "false".to_owned(),
            "JSON" => "{}".to_owned(),
            "ID" => "\"not-an-id\"".to_owned(),
            _ => "\"\"".to_owned(),
        },
    }
}

fn named_kind(ty: &Value) -> &str {
    match ty["kind"].as_str().unwrap_or_default() {
        "NON_NULL" | "LIST" => named_kind(&ty["ofType"]),
        kind => kind,
    }
}

/// Every mutation but `login`, called by a VIEWER with arguments of the right types but wrong
/// values, answers FORBIDDEN: the role is checked before the arguments are read.
#[tokio::test]
async fn every_mutation_checks_the_role_before_its_arguments() {
    let db = TestDb::sqlite().await;
    let server = Server::start(&db).await;
    let viewer = token(&db, Role::Viewer).await;
    let type_ref = "kind name ofType { kind name ofType { kind name ofType { kind name } } }";
    let introspection = format!(
        "{{ __schema {{ mutationType {{ fields {{ name type {{ {type_ref} }} args {{ name type {{ {type_ref} }} }} }} }} \
         types {{ name kind enumValues {{ name }} inputFields {{ name type {{ {type_ref} }} }} }} }} }}"
    );
    let schema = server.gql(&viewer, &introspection, json!({})).await;
    let types = schema["data"]["__schema"]["types"].as_array().unwrap().clone();
    let mutations = schema["data"]["__schema"]["mutationType"]["fields"].as_array().unwrap().clone();
    assert!(mutations.len() > 30, "{} mutations", mutations.len());
    for mutation in &mutations {
        let name = mutation["name"].as_str().unwrap();
        if name == "login" {
            continue;
        }
        let arguments: Vec<String> = mutation["args"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["type"]["kind"] == "NON_NULL")
            .map(|a| format!("{}: {}", a["name"].as_str().unwrap(), bad_literal(&a["type"], &types)))
            .collect();
        let arguments = if arguments.is_empty() { String::new() } else { format!("({})", arguments.join(", ")) };
        let selection = match named_kind(&mutation["type"]) {
            "OBJECT" | "INTERFACE" | "UNION" => " { __typename }",
            _ => "",
        };
        let query = format!("mutation {{ {name}{arguments}{selection} }}");
        let answer = server.gql(&viewer, &query, json!({})).await;
        assert_eq!(code(&answer), "FORBIDDEN", "{query}: {answer}");
    }
    server.stop().await;
    db.cleanup().await;
}

async fn login(server: &Server, email: &str, password: &str) -> Value {
    let body = json!({
        "query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
        "variables": {"e": email, "p": password},
    });
    let (status, body) = server.post("application/json", None, &body.to_string()).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// After five wrong passwords an account must wait, and while it waits even the right password
/// is refused with RATE_LIMITED and a retry hint; the wait doubles with each further failure and
/// a success clears it. An unknown account is throttled the same way, so the throttle tells
/// nothing about which accounts exist.
#[tokio::test]
async fn failed_logins_are_throttled_with_growing_waits() {
    let db = TestDb::sqlite().await;
    let server = Server::start(&db).await;
    let tx = db.tx().await;
    users::create_user(&tx, &db.kith.registry(), "ada@example.org", "Ada", Role::Agent, Some("right password"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    for email in ["ada@example.org", "nobody@example.org"] {
        for _ in 0..5 {
            assert_eq!(code(&login(&server, email, "wrong").await), "FORBIDDEN");
        }
        let refused = login(&server, email, "right password").await;
        assert_eq!(code(&refused), "RATE_LIMITED", "{email}: {refused}");
        assert_eq!(refused["errors"][0]["extensions"]["retryAfter"], 1, "{refused}");
    }
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    // The wait is over; one more failure doubles it.
    assert_eq!(code(&login(&server, "ada@example.org", "wrong").await), "FORBIDDEN");
    let refused = login(&server, "ada@example.org", "right password").await;
    assert_eq!(refused["errors"][0]["extensions"]["retryAfter"], 2, "{refused}");
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let session = login(&server, "ada@example.org", "right password").await;
    assert!(session["data"]["login"]["token"].is_string(), "{session}");
    // The success cleared the account's failures: one wrong password is not a wait.
    assert_eq!(code(&login(&server, "ada@example.org", "wrong").await), "FORBIDDEN");
    let session = login(&server, "ada@example.org", "right password").await;
    assert!(session["data"]["login"]["token"].is_string(), "{session}");
    server.stop().await;
    db.cleanup().await;
}

/// A token revoked by another process sharing the database loses its live subscription (the
/// socket is closed with 4403) and, once the short cache has lapsed, its requests; a token that
/// expires loses its socket when it does.
#[tokio::test]
async fn revoked_and_expired_tokens_lose_their_sockets_and_requests() {
    for db in TestDb::all().await {
        let server = Server::start(&db).await;
        let viewer = token(&db, Role::Viewer).await;
        let warm = server.gql(&viewer, "{ contacts { totalCount } }", json!({})).await;
        assert_eq!(warm["data"]["contacts"]["totalCount"], 0, "{warm}");
        let mut ws = signed_in_socket(&server, &viewer).await;
        let subscribe =
            json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription { recordChanged { kind } }"}});
        ws.send(Message::text(subscribe.to_string())).await.unwrap();

        let other = other_process(&db).await;
        let tx = other.store.begin(&Actor::system("test")).await.unwrap();
        let revoked = users::revoke_token(&tx, &format!("{}", Role::Viewer)).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(revoked.len(), 1);
        assert_eq!(closed_with(&mut ws, 10).await, Some(4403), "{}", db.name);
        tokio::time::sleep(users::AUTH_CACHE_TTL + Duration::from_millis(200)).await;
        let body = json!({"query": "{ contacts { totalCount } }"}).to_string();
        let (status, answer) = server.post("application/json", Some(&viewer), &body).await;
        assert_eq!(status, 401, "{}: {answer}", db.name);

        // A token that expires in two seconds: its socket closes then.
        let tx = db.tx().await;
        let new = kith_core::store::tokens::NewToken {
            name: "short".into(),
            kind: "api".into(),
            role: Role::Viewer,
            user_id: None,
            expires_at: Some(tx.now + chrono::Duration::seconds(2)),
        };
        let (_, short) = kith_core::store::tokens::insert(&tx, &new).await.unwrap();
        tx.commit().await.unwrap();
        let mut ws = signed_in_socket(&server, &short).await;
        assert_eq!(closed_with(&mut ws, 10).await, Some(4403), "{}", db.name);
        other.store.close().await.ok();
        server.stop().await;
        db.cleanup().await;
    }
}

/// A VIEWER subscribed to every change hears record changes, never administration (tokens,
/// custom field definitions); asking for an object it may not read is refused.
#[tokio::test]
async fn subscribers_hear_only_what_their_role_may_read() {
    let db = TestDb::sqlite().await;
    let server = Server::start(&db).await;
    let viewer = token(&db, Role::Viewer).await;
    let admin = token(&db, Role::Admin).await;
    let mut ws = signed_in_socket(&server, &viewer).await;
    let denied = json!({"id": "0", "type": "subscribe", "payload": {"query": "subscription { recordChanged(object: \"token\") { kind } }"}});
    ws.send(Message::text(denied.to_string())).await.unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap().unwrap().unwrap();
    assert!(answer.to_text().unwrap().contains("FORBIDDEN"), "{answer:?}");
    let subscribe =
        json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription { recordChanged { kind object } }"}});
    ws.send(Message::text(subscribe.to_string())).await.unwrap();
    // Administration first, then a contact, until the first event arrives: it must be the
    // contact's.
    let first = tokio::time::timeout(Duration::from_secs(20), async {
        for round in 0.. {
            let made = server
                .gql(
                    &admin,
                    &format!(
                        "mutation {{ createApiToken(name: \"t{round}\", role: ADMIN) \
                         defineCustomField(object: \"contact\", key: \"k{round}\", label: \"K\", kind: TEXT) {{ key }} }}"
                    ),
                    json!({}),
                )
                .await;
            assert!(made.get("errors").is_none(), "{made}");
            server.gql(&admin, "mutation { createContact(input: {firstName: \"Live\"}) { id } }", json!({})).await;
            let next = tokio::time::timeout(Duration::from_millis(300), async {
                loop {
                    let message = ws.next().await.unwrap().unwrap();
                    if message.to_text().unwrap_or_default().contains("\"next\"") {
                        return message;
                    }
                }
            })
            .await;
            if let Ok(message) = next {
                return message;
            }
        }
        unreachable!()
    })
    .await
    .expect("an event arrives");
    let body: Value = serde_json::from_str(first.to_text().unwrap()).unwrap();
    assert_eq!(body["payload"]["data"]["recordChanged"]["kind"], "contact.created", "{body}");
    server.stop().await;
    db.cleanup().await;
}
