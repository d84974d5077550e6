//! Plugin-declared objects end to end: real tables on both databases, the same GraphQL
//! conventions as core objects, lifecycle (disable hides, enable shows, purge drops), the
//! migration planner and name clashes.

use base64::Engine as _;
use kith_core::domain::actor::Role;
use kith_core::plugin::manager::Grants;
use kith_core::plugin::start_runtime;
use kith_tests::TestDb;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::util::{Server, admin, code, plugins_config, token, welcome};

/// A manifest for the welcome component (it ignores events it does not know) declaring objects.
pub(crate) fn manifest(id: &str, version: &str, objects: &str) -> String {
    format!(
        "manifest_version = 1\nid = \"{id}\"\nname = \"Objects\"\nversion = \"{version}\"\nsdk_version = \"1.4.0\"\n{objects}"
    )
}

pub(crate) const DONORS: &str = r#"
[[objects]]
name = "fund"
plural = "funds"
description = "Where gifts go."
[[objects.fields]]
name = "name"
type = "text"
required = true
unique = true
[[objects.fields]]
name = "goal"
type = "money"

[[objects]]
name = "gift"
plural = "gifts"
description = "A gift from a donor."
[[objects.fields]]
name = "contactId"
type = "ref"
target = "contact"
required = true
[[objects.fields]]
name = "fundId"
type = "ref"
target = "fund"
[[objects.fields]]
name = "amount"
type = "money"
required = true
[[objects.fields]]
name = "status"
type = "enum"
values = ["PLEDGED", "RECEIVED", "REFUNDED"]
required = true
[[objects.fields]]
name = "receivedOn"
type = "date"
indexed = true
[[objects.fields]]
name = "receiptNumber"
type = "text"
unique = true
[[objects.fields]]
name = "note"
type = "text"
personal = true
[[objects.fields]]
name = "details"
type = "json"
"#;

fn component() -> Vec<u8> {
    welcome().1
}

