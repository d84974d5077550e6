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

/// `updateUser` changes a role or deactivates a user, whose session then answers with the new
/// role or stops; it never leaves Kith without an active ADMIN, and only an ADMIN may call it.
/// `apiTokens` lists tokens without their secret; `auditLog` filters and pages with cursors.
#[tokio::test]
async fn users_change_role_and_stop_while_one_admin_stays_and_tokens_and_the_audit_log_list() {
    for db in TestDb::all().await {
        let name = db.name;
        let server = Server::start(&db).await;
        let admin = token(&db, Role::Admin).await;
        let manager = token(&db, Role::Manager).await;
        let create = "mutation($email: String!, $role: UserRole!) { createUser(email: $email, name: $email, role: $role, password: \"long enough password\") { id } }";
        let boss = server.gql(&admin, create, json!({"email": "boss@example.org", "role": "ADMIN"})).await;
        let boss = boss["data"]["createUser"]["id"].as_str().unwrap().to_owned();
        let ops = server.gql(&admin, create, json!({"email": "ops@example.org", "role": "AGENT"})).await;
        let ops = ops["data"]["createUser"]["id"].as_str().unwrap().to_owned();
        let login = "mutation { login(email: \"ops@example.org\", password: \"long enough password\") { token } }";
        let session = server.gql(&admin, login, json!({})).await["data"]["login"]["token"].as_str().unwrap().to_owned();
        let update =
            "mutation($id: ID!, $input: UpdateUserInput!) { updateUser(id: $id, input: $input) { role active name } }";

        let refused = server.gql(&manager, update, json!({"id": ops, "input": {"role": "ADMIN"}})).await;
        assert_eq!(code(&refused), "FORBIDDEN", "{name}: {refused}");
        let write = "mutation { createContact(input: {firstName: \"Z\"}) { id } }";
        assert_eq!(code(&server.gql(&session, write, json!({})).await), "none", "{name}: an AGENT writes");
        let demoted = server.gql(&admin, update, json!({"id": ops, "input": {"role": "VIEWER", "name": "Ops"}})).await;
        assert_eq!(demoted["data"]["updateUser"], json!({"role": "VIEWER", "active": true, "name": "Ops"}), "{name}");
        assert_eq!(
            code(&server.gql(&session, write, json!({})).await),
            "FORBIDDEN",
            "{name}: a VIEWER's session, at once"
        );
        let stopped = server.gql(&admin, update, json!({"id": ops, "input": {"active": false}})).await;
        assert_eq!(stopped["data"]["updateUser"]["active"], false, "{name}: {stopped}");
        let (status, _) = server
            .post("application/json", Some(&session), &json!({"query": "{ contacts { totalCount } }"}).to_string())
            .await;
        assert_eq!(status, 401, "{name}: an inactive user's session stops at once");
        assert_eq!(code(&server.gql(&admin, login, json!({})).await), "FORBIDDEN", "{name}: nor may they sign in");

        // The only active ADMIN stays one.
        for input in [json!({"role": "MANAGER"}), json!({"active": false})] {
            let last = server.gql(&admin, update, json!({"id": boss, "input": input})).await;
            assert_eq!(code(&last), "CONFLICT", "{name}: {last}");
        }
        let audit = "query($after: String) { auditLog(object: \"user\", action: \"update\", first: 1, after: $after) { action recordId cursor } }";
        let first = server.gql(&admin, audit, json!({})).await;
        let entry = &first["data"]["auditLog"][0];
        assert_eq!(
            (entry["action"].as_str(), entry["recordId"].as_str()),
            (Some("update"), Some(ops.as_str())),
            "{name}: {first}"
        );
        let second = server.gql(&admin, audit, json!({"after": entry["cursor"]})).await;
        let older = &second["data"]["auditLog"];
        assert_eq!(older.as_array().map(Vec::len), Some(1), "{name}: {second}");
        assert_ne!(older[0]["cursor"], entry["cursor"], "{name}: the next page starts after the cursor");
        let third = server.gql(&admin, audit, json!({"after": older[0]["cursor"]})).await;
        assert_eq!(third["data"]["auditLog"], json!([]), "{name}: two updates: {third}");
        let none =
            server.gql(&admin, "{ auditLog(object: \"user\", actor: \"somebody else\") { action } }", json!({})).await;
        assert_eq!(none["data"]["auditLog"], json!([]), "{name}: {none}");
        let later = server
            .gql(&admin, "{ auditLog(object: \"user\", from: \"2999-01-01T00:00:00Z\") { action } }", json!({}))
            .await;
        assert_eq!(later["data"]["auditLog"], json!([]), "{name}: {later}");

        let tokens = server.gql(&admin, "{ apiTokens { name role prefix createdAt revokedAt } }", json!({})).await;
        let listed = tokens["data"]["apiTokens"].as_array().unwrap_or_else(|| panic!("{tokens}"));
        assert_eq!(listed.len(), 2, "{name}: the two API tokens, no sessions: {tokens}");
        assert!(admin.starts_with(listed.iter().find(|t| t["role"] == "ADMIN").unwrap()["prefix"].as_str().unwrap()));
        assert!(!tokens.to_string().contains(&admin), "{name}: never the secret");
        assert_eq!(code(&server.gql(&manager, "{ apiTokens { name } }", json!({})).await), "FORBIDDEN", "{name}");
        server.stop().await;
        db.cleanup().await;
    }
}
