//! The console's administration pages over real HTTP, as a browser without JavaScript uses
//! them, on both databases: users and roles, API tokens (a secret shown once), custom fields
//! (defined, then in record forms and pages), plugins (enable, disable, settings with secrets
//! masked, jobs run now), the audit log (filters and cursor paging), and what other roles are
//! not offered and cannot do.

use kith_core::domain::actor::Role;
use kith_tests::TestDb;
use serde_json::json;

use crate::console::{Browser, csrf, location, signed_in};
use crate::util::{Reply, Server, admin, hostile, plugins_config, token, welcome};

/// The rows of the page's tables (header rows included).
fn rows(reply: &Reply) -> usize {
    reply.body.matches("<tr>").count()
}

/// The id of the user with `email`, through the API.
async fn user_id(db: &TestDb, server: &Server, email: &str) -> String {
    let found = server
        .gql(
            &token(db, Role::Admin).await,
            "query($email: String!) { users(filter: {email: {eq: $email}}) { edges { node { id role active } } } }",
            json!({ "email": email }),
        )
        .await;
    found["data"]["users"]["edges"][0]["node"]["id"].as_str().unwrap_or_else(|| panic!("{found}")).to_owned()
}

#[tokio::test]
async fn an_admin_creates_a_user_changes_their_role_and_deactivates_them_but_keeps_an_admin() {
    for db in TestDb::all().await {
        let name = db.name;
        let server = Server::start(&db).await;
        let mut root = signed_in(&db, &server, "root@example.org", Role::Admin).await;
        let list = root.get("/o/contacts").await;
        assert!(list.body.contains("href=\"/admin\""), "{name}: an ADMIN has the menu entry");
        let users = root.get("/admin/users").await;
        assert_eq!(users.status, 200, "{name}: {}", users.body);
        assert!(users.body.contains("root@example.org"), "{name}");

        // The API's refusal is shown beside the form, with what was typed.
        let bad = root
            .post(
                "/admin/users",
                &[("_csrf", &csrf(&users)), ("name", "Bo"), ("email", "not an address"), ("role", "AGENT")],
            )
            .await;
        assert_eq!(bad.status, 422, "{name}: {}", bad.body);
        assert!(bad.body.contains("role=\"alert\"") && bad.body.contains("value=\"Bo\""), "{name}: {}", bad.body);
        let made = root
            .post(
                "/admin/users",
                &[
                    ("_csrf", &csrf(&users)),
                    ("name", "Bo"),
                    ("email", "bo@example.org"),
                    ("role", "AGENT"),
                    ("password", "a long enough password"),
                ],
            )
            .await;
        assert_eq!((made.status, location(&made).as_str()), (303, "/admin/users"), "{name}: {}", made.body);
        assert!(root.get("/admin/users").await.body.contains("bo@example.org"), "{name}");
        let bo = user_id(&db, &server, "bo@example.org").await;

        // Bo signs in as an AGENT, who may make contacts.
        let mut bo_browser = Browser::new(&server);
        let login = bo_browser.get("/login").await;
        let signed = bo_browser
            .post(
                "/login",
                &[("_csrf", &csrf(&login)), ("email", "bo@example.org"), ("password", "a long enough password")],
            )
            .await;
        assert_eq!(signed.status, 303, "{name}: {}", signed.body);
        let new_contact = "href=\"/o/contacts/new\"";
        assert!(bo_browser.get("/o/contacts").await.body.contains(new_contact), "{name}: an AGENT writes");

        // Made a VIEWER, Bo's session may only read, at once.
        let form = root.get(&format!("/admin/users/{bo}")).await;
        assert!(form.body.contains("value=\"AGENT\" selected"), "{name}: {}", form.body);
        let changed = root
            .post(
                &format!("/admin/users/{bo}"),
                &[("_csrf", &csrf(&form)), ("name", "Bo"), ("role", "VIEWER"), ("active", "false"), ("active", "true")],
            )
            .await;
        assert_eq!((changed.status, location(&changed).as_str()), (303, "/admin/users"), "{name}: {}", changed.body);
        assert!(!bo_browser.get("/o/contacts").await.body.contains(new_contact), "{name}: a VIEWER now");
        assert!(root.get("/admin/users").await.body.contains("<td>Viewer</td>"), "{name}");

        // Deactivated, Bo's session ends.
        let form = root.get(&format!("/admin/users/{bo}")).await;
        let stopped = root
            .post(
                &format!("/admin/users/{bo}"),
                &[("_csrf", &csrf(&form)), ("name", "Bo"), ("role", "VIEWER"), ("active", "false")],
            )
            .await;
        assert_eq!(stopped.status, 303, "{name}: {}", stopped.body);
        let gone = bo_browser.get("/o/contacts").await;
        assert_eq!(gone.status, 303, "{name}: an inactive user's session stops");
        assert!(location(&gone).starts_with("/login"), "{name}");

        // The last active ADMIN cannot demote themself; the API's reason is shown.
        let root_id = user_id(&db, &server, "root@example.org").await;
        let form = root.get(&format!("/admin/users/{root_id}")).await;
        let refused = root
            .post(
                &format!("/admin/users/{root_id}"),
                &[("_csrf", &csrf(&form)), ("name", "Root"), ("role", "VIEWER"), ("active", "true")],
            )
            .await;
        assert_eq!(refused.status, 422, "{name}: {}", refused.body);
        assert!(refused.body.contains("last active ADMIN"), "{name}: {}", refused.body);
        assert!(root.get("/admin/users").await.body.contains("href=\"/admin\""), "{name}: still an ADMIN");
        server.stop().await;
    }
}