async fn table_exists(db: &TestDb, table: &str) -> bool {
    let sql = if db.kith.store.conn().get_database_backend() == sea_orm::DbBackend::Postgres {
        format!("SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_name = '{table}'")
    } else {
        format!("SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = '{table}'")
    };
    let row = db
        .kith
        .store
        .conn()
        .query_one_raw(sea_orm::Statement::from_string(db.kith.store.conn().get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap() > 0
}

async fn count_events(db: &TestDb, kind: &str) -> i64 {
    let backend = db.kith.store.conn().get_database_backend();
    let sql = format!("SELECT COUNT(*) AS n FROM event_outbox WHERE kind = '{kind}'");
    let row = db.kith.store.conn().query_one_raw(sea_orm::Statement::from_string(backend, sql)).await.unwrap().unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

fn message(response: &Value) -> String {
    response["errors"][0]["message"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn plugin_objects_live_in_graphql_like_core_objects() {
    for db in TestDb::all().await {
        let server = Server::start_with_body(&db, 1 << 20).await;
        let runtime = start_runtime(&db.kith, &plugins_config()).await.unwrap();
        let admin_token = token(&db, Role::Admin).await;
        let agent = token(&db, Role::Agent).await;
        let viewer = token(&db, Role::Viewer).await;
        let name = db.name;

        let install =
            "mutation($m: String!, $c: String!) { installPlugin(manifest: $m, component: $c) { id enabled } }";
        let c = base64::engine::general_purpose::STANDARD.encode(component());
        let installed =
            server.gql(&admin_token, install, json!({"m": manifest("donors", "1.0.0", DONORS), "c": c})).await;
        assert_eq!(installed["data"]["installPlugin"]["enabled"], false, "{name}: {installed}");
        assert!(table_exists(&db, "p_donors_gift").await, "{name}: tables are made at install");

        // Not in the API until enabled.
        let before = server.gql(&agent, "{ gifts(first: 5) { totalCount } }", json!({})).await;
        assert!(message(&before).contains("gifts"), "{name}: {before}");

        let enabled = server
            .gql(&admin_token, "mutation { enablePlugin(id: \"donors\", grantAll: true) { status } }", json!({}))
            .await;
        assert_eq!(enabled["data"]["enablePlugin"]["status"], "ACTIVE", "{name}: {enabled}");

        let ada = db.create("contact", json!({"firstName": "Ada", "lastName": "Lovelace"})).await.unwrap();
        let fund = server
            .gql(
                &agent,
                "mutation($i: FundCreateInput!) { createFund(input: $i) { id name goal goalCurrency version } }",
                json!({"i": {"name": "Library", "goal": "10000.00", "goalCurrency": "EUR"}}),
            )
            .await;
        let fund_id = fund["data"]["createFund"]["id"].as_str().unwrap_or_else(|| panic!("{name}: {fund}")).to_owned();
        assert_eq!(fund["data"]["createFund"]["goal"], "10000", "{name}: exact decimals");

        let create = "mutation($i: GiftCreateInput!) { createGift(input: $i) { id amount amountCurrency status version contact { firstName } fund { name } } }";
        let mut ids = Vec::new();
        for (amount, status, day, receipt) in [
            ("25.50", "RECEIVED", "2026-01-10", "R-1"),
            ("100.00", "PLEDGED", "2026-02-10", "R-2"),
            ("7.25", "RECEIVED", "2026-03-10", "R-3"),
        ] {
            let gift = server
                .gql(
                    &agent,
                    create,
                    json!({"i": {
                        "contactId": ada.id().to_string(), "fundId": fund_id, "amount": amount, "amountCurrency": "EUR",
                        "status": status, "receivedOn": day, "receiptNumber": receipt, "details": {"via": "bank"}
                    }}),
                )
                .await;
            let node = &gift["data"]["createGift"];
            assert_eq!(node["contact"]["firstName"], "Ada", "{name}: {gift}");
            assert_eq!(node["fund"]["name"], "Library", "{name}: {gift}");
            ids.push(node["id"].as_str().unwrap().to_owned());
        }

        // Filter, order, page; relations both ways.
        let list = server
            .gql(
                &viewer,
                "{ gifts(filter: {status: {eq: RECEIVED}}, orderBy: [{field: amount, direction: DESC}], first: 1) { totalCount edges { node { amount receiptNumber } } pageInfo { hasNextPage endCursor } } }",
                json!({}),
            )
            .await;
        assert_eq!(list["data"]["gifts"]["totalCount"], 2, "{name}: {list}");
        assert_eq!(list["data"]["gifts"]["edges"][0]["node"]["amount"], "25.5", "{name}: {list}");
        assert_eq!(list["data"]["gifts"]["pageInfo"]["hasNextPage"], true);
        let reverse = server
            .gql(
                &viewer,
                "query($id: ID!) { contact(id: $id) { gifts(first: 10) { totalCount } } fund: funds(first: 1) { edges { node { gifts(first: 10) { totalCount } } } } }",
                json!({"id": ada.id().to_string()}),
            )
            .await;
        assert_eq!(reverse["data"]["contact"]["gifts"]["totalCount"], 3, "{name}: {reverse}");
        assert_eq!(reverse["data"]["fund"]["edges"][0]["node"]["gifts"]["totalCount"], 3, "{name}: {reverse}");

        // Validation and roles like any object.
        let wrong_enum = server
            .gql(&agent, create, json!({"i": {"contactId": ada.id().to_string(), "amount": "1", "amountCurrency": "EUR", "status": "LOST"}}))
            .await;
        assert!(wrong_enum["errors"].is_array(), "{name}: an unknown enum value is refused: {wrong_enum}");
        let no_donor = server
            .gql(
                &agent,
                create,
                json!({"i": {"contactId": uuid::Uuid::now_v7().to_string(), "amount": "1", "amountCurrency": "EUR", "status": "PLEDGED"}}),
            )
            .await;
        assert_eq!(code(&no_donor), "BAD_USER_INPUT", "{name}: {no_donor}");
        let bad_currency = server
            .gql(&agent, create, json!({"i": {"contactId": ada.id().to_string(), "amount": "1", "amountCurrency": "XYZ", "status": "PLEDGED"}}))
            .await;
        assert_eq!(code(&bad_currency), "BAD_USER_INPUT", "{name}: {bad_currency}");
        let missing =
            server.gql(&agent, create, json!({"i": {"contactId": ada.id().to_string(), "status": "PLEDGED"}})).await;
        assert!(message(&missing).contains("amount"), "{name}: amount is required: {missing}");
        let duplicate = server
            .gql(
                &agent,
                create,
                json!({"i": {"contactId": ada.id().to_string(), "amount": "1", "amountCurrency": "EUR", "status": "PLEDGED", "receiptNumber": "R-1"}}),
            )
            .await;
        assert_eq!(code(&duplicate), "CONFLICT", "{name}: {duplicate}");
        assert!(message(&duplicate).contains("receiptNumber"), "{name}: {duplicate}");
        let forbidden = server
            .gql(&viewer, create, json!({"i": {"contactId": ada.id().to_string(), "amount": "1", "amountCurrency": "EUR", "status": "PLEDGED"}}))
            .await;
        assert_eq!(code(&forbidden), "FORBIDDEN", "{name}: {forbidden}");

        // Update with optimistic concurrency, delete, restore.
        let update = "mutation($id: ID!, $i: GiftUpdateInput!, $v: Int) { updateGift(id: $id, input: $i, expectedVersion: $v) { status version } }";
        let updated = server.gql(&agent, update, json!({"id": ids[1], "i": {"status": "RECEIVED"}, "v": 1})).await;
        assert_eq!(updated["data"]["updateGift"]["version"], 2, "{name}: {updated}");
        let stale = server.gql(&agent, update, json!({"id": ids[1], "i": {"status": "REFUNDED"}, "v": 1})).await;
        assert_eq!(code(&stale), "CONFLICT", "{name}: {stale}");
        let delete = "mutation($id: ID!) { deleteGift(id: $id) { deletedAt } }";
        let agent_delete = server.gql(&agent, delete, json!({"id": ids[2]})).await;
        assert_eq!(code(&agent_delete), "FORBIDDEN", "{name}: deleting needs MANAGER, as for core objects");
        let deleted = server.gql(&admin_token, delete, json!({"id": ids[2]})).await;
        assert!(deleted["data"]["deleteGift"]["deletedAt"].is_string(), "{name}: {deleted}");
        let restored = server
            .gql(&admin_token, "mutation($id: ID!) { restoreGift(id: $id) { deletedAt } }", json!({"id": ids[2]}))
            .await;
        assert!(restored["data"]["restoreGift"]["deletedAt"].is_null(), "{name}: {restored}");

        // Events and the audit log, like core objects.
        assert_eq!(count_events(&db, "gift.created").await, 3, "{name}");
        assert_eq!(count_events(&db, "gift.updated").await, 1, "{name}");
        let audit = server
            .gql(
                &admin_token,
                "query($id: ID) { auditLog(object: \"gift\", id: $id, first: 50) { action } }",
                json!({"id": ids[1]}),
            )
            .await;
        let actions: Vec<&str> = audit["data"]["auditLog"]
            .as_array()
            .map(|a| a.iter().filter_map(|e| e["action"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(actions.len(), 2, "{name}: created and updated: {audit}");

        // Disable: gone from the API, data kept. Enable: back.
        runtime.disable(&admin(), "donors").await.unwrap();
        let hidden = server.gql(&viewer, "{ gifts(first: 5) { totalCount } }", json!({})).await;
        assert!(message(&hidden).contains("gifts"), "{name}: {hidden}");
        let contact_hidden = server
            .gql(
                &viewer,
                "query($id: ID!) { contact(id: $id) { gifts { totalCount } } }",
                json!({"id": ada.id().to_string()}),
            )
            .await;
        assert!(contact_hidden["errors"].is_array(), "{name}: Contact.gifts goes too: {contact_hidden}");
        runtime.enable(&admin(), "donors", Grants::All).await.unwrap();
        let back = server.gql(&viewer, "{ gifts(first: 5) { totalCount } }", json!({})).await;
        assert_eq!(back["data"]["gifts"]["totalCount"], 3, "{name}: {back}");

        // Uninstall without purge keeps the table; with purge drops it.
        runtime.uninstall(&admin(), "donors", false).await.unwrap();
        assert!(table_exists(&db, "p_donors_gift").await, "{name}");
        let reinstalled = runtime.install(&admin(), &manifest("donors", "1.0.0", DONORS), &component()).await.unwrap();
        runtime.enable(&admin(), &reinstalled.id, Grants::All).await.unwrap();
        let kept = server.gql(&viewer, "{ gifts(first: 5) { totalCount } }", json!({})).await;
        assert_eq!(kept["data"]["gifts"]["totalCount"], 3, "{name}: a reinstall finds its data: {kept}");
        let purge =
            server.gql(&admin_token, "mutation { uninstallPlugin(id: \"donors\", purge: true) }", json!({})).await;
        assert!(purge["errors"].is_null(), "{name}: {purge}");
        assert!(!table_exists(&db, "p_donors_gift").await && !table_exists(&db, "p_donors_fund").await, "{name}");
        runtime.stop().await;
        server.stop().await;
    }
}

#[tokio::test]
async fn object_changes_on_upgrade_are_planned_and_destructive_ones_confirmed() {
    for db in TestDb::all().await {
        let server = Server::start_with_body(&db, 1 << 20).await;
        let runtime = start_runtime(&db.kith, &plugins_config()).await.unwrap();
        let admin_token = token(&db, Role::Admin).await;
        let name = db.name;
        let v1 = r#"
[[objects]]
name = "member"
plural = "members"
[[objects.fields]]
name = "number"
type = "text"
required = true
[[objects.fields]]
name = "points"
type = "integer"
[[objects.fields]]
name = "tier"
type = "enum"
values = ["BRONZE", "SILVER"]
"#;
        runtime.install(&admin(), &manifest("loyalty", "1.0.0", v1), &component()).await.unwrap();
        runtime.enable(&admin(), "loyalty", Grants::All).await.unwrap();
        for (number, points) in [("M1", 10), ("M2", 20)] {
            db.create("member", json!({"number": number, "points": points, "tier": "BRONZE"})).await.unwrap();
        }

        // Additive: a new field, a new enum value, an index. Applies without confirmation.
        let v2 = v1.replace(
            "values = [\"BRONZE\", \"SILVER\"]",
            "values = [\"BRONZE\", \"SILVER\", \"GOLD\"]\nindexed = true",
        ) + "[[objects.fields]]\nname = \"joinedOn\"\ntype = \"date\"\n";
        runtime.upgrade(&admin(), &manifest("loyalty", "1.1.0", &v2), &component(), &[]).await.unwrap();
        let list = server
            .gql(
                &admin_token,
                "{ members(orderBy: [{field: number}]) { edges { node { number points tier joinedOn } } } }",
                json!({}),
            )
            .await;
        assert_eq!(list["data"]["members"]["edges"][1]["node"]["points"], 20, "{name}: data kept: {list}");
        let gold = server
            .gql(&admin_token, "mutation { createMember(input: {number: \"M3\", tier: GOLD, joinedOn: \"2026-11-23\"}) { tier joinedOn } }", json!({}))
            .await;
        assert_eq!(gold["data"]["createMember"]["tier"], "GOLD", "{name}: {gold}");

        // Destructive: `points` dropped and `tier` narrowed. Refused without confirmation, naming both.
        let v3 = v2
            .replace("[[objects.fields]]\nname = \"points\"\ntype = \"integer\"\n", "")
            .replace("\"BRONZE\", \"SILVER\", \"GOLD\"", "\"SILVER\", \"GOLD\"");
        let upgrade = "mutation($m: String!, $c: String!, $ok: Boolean) { upgradePlugin(manifest: $m, component: $c, allowDestructive: $ok) { version } }";
        let c = base64::engine::general_purpose::STANDARD.encode(component());
        let refused = server.gql(&admin_token, upgrade, json!({"m": manifest("loyalty", "2.0.0", &v3), "c": c})).await;
        let text = message(&refused);
        assert!(
            text.contains("member.points") && text.contains("BRONZE") && text.contains("allowDestructive"),
            "{name}: {refused}"
        );
        let unchanged =
            server.gql(&admin_token, "{ members(first: 10) { edges { node { points } } } }", json!({})).await;
        assert!(unchanged["errors"].is_null(), "{name}: nothing changed: {unchanged}");

        let applied = server
            .gql(&admin_token, upgrade, json!({"m": manifest("loyalty", "2.0.0", &v3), "c": c, "ok": true}))
            .await;
        assert_eq!(applied["data"]["upgradePlugin"]["version"], "2.0.0", "{name}: {applied}");
        let after = server
            .gql(
                &admin_token,
                "{ members(orderBy: [{field: number}]) { totalCount edges { node { number } } } }",
                json!({}),
            )
            .await;
        assert_eq!(after["data"]["members"]["totalCount"], 3, "{name}: records stay: {after}");
        let gone = server.gql(&admin_token, "{ members(first: 1) { edges { node { points } } } }", json!({})).await;
        assert!(message(&gone).contains("points"), "{name}: the field is gone: {gone}");

        // A type change drops the values of that field only (confirmed).
        let v4 = v3.replace("name = \"number\"\ntype = \"text\"", "name = \"number\"\ntype = \"integer\"");
        let err = runtime.upgrade(&admin(), &manifest("loyalty", "3.0.0", &v4), &component(), &[]).await.unwrap_err();
        assert!(err.to_string().contains("changes type from text to int"), "{name}: {err}");
        runtime.stop().await;
        server.stop().await;
    }
}

#[tokio::test]
async fn object_name_clashes_are_refused_at_enable() {
    for db in TestDb::all().await {
        let runtime = start_runtime(&db.kith, &plugins_config()).await.unwrap();
        let name = db.name;
        let object = |object: &str, plural: &str| {
            format!(
                "[[objects]]\nname = \"{object}\"\nplural = \"{plural}\"\n[[objects.fields]]\nname = \"label\"\ntype = \"text\"\n"
            )
        };
        let cases = [
            ("core-clash", object("contact", "people"), "`contact` is already used by Kith"),
            ("query-clash", object("search", "searches"), "query `search`"),
            ("type-clash", object("pageInfo", "pageInfos"), "GraphQL type `PageInfo`"),
        ];
        for (id, objects, expected) in cases {
            runtime.install(&admin(), &manifest(id, "1.0.0", &objects), &component()).await.unwrap();
            let err = runtime.enable(&admin(), id, Grants::All).await.unwrap_err().to_string();
            assert!(err.contains(expected), "{name}: {id}: `{err}` should say {expected}");
        }
        // Two plugins may not declare the same object; the first keeps it.
        runtime.install(&admin(), &manifest("first", "1.0.0", &object("badge", "badges")), &component()).await.unwrap();
        runtime.enable(&admin(), "first", Grants::All).await.unwrap();
        runtime
            .install(&admin(), &manifest("second", "1.0.0", &object("badge", "badgeList")), &component())
            .await
            .unwrap();
        let err = runtime.enable(&admin(), "second", Grants::All).await.unwrap_err().to_string();
        assert!(err.contains("plugin `first`"), "{name}: {err}");
        assert!(db.kith.registry().get("badge").is_some_and(|d| d.plugin.as_deref() == Some("first")), "{name}");
        // A reverse relation may not shadow a field: `Contact.company` exists.
        let shadow = "[[objects]]\nname = \"firm\"\nplural = \"email\"\n[[objects.fields]]\nname = \"contactId\"\ntype = \"ref\"\ntarget = \"contact\"\n";
        runtime.install(&admin(), &manifest("shadow", "1.0.0", shadow), &component()).await.unwrap();
        let err = runtime.enable(&admin(), "shadow", Grants::All).await.unwrap_err().to_string();
        assert!(err.contains("Contact.email"), "{name}: {err}");
        runtime.stop().await;
    }
}

/// An object of 100 declared fields (the most a manifest may declare) pages like any other:
/// too wide to come back as one JSON row per record on SQLite, it is read row by row, and its
/// pages read what reads by id read, on both databases.
#[tokio::test]
async fn the_widest_plugin_object_pages_like_a_narrow_one() {
    use kith_core::domain::filter::{Filter, OrderBy};
    use kith_core::store::records::{ListQuery, get, list};
    for db in TestDb::all().await {
        let runtime = start_runtime(&db.kith, &plugins_config()).await.unwrap();
        let mut objects = String::from("[[objects]]\nname = \"survey\"\nplural = \"surveys\"\n");
        for i in 0..100 {
            objects.push_str(&format!("[[objects.fields]]\nname = \"answer{i}\"\ntype = \"text\"\n"));
        }
        runtime.install(&admin(), &manifest("surveys", "1.0.0", &objects), &component()).await.unwrap();
        runtime.enable(&admin(), "surveys", Grants::All).await.unwrap();
        for n in 0..3 {
            let mut input = serde_json::Map::new();
            for i in (0..100).filter(|i| (i + n) % 3 != 0) {
                input.insert(format!("answer{i}"), json!(format!("survey {n} answer {i} \"quoted\"")));
            }
            db.create("survey", Value::Object(input)).await.unwrap();
        }
        let def = db.kith.object("survey").unwrap();
        assert!(def.fields.len() > 100, "{}: {} columns", db.name, def.fields.len());
        let conn = db.kith.store.conn();
        let query = ListQuery { order: vec![OrderBy::asc("answer1")], ..ListQuery::first(Filter::all(), 2) };
        let page = list(conn, &def, &query).await.unwrap();
        assert_eq!(page.records.len(), 2, "{}", db.name);
        assert!(page.has_next, "{}", db.name);
        for (_, record) in &page.records {
            assert_eq!(record, &get(conn, &def, record.id()).await.unwrap().unwrap(), "{}", db.name);
        }
        assert_eq!(page.records[0].1.get("answer1").to_string(), "survey 0 answer 1 \"quoted\"", "{}", db.name);
        assert_eq!(page.records[1].1.get("answer1").to_string(), "survey 1 answer 1 \"quoted\"", "{}", db.name);
        runtime.stop().await;
        db.cleanup().await;
    }
}
