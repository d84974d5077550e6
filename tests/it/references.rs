//! Plugin records follow their person, through GraphQL on SQLite and PostgreSQL: merging two
//! contacts moves the records of enabled and disabled plugins to the one kept, with audit
//! entries; deleting a contact applies each reference's `on_delete` (`restrict`, `set_null`,
//! `cascade`, `keep`), also in a disabled plugin's tables, and restoring it brings back exactly
//! what its delete cascaded to; the bundled donors plugin counts a merged donor's gifts for the
//! survivor.

use kith_core::domain::actor::Role;
use kith_core::plugin::manager::Grants;
use kith_core::plugin::start_runtime;
use kith_tests::TestDb;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::plugin_objects::manifest;
use crate::util::{Server, admin, code, donors_runtime, grants_pipeline, plugins_config, token, welcome};

/// Records an enabled plugin keeps about people.
const GIFTS: &str = r#"
[[objects]]
name = "gift"
plural = "gifts"
[[objects.fields]]
name = "note"
type = "text"
[[objects.fields]]
name = "contactId"
type = "ref"
target = "contact"
required = true
"#;

/// Records of a plugin that will be disabled when the merge happens.
const PLEDGES: &str = r#"
[[objects]]
name = "pledge"
plural = "pledges"
[[objects.fields]]
name = "note"
type = "text"
[[objects.fields]]
name = "contactId"
type = "ref"
target = "contact"
"#;

/// One object per `on_delete` policy, and a cascade two levels deep.
const POLICIES: &str = r#"
[[objects]]
name = "hold"
plural = "holds"
[[objects.fields]]
name = "note"
type = "text"
[[objects.fields]]
name = "contactId"
type = "ref"
target = "contact"
on_delete = "restrict"

[[objects]]
name = "claim"
plural = "claims"
[[objects.fields]]
name = "note"
type = "text"
[[objects.fields]]
name = "contactId"
type = "ref"
target = "contact"
on_delete = "set_null"

[[objects]]
name = "entry"
plural = "entries"
[[objects.fields]]
name = "note"
type = "text"
[[objects.fields]]
name = "contactId"
type = "ref"
target = "contact"
required = true
on_delete = "cascade"

[[objects]]
name = "entryLine"
plural = "entryLines"
[[objects.fields]]
name = "note"
type = "text"
[[objects.fields]]
name = "entryId"
type = "ref"
target = "entry"
required = true
on_delete = "cascade"

[[objects]]
name = "memo"
plural = "memos"
[[objects.fields]]
name = "note"
type = "text"
[[objects.fields]]
name = "contactId"
type = "ref"
target = "contact"
"#;

/// The same policies in a plugin that is disabled when the contact is deleted.
const DORMANT_POLICIES: &str = r#"
[[objects]]
name = "offHold"
plural = "offHolds"
[[objects.fields]]
name = "note"
type = "text"
[[objects.fields]]
name = "contactId"
type = "ref"
target = "contact"
on_delete = "restrict"

[[objects]]
name = "offEntry"
plural = "offEntries"
[[objects.fields]]
name = "note"
type = "text"
[[objects.fields]]
name = "contactId"
type = "ref"
target = "contact"
on_delete = "cascade"
"#;

fn data<'a>(response: &'a Value, field: &str) -> &'a Value {
    assert!(response["errors"].is_null(), "{response}");
    &response["data"][field]
}

fn message(response: &Value) -> String {
    response["errors"][0]["message"].as_str().unwrap_or_default().to_owned()
}

/// `Gift` for `gift`.
fn type_name(object: &str) -> String {
    let mut name = object.to_owned();
    name[..1].make_ascii_uppercase();
    name
}

/// Creates a record of `object` through GraphQL: its id.
async fn create(server: &Server, token: &str, object: &str, input: Value) -> String {
    let ty = type_name(object);
    let query = format!("mutation($i: {ty}CreateInput!) {{ create{ty}(input: $i) {{ id }} }}");
    let r = server.gql(token, &query, json!({"i": input})).await;
    data(&r, &format!("create{ty}"))["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned()
}

async fn contact(server: &Server, token: &str, first: &str) -> String {
    create(server, token, "contact", json!({"firstName": first, "lastName": "Follows"})).await
}

/// Deletes or restores (`verb`) a record of `object` through GraphQL: the answer.
async fn act(server: &Server, token: &str, verb: &str, object: &str, id: &str) -> Value {
    let query = format!("mutation($id: ID!) {{ {verb}{}(id: $id) {{ id deletedAt }} }}", type_name(object));
    server.gql(token, &query, json!({"id": id})).await
}

/// A live record of `object` (`null` when deleted or absent): its reference, version and note.
async fn read(server: &Server, token: &str, object: &str, reference: &str, id: &str) -> Value {
    let query = format!("query($id: ID!) {{ {object}(id: $id) {{ {reference} version note }} }}");
    let r = server.gql(token, &query, json!({"id": id})).await;
    data(&r, object).clone()
}

/// The audit entries of one record, newest first: (action, changes).
async fn audit(server: &Server, token: &str, object: &str, id: &str) -> Vec<(String, Value)> {
    let r = server
        .gql(
            token,
            "query($o: String!, $id: ID) { auditLog(object: $o, id: $id, first: 50) { action changes } }",
            json!({"o": object, "id": id}),
        )
        .await;
    data(&r, "auditLog")
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap().to_owned(), e["changes"].clone()))
        .collect()
}