#[tokio::test]
async fn a_new_token_is_shown_once_and_a_revoked_one_is_refused() {
    for db in TestDb::all().await {
        let name = db.name;
        let server = Server::start(&db).await;
        let mut root = signed_in(&db, &server, "root@example.org", Role::Admin).await;
        let page = root.get("/admin/tokens").await;
        assert_eq!(page.status, 200, "{name}: {}", page.body);
        let made = root
            .post(
                "/admin/tokens",
                &[("_csrf", &csrf(&page)), ("name", "ci"), ("role", "VIEWER"), ("expiresInDays", "30")],
            )
            .await;
        assert_eq!(made.status, 201, "{name}: {}", made.body);
        let at = made.body.find("value=\"kith_").unwrap_or_else(|| panic!("{name}: no secret in {}", made.body));
        let secret = made.body[at + "value=\"".len()..].split('"').next().unwrap().to_owned();
        let read = server.gql(&secret, "{ contacts { totalCount } }", json!({})).await;
        assert_eq!(read["data"]["contacts"]["totalCount"], 0, "{name}: {read}");

        // Listed with its first characters, never the secret again.
        let list = root.get("/admin/tokens").await;
        assert!(list.body.contains("<td>ci</td>") && list.body.contains(&secret[..13]), "{name}: {}", list.body);
        assert!(!list.body.contains(&secret), "{name}: the secret is shown only once");
        let at = list.body.find("action=\"/admin/tokens/").unwrap();
        let action = list.body[at + "action=\"".len()..].split('"').next().unwrap().to_owned();
        let revoked = root.post(&action, &[("_csrf", &csrf(&list))]).await;
        assert_eq!((revoked.status, location(&revoked).as_str()), (303, "/admin/tokens"), "{name}: {}", revoked.body);
        let (status, body) = server
            .post("application/json", Some(&secret), &json!({"query": "{ contacts { totalCount } }"}).to_string())
            .await;
        assert_eq!(status, 401, "{name}: a revoked token is refused: {body}");
        assert!(!root.get("/admin/tokens").await.body.contains(&action), "{name}: nothing left to revoke");
        server.stop().await;
    }
}

