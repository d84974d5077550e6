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
        let body: String = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        self.exchange(method, path, "application/x-www-form-urlencoded", &body).await
    }

    /// A `multipart/form-data` POST, as a form with a file control sends it: `fields`, then
    /// `file` as (control name, file name, content).
    async fn upload(&mut self, path: &str, fields: &[(&str, &str)], file: (&str, &str, &str)) -> Reply {
        let boundary = "----kith-test-boundary-7f3a";
        let mut body = String::new();
        for (name, value) in fields {
            body.push_str(&format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            ));
        }
        let (control, file_name, content) = file;
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{control}\"; filename=\"{file_name}\"\r\n\
             Content-Type: text/csv\r\n\r\n{content}\r\n--{boundary}--\r\n"
        ));
        self.exchange("POST", path, &format!("multipart/form-data; boundary={boundary}"), &body).await
    }

    async fn exchange(&mut self, method: &str, path: &str, content_type: &str, body: &str) -> Reply {
        let cookie: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let extra = if cookie.is_empty() { String::new() } else { format!("Cookie: {}\r\n", cookie.join("; ")) };
        let reply = exchange_as(self.addr, method, path, content_type, None, extra.as_bytes(), body).await;
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
        // The form now carries the current version: saving again overwrites, as its button says.
        assert!(conflict.body.contains("name=\"_version\" value=\"2\""), "{name}");
        assert!(conflict.body.contains(">Overwrite with my changes</button>"), "{name}: {}", conflict.body);
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
    for db in TestDb::all().await {
        let name = db.name;
        let server = Server::start(&db).await;
        let runtime = crate::util::donors_runtime(&db).await;
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
        // The gift is named by the plugin's title template, not by its id.
        let today = chrono::Utc::now().date_naive();
        assert!(page.body.contains(&format!(">25 USD on {today}</a>")), "{name}: {}", page.body);
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
        let (p, stages) = crate::util::grants_pipeline(&db).await;
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
        // The customer's rating is recorded once the ticket is solved, within 1 to 5.
        assert!(!page.body.contains("/rate\""), "{name}: an open ticket is not rated");
        let admin_token = token(&db, Role::Admin).await;
        let version =
            server.gql(&admin_token, "query($id: ID!) { ticket(id: $id) { version } }", json!({"id": id})).await;
        let version = version["data"]["ticket"]["version"].to_string();
        let solved = agent
            .post(
                &format!("/inbox/{id}/status"),
                &[("_csrf", &csrf(&page)), ("version", &version), ("status", "SOLVED")],
            )
            .await;
        assert_eq!(solved.status, 303, "{name}");
        let page = agent.get(&format!("/inbox/{id}")).await;
        assert!(page.body.contains(&format!("action=\"/inbox/{id}/rate\"")), "{name}: {}", page.body);
        let wrong = agent.post(&format!("/inbox/{id}/rate"), &[("_csrf", &csrf(&page)), ("rating", "9")]).await;
        let shown = agent.get(&location(&wrong)).await;
        assert!(
            shown.body.contains("role=\"alert\"") && shown.body.contains("between 1 and 5"),
            "{name}: {}",
            shown.body
        );
        let rated = agent
            .post(
                &format!("/inbox/{id}/rate"),
                &[("_csrf", &csrf(&page)), ("rating", "4"), ("comment", "Quick and kind")],
            )
            .await;
        assert_eq!(location(&rated), format!("/inbox/{id}"), "{name}");
        let stored = server
            .gql(
                &admin_token,
                "query($id: ID!) { ticket(id: $id) { satisfactionRating satisfactionComment } }",
                json!({"id": id}),
            )
            .await;
        assert_eq!(
            stored["data"]["ticket"],
            json!({"satisfactionRating": 4, "satisfactionComment": "Quick and kind"}),
            "{name}"
        );
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

/// Reads the run page until the run is over; its body.
async fn finished_run(browser: &mut Browser, path: &str, name: &str) -> String {
    for _ in 0..400 {
        let page = browser.get(path).await;
        assert_eq!(page.status, 200, "{name}: {}", page.body);
        if !page.body.contains("hx-trigger=\"every 1s\"") {
            return page.body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{name}: the import at {path} did not end within 20 s");
}

/// The id at the end of a redirect to `prefix{id}`.
fn redirected_id(reply: &Reply, prefix: &str, name: &str) -> String {
    assert_eq!(reply.status, 303, "{name}: {}", reply.body);
    let to = location(reply);
    to.strip_prefix(prefix).unwrap_or_else(|| panic!("{name}: redirected to {to}, not {prefix}…")).to_owned()
}

#[tokio::test]
async fn a_csv_is_uploaded_mapped_imported_and_its_rejected_rows_come_back_with_their_reasons() {
    for db in TestDb::all().await {
        let name = db.name;
        let server = Server::start(&db).await;
        let runtime = crate::util::donors_runtime(&db).await;
        let mut browser = signed_in(&db, &server, "amy@example.org", Role::Agent).await;

        let page = browser.get("/import").await;
        assert_eq!(page.status, 200, "{name}: {}", page.body);
        assert!(page.body.contains("href=\"/import\""), "{name}: the menu offers import to an AGENT");
        for offered in
            ["value=\"contacts\"", "value=\"companies\"", "value=\"donations\"", "enctype=\"multipart/form-data\""]
        {
            assert!(page.body.contains(offered), "{name}: {offered} in {}", page.body);
        }
        let form_token = csrf(&page);

        // A forged upload stages nothing.
        let csv = "First Name,Surname,E-mail Address,Favourite colour,Phone\r\n\
                   Ada,Lovelace,ada@example.org,green,+44 20 1234\r\n\
                   Grace,Hopper,grace@example.org,blue,\r\n\
                   Bad,Row,not-an-email,red,\r\n\
                   Alan,Turing,alan@example.org,,\r\n";
        let forged = browser
            .upload("/import", &[("object", "contacts"), ("on_duplicate", "SKIP")], ("file", "donors.csv", csv))
            .await;
        assert_eq!(forged.status, 403, "{name}: {}", forged.body);

        // Upload, then map: the page suggests what `kith import` maps.
        let uploaded = browser
            .upload(
                "/import",
                &[("_csrf", &form_token), ("object", "contacts"), ("on_duplicate", "SKIP")],
                ("file", "donors.csv", csv),
            )
            .await;
        let staged = redirected_id(&uploaded, "/import/map/", name);
        let mapping = browser.get(&format!("/import/map/{staged}")).await;
        assert_eq!(mapping.status, 200, "{name}: {}", mapping.body);
        for expected in [
            "value=\"firstName\" selected",
            "value=\"lastName\" selected",
            "value=\"email\" selected",
            "ada@example.org",
        ] {
            assert!(mapping.body.contains(expected), "{name}: {expected} in {}", mapping.body);
        }
        // Favourite colour maps to nothing: "Ignore" is chosen for it.
        let colour = mapping.body.find("name=\"map.3\"").unwrap();
        assert!(mapping.body[colour..].split("</select>").next().unwrap().contains("value=\"\" selected"), "{name}");

        // A mapping that leaves rows without a name is refused before anything is written.
        let nameless: Vec<(String, String)> = (0..5).map(|i| (format!("map.{i}"), String::new())).collect();
        let mut form: Vec<(&str, &str)> = vec![("_csrf", &form_token), ("on_duplicate", "SKIP")];
        form.extend(nameless.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let refused = browser.post(&format!("/import/map/{staged}"), &form).await;
        assert_eq!(refused.status, 422, "{name}: {}", refused.body);
        assert!(refused.body.contains("no column maps"), "{name}: {}", refused.body);

        let started = browser
            .post(
                &format!("/import/map/{staged}"),
                &[
                    ("_csrf", &form_token),
                    ("on_duplicate", "SKIP"),
                    ("map.0", "firstName"),
                    ("map.1", "lastName"),
                    ("map.2", "email"),
                    ("map.3", ""),
                    ("map.4", "phone"),
                ],
            )
            .await;
        let run = redirected_id(&started, "/import/runs/", name);
        let done = finished_run(&mut browser, &format!("/import/runs/{run}"), name).await;
        assert!(done.contains("3 created") && done.contains("1 rejected"), "{name}: {done}");
        assert!(done.contains("Favourite colour"), "{name}: the ignored column is named: {done}");
        let table =
            &done[done.find("id=\"rejected\"").unwrap_or_else(|| panic!("{name}: no rejected table: {done}"))..];
        assert!(table.contains("<td>4</td>") && table.contains("not-an-email"), "{name}: {table}");
        // The staged file is gone once imported.
        assert_eq!(browser.get(&format!("/import/map/{staged}")).await.status, 404, "{name}");

        let rejected = browser.get(&format!("/import/runs/{run}/rejected.csv")).await;
        assert_eq!(rejected.status, 200, "{name}");
        assert!(rejected.head.contains("content-type: text/csv"), "{name}: {}", rejected.head);
        let mut lines = rejected.body.lines();
        assert_eq!(
            lines.next(),
            Some("line,reason,First Name,Surname,E-mail Address,Favourite colour,Phone"),
            "{name}"
        );
        let bad = lines.next().unwrap_or_default();
        assert!(bad.starts_with("4,") && bad.ends_with(",Bad,Row,not-an-email,red,"), "{name}: {bad}");
        assert_eq!(lines.next(), None, "{name}");

        let admin_token = token(&db, Role::Admin).await;
        let contacts = server
            .gql(
                &admin_token,
                "{ contacts(orderBy: [{field: email}]) { totalCount edges { node { email phone } } } }",
                json!({}),
            )
            .await;
        assert_eq!(contacts["data"]["contacts"]["totalCount"], 3, "{name}: {contacts}");
        assert_eq!(contacts["data"]["contacts"]["edges"][0]["node"]["phone"], "+44 20 1234", "{name}: {contacts}");

        // Someone else's run is not theirs to read.
        let other = server
            .gql(&token(&db, Role::Agent).await, "query($id: ID!) { importRun(id: $id) { id } }", json!({ "id": run }))
            .await;
        assert_eq!(other["data"]["importRun"], serde_json::Value::Null, "{name}: {other}");

        // Gifts, through the donors plugin's import: the file goes as it is.
        let gifts = "email,amount,currency,date,fund,campaign,method,status,note\r\n\
                     ada@example.org,50.00,USD,2026-01-15,General,,CARD,,\r\n\
                     nobody@example.org,20.00,USD,2026-01-16,General,,CARD,,\r\n";
        let page = browser.get("/import").await;
        let started = browser
            .upload(
                "/import",
                &[("_csrf", &csrf(&page)), ("object", "donations"), ("on_duplicate", "SKIP")],
                ("file", "gifts.csv", gifts),
            )
            .await;
        let run = redirected_id(&started, "/import/runs/", name);
        let done = finished_run(&mut browser, &format!("/import/runs/{run}"), name).await;
        assert!(done.contains("1 created") && done.contains("1 rejected"), "{name}: {done}");
        assert!(done.contains("<td>3</td>") && done.contains("nobody@example.org"), "{name}: {done}");
        let donations = server.gql(&admin_token, "{ donations { totalCount } }", json!({})).await;
        assert_eq!(donations["data"]["donations"]["totalCount"], 1, "{name}: {donations}");
        // The latest runs are listed on the import page.
        let page = browser.get("/import").await;
        assert!(page.body.contains("gifts.csv") && page.body.contains("donors.csv"), "{name}: {}", page.body);

        // A VIEWER is offered no import, and the API refuses one.
        let mut viewer = signed_in(&db, &server, "vic@example.org", Role::Viewer).await;
        let list = viewer.get("/o/contacts").await;
        assert!(!list.body.contains("href=\"/import\""), "{name}");
        assert_eq!(viewer.get("/import").await.status, 403, "{name}");
        let refused = server
            .gql(
                &token(&db, Role::Viewer).await,
                "mutation { startImport(object: \"contacts\", csv: \"email\\nx@example.org\\n\") { id } }",
                json!({}),
            )
            .await;
        assert_eq!(refused["errors"][0]["extensions"]["code"], "FORBIDDEN", "{name}: {refused}");
        runtime.stop().await;
        server.stop().await;
    }
}

#[tokio::test]
async fn the_import_api_checks_the_file_and_mapping_before_it_writes_and_reports_progress() {
    for db in TestDb::all().await {
        let name = db.name;
        let server = Server::start(&db).await;
        let agent = token(&db, Role::Agent).await;
        let plan = server
            .gql(
                &agent,
                "query($h: [String!]!) { importPlan(object: \"contacts\", header: $h) { columns { column target } targets { name } } }",
                json!({ "h": ["E-mail Address", "Given Name", "Shoe size"] }),
            )
            .await;
        let columns = &plan["data"]["importPlan"]["columns"];
        assert_eq!(columns[0]["target"], "email", "{name}: {plan}");
        assert_eq!(columns[1]["target"], "firstName", "{name}: {plan}");
        assert_eq!(columns[2]["target"], serde_json::Value::Null, "{name}: {plan}");
        let start = "mutation($csv: String!, $mapping: [ImportMapping!]) {
            startImport(object: \"contacts\", csv: $csv, fileName: \"people.csv\", mapping: $mapping) { id state total } }";
        // A mapping to a field that does not exist, and an empty file: refused, nothing started.
        let wrong = server
            .gql(
                &agent,
                start,
                json!({ "csv": "Mail\nx@example.org\n", "mapping": [{"column": "Mail", "target": "shoeSize"}] }),
            )
            .await;
        assert_eq!(wrong["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{name}: {wrong}");
        let empty = server.gql(&agent, start, json!({ "csv": "" })).await;
        assert_eq!(empty["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{name}: {empty}");
        let runs = server.gql(&agent, "{ importRuns { id } }", json!({})).await;
        assert_eq!(runs["data"]["importRuns"], json!([]), "{name}: {runs}");

        // 2,500 rows: the run reports its total at once and ends DONE with every row created.
        let mut csv = String::from("Mail,First\n");
        for i in 0..2_500 {
            csv.push_str(&format!("p{i}@example.org,P{i}\n"));
        }
        let started = server
            .gql(&agent, start, json!({ "csv": csv, "mapping": [{"column": "Mail", "target": "email"}, {"column": "First", "target": "firstName"}] }))
            .await;
        let run = &started["data"]["startImport"];
        assert_eq!(run["total"], 2_500, "{name}: {started}");
        let id = run["id"].as_str().unwrap().to_owned();
        let done = crate::util::eventually(30, "the import to end", || {
            let (server, agent, id) = (&server, &agent, id.clone());
            async move {
                let run = server
                    .gql(
                        agent,
                        "query($id: ID!) { importRun(id: $id) { state rows created rejectedCount } }",
                        json!({ "id": id }),
                    )
                    .await;
                (run["data"]["importRun"]["state"] != "RUNNING").then_some(run)
            }
        })
        .await;
        let run = &done["data"]["importRun"];
        assert_eq!(
            (run["state"].as_str(), run["rows"].as_i64(), run["created"].as_i64()),
            (Some("DONE"), Some(2_500), Some(2_500)),
            "{name}: {done}"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn the_donor_reports_are_charts_with_tables_and_csv_for_managers() {
    use chrono::Datelike;
    for db in TestDb::all().await {
        let name = db.name;
        let server = Server::start(&db).await;
        let runtime = crate::util::donors_runtime(&db).await;
        let this = chrono::Utc::now().year();
        let agent = token(&db, Role::Agent).await;
        let mut people = Vec::new();
        for (first, email) in [("Ada", "ada@example.org"), ("Bob", "bob@example.org"), ("Cy", "cy@example.org")] {
            let c =
                db.create("contact", json!({"firstName": first, "lastName": "Giver", "email": email})).await.unwrap();
            people.push(c.id().to_string());
        }
        let campaign = server
            .gql(&agent, "mutation { createCampaign(input: {name: \"Spring appeal\", goal: \"500\", goalCurrency: \"USD\"}) { id } }", json!({}))
            .await;
        let campaign = campaign["data"]["createCampaign"]["id"].as_str().unwrap().to_owned();
        let record = "mutation($c: ID, $a: Decimal!, $d: Date, $camp: ID, $soft: JSON) {
            recordDonation(contactId: $c, amount: $a, currency: \"USD\", receivedDate: $d, campaignId: $camp, softCredits: $soft) }";
        // Bob is credited with Ada's gift of last year (his recognition, not his giving).
        let bob_credited = json!([{"contactId": people[1], "role": "SPOUSE"}]);
        for (who, amount, date, soft) in [
            (0, "100", format!("{}-03-01", this - 1), bob_credited),
            (0, "50", format!("{this}-01-02"), serde_json::Value::Null),
            (1, "40", format!("{}-11-30", this - 1), serde_json::Value::Null),
            (2, "20", format!("{}-06-06", this - 3), serde_json::Value::Null),
        ] {
            let vars = json!({"c": people[who], "a": amount, "d": date, "camp": campaign, "soft": soft});
            let r = server.gql(&agent, record, vars).await;
            assert!(r["errors"].is_null(), "{name}: {r}");
        }

        let mut manager = signed_in(&db, &server, "meg@example.org", Role::Manager).await;
        let reports = manager.get("/reports").await;
        assert!(reports.body.contains("href=\"/reports/donors\""), "{name}: {}", reports.body);
        let page = manager.get("/reports/donors").await;
        assert_eq!(page.status, 200, "{name}: {}", page.body);
        assert!(!page.body.contains("role=\"alert\""), "{name}: {}", page.body);
        let by_status = format!("aria-label=\"Donors by status in {this}\"");
        for chart in ["aria-label=\"Retention rate by year (%)\"", by_status.as_str(), "aria-label=\"% of goal\""] {
            assert!(page.body.contains(chart), "{name}: {chart} in {}", page.body);
        }
        // This year: Ada gave again (retained), Bob did not (lapsed): half of last year's donors.
        let retention = &page.body[page.body.find("id=\"retention-table\"").unwrap()..];
        let row = &retention[retention.find(&format!("<td>{this}</td>")).unwrap()..];
        let row = row.split("</tr>").next().unwrap();
        assert_eq!(
            row,
            format!("<td>{this}</td><td>1</td><td>0</td><td>1</td><td>0</td><td>1</td><td>50%</td>"),
            "{name}"
        );
        let lybunt = &page.body[page.body.find("LYBUNT:").unwrap()..page.body.find("SYBUNT:").unwrap()];
        assert!(lybunt.contains("Bob Giver") && !lybunt.contains("Ada Giver"), "{name}: {lybunt}");
        // Last gift, its amount, lifetime giving and lifetime recognition (with the credit).
        assert!(lybunt.contains("<th scope=\"col\">Lifetime recognition</th>"), "{name}: {lybunt}");
        assert!(
            lybunt.contains(&format!("<td>{}-11-30</td><td>40</td><td>40</td><td>140</td>", this - 1)),
            "{name}: {lybunt}"
        );
        let sybunt = &page.body[page.body.find("SYBUNT:").unwrap()..];
        assert!(sybunt.contains("Cy Giver"), "{name}: {sybunt}");
        // The campaign raised 210 of 500.
        assert!(
            page.body.contains("<td>Spring appeal</td><td>500</td><td>210</td><td>42%</td>"),
            "{name}: {}",
            page.body
        );

        let csv = manager.get(&format!("/reports/donors/retention.csv?year={this}")).await;
        assert_eq!(csv.status, 200, "{name}");
        let lines: Vec<&str> = csv.body.lines().collect();
        assert_eq!(lines[0], "year,donors,new,retained,recovered,lapsed,retention_rate", "{name}");
        assert_eq!(lines.len(), 6, "{name}: five years: {}", csv.body);
        assert_eq!(lines[5], format!("{this},1,0,1,0,1,0.5"), "{name}");
        let lybunt = manager.get(&format!("/reports/donors/lybunt.csv?year={this}")).await;
        assert!(lybunt.body.contains("Bob Giver") && lybunt.body.lines().count() == 2, "{name}: {}", lybunt.body);
        assert_eq!(
            lybunt.body.lines().next(),
            Some("contact_id,name,last_gift_date,last_gift_amount,lifetime_giving,lifetime_recognition"),
            "{name}"
        );
        assert!(lybunt.body.contains(&format!(",{}-11-30,40,40,140", this - 1)), "{name}: {}", lybunt.body);

        // The reports are a MANAGER's: an AGENT hears why, not figures.
        let mut amy = signed_in(&db, &server, "amy@example.org", Role::Agent).await;
        let refused = amy.get("/reports/donors").await;
        assert!(
            refused.body.contains("role=\"alert\"") && refused.body.contains("MANAGER"),
            "{name}: {}",
            refused.body
        );
        assert!(!refused.body.contains("Bob Giver"), "{name}");
        runtime.stop().await;
        server.stop().await;
    }
}

#[tokio::test]
async fn pages_and_scripts_travel_gzipped_and_scripts_are_cached_for_good() {
    use std::io::Read as _;
    let db = TestDb::sqlite().await;
    let server = Server::start(&db).await;
    let mut browser = signed_in(&db, &server, "amy@example.org", Role::Agent).await;
    let page = browser.get("/o/contacts").await;
    let at = page.body.find("/assets/htmx.min.js?v=").expect("the page loads htmx");
    let script = &page.body[at..];
    let script = &script[..script.find('"').unwrap()];
    let plain = browser.get(script).await;
    assert!(plain.head.contains("cache-control: public, max-age=31536000, immutable"), "{}", plain.head);
    assert!(!plain.head.contains("content-encoding"), "{}", plain.head);
    // The same file for a client that accepts gzip: smaller, and the same once unpacked.
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    stream
        .write_all(
            format!("GET {script} HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    assert!(head.contains("content-encoding: gzip"), "{head}");
    let mut body = &raw[split + 4..];
    // Chunked: read the chunks' data.
    let mut packed = Vec::new();
    if head.contains("transfer-encoding: chunked") {
        loop {
            let line_end = body.windows(2).position(|w| w == b"\r\n").unwrap();
            let size = usize::from_str_radix(std::str::from_utf8(&body[..line_end]).unwrap().trim(), 16).unwrap();
            if size == 0 {
                break;
            }
            packed.extend_from_slice(&body[line_end + 2..line_end + 2 + size]);
            body = &body[line_end + 2 + size + 2..];
        }
    } else {
        packed.extend_from_slice(body);
    }
    let mut unpacked = String::new();
    flate2::read::GzDecoder::new(packed.as_slice()).read_to_string(&mut unpacked).unwrap();
    assert_eq!(unpacked, plain.body);
    assert!(packed.len() * 2 < plain.body.len(), "gzip: {} of {} bytes", packed.len(), plain.body.len());
    server.stop().await;
    db.cleanup().await;
}

#[tokio::test]
async fn a_list_chooses_columns_exports_saves_a_segment_and_acts_on_ticked_records() {
    for db in TestDb::all().await {
        let name = db.name;
        let server = Server::start(&db).await;
        let mut ids = Vec::new();
        for (first, email, city) in [
            ("Ada", "ada@example.org", "London"),
            ("Bob", "bob@example.org", "Paris"),
            ("Cy", "cy@example.org", "London"),
        ] {
            let c = db
                .create("contact", json!({"firstName": first, "lastName": "Doe", "email": email, "addressCity": city}))
                .await
                .unwrap();
            ids.push(c.id().to_string());
        }
        let mut manager = signed_in(&db, &server, "max@example.org", Role::Manager).await;

        // Columns: the boxes of the chooser, kept by the links of the page.
        let list = manager.get("/o/contacts?col=firstName&col=addressCity").await;
        assert_eq!(list.status, 200, "{name}");
        let head = &list.body[list.body.find("<thead>").unwrap()..list.body.find("</thead>").unwrap()];
        assert!(
            head.contains(">First name<") && head.contains(">Address city<") && !head.contains(">E-mail<"),
            "{name}: {head}"
        );
        assert!(list.body.contains("cols=firstName%2CaddressCity"), "{name}: sort links keep the columns");
        assert!(list.body.contains("name=\"col\" value=\"addressCity\" checked"), "{name}");

        // Export: every record matching the filter, with the chosen columns.
        let csv = manager.get("/o/contacts/export.csv?f=addressCity&op=eq&v=London&cols=firstName%2CaddressCity").await;
        assert_eq!(csv.status, 200, "{name}: {}", csv.body);
        assert!(csv.head.contains("content-type: text/csv"), "{name}");
        let lines: Vec<&str> = csv.body.lines().collect();
        assert_eq!(lines[0], "id,firstName,addressCity", "{name}");
        assert_eq!(lines.len(), 3, "{name}: {}", csv.body);
        assert!(lines[1..].iter().all(|l| l.ends_with(",London")), "{name}: {}", csv.body);

        // The filter saved as a segment, which selects the same records.
        let page = manager.get("/o/contacts?f=addressCity&op=eq&v=London").await;
        assert!(page.body.contains("action=\"/o/contacts/segment\""), "{name}: a filtered list can be saved");
        let saved = manager
            .post(
                "/o/contacts/segment",
                &[("_csrf", &csrf(&page)), ("f", "addressCity"), ("op", "eq"), ("v", "London"), ("name", "Londoners")],
            )
            .await;
        assert_eq!(saved.status, 303, "{name}: {}", saved.body);
        assert!(location(&saved).starts_with("/o/segments/"), "{name}");
        let admin_token = token(&db, Role::Admin).await;
        let segment = server
            .gql(&admin_token, "{ segments { edges { node { name object members { totalCount } } } } }", json!({}))
            .await;
        let node = &segment["data"]["segments"]["edges"][0]["node"];
        assert_eq!(
            (node["name"].as_str(), node["members"]["totalCount"].as_i64()),
            (Some("Londoners"), Some(2)),
            "{name}: {segment}"
        );

        // Bulk: tag two, export the ticked ones, delete one; a forged bulk form does nothing.
        let token_value = csrf(&page);
        let tagged = manager
            .post(
                "/o/contacts/bulk",
                &[("_csrf", &token_value), ("action", "tag"), ("tag", "vip"), ("id", &ids[0]), ("id", &ids[1])],
            )
            .await;
        assert_eq!(tagged.status, 303, "{name}: {}", tagged.body);
        let tags = server
            .gql(
                &admin_token,
                "{ contacts(orderBy: [{field: firstName}]) { edges { node { firstName tags } } } }",
                json!({}),
            )
            .await;
        let edges = &tags["data"]["contacts"]["edges"];
        assert_eq!(
            (edges[0]["node"]["tags"].clone(), edges[1]["node"]["tags"].clone(), edges[2]["node"]["tags"].clone()),
            (json!(["vip"]), json!(["vip"]), json!([])),
            "{name}: {tags}"
        );
        let ticked =
            manager.post("/o/contacts/bulk", &[("_csrf", &token_value), ("action", "export"), ("id", &ids[1])]).await;
        assert_eq!(ticked.body.lines().count(), 2, "{name}: {}", ticked.body);
        assert!(ticked.body.contains("Bob"), "{name}");
        let forged = manager.post("/o/contacts/bulk", &[("action", "delete"), ("id", &ids[2])]).await;
        assert_eq!(forged.status, 403, "{name}");
        let deleted =
            manager.post("/o/contacts/bulk", &[("_csrf", &token_value), ("action", "delete"), ("id", &ids[2])]).await;
        assert_eq!(deleted.status, 303, "{name}: {}", deleted.body);
        let left = server.gql(&admin_token, "{ contacts { totalCount } }", json!({})).await;
        assert_eq!(left["data"]["contacts"]["totalCount"], 2, "{name}: {left}");

        // Quick add from the list comes back to the list; an AGENT may not bulk delete.
        let mut agent = signed_in(&db, &server, "amy@example.org", Role::Agent).await;
        let list = agent.get("/o/contacts").await;
        assert!(list.body.contains("name=\"_back\" value=\"list\""), "{name}: quick add offered");
        assert!(!list.body.contains("value=\"delete\""), "{name}: no bulk delete for an AGENT");
        let added = agent
            .post(
                "/o/contacts",
                &[("_csrf", &csrf(&list)), ("_back", "list"), ("firstName", "Dee"), ("email", "dee@example.org")],
            )
            .await;
        assert_eq!((added.status, location(&added).as_str()), (303, "/o/contacts"), "{name}: {}", added.body);
        let refused =
            agent.post("/o/contacts/bulk", &[("_csrf", &csrf(&list)), ("action", "delete"), ("id", &ids[0])]).await;
        assert_eq!(refused.status, 422, "{name}: the API refuses it: {}", refused.body);
        assert!(refused.body.contains("MANAGER"), "{name}: {}", refused.body);
        let left = server.gql(&admin_token, "{ contacts { totalCount } }", json!({})).await;
        assert_eq!(left["data"]["contacts"]["totalCount"], 3, "{name}: {left}");
        server.stop().await;
    }
}

#[tokio::test]
async fn the_timeline_takes_notes_and_tasks_and_completes_tasks() {
    for db in TestDb::all().await {
        let name = db.name;
        let server = Server::start(&db).await;
        let contact = db.create("contact", json!({"firstName": "Ada", "email": "ada@example.org"})).await.unwrap();
        let path = format!("/o/contacts/{}", contact.id());
        let mut agent = signed_in(&db, &server, "amy@example.org", Role::Agent).await;
        let page = agent.get(&path).await;
        assert!(page.body.contains(&format!("action=\"{path}/activity\"")), "{name}: {}", page.body);
        let note = agent
            .post(
                &format!("{path}/activity"),
                &[("_csrf", &csrf(&page)), ("kind", "NOTE"), ("subject", "Met at the gala"), ("body", "Likes jazz")],
            )
            .await;
        assert_eq!(note.status, 303, "{name}: {}", note.body);
        let task = agent
            .post(
                &format!("{path}/activity"),
                &[
                    ("_csrf", &csrf(&page)),
                    ("kind", "TASK"),
                    ("subject", "Send the thank-you card"),
                    ("dueAt", "2030-01-02T09:30"),
                ],
            )
            .await;
        assert_eq!(task.status, 303, "{name}: {}", task.body);
        let page = agent.get(&path).await;
        let tasks =
            &page.body[page.body.find("id=\"open-tasks\"").unwrap_or_else(|| panic!("{name}: {}", page.body))..];
        assert!(tasks.contains("Send the thank-you card") && tasks.contains("2030-01-02 09:30"), "{name}: {tasks}");
        // Marked up for the reader's locale and time zone (console.js), UTC without script.
        assert!(tasks.contains("<time datetime=\"2030-01-02T09:30:00"), "{name}: {tasks}");
        assert!(tasks.contains("data-format=\"datetime\">2030-01-02 09:30 UTC</time>"), "{name}: {tasks}");
        assert!(page.body.contains("Met at the gala"), "{name}: the note is on the timeline");
        let action = tasks.split("action=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
        // A task completed without the form's token stays open.
        assert_eq!(agent.post(&action, &[]).await.status, 403, "{name}");
        let done = agent.post(&action, &[("_csrf", &csrf(&page))]).await;
        assert_eq!(done.status, 303, "{name}: {}", done.body);
        let page = agent.get(&path).await;
        assert!(!page.body.contains("id=\"open-tasks\""), "{name}: no open task left");
        let activities = server
            .gql(
                &token(&db, Role::Admin).await,
                "{ activities(orderBy: [{field: subject}]) { edges { node { kind subject contactId completedAt } } } }",
                json!({}),
            )
            .await;
        let edges = &activities["data"]["activities"]["edges"];
        assert_eq!(edges[0]["node"]["contactId"], contact.id().to_string(), "{name}: {activities}");
        assert!(
            !edges[1]["node"]["completedAt"].is_null() && edges[1]["node"]["kind"] == "TASK",
            "{name}: {activities}"
        );
        // A VIEWER is offered neither.
        let mut viewer = signed_in(&db, &server, "vic@example.org", Role::Viewer).await;
        let page = viewer.get(&path).await;
        assert!(!page.body.contains("/activity\""), "{name}");
        server.stop().await;
    }
}

#[tokio::test]
async fn a_record_page_groups_its_fields_and_edits_a_group_in_place() {
    for db in TestDb::all().await {
        let name = db.name;
        let server = Server::start(&db).await;
        let contact = db
            .create("contact", json!({"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.org", "addressCity": "London"}))
            .await
            .unwrap();
        let path = format!("/o/contacts/{}", contact.id());
        let mut agent = signed_in(&db, &server, "amy@example.org", Role::Agent).await;
        let page = agent.get(&path).await;
        let groups: Vec<&str> = page
            .body
            .split("<section class=\"group\" aria-label=\"")
            .skip(1)
            .map(|s| s.split('"').next().unwrap())
            .collect();
        assert_eq!(groups, ["Details", "Address", "Record"], "{name}: {}", page.body);
        // The kept-by-Kith group is not editable; the others are, in place with htmx.
        let edit = format!("{path}/edit?group=Address");
        assert!(page.body.contains(&format!("hx-get=\"{edit}\"")), "{name}: {}", page.body);
        assert!(!page.body.contains("edit?group=Record"), "{name}");
        let form = agent.get(&edit).await;
        assert_eq!(form.status, 200, "{name}");
        let fields = &form.body[form.body.find("<form class=\"record\"").unwrap()..];
        assert!(fields.contains("id=\"f-addressCity\"") && !fields.contains("id=\"f-firstName\""), "{name}: {fields}");
        let version = fields.split("name=\"_version\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
        let saved = agent
            .post(
                &path,
                &[("_csrf", &csrf(&form)), ("_version", &version), ("addressCity", "Paris"), ("addressCountry", "FR")],
            )
            .await;
        assert_eq!((saved.status, location(&saved)), (303, path.clone()), "{name}: {}", saved.body);
        let stored = server
            .gql(
                &token(&db, Role::Admin).await,
                "query($id: ID!) { contact(id: $id) { firstName lastName email addressCity addressCountry } }",
                json!({"id": contact.id().to_string()}),
            )
            .await;
        assert_eq!(
            stored["data"]["contact"],
            json!({"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.org", "addressCity": "Paris", "addressCountry": "FR"}),
            "{name}: the other groups are untouched"
        );
        // A VIEWER sees the groups with nothing to edit.
        let mut viewer = signed_in(&db, &server, "vic@example.org", Role::Viewer).await;
        assert!(!viewer.get(&path).await.body.contains("edit?group="), "{name}");
        server.stop().await;
    }
}

#[tokio::test]
async fn console_pages_count_against_the_sessions_request_budget() {
    let db = TestDb::sqlite().await;
    let api = kith_core::config::ApiConfig { rate_limit_per_minute: 5, ..kith_core::config::ApiConfig::default() };
    let server = Server::start_with(&db, api).await;
    let mut browser = signed_in(&db, &server, "amy@example.org", Role::Agent).await;
    let statuses: Vec<u16> = {
        let mut out = Vec::new();
        for _ in 0..8 {
            out.push(browser.get("/o/contacts").await.status);
        }
        out
    };
    assert!(statuses.iter().take(4).all(|s| *s == 200), "{statuses:?}");
    let limited = browser.get("/o/contacts").await;
    assert_eq!(limited.status, 429, "{statuses:?}");
    assert!(limited.head.contains("retry-after: 60") && limited.body.contains("Too many requests"), "{}", limited.head);
    // Another session has its own budget.
    let mut other = signed_in(&db, &server, "bob@example.org", Role::Agent).await;
    assert_eq!(other.get("/o/contacts").await.status, 200);
    server.stop().await;
    db.cleanup().await;
}
