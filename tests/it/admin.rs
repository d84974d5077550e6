//! Admin operations through the GraphQL API, on both databases: custom field definitions (and
//! filtering and ordering by them), the audit log, API tokens, users and login.

use kith_core::domain::actor::Role;
use kith_tests::TestDb;
use serde_json::json;

use crate::util::{Server, code, token};

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