#[tokio::test]
async fn a_custom_field_appears_in_the_contact_form_and_its_value_on_the_record() {
    for db in TestDb::all().await {
        let name = db.name;
        let server = Server::start(&db).await;
        let mut root = signed_in(&db, &server, "root@example.org", Role::Admin).await;
        let page = root.get("/admin/fields").await;
        assert_eq!(page.status, 200, "{name}: {}", page.body);
        for (key, label, kind, options) in
            [("tier", "Tier", "SELECT", "Gold\nSilver"), ("score", "Score", "NUMBER", "")]
        {
            let defined = root
                .post(
                    "/admin/fields",
                    &[
                        ("_csrf", &csrf(&page)),
                        ("object", "contact"),
                        ("key", key),
                        ("label", label),
                        ("kind", kind),
                        ("options", options),
                    ],
                )
                .await;
            assert_eq!(defined.status, 303, "{name}: {}", defined.body);
        }
        let bad = root
            .post(
                "/admin/fields",
                &[("_csrf", &csrf(&page)), ("object", "contact"), ("key", "Bad Key"), ("label", "X"), ("kind", "TEXT")],
            )
            .await;
        assert_eq!(bad.status, 422, "{name}");
        assert!(bad.body.contains("camelCase"), "{name}: the API's reason: {}", bad.body);
        let listed = root.get("/admin/fields").await;
        assert!(listed.body.contains("<code>tier</code>") && listed.body.contains("Gold, Silver"), "{name}");

        let form = root.get("/o/contacts/new").await;
        for expected in ["name=\"customFields.tier\"", ">Tier<", ">Gold<", "name=\"customFields.score\""] {
            assert!(form.body.contains(expected), "{name}: {expected} in {}", form.body);
        }
        // A value the API refuses is explained beside its field, and nothing is made.
        let fields = [
            ("_csrf", csrf(&form)),
            ("firstName", "Ada".into()),
            ("lastName", "Lovelace".into()),
            ("customFields.tier", "Gold".into()),
        ];
        let mut refused_form: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        refused_form.push(("customFields.score", "lots"));
        let refused = root.post("/o/contacts", &refused_form).await;
        assert_eq!(refused.status, 422, "{name}: {}", refused.body);
        assert!(refused.body.contains("id=\"f-customFields.score-error\""), "{name}: {}", refused.body);
        assert!(refused.body.contains("expected a number"), "{name}: {}", refused.body);
        let count = server.gql(&token(&db, Role::Admin).await, "{ contacts { totalCount } }", json!({})).await;
        assert_eq!(count["data"]["contacts"]["totalCount"], 0, "{name}");

        let mut saved_form: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        saved_form.push(("customFields.score", "42"));
        let saved = root.post("/o/contacts", &saved_form).await;
        assert_eq!(saved.status, 303, "{name}: {}", saved.body);
        let record = root.get(&location(&saved)).await;
        assert!(record.body.contains("<dt>Tier</dt><dd>Gold</dd>"), "{name}: {}", record.body);
        assert!(record.body.contains("<dt>Score</dt><dd><data value=\"42"), "{name}: {}", record.body);
        let edit = root.get(&format!("{}/edit", location(&saved))).await;
        assert!(edit.body.contains("value=\"Gold\" selected"), "{name}: the edit form shows the value");
        server.stop().await;
    }
}

