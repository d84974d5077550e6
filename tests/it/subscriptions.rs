//! GraphQL subscriptions over a WebSocket (`graphql-transport-ws`), on both databases: the token
//! checked at `connection_init`, and changes of the subscribed object delivered.

use std::time::Duration;

use kith_core::domain::actor::Role;
use kith_tests::TestDb;
use serde_json::{Value, json};

use crate::util::{Server, token};

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
