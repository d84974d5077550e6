//! The console over real HTTP on loopback, as a browser without JavaScript uses it (plain
//! forms, cookies, redirects), on both databases: first-run setup, sign-in and its throttle,
//! CSRF refusals that change nothing, lists, record pages and forms derived from the registry,
//! a version conflict explained, what a VIEWER is not offered and cannot do, sign-out that ends
//! the session, and the security headers of every page.

use std::collections::BTreeMap;

use kith_core::domain::actor::Role;
use kith_core::service::users;
use kith_tests::TestDb;
use serde_json::json;

use crate::util::{Reply, Server, admin, exchange_as, token};

/// A cookie-keeping client, as a browser is.
pub(crate) struct Browser {
    addr: std::net::SocketAddr,
    cookies: BTreeMap<String, String>,
}

impl Browser {
    pub(crate) fn new(server: &Server) -> Browser {
        Browser { addr: server.addr, cookies: BTreeMap::new() }
    }

    async fn send(&mut self, method: &str, path: &str, form: &[(&str, &str)]) -> Reply {
        let cookie: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let extra = if cookie.is_empty() { String::new() } else { format!("Cookie: {}\r\n", cookie.join("; ")) };
        let body: String = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let reply =
            exchange_as(self.addr, method, path, "application/x-www-form-urlencoded", None, extra.as_bytes(), &body)
                .await;
        for line in reply.head.lines().filter_map(|l| l.strip_prefix("set-cookie: ")) {
            let pair = line.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                if value.is_empty() || line.contains("max-age=0") {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_owned(), value.to_owned());
                }
            }
        }
        reply
    }

    pub(crate) async fn get(&mut self, path: &str) -> Reply {
        self.send("GET", path, &[]).await
    }

    pub(crate) async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Reply {
        self.send("POST", path, form).await
    }
}

/// The `Location` of a redirect.
pub(crate) fn location(reply: &Reply) -> String {
    reply.head.lines().find_map(|l| l.strip_prefix("location: ")).unwrap_or_default().to_owned()
}