#[tokio::test]
async fn a_plugin_is_disabled_and_enabled_its_secret_is_masked_and_its_job_runs_now() {
    for db in TestDb::all().await {
        let name = db.name;
        let server = Server::start(&db).await;
        let runtime = kith_core::plugin::start_runtime(&db.kith, &plugins_config()).await.unwrap();
        let (manifest, wasm) = welcome();
        runtime.install(&admin(), &manifest, &wasm).await.unwrap();
        let (manifest, wasm) = hostile("secretive");
        runtime.install(&admin(), &manifest, &wasm).await.unwrap();
        let mut root = signed_in(&db, &server, "root@example.org", Role::Admin).await;
        let list = root.get("/admin/plugins").await;
        assert!(
            list.body.contains("href=\"/admin/plugins/welcome\"") && list.body.contains("Disabled"),
            "{name}: {}",
            list.body
        );

        let page = root.get("/admin/plugins/welcome").await;
        for expected in
            ["<code>contacts:read</code>", "<code>greetAgain</code>", "action=\"/admin/plugins/welcome/enable\""]
        {
            assert!(page.body.contains(expected), "{name}: {expected} in {}", page.body);
        }
        let grants =
            [("_csrf", csrf(&page)), ("grants", "contacts:read".into()), ("grants", "activities:write".into())];
        let grants: Vec<(&str, &str)> = grants.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let enabled = root.post("/admin/plugins/welcome/enable", &grants).await;
        assert_eq!(
            (enabled.status, location(&enabled).as_str()),
            (303, "/admin/plugins/welcome"),
            "{name}: {}",
            enabled.body
        );
        let page = root.get("/admin/plugins/welcome").await;
        assert!(page.body.contains("action=\"/admin/plugins/welcome/disable\""), "{name}: {}", page.body);
        let disabled = root.post("/admin/plugins/welcome/disable", &[("_csrf", &csrf(&page))]).await;
        assert_eq!(disabled.status, 303, "{name}: {}", disabled.body);
        let plugins = "{ plugins { id enabled status } }";
        let admin_token = token(&db, Role::Admin).await;
        let state = server.gql(&admin_token, plugins, json!({})).await;
        assert!(
            state.to_string().contains("{\"enabled\":false,\"id\":\"welcome\",\"status\":\"DISABLED\"}"),
            "{name}: {state}"
        );
        let enabled = root.post("/admin/plugins/welcome/enable", &grants).await;
        assert_eq!(enabled.status, 303, "{name}: {}", enabled.body);

        // A job run now is listed with its outcome; a job that is not there is explained.
        let ran = root.post("/admin/plugins/welcome/run", &[("_csrf", &csrf(&page)), ("job", "digest")]).await;
        assert_eq!(ran.status, 303, "{name}: {}", ran.body);
        let runs = server.gql(&admin_token, "{ pluginJobRuns(id: \"welcome\") { job status } }", json!({})).await;
        let status = runs["data"]["pluginJobRuns"][0]["status"].as_str().unwrap_or_else(|| panic!("{runs}")).to_owned();
        let page = root.get("/admin/plugins/welcome").await;
        assert!(page.body.contains("<td>digest</td>"), "{name}: {}", page.body);
        assert!(page.body.contains(&format!("<td>{status}</td>")), "{name}: {status} in {}", page.body);
        let nope = root.post("/admin/plugins/welcome/run", &[("_csrf", &csrf(&page)), ("job", "nope")]).await;
        assert_eq!(nope.status, 422, "{name}: {}", nope.body);
        assert!(nope.body.contains("role=\"alert\""), "{name}: {}", nope.body);

        // A secret setting is set, and shown only masked; a refused one is not echoed either.
        let page = root.get("/admin/plugins/secretive").await;
        let set = root
            .post(
                "/admin/plugins/secretive/setting",
                &[("_csrf", &csrf(&page)), ("key", "token"), ("value", "hunter2-secret")],
            )
            .await;
        assert_eq!(set.status, 303, "{name}: {}", set.body);
        let page = root.get("/admin/plugins/secretive").await;
        assert!(page.body.contains("<dt><code>token</code></dt><dd>********</dd>"), "{name}: {}", page.body);
        assert!(!page.body.contains("hunter2"), "{name}: the secret is never in the page");
        let refused = root
            .post(
                "/admin/plugins/secretive/setting",
                &[("_csrf", &csrf(&page)), ("key", "nope"), ("value", "hunter2-other")],
            )
            .await;
        assert_eq!(refused.status, 422, "{name}: {}", refused.body);
        assert!(!refused.body.contains("hunter2"), "{name}: {}", refused.body);
        runtime.stop().await;
        server.stop().await;
    }
}