async fn count_events(db: &TestDb, kind: &str, id: &str) -> i64 {
    let backend = db.kith.store.conn().get_database_backend();
    let id = if backend == sea_orm::DbBackend::Postgres { format!("'{id}'::uuid") } else { format!("'{id}'") };
    let sql = format!("SELECT COUNT(*) AS n FROM event_outbox WHERE kind = '{kind}' AND record_id = {id}");
    let row = db.kith.store.conn().query_one_raw(sea_orm::Statement::from_string(backend, sql)).await.unwrap().unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

#[tokio::test]
async fn a_merge_moves_the_records_of_enabled_and_disabled_plugins() {
    for db in TestDb::all().await {
        let name = db.name;
        let server = Server::start_with_body(&db, 1 << 20).await;
        let runtime = start_runtime(&db.kith, &plugins_config()).await.unwrap();
        let component = welcome().1;
        for (id, objects) in [("gifts", GIFTS), ("pledges", PLEDGES)] {
            runtime.install(&admin(), &manifest(id, "1.0.0", objects), &component).await.unwrap();
            runtime.enable(&admin(), id, Grants::All).await.unwrap();
        }
        let agent = token(&db, Role::Agent).await;
        let manager = token(&db, Role::Manager).await;

        let keep = contact(&server, &agent, "Kept").await;
        let merge = contact(&server, &agent, "Merged").await;
        let own = create(&server, &agent, "gift", json!({"contactId": keep, "note": "own"})).await;
        let mut moved = Vec::new();
        for note in ["first", "second"] {
            moved.push(create(&server, &agent, "gift", json!({"contactId": merge, "note": note})).await);
        }
        // A deleted gift moves too: restored, it belongs to the survivor.
        let deleted = create(&server, &agent, "gift", json!({"contactId": merge, "note": "deleted"})).await;
        assert!(act(&server, &manager, "delete", "gift", &deleted).await["errors"].is_null(), "{name}");
        let pledge = create(&server, &agent, "pledge", json!({"contactId": merge, "note": "dormant"})).await;
        let (pipeline, stages) = grants_pipeline(&db).await;
        let deal = create(
            &server,
            &agent,
            "deal",
            json!({"title": "D", "pipelineId": pipeline, "stageId": stages[0], "contactId": merge}),
        )
        .await;

        // The pledges plugin is off when the merge happens: its table stays.
        runtime.disable(&admin(), "pledges").await.unwrap();
        let hidden = server.gql(&agent, "{ pledges(first: 5) { totalCount } }", json!({})).await;
        assert!(message(&hidden).contains("pledges"), "{name}: {hidden}");

        let merged = server
            .gql(
                &manager,
                "mutation($k: ID!, $m: ID!) { mergeContacts(keepId: $k, mergeId: $m) { id gifts(first: 10) { totalCount edges { node { note } } } } }",
                json!({"k": keep, "m": merge}),
            )
            .await;
        let gifts = &data(&merged, "mergeContacts")["gifts"];
        assert_eq!(gifts["totalCount"], 3, "{name}: the survivor sees the merged contact's gifts: {merged}");
        for id in &moved {
            let gift = read(&server, &agent, "gift", "contactId", id).await;
            assert_eq!(
                (gift["contactId"].as_str(), gift["version"].as_i64()),
                (Some(keep.as_str()), Some(2)),
                "{name}"
            );
            // Audited and announced as any update.
            let entries = audit(&server, &manager, "gift", id).await;
            assert_eq!(entries[0].0, "update", "{name}: {entries:?}");
            assert_eq!(entries[0].1["contactId"], json!({"before": merge, "after": keep}), "{name}: {entries:?}");
            assert_eq!(count_events(&db, "gift.updated", id).await, 1, "{name}");
        }
        assert_eq!(read(&server, &agent, "gift", "contactId", &own).await["version"], 1, "{name}: untouched");
        let restored = act(&server, &manager, "restore", "gift", &deleted).await;
        assert!(restored["errors"].is_null(), "{name}: {restored}");
        assert_eq!(read(&server, &agent, "gift", "contactId", &deleted).await["contactId"], keep.as_str(), "{name}");
        let deal = server.gql(&agent, "query($id: ID!) { deal(id: $id) { contactId } }", json!({"id": deal})).await;
        assert_eq!(data(&deal, "deal")["contactId"], keep.as_str(), "{name}: core references move as before");

        // The disabled plugin's record moved in the same transaction: audited, no event (no
        // plugin listens), seen once the plugin is back.
        let entries = audit(&server, &manager, "pledge", &pledge).await;
        assert_eq!(entries[0].0, "update", "{name}: {entries:?}");
        assert_eq!(entries[0].1["contactId"], json!({"before": merge, "after": keep}), "{name}: {entries:?}");
        assert_eq!(count_events(&db, "pledge.updated", &pledge).await, 0, "{name}");
        let summary = audit(&server, &manager, "contact", &keep).await;
        let merge_entry = summary.iter().find(|(action, _)| action == "merge").unwrap_or_else(|| panic!("{summary:?}"));
        assert_eq!(
            merge_entry.1["moved"],
            json!({"deal": 1, "ticket": 0, "activity": 0, "consent": 0, "gift": 3, "pledge": 1}),
            "{name}: counted by object"
        );
        runtime.enable(&admin(), "pledges", Grants::All).await.unwrap();
        let pledge = read(&server, &agent, "pledge", "contactId", &pledge).await;
        assert_eq!(
            (pledge["contactId"].as_str(), pledge["version"].as_i64()),
            (Some(keep.as_str()), Some(2)),
            "{name}"
        );
        let survivor = server
            .gql(&agent, "query($id: ID!) { contact(id: $id) { pledges { totalCount } } }", json!({"id": keep}))
            .await;
        assert_eq!(data(&survivor, "contact")["pledges"]["totalCount"], 1, "{name}: {survivor}");
        runtime.stop().await;
        server.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn deleting_a_contact_follows_each_references_policy_and_restoring_undoes_the_cascade() {
    for db in TestDb::all().await {
        let name = db.name;
        let server = Server::start_with_body(&db, 1 << 20).await;
        let runtime = start_runtime(&db.kith, &plugins_config()).await.unwrap();
        runtime.install(&admin(), &manifest("policies", "1.0.0", POLICIES), &welcome().1).await.unwrap();
        runtime.enable(&admin(), "policies", Grants::All).await.unwrap();
        let agent = token(&db, Role::Agent).await;
        let manager = token(&db, Role::Manager).await;

        // restrict: refused, naming the object and how many; nothing changes.
        let held = contact(&server, &agent, "Held").await;
        let hold = create(&server, &agent, "hold", json!({"contactId": held, "note": "h"})).await;
        create(&server, &agent, "hold", json!({"contactId": held, "note": "h2"})).await;
        let refused = act(&server, &manager, "delete", "contact", &held).await;
        assert_eq!(code(&refused), "CONFLICT", "{name}: {refused}");
        let text = message(&refused);
        assert!(
            text.contains("2 hold") && text.contains("hold.contactId") && text.contains("restrict"),
            "{name}: {text}"
        );
        let still = server
            .gql(
                &agent,
                "query($id: ID!) { contact(id: $id) { version deletedAt holds { totalCount } } }",
                json!({"id": held}),
            )
            .await;
        assert_eq!(
            data(&still, "contact"),
            &json!({"version": 1, "deletedAt": null, "holds": {"totalCount": 2}}),
            "{name}"
        );
        assert_eq!(read(&server, &agent, "hold", "contactId", &hold).await["version"], 1, "{name}");
        let entries = audit(&server, &manager, "contact", &held).await;
        assert_eq!(entries.iter().map(|(a, _)| a.as_str()).collect::<Vec<_>>(), ["create"], "{name}");

        // set_null, cascade (two levels) and keep.
        let ada = contact(&server, &agent, "Ada").await;
        let claim = create(&server, &agent, "claim", json!({"contactId": ada, "note": "c"})).await;
        let memo = create(&server, &agent, "memo", json!({"contactId": ada, "note": "m"})).await;
        let earlier = create(&server, &agent, "entry", json!({"contactId": ada, "note": "deleted on its own"})).await;
        assert!(act(&server, &manager, "delete", "entry", &earlier).await["errors"].is_null(), "{name}");
        let entries: Vec<String> = [
            create(&server, &agent, "entry", json!({"contactId": ada, "note": "e1"})).await,
            create(&server, &agent, "entry", json!({"contactId": ada, "note": "e2"})).await,
        ]
        .into();
        let line = create(&server, &agent, "entryLine", json!({"entryId": entries[0], "note": "l"})).await;
        let other = contact(&server, &agent, "Other").await;
        let bystander = create(&server, &agent, "entry", json!({"contactId": other, "note": "not Ada's"})).await;

        let deleted = act(&server, &manager, "delete", "contact", &ada).await;
        assert!(deleted["errors"].is_null(), "{name}: {deleted}");
        let log = audit(&server, &manager, "contact", &ada).await;
        let deleted_at = log[0].1["deletedAt"]["after"].clone();
        assert!(deleted_at.is_string(), "{name}: {log:?}");
        let claim_now = read(&server, &agent, "claim", "contactId", &claim).await;
        assert_eq!((claim_now["contactId"].clone(), claim_now["version"].clone()), (Value::Null, json!(2)), "{name}");
        assert_eq!(audit(&server, &manager, "claim", &claim).await[0].1["contactId"]["after"], Value::Null, "{name}");
        assert_eq!(count_events(&db, "claim.updated", &claim).await, 1, "{name}");
        assert_eq!(read(&server, &agent, "memo", "contactId", &memo).await["contactId"], ada.as_str(), "{name}: keep");
        for id in &entries {
            assert_eq!(read(&server, &agent, "entry", "contactId", id).await, Value::Null, "{name}: cascaded");
            let log = audit(&server, &manager, "entry", id).await;
            assert_eq!(log[0].0, "delete", "{name}");
            assert_eq!(log[0].1["deletedAt"]["after"], deleted_at, "{name}: at the contact's instant");
            assert_eq!(count_events(&db, "entry.deleted", id).await, 1, "{name}");
        }
        assert_eq!(read(&server, &agent, "entryLine", "entryId", &line).await, Value::Null, "{name}: two levels");
        assert_eq!(read(&server, &agent, "entry", "contactId", &bystander).await["version"], 1, "{name}");

        let restored = act(&server, &manager, "restore", "contact", &ada).await;
        assert!(restored["errors"].is_null(), "{name}: {restored}");
        for id in &entries {
            let entry = read(&server, &agent, "entry", "contactId", id).await;
            assert_eq!(
                (entry["contactId"].as_str(), entry["version"].as_i64()),
                (Some(ada.as_str()), Some(3)),
                "{name}"
            );
            assert_eq!(audit(&server, &manager, "entry", id).await[0].0, "restore", "{name}");
            assert_eq!(count_events(&db, "entry.restored", id).await, 1, "{name}");
        }
        assert_eq!(
            read(&server, &agent, "entryLine", "entryId", &line).await["entryId"],
            entries[0].as_str(),
            "{name}"
        );
        assert_eq!(
            read(&server, &agent, "entry", "contactId", &earlier).await,
            Value::Null,
            "{name}: deleted on its own, stays"
        );
        assert_eq!(
            read(&server, &agent, "claim", "contactId", &claim).await["contactId"],
            Value::Null,
            "{name}: a cleared reference stays cleared"
        );
        let page = server
            .gql(&agent, "query($id: ID!) { contact(id: $id) { entries { totalCount } } }", json!({"id": ada}))
            .await;
        assert_eq!(data(&page, "contact")["entries"]["totalCount"], 2, "{name}");
        runtime.stop().await;
        server.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn a_disabled_plugins_references_follow_deletes_too() {
    for db in TestDb::all().await {
        let name = db.name;
        let server = Server::start_with_body(&db, 1 << 20).await;
        let runtime = start_runtime(&db.kith, &plugins_config()).await.unwrap();
        runtime.install(&admin(), &manifest("dormant", "1.0.0", DORMANT_POLICIES), &welcome().1).await.unwrap();
        runtime.enable(&admin(), "dormant", Grants::All).await.unwrap();
        let agent = token(&db, Role::Agent).await;
        let manager = token(&db, Role::Manager).await;

        let held = contact(&server, &agent, "Held").await;
        let hold = create(&server, &agent, "offHold", json!({"contactId": held})).await;
        let ada = contact(&server, &agent, "Ada").await;
        let earlier = create(&server, &agent, "offEntry", json!({"contactId": ada, "note": "on its own"})).await;
        assert!(act(&server, &manager, "delete", "offEntry", &earlier).await["errors"].is_null(), "{name}");
        let cascaded = [
            create(&server, &agent, "offEntry", json!({"contactId": ada, "note": "1"})).await,
            create(&server, &agent, "offEntry", json!({"contactId": ada, "note": "2"})).await,
        ];
        runtime.disable(&admin(), "dormant").await.unwrap();

        let refused = act(&server, &manager, "delete", "contact", &held).await;
        assert_eq!(code(&refused), "CONFLICT", "{name}: {refused}");
        assert!(message(&refused).contains("1 offHold (plugin `dormant`, disabled)"), "{name}: {refused}");

        assert!(act(&server, &manager, "delete", "contact", &ada).await["errors"].is_null(), "{name}");
        runtime.enable(&admin(), "dormant", Grants::All).await.unwrap();
        for id in &cascaded {
            assert_eq!(read(&server, &agent, "offEntry", "contactId", id).await, Value::Null, "{name}: cascaded");
            assert_eq!(audit(&server, &manager, "offEntry", id).await[0].0, "delete", "{name}");
            assert_eq!(count_events(&db, "offEntry.deleted", id).await, 0, "{name}: no event for a dormant object");
        }
        assert_eq!(read(&server, &agent, "offHold", "contactId", &hold).await["version"], 1, "{name}");

        runtime.disable(&admin(), "dormant").await.unwrap();
        assert!(act(&server, &manager, "restore", "contact", &ada).await["errors"].is_null(), "{name}");
        runtime.enable(&admin(), "dormant", Grants::All).await.unwrap();
        for id in &cascaded {
            let entry = read(&server, &agent, "offEntry", "contactId", id).await;
            assert_eq!(
                (entry["contactId"].as_str(), entry["version"].as_i64()),
                (Some(ada.as_str()), Some(3)),
                "{name}"
            );
        }
        assert_eq!(read(&server, &agent, "offEntry", "contactId", &earlier).await, Value::Null, "{name}");
        runtime.stop().await;
        server.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn a_merged_donors_gifts_count_for_the_survivor() {
    for db in TestDb::all().await {
        let name = db.name;
        let server = Server::start_with_body(&db, 1 << 20).await;
        let runtime = donors_runtime(&db).await;
        let agent = token(&db, Role::Agent).await;
        let manager = token(&db, Role::Manager).await;
        let keep = contact(&server, &agent, "Ada").await;
        let merge = contact(&server, &agent, "Ada L.").await;
        let record = "mutation($c: ID, $a: Decimal!) { recordDonation(contactId: $c, amount: $a) }";
        for (who, amount) in [(&keep, "100"), (&merge, "50"), (&merge, "25")] {
            let r = server.gql(&agent, record, json!({"c": who, "a": amount})).await;
            assert!(r["errors"].is_null(), "{name}: {r}");
        }
        let summary = "query($id: ID!) { contact(id: $id) { donorSummary { lifetimeGiving giftCount } } }";
        let before = server.gql(&agent, summary, json!({"id": keep})).await;
        assert_eq!(data(&before, "contact")["donorSummary"]["giftCount"], 1, "{name}: {before}");

        // Both in a household: a contact is in at most one, so the merge says which to end.
        let household = create(&server, &agent, "household", json!({"name": "Lovelaces"})).await;
        let mut members = Vec::new();
        for who in [&keep, &merge] {
            members.push(
                create(&server, &agent, "householdMember", json!({"householdId": household, "contactId": who})).await,
            );
        }
        let merging = "mutation($k: ID!, $m: ID!) { mergeContacts(keepId: $k, mergeId: $m) { id } }";
        let refused = server.gql(&manager, merging, json!({"k": keep, "m": merge})).await;
        assert_eq!(code(&refused), "CONFLICT", "{name}: {refused}");
        assert!(message(&refused).contains("householdMember.contactId"), "{name}: {refused}");
        assert_eq!(
            data(&server.gql(&agent, summary, json!({"id": merge})).await, "contact")["donorSummary"]["giftCount"],
            2,
            "{name}: nothing moved"
        );
        assert!(act(&server, &manager, "delete", "householdMember", &members[1]).await["errors"].is_null(), "{name}");

        let merged = server.gql(&manager, merging, json!({"k": keep, "m": merge})).await;
        assert!(merged["errors"].is_null(), "{name}: {merged}");
        let after = server.gql(&agent, summary, json!({"id": keep})).await;
        let s = &data(&after, "contact")["donorSummary"];
        assert_eq!((s["giftCount"].as_i64(), s["lifetimeGiving"].as_str()), (Some(3), Some("175")), "{name}: {after}");
        runtime.stop().await;
        server.stop().await;
        db.cleanup().await;
    }
}