/// The value of the hidden `_csrf` field of the page.
pub(crate) fn csrf(reply: &Reply) -> String {
    let at = reply.body.find("name=\"_csrf\" value=\"").unwrap_or_else(|| panic!("no CSRF field in {}", reply.body));
    let rest = &reply.body[at + "name=\"_csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap_or(0)].to_owned()
}

/// A user with a password, signed in through the console's form.
pub(crate) async fn signed_in(db: &TestDb, server: &Server, email: &str, role: Role) -> Browser {
    let tx = db.kith.store.begin(&admin()).await.unwrap();
    users::create_user(&tx, &db.kith.registry(), email, email, role, Some("a long enough password")).await.unwrap();
    tx.commit().await.unwrap();
    let mut browser = Browser::new(server);
    let page = browser.get("/login").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let reply = browser
        .post(
            "/login",
            &[
                ("_csrf", &csrf(&page)),
                ("email", email),
                ("password", "a long enough password"),
                ("next", "/o/contacts"),
            ],
        )
        .await;
    assert_eq!((reply.status, location(&reply).as_str()), (303, "/o/contacts"), "{}", reply.body);
    browser
}

#[tokio::test]
async fn first_run_setup_creates_one_admin_and_signs_them_in() {
    for db in TestDb::all().await {
        let name = db.name;
        let server = Server::start(&db).await;
        let mut browser = Browser::new(&server);
        // No user yet: every way in leads to setup.
        for path in ["/", "/login"] {
            let reply = browser.get(path).await;
            assert_eq!((reply.status, location(&reply).as_str()), (303, "/setup"), "{name}: {path}");
        }
        let page = browser.get("/setup").await;
        assert_eq!(page.status, 200, "{name}");
        assert!(!page.body.contains("name=\"code\""), "{name}: a loopback client needs no setup code");
        // Through a proxy every client is on loopback: a relayed request needs the code, and a
        // wrong code makes nothing.
        let cookie = format!("Cookie: kith_form={}\r\nX-Forwarded-For: 203.0.113.9\r\n", browser.cookies["kith_form"]);
        let form =
            format!("_csrf={}&name=Eve&email=eve%40example.org&password=a+long+enough+password&code=nope", csrf(&page));
        let relayed = exchange_as(
            server.addr,
            "POST",
            "/setup",
            "application/x-www-form-urlencoded",
            None,
            cookie.as_bytes(),
            &form,
        )
        .await;
        assert_eq!(relayed.status, 400, "{name}: {}", relayed.body);
        assert!(relayed.body.contains("setup code"), "{name}: {}", relayed.body);
        assert!(!kith_core::store::users::any(db.kith.store.conn()).await.unwrap(), "{name}: no user made");
        // Without the form's token, nothing happens.
        let refused = browser
            .post(
                "/setup",
                &[
                    ("_csrf", "forged"),
                    ("name", "Eve"),
                    ("email", "eve@example.org"),
                    ("password", "a long enough password"),
                ],
            )
            .await;
        assert_eq!(refused.status, 403, "{name}");
        assert!(!kith_core::store::users::any(db.kith.store.conn()).await.unwrap(), "{name}: no user made");
        // A short password is explained, and nothing is made.
        let page = browser.get("/setup").await;
        let short = browser
            .post(
                "/setup",
                &[("_csrf", &csrf(&page)), ("name", "Ada"), ("email", "ada@example.org"), ("password", "short")],
            )
            .await;
        assert_eq!(short.status, 400, "{name}: {}", short.body);
        assert!(short.body.contains("password"), "{name}: {}", short.body);
        let created = browser
            .post(
                "/setup",
                &[
                    ("_csrf", &csrf(&short)),
                    ("name", "Ada"),
                    ("email", "ada@example.org"),
                    ("password", "a long enough password"),
                ],
            )
            .await;
        assert_eq!((created.status, location(&created).as_str()), (303, "/"), "{name}: {}", created.body);
        assert!(browser.cookies.contains_key("kith_session"), "{name}: signed in");
        let list = browser.get("/o/contacts").await;
        assert_eq!(list.status, 200, "{name}");
        assert!(list.body.contains("ada@example.org") && list.body.contains("ADMIN"), "{name}");
        // Setup is over: a second visitor is sent to sign in, and a forged second admin is refused.
        let mut other = Browser::new(&server);
        let reply = other.get("/setup").await;
        assert_eq!((reply.status, location(&reply).as_str()), (303, "/login"), "{name}");
        let page = other.get("/login").await;
        let again = other
            .post(
                "/setup",
                &[
                    ("_csrf", &csrf(&page)),
                    ("name", "Eve"),
                    ("email", "eve@example.org"),
                    ("password", "a long enough password"),
                ],
            )
            .await;
        assert_eq!(again.status, 400, "{name}: {}", again.body);
        let admins = server
            .gql(&token(&db, Role::Admin).await, "{ users(filter: {role: {eq: ADMIN}}) { totalCount } }", json!({}))
            .await;
        assert_eq!(admins["data"]["users"]["totalCount"], 1, "{name}: {admins}");
        server.stop().await;
    }
}

#[tokio::test]
async fn sign_in_is_refused_with_the_wrong_password_and_throttled() {
    for db in TestDb::all().await {
        let name = db.name;
        let server = Server::start(&db).await;
        let tx = db.kith.store.begin(&admin()).await.unwrap();
        users::create_user(
            &tx,
            &db.kith.registry(),
            "kim@example.org",
            "Kim",
            Role::Agent,
            Some("a long enough password"),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let mut browser = Browser::new(&server);
        let mut statuses = Vec::new();
        for _ in 0..7 {
            let page = browser.get("/login").await;
            let reply = browser
                .post("/login", &[("_csrf", &csrf(&page)), ("email", "kim@example.org"), ("password", "wrong")])
                .await;
            assert!(!browser.cookies.contains_key("kith_session"), "{name}");
            statuses.push(reply.status);
            if reply.status == 401 {
                assert!(reply.body.contains("Wrong e-mail or password"), "{name}: {}", reply.body);
            }
        }
        assert_eq!(&statuses[..5], &[401; 5], "{name}: five free failures");
        assert_eq!(statuses[6], 429, "{name}: then the throttle: {statuses:?}");
        // A page behind the session sends a stranger to sign in, remembering where they were
        // (the harness lowers the case of headers).
        let reply = Browser::new(&server).get("/o/deals?f=title").await;
        assert_eq!((reply.status, location(&reply).as_str()), (303, "/login?next=%2fo%2fdeals%3ff%3dtitle"), "{name}");
        server.stop().await;
    }
}

#[tokio::test]
async fn records_are_created_edited_and_deleted_through_forms_derived_from_the_registry() {
    for db in TestDb::all().await {
        let name = db.name;
        let server = Server::start(&db).await;
        let mut browser = signed_in(&db, &server, "mia@example.org", Role::Manager).await;
        let company = db.create("company", json!({"name": "Acme"})).await.unwrap();

        let form = browser.get("/o/contacts/new").await;
        assert_eq!(form.status, 200, "{name}");
        // Fields and their controls come from the registry: a choice of lifecycle stages, a
        // date control for the birthday, the company as a list of companies.
        for expected in
            ["name=\"lifecycleStage\"", "type=\"date\" name=\"birthday\"", "Acme", "<label for=\"f-companyId\">Company"]
        {
            assert!(form.body.contains(expected), "{name}: {expected} in the form");
        }
        // A bad value is explained next to its field, and nothing is created.
        let bad = browser
            .post("/o/contacts", &[("_csrf", &csrf(&form)), ("firstName", "Grace"), ("email", "not-an-email")])
            .await;
        assert_eq!(bad.status, 422, "{name}");
        assert!(bad.body.contains("f-email-error") && bad.body.contains("not-an-email"), "{name}: {}", bad.body);
        let company_id = company.id().to_string();
        let created = browser
            .post(
                "/o/contacts",
                &[
                    ("_csrf", &csrf(&form)),
                    ("firstName", "Grace"),
                    ("lastName", "Hopper"),
                    ("email", "grace@example.org"),
                    ("companyId", &company_id),
                    ("lifecycleStage", "CUSTOMER"),
                    ("emailOptIn", "false"),
                    ("emailOptIn", "true"),
                    ("tags", "navy, vip"),
                ],
            )
            .await;
        assert_eq!(created.status, 303, "{name}: {}", created.body);
        let path = location(&created);
        let id = path.rsplit('/').next().unwrap().to_owned();
        let page = browser.get(&path).await;
        assert_eq!(page.status, 200, "{name}");
        for expected in ["<h1>Grace Hopper</h1>", "Customer", ">Acme</a>", "navy, vip", "Yes"] {
            assert!(page.body.contains(expected), "{name}: {expected} on the record page");
        }
        // The company's page lists the contact (the reverse relation).
        let company_page = browser.get(&format!("/o/companies/{company_id}")).await;
        assert!(company_page.body.contains("Grace Hopper"), "{name}");
        // The list shows it, and filters by what the builder says.
        let list = browser.get("/o/contacts?f=lastName&op=ilike&v=hop").await;
        assert!(list.body.contains("Grace") && list.body.contains("1 records"), "{name}: {}", list.body);
        let none = browser.get("/o/contacts?f=lifecycleStage&op=eq&v=lead").await;
        assert!(none.body.contains("No records yet"), "{name}");

        // Edit: the change lands with the version read; the audit log has the user's name.
        let edit = browser.get(&format!("/o/contacts/{id}/edit")).await;
        assert!(edit.body.contains("name=\"_version\" value=\"1\""), "{name}");
        let saved = browser
            .post(
                &path,
                &[
                    ("_csrf", &csrf(&edit)),
                    ("_version", "1"),
                    ("firstName", "Grace"),
                    ("lastName", "Brewster Hopper"),
                    ("email", "grace@example.org"),
                ],
            )
            .await;
        assert_eq!(saved.status, 303, "{name}: {}", saved.body);
        let record = db.kith.object("contact").unwrap();
        let stored =
            kith_core::store::records::get(db.kith.store.conn(), &record, id.parse().unwrap()).await.unwrap().unwrap();
        assert_eq!(stored.get("lastName").to_string(), "Brewster Hopper", "{name}");

        // Delete (a MANAGER may): the record is gone from the list.
        let page = browser.get(&path).await;
        let deleted = browser.post(&format!("{path}/delete"), &[("_csrf", &csrf(&page))]).await;
        assert_eq!((deleted.status, location(&deleted).as_str()), (303, "/o/contacts"), "{name}");
        assert_eq!(browser.get(&path).await.status, 404, "{name}");
        server.stop().await;
    }
}

#[tokio::test]
async fn a_version_conflict_says_who_changed_the_record_and_offers_reload_or_overwrite() {
    for db in TestDb::all().await {
        let name = db.name;
        let server = Server::start(&db).await;
        let mut first = signed_in(&db, &server, "first@example.org", Role::Manager).await;
        let mut second = signed_in(&db, &server, "second@example.org", Role::Agent).await;
        let contact = db.create("contact", json!({"firstName": "Ada", "email": "ada@example.org"})).await.unwrap();
        let path = format!("/o/contacts/{}", contact.id());
        let mine = first.get(&format!("{path}/edit")).await;
        let theirs = second.get(&format!("{path}/edit")).await;
        let saved = second
            .post(
                &path,
                &[
                    ("_csrf", &csrf(&theirs)),
                    ("_version", "1"),
                    ("firstName", "Ada"),
                    ("jobTitle", "Analyst"),
                    ("email", "ada@example.org"),
                ],
            )
            .await;
        assert_eq!(saved.status, 303, "{name}");
        let conflict = first
            .post(
                &path,
                &[("_csrf", &csrf(&mine)), ("_version", "1"), ("firstName", "Augusta"), ("email", "ada@example.org")],
            )
            .await;
        assert_eq!(conflict.status, 409, "{name}: {}", conflict.body);
        assert!(
            conflict.body.contains("changed since you opened it by second@example.org"),
            "{name}: {}",
            conflict.body
        );
        assert!(
            conflict.body.contains("Reload") && conflict.body.contains("value=\"Augusta\""),
            "{name}: my changes kept in the form"
        );
        // The form now carries the current version: saving again overwrites.
        assert!(conflict.body.contains("name=\"_version\" value=\"2\""), "{name}");
        let overwrite = first
            .post(
                &path,
                &[
                    ("_csrf", &csrf(&conflict)),
                    ("_version", "2"),
                    ("firstName", "Augusta"),
                    ("email", "ada@example.org"),
                ],
            )
            .await;
        assert_eq!(overwrite.status, 303, "{name}: {}", overwrite.body);
        let page = first.get(&path).await;
        assert!(page.body.contains("Augusta"), "{name}");
        server.stop().await;
    }
}

#[tokio::test]
async fn a_viewer_is_offered_no_edits_and_forged_forms_change_nothing() {
    for db in TestDb::all().await {
        let name = db.name;
        let server = Server::start(&db).await;
        let mut viewer = signed_in(&db, &server, "vic@example.org", Role::Viewer).await;
        let contact = db.create("contact", json!({"firstName": "Ada", "email": "ada@example.org"})).await.unwrap();
        let path = format!("/o/contacts/{}", contact.id());
        let page = viewer.get(&path).await;
        assert_eq!(page.status, 200, "{name}");
        assert!(!page.body.contains(">Edit<") && !page.body.contains(">Delete<"), "{name}: no edit or delete offered");
        let list = viewer.get("/o/contacts").await;
        assert!(!list.body.contains("/o/contacts/new"), "{name}: no create offered");
        assert_eq!(viewer.get("/o/contacts/new").await.status, 403, "{name}");
        // The server refuses it anyway, through the API's own role check.
        let forged = viewer.post("/o/contacts", &[("_csrf", &csrf(&page)), ("firstName", "Eve")]).await;
        assert_eq!(forged.status, 403, "{name}: {}", forged.body);
        let deleted = viewer.post(&format!("{path}/delete"), &[("_csrf", &csrf(&page))]).await;
        assert_eq!(deleted.status, 403, "{name}");

        // A form without the session's CSRF token is refused and changes nothing, whoever sends it.
        let mut manager = signed_in(&db, &server, "max@example.org", Role::Manager).await;
        for (path, form) in [
            ("/o/contacts".to_owned(), vec![("_csrf", "0000"), ("firstName", "Eve")]),
            (format!("{path}/delete"), vec![("_csrf", "")]),
            (path.clone(), vec![("firstName", "Eve")]),
        ] {
            let reply = manager.post(&path, &form).await;
            assert_eq!(reply.status, 403, "{name}: {path}");
        }
        let count = server
            .gql(&token(&db, Role::Admin).await, "{ contacts { totalCount edges { node { firstName } } } }", json!({}))
            .await;
        assert_eq!(count["data"]["contacts"]["totalCount"], 1, "{name}: {count}");
        assert_eq!(count["data"]["contacts"]["edges"][0]["node"]["firstName"], "Ada", "{name}");
        server.stop().await;
    }
}

#[tokio::test]
async fn signing_out_ends_the_session_and_pages_carry_a_strict_policy() {
    for db in TestDb::all().await {
        let name = db.name;
        let server = Server::start(&db).await;
        let mut browser = signed_in(&db, &server, "sam@example.org", Role::Agent).await;
        let page = browser.get("/o/contacts").await;
        for header in [
            "content-security-policy: default-src 'self'; script-src 'self'; style-src 'self'",
            "x-frame-options: deny",
            "cache-control: no-store",
        ] {
            assert!(page.head.contains(header), "{name}: {header} in {}", page.head);
        }
        assert!(!page.body.contains("<script>") && !page.body.contains(" style="), "{name}: nothing inline");
        for asset in ["/assets/htmx.min.js", "/assets/console.css", "/assets/console.js"] {
            let reply = browser.get(asset).await;
            assert_eq!(reply.status, 200, "{name}: {asset}");
        }
        assert!(page.head.contains("set-cookie") || browser.cookies.contains_key("kith_session"), "{name}");
        let secret = browser.cookies["kith_session"].clone();
        let out = browser.post("/logout", &[("_csrf", &csrf(&page))]).await;
        assert_eq!((out.status, location(&out).as_str()), (303, "/login?out=1"), "{name}");
        assert!(!browser.cookies.contains_key("kith_session"), "{name}: the cookie is cleared");
        // The token itself is revoked: replaying the old cookie (or using it as a bearer) fails.
        browser.cookies.insert("kith_session".into(), secret.clone());
        let reply = browser.get("/o/contacts").await;
        assert_eq!(reply.status, 303, "{name}: the old session no longer opens pages");
        let (status, body) =
            server.post("application/json", Some(&secret), r#"{"query":"{ contacts { totalCount } }"}"#).await;
        assert_eq!(status, 401, "{name}: {body}");
        server.stop().await;
    }
}

#[tokio::test]
async fn search_finds_records_across_objects_and_answers_htmx_with_the_list_only() {
    for db in TestDb::all().await {
        let name = db.name;
        let server = Server::start(&db).await;
        let mut browser = signed_in(&db, &server, "sue@example.org", Role::Agent).await;
        db.create("company", json!({"name": "Lovelace Engines"})).await.unwrap();
        db.create("contact", json!({"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.org"}))
            .await
            .unwrap();
        let page = browser.get("/search?q=lovelace").await;
        assert_eq!(page.status, 200, "{name}");
        assert!(page.body.contains("Lovelace Engines") && page.body.contains("Ada Lovelace"), "{name}: {}", page.body);
        assert!(page.body.contains("<header"), "{name}: a whole page without htmx");
        let cookie: Vec<String> = browser.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let extra = format!("Cookie: {}\r\nHX-Request: true\r\n", cookie.join("; "));
        let partial = exchange_as(server.addr, "GET", "/search?q=ada", "text/plain", None, extra.as_bytes(), "").await;
        assert_eq!(partial.status, 200, "{name}");
        assert!(partial.body.contains("Ada Lovelace") && !partial.body.contains("<header"), "{name}: {}", partial.body);
        // A query the API refuses is explained, not shown as "nothing found".
        let long = "x".repeat(201);
        let refused = browser.get(&format!("/search?q={long}")).await;
        assert!(refused.body.contains("at most 200 characters"), "{name}: {}", refused.body);
        server.stop().await;
    }
}

#[tokio::test]
async fn a_plugin_mutation_gets_a_form_from_its_typed_arguments_and_its_values_show_on_the_record() {
    use kith_core::plugin::manager::Grants;
    for db in TestDb::all().await {
        let name = db.name;
        let server = Server::start(&db).await;
        let runtime = kith_core::plugin::start_runtime(&db.kith, &crate::util::plugins_config()).await.unwrap();
        let donors = kith_core::plugin::bundled::BUNDLED.iter().find(|b| b.id == "donors").unwrap();
        runtime.install(&admin(), donors.manifest, donors.component).await.unwrap();
        runtime.enable(&admin(), "donors", Grants::All).await.unwrap();
        runtime.refresh().await.unwrap();
        let ada = db
            .create("contact", json!({"firstName": "Ada", "lastName": "Giver", "email": "ada@example.org"}))
            .await
            .unwrap();
        let mut browser = signed_in(&db, &server, "amy@example.org", Role::Agent).await;

        // The plugin's objects sit under the plugin's name in the menu.
        let list = browser.get("/o/contacts").await;
        assert!(
            list.body.contains("<summary>Donors</summary>") && list.body.contains("href=\"/o/donations\""),
            "{name}"
        );
        let index = browser.get("/ops").await;
        assert!(index.body.contains("/ops/donors/recordDonation"), "{name}: {}", index.body);
        assert!(!index.body.contains("/ops/donors/lybunt"), "{name}: a MANAGER's report is not offered to an AGENT");
        let form = browser.get("/ops/donors/recordDonation").await;
        assert_eq!(form.status, 200, "{name}");
        // Controls from the declared types: a choice of contacts for `contactId`, the plugin's
        // enum for the payment method, a date control for the date.
        for expected in
            ["Ada Giver", "name=\"paymentMethod\"", ">Card<", "type=\"date\"", "name=\"amount\" value=\"\" required"]
        {
            assert!(form.body.contains(expected), "{name}: {expected} in {}", form.body);
        }
        // A value the plugin refuses is explained, and nothing is recorded.
        let ada_id = ada.id().to_string();
        let refused = browser
            .post("/ops/donors/recordDonation", &[("_csrf", &csrf(&form)), ("contactId", &ada_id), ("amount", "0")])
            .await;
        assert_eq!(refused.status, 422, "{name}: {}", refused.body);
        assert!(refused.body.contains("amount"), "{name}: {}", refused.body);
        let done = browser
            .post(
                "/ops/donors/recordDonation",
                &[
                    ("_csrf", &csrf(&form)),
                    ("contactId", &ada_id),
                    ("amount", "25.00"),
                    ("currency", "USD"),
                    ("paymentMethod", "CARD"),
                ],
            )
            .await;
        assert_eq!(done.status, 200, "{name}: {}", done.body);
        let gifts = server
            .gql(&token(&db, Role::Admin).await, "{ donations { totalCount edges { node { amount } } } }", json!({}))
            .await;
        assert_eq!(gifts["data"]["donations"]["totalCount"], 1, "{name}: {gifts}");
        // The donor's page shows what the plugin computes, and the gift among her donations.
        let page = browser.get(&format!("/o/contacts/{ada_id}")).await;
        assert!(page.body.contains("From plugins") && page.body.contains("Gift count"), "{name}: {}", page.body);
        assert!(page.body.contains("Donations (1)"), "{name}");
        // A forged form runs nothing.
        let forged = browser.post("/ops/donors/recordDonation", &[("contactId", &ada_id), ("amount", "5")]).await;
        assert_eq!(forged.status, 403, "{name}");
        runtime.stop().await;
        server.stop().await;
    }
}

#[tokio::test]
async fn the_board_sums_each_stage_and_moves_and_closes_deals_with_the_version_it_showed() {
    for db in TestDb::all().await {
        let name = db.name;
        let server = Server::start(&db).await;
        let pipeline = db.create("pipeline", json!({"name": "Grants", "currency": "USD"})).await.unwrap();
        let p = pipeline.id().to_string();
        let mut stages = Vec::new();
        for (position, (stage, probability, kind)) in
            [("Ask", 20, "OPEN"), ("Proposal", 50, "OPEN"), ("Won", 100, "WON"), ("Lost", 0, "LOST")]
                .into_iter()
                .enumerate()
        {
            let s = db
                .create("stage", json!({"pipelineId": p, "name": stage, "position": position, "probability": probability, "kind": kind}))
                .await
                .unwrap();
            stages.push(s.id().to_string());
        }
        let deal = |title: &str, amount: &str, stage: &str| json!({"title": title, "amount": amount, "pipelineId": p, "stageId": stage});
        let first = db.create("deal", deal("Library roof", "1000", &stages[0])).await.unwrap();
        db.create("deal", deal("Reading room", "500.50", &stages[0])).await.unwrap();
        db.create("deal", deal("Archive", "300", &stages[1])).await.unwrap();
        let mut viewer = signed_in(&db, &server, "val@example.org", Role::Viewer).await;
        let shown = viewer.get("/board").await;
        assert!(!shown.body.contains("/board/move"), "{name}: a VIEWER is offered no moves");
        let mut browser = signed_in(&db, &server, "bea@example.org", Role::Agent).await;
        let page = browser.get("/board").await;
        assert_eq!(page.status, 200, "{name}");
        // Each column: how many deals, their sum, and the sum weighted by the stage's probability.
        assert!(page.body.contains("<span class=\"count\">2</span> deals · <span class=\"sum\">1500.50</span> USD · weighted <span class=\"weighted\">300.10</span>"), "{name}: {}", page.body);
        assert!(page.body.contains("<span class=\"count\">1</span> deals · <span class=\"sum\">300.00</span> USD · weighted <span class=\"weighted\">150.00</span>"), "{name}");
        // Move with the version the board showed.
        let id = first.id().to_string();
        let moved = browser
            .post(
                "/board/move",
                &[("_csrf", &csrf(&page)), ("deal", &id), ("version", "1"), ("pipeline", &p), ("stage", &stages[1])],
            )
            .await;
        assert_eq!(moved.status, 303, "{name}");
        assert!(!location(&moved).contains("error"), "{name}: {}", location(&moved));
        let page = browser.get(&location(&moved)).await;
        assert!(page.body.contains("<span class=\"count\">2</span> deals · <span class=\"sum\">1300.00</span> USD · weighted <span class=\"weighted\">650.00</span>"), "{name}: {}", page.body);
        // A stale card (the version moved on) is refused, and says why.
        let stale = browser
            .post(
                "/board/move",
                &[("_csrf", &csrf(&page)), ("deal", &id), ("version", "1"), ("pipeline", &p), ("stage", &stages[0])],
            )
            .await;
        assert!(location(&stale).contains("error="), "{name}: {}", location(&stale));
        // Close lost with a reason: the deal lands in the LOST stage, with the reason recorded.
        let closed = browser
            .post(
                "/board/close",
                &[
                    ("_csrf", &csrf(&page)),
                    ("deal", &id),
                    ("version", "2"),
                    ("pipeline", &p),
                    ("outcome", "LOST"),
                    ("reason", "No budget"),
                ],
            )
            .await;
        assert!(!location(&closed).contains("error"), "{name}: {}", location(&closed));
        let stored = server
            .gql(
                &token(&db, Role::Admin).await,
                "query($id: ID!) { deal(id: $id) { stageId lostReason closedAt } }",
                json!({"id": id}),
            )
            .await;
        assert_eq!(stored["data"]["deal"]["stageId"], stages[3], "{name}: {stored}");
        assert_eq!(stored["data"]["deal"]["lostReason"], "No budget", "{name}");
        // Without the CSRF token nothing moves.
        let forged = browser
            .post("/board/move", &[("deal", &id), ("pipeline", &p), ("stage", &stages[0]), ("_csrf", "x")])
            .await;
        assert_eq!(forged.status, 403, "{name}");
        server.stop().await;
    }
}

#[tokio::test]
async fn the_inbox_filters_tickets_offers_only_allowed_transitions_and_keeps_the_conversation() {
    for db in TestDb::all().await {
        let name = db.name;
        let server = Server::start(&db).await;
        let mut agent = signed_in(&db, &server, "ann@example.org", Role::Agent).await;
        let ticket = db
            .create("ticket", json!({"subject": "Printer on fire", "priority": "URGENT", "queue": "office"}))
            .await
            .unwrap();
        db.create("ticket", json!({"subject": "Password reset", "queue": "it"})).await.unwrap();
        let id = ticket.id().to_string();

        let inbox = agent.get("/inbox").await;
        assert!(inbox.body.contains("Printer on fire") && inbox.body.contains("Password reset"), "{name}");
        let office = agent.get("/inbox?queue=office&priority=URGENT").await;
        assert!(office.body.contains("Printer on fire") && !office.body.contains("Password reset"), "{name}");
        let mine = agent.get("/inbox?assignee=me").await;
        assert!(!mine.body.contains("Printer on fire"), "{name}: not assigned yet");

        let page = agent.get(&format!("/inbox/{id}")).await;
        assert_eq!(page.status, 200, "{name}");
        // Only what the workflow allows from NEW is offered.
        for to in kith_core::domain::ticket::STATUSES.iter().filter(|s| **s != "NEW") {
            let offered = page.body.contains(&format!("name=\"status\" value=\"{to}\""));
            assert_eq!(offered, kith_core::domain::ticket::can_transition("NEW", to), "{name}: {to}");
        }
        let assigned = agent.post(&format!("/inbox/{id}/assign"), &[("_csrf", &csrf(&page)), ("version", "1")]).await;
        assert_eq!(location(&assigned), format!("/inbox/{id}"), "{name}");
        let mine = agent.get("/inbox?assignee=me").await;
        assert!(mine.body.contains("Printer on fire"), "{name}: assigned to me now");
        let page = agent.get(&format!("/inbox/{id}")).await;
        let version = if page.body.contains("name=\"version\" value=\"2\"") { "2" } else { "1" };
        let changed = agent
            .post(&format!("/inbox/{id}/status"), &[("_csrf", &csrf(&page)), ("version", version), ("status", "OPEN")])
            .await;
        assert_eq!(location(&changed), format!("/inbox/{id}"), "{name}");
        // A transition the workflow refuses comes back with the reason, and changes nothing.
        let page = agent.get(&format!("/inbox/{id}")).await;
        assert!(page.body.contains("Mark as Pending"), "{name}");
        let refused = agent.post(&format!("/inbox/{id}/status"), &[("_csrf", &csrf(&page)), ("status", "NEW")]).await;
        assert!(location(&refused).contains("error="), "{name}: {}", location(&refused));
        // A public reply and an internal note.
        let page = agent.get(&format!("/inbox/{id}")).await;
        agent
            .post(
                &format!("/inbox/{id}/comment"),
                &[("_csrf", &csrf(&page)), ("body", "On our way"), ("public", "true")],
            )
            .await;
        agent
            .post(
                &format!("/inbox/{id}/comment"),
                &[("_csrf", &csrf(&page)), ("body", "Call the fire brigade"), ("public", "true"), ("public", "false")],
            )
            .await;
        let page = agent.get(&format!("/inbox/{id}")).await;
        assert!(page.body.contains("<li class=\"reply\">") && page.body.contains("On our way"), "{name}");
        assert!(page.body.contains("<li class=\"note\">") && page.body.contains("Call the fire brigade"), "{name}");
        let stored = server
            .gql(
                &token(&db, Role::Admin).await,
                "query($id: ID!) { ticket(id: $id) { status comments { edges { node { public } } } } }",
                json!({"id": id}),
            )
            .await;
        assert_eq!(stored["data"]["ticket"]["status"], "OPEN", "{name}: {stored}");
        let publics: Vec<bool> = stored["data"]["ticket"]["comments"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["public"].as_bool().unwrap())
            .collect();
        assert_eq!(publics.iter().filter(|p| !**p).count(), 1, "{name}: one internal note: {publics:?}");
        // A VIEWER reads the conversation but is offered nothing to change.
        let mut viewer = signed_in(&db, &server, "vera@example.org", Role::Viewer).await;
        let page = viewer.get(&format!("/inbox/{id}")).await;
        assert!(
            page.body.contains("On our way") && !page.body.contains("/status\"") && !page.body.contains("/comment\""),
            "{name}"
        );
        server.stop().await;
    }
}

#[test]
fn an_sla_badge_says_breached_or_due_soon_from_what_is_due_next() {
    use kith_core::console::inbox::sla_badge;
    let now: chrono::DateTime<chrono::Utc> = "2026-12-06T12:00:00Z".parse().unwrap();
    let ticket = |responded: Option<&str>, first: &str, resolution: &str, status: &str| json!({"status": status, "firstRespondedAt": responded, "firstResponseDueAt": first, "resolutionDueAt": resolution});
    let cases = [
        (ticket(None, "2026-12-06T11:00:00Z", "2026-12-08T00:00:00Z", "NEW"), Some("breached")),
        (ticket(None, "2026-12-06T13:00:00Z", "2026-12-08T00:00:00Z", "NEW"), Some("due-soon")),
        (ticket(None, "2026-12-06T15:00:00Z", "2026-12-06T13:00:00Z", "OPEN"), None),
        (
            ticket(Some("2026-12-06T10:00:00Z"), "2026-12-06T11:00:00Z", "2026-12-06T13:00:00Z", "OPEN"),
            Some("due-soon"),
        ),
        (ticket(Some("2026-12-06T10:00:00Z"), "2026-12-06T11:00:00Z", "2026-12-07T13:00:00Z", "OPEN"), None),
        (ticket(None, "2026-12-06T11:00:00Z", "2026-12-06T11:00:00Z", "SOLVED"), None),
    ];
    for (ticket, expected) in cases {
        assert_eq!(sla_badge(&ticket, now).map(|b| b.0), expected, "{ticket}");
    }
}

#[tokio::test]
async fn reports_are_charts_with_their_tables_and_csv_downloads_for_managers() {
    for db in TestDb::all().await {
        let name = db.name;
        let server = Server::start(&db).await;
        let pipeline = db.create("pipeline", json!({"name": "Grants", "currency": "USD"})).await.unwrap();
        let ask = db
            .create(
                "stage",
                json!({"pipelineId": pipeline.id(), "name": "Ask", "position": 0, "probability": 40, "kind": "OPEN"}),
            )
            .await
            .unwrap();
        for (title, amount) in [("Roof", "1000"), ("Room", "250")] {
            db.create(
                "deal",
                json!({"title": title, "amount": amount, "pipelineId": pipeline.id(), "stageId": ask.id()}),
            )
            .await
            .unwrap();
        }
        for i in 0..3 {
            db.create("contact", json!({"firstName": format!("C{i}"), "email": format!("c{i}@example.org")}))
                .await
                .unwrap();
        }
        db.create("ticket", json!({"subject": "Help"})).await.unwrap();
        let mut manager = signed_in(&db, &server, "meg@example.org", Role::Manager).await;
        let page = manager.get("/reports").await;
        assert_eq!(page.status, 200, "{name}");
        assert!(page.body.contains("<svg class=\"chart\""), "{name}: a chart drawn on the server");
        assert!(page.body.contains("aria-label=\"New contacts by month\""), "{name}");
        // The stage's bar and its table row carry the same figure; the forecast is weighted.
        assert!(page.body.contains("<td>Ask</td><td>2</td><td>1250</td>"), "{name}: {}", page.body);
        assert!(page.body.contains("<dt>Weighted forecast</dt><dd>500 USD</dd>"), "{name}");
        assert!(page.body.contains("<dt>Tickets created</dt><dd>1</dd>"), "{name}");
        let growth = manager.get("/reports/growth.csv").await;
        assert_eq!(growth.status, 200, "{name}");
        assert!(growth.head.contains("content-type: text/csv"), "{name}");
        let month = chrono::Utc::now().format("%Y-%m").to_string();
        assert!(growth.body.starts_with("month,new_contacts,total_contacts\r\n"), "{name}: {}", growth.body);
        assert!(growth.body.contains(&format!("{month},3,3\r\n")), "{name}: {}", growth.body);
        let stages = manager.get("/reports/pipeline.csv").await;
        assert_eq!(stages.body, "stage,deals,amount\r\nAsk,2,1250\r\n", "{name}");
        assert_eq!(manager.get("/reports/secrets.csv").await.status, 404, "{name}");
        // An AGENT is not offered reports, and the API refuses them.
        let mut agent = signed_in(&db, &server, "al@example.org", Role::Agent).await;
        let list = agent.get("/o/contacts").await;
        assert!(!list.body.contains("href=\"/reports\""), "{name}");
        assert_eq!(agent.get("/reports/growth.csv").await.status, 403, "{name}");
        server.stop().await;
    }
}

#[tokio::test]
async fn a_session_left_unused_for_two_hours_ends_while_an_api_token_does_not() {
    use kith_core::store::tokens;
    for db in TestDb::all().await {
        let name = db.name;
        let tx = db.kith.store.begin(&admin()).await.unwrap();
        users::create_user(
            &tx,
            &db.kith.registry(),
            "ida@example.org",
            "Ida",
            Role::Agent,
            Some("a long enough password"),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let login = || users::login(&db.kith, None, "ida@example.org", "a long enough password");
        let (idle_secret, idle) = login().await.unwrap();
        let (busy_secret, busy) = login().await.unwrap();
        let api = token(&db, Role::Agent).await;
        let conn = db.kith.store.conn();
        let api_id = tokens::authenticate(conn, &api, chrono::Utc::now()).await.unwrap().unwrap().id;
        // `touch` records a use at the time it is given.
        let now = chrono::Utc::now();
        tokens::touch(conn, busy.id, now - chrono::Duration::minutes(119)).await.unwrap();
        tokens::touch(conn, idle.id, now - chrono::Duration::minutes(121)).await.unwrap();
        tokens::touch(conn, api_id, now - chrono::Duration::minutes(600)).await.unwrap();
        assert!(
            users::authenticate(&db.kith.store, &busy_secret).await.unwrap().is_some(),
            "{name}: used 119 minutes ago"
        );
        assert!(
            users::authenticate(&db.kith.store, &idle_secret).await.unwrap().is_none(),
            "{name}: idle 121 minutes: ended"
        );
        assert!(
            users::authenticate(&db.kith.store, &api).await.unwrap().is_some(),
            "{name}: an API token is no session"
        );
    }
}

#[tokio::test]
async fn two_first_run_setups_at_once_make_one_admin() {
    for db in TestDb::all().await {
        let name = db.name;
        let attempts = (0..4).map(|i| {
            let kith = db.kith.clone();
            tokio::spawn(async move {
                users::create_first_admin(&kith, &format!("admin{i}@example.org"), "Admin", "a long enough password")
                    .await
            })
        });
        let mut made = 0;
        for attempt in attempts.collect::<Vec<_>>() {
            match attempt.await.unwrap() {
                Ok(_) => made += 1,
                Err(kith_core::Error::Domain(kith_core::domain::DomainError::Conflict(_))) => {}
                Err(other) => panic!("{name}: {other}"),
            }
        }
        assert_eq!(made, 1, "{name}: exactly one first admin");
    }
}