#[tokio::test]
async fn the_audit_log_filters_by_object_actor_and_day_and_pages_with_cursors() {
    for db in TestDb::all().await {
        let name = db.name;
        let server = Server::start(&db).await;
        for i in 0..55 {
            db.create("contact", json!({"firstName": format!("C{i}")})).await.unwrap();
        }
        let mut root = signed_in(&db, &server, "root@example.org", Role::Admin).await;
        let first = root.get("/admin/audit?object=contact").await;
        assert_eq!(first.status, 200, "{name}: {}", first.body);
        assert_eq!(rows(&first), 51, "{name}: a header and 50 entries");
        assert!(first.body.contains("href=\"/o/contacts/"), "{name}: entries link to their record");
        let at = first.body.find("rel=\"next\"").map(|_| first.body.rfind("href=\"/admin/audit?").unwrap()).unwrap();
        let next = first.body[at + "href=\"".len()..].split('"').next().unwrap().replace("&amp;", "&");
        let second = root.get(&next).await;
        assert_eq!(rows(&second), 6, "{name}: the 5 older entries: {}", second.body);
        assert!(!second.body.contains("rel=\"next\""), "{name}");

        // Another object: the sign-in of the admin, not the contacts.
        let users = root.get("/admin/audit?object=user&action=login").await;
        assert_eq!(rows(&users), 2, "{name}: {}", users.body);
        assert!(!users.body.contains("/o/contacts/"), "{name}");
        for filter in
            ["object=contact&actor=somebody", "object=contact&from=2999-01-01", "object=contact&to=2000-01-01"]
        {
            let none = root.get(&format!("/admin/audit?{filter}")).await;
            assert!(none.body.contains("Nothing yet.") && rows(&none) == 0, "{name}: {filter}: {}", none.body);
        }
        assert_eq!(rows(&root.get("/admin/audit?object=contact&actor=test&from=2000-01-01").await), 51, "{name}");
        let bad = root.get("/admin/audit?object=contact&from=someday").await;
        assert!(bad.body.contains("must be a day"), "{name}: {}", bad.body);
        server.stop().await;
    }
}

#[tokio::test]
async fn other_roles_get_no_administration_and_a_forged_post_changes_nothing() {
    for db in TestDb::all().await {
        let name = db.name;
        let server = Server::start(&db).await;
        for (i, role) in [Role::Manager, Role::Agent, Role::Viewer].into_iter().enumerate() {
            let mut browser = signed_in(&db, &server, &format!("user{i}@example.org"), role).await;
            let list = browser.get("/o/contacts").await;
            assert!(!list.body.contains("href=\"/admin"), "{name}: {role} has no administration menu");
            for path in ["/admin", "/admin/users", "/admin/tokens", "/admin/fields", "/admin/plugins"] {
                assert_eq!(browser.get(path).await.status, 403, "{name}: {role} {path}");
            }
            let audit = browser.get("/admin/audit?object=contact").await.status;
            assert_eq!(
                audit,
                if role == Role::Manager { 200 } else { 403 },
                "{name}: {role}: the audit log is a MANAGER's"
            );
            // With the session's own CSRF token, the API refuses; without it, the form does.
            let token = csrf(&list);
            for csrf in [token.as_str(), "forged"] {
                let user = browser
                    .post(
                        "/admin/users",
                        &[("_csrf", csrf), ("name", "Mallory"), ("email", "mallory@example.org"), ("role", "ADMIN")],
                    )
                    .await;
                assert_eq!(user.status, 403, "{name}: {role}: {}", user.body);
                let made =
                    browser.post("/admin/tokens", &[("_csrf", csrf), ("name", "backdoor"), ("role", "ADMIN")]).await;
                assert_eq!(made.status, 403, "{name}: {role}");
                assert!(!made.body.contains("kith_"), "{name}: {role}");
                let field = browser
                    .post(
                        "/admin/fields",
                        &[("_csrf", csrf), ("object", "contact"), ("key", "x"), ("label", "X"), ("kind", "TEXT")],
                    )
                    .await;
                assert_eq!(field.status, 403, "{name}: {role}");
            }
        }
        let admin_token = token(&db, Role::Admin).await;
        let users = server
            .gql(&admin_token, "{ users(filter: {email: {eq: \"mallory@example.org\"}}) { totalCount } }", json!({}))
            .await;
        assert_eq!(users["data"]["users"]["totalCount"], 0, "{name}: {users}");
        let tokens = server.gql(&admin_token, "{ apiTokens { name } }", json!({})).await;
        assert!(!tokens.to_string().contains("backdoor"), "{name}: {tokens}");
        let fields = server.gql(&admin_token, "{ customFields(object: \"contact\") { key } }", json!({})).await;
        assert_eq!(fields["data"]["customFields"], json!([]), "{name}: {fields}");
        server.stop().await;
    }
}
