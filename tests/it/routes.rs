//! Plugins' inbound routes (`[[routes]]`, `/p/PLUGIN/...`, SDK 1.3) over real HTTP, both
//! databases: a signed link opens its page and the visit is recorded, a changed one is refused;
//! a `token` route knows its caller and refuses anyone else; a 5xx keeps none of the handler's
//! writes; Kith answers 404, 405, 413 and 429 before the plugin runs, never shows the plugin the
//! caller's credentials, and serves the plugin's pages sandboxed.

use kith_core::domain::actor::Role;
use kith_core::plugin::manager::Grants;
use kith_core::plugin::start_runtime;
use kith_core::store::plugins::kv_get;
use kith_tests::TestDb;

use crate::util::{Server, admin, exchange, hostile, plugins_config, token};

const ROUTES: &str = r#"
[[routes]]
method = "GET"
path = "/hello"
access = "public"

[[routes]]
method = "GET"
path = "/link"
access = "public"

[[routes]]
method = "GET"
path = "/whoami"
access = "token"

[[routes]]
method = "POST"
path = "/boom"
access = "public"

[[routes]]
method = "POST"
path = "/echo"
access = "public"
max_body_bytes = 16
per_minute = 3

[[routes]]
method = "GET"
path = "/page"
access = "public"
"#;

#[tokio::test]
async fn plugin_routes_answer_through_kith_with_its_checks_first() {
    for db in TestDb::all().await {
        let server = Server::start(&db).await;
        let manager = start_runtime(&db.kith, &plugins_config()).await.unwrap();
        let (manifest, wasm) = hostile("pages");
        let manifest = manifest.replace("[before_write]\nobjects = [\"contact\"]\non_failure = \"deny\"\n", "");
        manager.install(&admin(), &format!("{manifest}{ROUTES}"), &wasm).await.unwrap();
        manager.enable(&admin(), "pages", Grants::All).await.unwrap();
        db.kith.set_public_url(&format!("http://{}", server.addr));
        let agent = token(&db, Role::Agent).await;
        let get = |path: String, token: Option<String>| {
            let addr = server.addr;
            async move { exchange(addr, "GET", &path, token.as_deref(), b"Cookie: kith_session=secret\r\n", "").await }
        };

        // The plugin signs a link (with its key, through Kith); the link opens the page once.
        let link = get("/p/pages/link?c=ada".into(), None).await;
        assert_eq!(link.status, 200, "{}: {link:?}", db.name);
        let url = link.body.trim().to_owned();
        assert!(url.starts_with(&format!("http://{}/p/pages/hello?c=ada&sig=", server.addr)), "{url}");
        let path = url.trim_start_matches(&format!("http://{}", server.addr)).to_owned();
        let page = get(path.clone(), None).await;
        assert_eq!((page.status, page.body.as_str()), (200, "<p>Hello, ada</p>"), "{}: {page:?}", db.name);
        assert!(page.head.contains("content-security-policy: default-src 'none'"), "{}", page.head);
        assert!(page.head.contains("sandbox"), "{}", page.head);
        let conn = db.kith.store.conn();
        assert_eq!(kv_get(conn, "pages", "hello:ada").await.unwrap(), Some(b"1".to_vec()), "{}", db.name);
        let forged = get(path.replace("c=ada", "c=bob"), None).await;
        assert_eq!(forged.status, 403, "{}: {forged:?}", db.name);
        assert_eq!(kv_get(conn, "pages", "hello:bob").await.unwrap(), None);

        // A token route: its caller, and never the caller's credentials.
        let anonymous = get("/p/pages/whoami".into(), None).await;
        assert_eq!(anonymous.status, 401, "{}: {anonymous:?}", db.name);
        let wrong = get("/p/pages/whoami".into(), Some("kith_nope".into())).await;
        assert_eq!(wrong.status, 401, "{}", db.name);
        let me = get("/p/pages/whoami".into(), Some(agent.clone())).await;
        assert_eq!(me.status, 200, "{}: {me:?}", db.name);
        let me = me.json();
        let caller = me["caller"].as_str().unwrap_or_default();
        assert!(caller.starts_with("token:") || caller.starts_with("user:"), "{}: {me}", db.name);
        let headers = me["headers"].to_string().to_ascii_lowercase();
        assert!(!headers.contains("authorization") && !headers.contains("secret"), "{}: {headers}", db.name);

        // A 5xx keeps none of the handler's writes.
        let boom = exchange(server.addr, "POST", "/p/pages/boom", None, b"", "{}").await;
        assert_eq!(boom.status, 500, "{}: {boom:?}", db.name);
        assert_eq!(kv_get(conn, "pages", "boom").await.unwrap(), None, "{}: rolled back", db.name);

        // Kith's own answers, before the plugin runs.
        assert_eq!(get("/p/pages/nowhere".into(), None).await.status, 404);
        assert_eq!(get("/p/nobody/hello".into(), None).await.status, 404);
        let not_allowed = get("/p/pages/echo".into(), None).await;
        assert_eq!(not_allowed.status, 405, "{}: {not_allowed:?}", db.name);
        assert!(not_allowed.head.contains("allow: post"), "{}", not_allowed.head);
        let big = exchange(server.addr, "POST", "/p/pages/echo", None, b"", "seventeen bytes!!").await;
        assert_eq!(big.status, 413, "{}: {big:?}", db.name);
        let echo = exchange(server.addr, "POST", "/p/pages/echo", None, b"", "hi").await;
        assert_eq!((echo.status, echo.body.as_str()), (200, "hi"), "{}", db.name);
        // Three a minute (the 413 spent one): the fourth is refused.
        let third = exchange(server.addr, "POST", "/p/pages/echo", None, b"", "hi").await;
        assert_eq!(third.status, 200, "{}", db.name);
        let limited = exchange(server.addr, "POST", "/p/pages/echo", None, b"", "hi").await;
        assert_eq!(limited.status, 429, "{}: {limited:?}", db.name);
        assert!(limited.head.contains("retry-after: 60"));

        // What a page may set: not a cookie; its script does not run (CSP), whatever it says.
        let page = get("/p/pages/page".into(), None).await;
        assert_eq!(page.status, 200);
        assert!(!page.head.contains("set-cookie"), "{}", page.head);
        assert!(page.head.contains("x-plugin: yes"), "{}", page.head);
        assert!(page.head.contains("script-src") || page.head.contains("default-src 'none'"), "{}", page.head);

        // A disabled plugin's routes are gone.
        manager.disable(&admin(), "pages").await.unwrap();
        assert_eq!(get(path, None).await.status, 404, "{}", db.name);
        manager.stop().await;
        server.stop().await;
        db.cleanup().await;
    }
}
