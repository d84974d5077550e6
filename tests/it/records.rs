//! Generic record rules on both databases: validation, uniqueness, versions, soft delete,
//! custom fields, tags, filters, pagination, and the audit log and outbox written with every change.

use kith_core::domain::DomainError;
use kith_core::domain::custom_field::CustomFieldDef;
use kith_core::domain::filter::{Filter, OrderBy};
use kith_core::service::records;
use kith_core::store::records::{ListQuery, PageRequest, count, list};
use kith_core::store::{audit, custom_fields, outbox, tags};
use kith_tests::{TestDb, domain_err};
use serde_json::json;

use crate::util::{query_plan, query_plan_with};

#[tokio::test]
async fn contacts_are_validated_and_unique_by_email_ignoring_case() {
    for db in TestDb::all().await {
        let ada = db.create("contact", json!({"firstName": "Ada", "email": "Ada@Example.org"})).await.unwrap();
        assert_eq!(ada.get("lifecycleStage").as_text(), Some("LEAD"), "{}: default stage", db.name);
        assert_eq!(ada.get("version").as_int(), Some(1));

        let dup = domain_err(db.create("contact", json!({"lastName": "Other", "email": "ada@example.ORG"})).await);
        assert!(matches!(&dup, DomainError::Conflict(m) if m.contains("e-mail")), "{}: {dup}", db.name);

        for (input, field) in [
            (json!({"firstName": "X", "email": "not-an-email"}), "email"),
            (json!({"firstName": "X", "lifecycleStage": "ALIEN"}), "lifecycleStage"),
            (json!({"firstName": "X", "birthday": "2999-01-01"}), "birthday"),
            (json!({"firstName": "X", "version": 3}), "version"),
            (json!({"firstName": "X", "nickname": "x"}), "nickname"),
            (json!({"phone": "123"}), "firstName"),
            (json!({"firstName": "X", "companyId": "01890000-0000-7000-8000-000000000000"}), "companyId"),
            (json!({"firstName": 12}), "firstName"),
        ] {
            match domain_err(db.create("contact", input.clone()).await) {
                DomainError::Validation { field: got, .. } => assert_eq!(got, field, "{}: {input}", db.name),
                other => panic!("{}: {input}: {other}", db.name),
            }
        }
        // Nothing half-written: one contact, one create audit entry, one event.
        assert_eq!(db.count_rows("contact").await, 1, "{}", db.name);
        assert_eq!(db.count_rows("audit_log").await, 1, "{}", db.name);
        assert_eq!(db.count_rows("event_outbox").await, 1, "{}", db.name);
        db.cleanup().await;
    }
}

#[tokio::test]
async fn stale_versions_are_conflicts_and_updates_bump_the_version() {
    for db in TestDb::all().await {
        let c = db.create("contact", json!({"firstName": "Grace"})).await.unwrap();
        let v2 = db.update("contact", c.id(), json!({"jobTitle": "Admiral"}), Some(1)).await.unwrap();
        assert_eq!(v2.get("version").as_int(), Some(2));
        let stale = domain_err(db.update("contact", c.id(), json!({"jobTitle": "Captain"}), Some(1)).await);
        assert!(matches!(&stale, DomainError::Conflict(m) if m.contains("stale version")), "{}: {stale}", db.name);
        // A no-op update writes nothing and keeps the version.
        let same = db.update("contact", c.id(), json!({"jobTitle": "Admiral"}), Some(2)).await.unwrap();
        assert_eq!(same.get("version").as_int(), Some(2));

        let entries = audit::list(db.kith.store.conn(), "contact", Some(c.id()), 10).await.unwrap();
        assert_eq!(entries.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["update", "create"], "{}", db.name);
        assert_eq!(entries[0].changes["jobTitle"], json!({"before": null, "after": "Admiral"}));
        assert_eq!(entries[0].actor_kind, "system");
        let events = outbox::read(db.kith.store.conn(), 0, 100).await.unwrap();
        assert_eq!(events.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(), ["contact.created", "contact.updated"]);
        assert_eq!(events[1].payload["changes"]["jobTitle"]["after"], "Admiral");
        db.cleanup().await;
    }
}

#[tokio::test]
async fn soft_delete_restore_and_unique_values_on_restore() {
    for db in TestDb::all().await {
        let a = db.create("company", json!({"name": "Acme", "domain": "https://www.ACME.example/"})).await.unwrap();
        assert_eq!(a.get("domain").as_text(), Some("acme.example"), "domains are normalised");
        let tx = db.tx().await;
        records::delete(&tx, &db.kith.registry(), "company", a.id()).await.unwrap();
        tx.commit().await.unwrap();
        let def = db.kith.object("company").unwrap();
        assert_eq!(count(db.kith.store.conn(), &def, &Filter::all(), false).await.unwrap(), 0);
        assert_eq!(count(db.kith.store.conn(), &def, &Filter::all(), true).await.unwrap(), 1);
        // A deleted company no longer holds its domain...
        let b = db.create("company", json!({"name": "Acme 2", "domain": "acme.example"})).await.unwrap();
        // ...so restoring the first one is a conflict, and changes nothing.
        let tx = db.tx().await;
        let err = domain_err(records::restore(&tx, &db.kith.registry(), "company", a.id()).await);
        assert!(matches!(err, DomainError::Conflict(_)), "{}: {err}", db.name);
        drop(tx);
        let tx = db.tx().await;
        records::delete(&tx, &db.kith.registry(), "company", b.id()).await.unwrap();
        let restored = records::restore(&tx, &db.kith.registry(), "company", a.id()).await.unwrap();
        tx.commit().await.unwrap();
        assert!(restored.get("deletedAt").is_null());
        assert_eq!(restored.get("version").as_int(), Some(3));
        let kinds: Vec<String> =
            outbox::read(db.kith.store.conn(), 0, 100).await.unwrap().into_iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            ["company.created", "company.deleted", "company.created", "company.deleted", "company.restored"]
        );
        db.cleanup().await;
    }
}

#[tokio::test]
async fn custom_fields_are_validated_merged_and_filterable() {
    for db in TestDb::all().await {
        let tx = db.tx().await;
        for (key, kind, options, required) in [
            ("tier", "SELECT", vec!["gold", "silver"], false),
            ("score", "NUMBER", vec![], false),
            ("website", "URL", vec![], false),
            ("since", "DATE", vec![], false),
        ] {
            let def = CustomFieldDef {
                object: "contact".into(),
                key: key.into(),
                label: key.into(),
                kind: kind.into(),
                required,
                options: options.into_iter().map(String::from).collect(),
            };
            records::define_custom_field(&tx, &db.kith.registry(), &def).await.unwrap();
        }
        tx.commit().await.unwrap();
        assert_eq!(
            outbox::read(db.kith.store.conn(), 0, 10)
                .await
                .unwrap()
                .iter()
                .filter(|e| e.kind == "customField.defined")
                .count(),
            4
        );
        let tx = db.tx().await;
        let duplicate = CustomFieldDef {
            object: "contact".into(),
            key: "tier".into(),
            label: "Tier again".into(),
            kind: "TEXT".into(),
            required: false,
            options: vec![],
        };
        let err = domain_err(records::define_custom_field(&tx, &db.kith.registry(), &duplicate).await);
        assert!(matches!(err, DomainError::Conflict(_)), "{}: {err}", db.name);
        drop(tx);
        let a = db
            .create("contact", json!({"firstName": "A", "customFields": {"tier": "gold", "score": 7}}))
            .await
            .unwrap();
        db.create(
            "contact",
            json!({"firstName": "B", "customFields": {"tier": "silver", "score": 3.5, "since": "2020-01-31"}}),
        )
        .await
        .unwrap();
        for (bad, field) in [
            (json!({"tier": "bronze"}), "customFields.tier"),
            (json!({"score": "many"}), "customFields.score"),
            (json!({"website": "ftp://x"}), "customFields.website"),
            (json!({"nope": 1}), "customFields.nope"),
        ] {
            match domain_err(db.create("contact", json!({"firstName": "C", "customFields": bad.clone()})).await) {
                DomainError::Validation { field: got, .. } => assert_eq!(got, field, "{}: {bad}", db.name),
                other => panic!("{other}"),
            }
        }
        // Update merges: untouched keys stay, null removes.
        let updated = db
            .update("contact", a.id(), json!({"customFields": {"score": null, "since": "2021-05-01"}}), None)
            .await
            .unwrap();
        assert_eq!(updated.to_json()["customFields"], json!({"tier": "gold", "since": "2021-05-01"}), "{}", db.name);

        let def = db.kith.object("contact").unwrap();
        let custom = custom_fields::for_object(db.kith.store.conn(), "contact").await.unwrap();
        let check = |filter: serde_json::Value, expected: Vec<&'static str>| {
            let def = def.clone();
            let custom = custom.clone();
            let db = &db;
            async move {
                let filter = Filter::from_json(&def, &custom, &filter).unwrap();
                let page = list(
                    db.kith.store.conn(),
                    &def,
                    &ListQuery {
                        filter,
                        order: vec![OrderBy::asc("firstName")],
                        page: PageRequest::Forward { first: 10, after: None },
                        include_deleted: false,
                    },
                )
                .await
                .unwrap();
                let names: Vec<String> = page.records.iter().map(|(_, r)| r.get("firstName").to_string()).collect();
                assert_eq!(names, expected, "{}", db.name);
            }
        };
        check(json!({"customFields": {"tier": {"eq": "silver"}}}), vec!["B"]).await;
        check(json!({"customFields": {"score": {"gt": 3}}}), vec!["B"]).await;
        check(json!({"customFields": {"since": {"gte": "2021-01-01"}}}), vec!["A"]).await;
        check(json!({"customFields": {"score": {"isNull": true}}}), vec!["A"]).await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn filters_sorting_and_keyset_pagination() {
    for db in TestDb::all().await {
        let names = ["Ada", "ada", "Bea", "Cyd", "Dan", "Eve", "Fay"];
        for (i, name) in names.iter().enumerate() {
            let mut input = json!({"firstName": name, "lastName": format!("L{}", i % 3), "email": format!("{}{i}@x.org", name.to_lowercase())});
            if i % 2 == 0 {
                input["addressCity"] = json!("Paris");
            }
            let tags: Vec<&str> = if i < 2 { vec!["vip"] } else { vec![] };
            input["tags"] = json!(tags);
            db.create("contact", input).await.unwrap();
        }
        let def = db.kith.object("contact").unwrap();
        let conn = db.kith.store.conn();
        let names_of = |page: &kith_core::store::records::Page| {
            page.records.iter().map(|(_, r)| r.get("firstName").to_string()).collect::<Vec<_>>()
        };
        let run = |filter: serde_json::Value, order: Vec<OrderBy>, page: PageRequest| {
            let def = def.clone();
            async move {
                let filter = Filter::from_json(&def, &[], &filter).unwrap();
                list(conn, &def, &ListQuery { filter, order, page, include_deleted: false }).await.unwrap()
            }
        };
        let all = PageRequest::Forward { first: 50, after: None };
        assert_eq!(
            names_of(&run(json!({"firstName": {"like": "a%"}}), vec![], all.clone()).await),
            ["ada"],
            "{}: like is case-sensitive",
            db.name
        );
        assert_eq!(
            names_of(&run(json!({"firstName": {"ilike": "a%"}}), vec![], all.clone()).await),
            ["Ada", "ada"],
            "{}",
            db.name
        );
        assert_eq!(names_of(&run(json!({"firstName": {"startsWith": "b"}}), vec![], all.clone()).await), ["Bea"]);
        assert_eq!(
            names_of(&run(json!({"email": {"eq": "EVE5@X.ORG"}}), vec![], all.clone()).await),
            ["Eve"],
            "{}: e-mail ignores case",
            db.name
        );
        assert_eq!(names_of(&run(json!({"tags": {"eq": "VIP"}}), vec![], all.clone()).await), ["Ada", "ada"]);
        assert_eq!(
            names_of(&run(json!({"or": [{"firstName": {"in": ["Cyd", "Dan"]}}, {"not": {"addressCity": {"isNull": true}}}], "firstName": {"neq": "Ada"}}), vec![OrderBy::asc("firstName")], all.clone()).await),
            ["Bea", "Cyd", "Dan", "Fay"],
            "{}", db.name
        );

        // Pages of 2 ordered by city then id walk every record once, forwards and back (pages of
        // 3): ascending with nulls last, then descending with nulls first, where `id` descends
        // too, so that walk is the exact reverse.
        let by_city = |desc: bool| {
            vec![OrderBy {
                target: kith_core::domain::filter::Target::Field("addressCity".into()),
                desc,
                nulls_first: desc,
            }]
        };
        let mut walks = Vec::new();
        for order in [by_city(false), by_city(true)] {
            let mut seen = Vec::new();
            let mut after = None;
            loop {
                let page = run(json!({}), order.clone(), PageRequest::Forward { first: 2, after: after.clone() }).await;
                seen.extend(page.records.iter().map(|(_, r)| r.id()));
                after = page.records.last().map(|(c, _)| c.clone());
                if !page.has_next {
                    break;
                }
            }
            let mut back = Vec::new();
            let mut before = None;
            loop {
                let page =
                    run(json!({}), order.clone(), PageRequest::Backward { last: 3, before: before.clone() }).await;
                let mut ids: Vec<_> = page.records.iter().map(|(_, r)| r.id()).collect();
                ids.extend(back);
                back = ids;
                before = page.records.first().map(|(c, _)| c.clone());
                if !page.has_previous {
                    break;
                }
            }
            assert_eq!(back, seen, "{}: backward pages give the same order", db.name);
            walks.push(seen);
        }
        let seen = walks[0].clone();
        assert_eq!(seen.len(), names.len(), "{}", db.name);
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{}: no duplicates across pages", db.name);
        let mut reversed = seen.clone();
        reversed.reverse();
        assert_eq!(walks[1], reversed, "{}: descending is the reverse of ascending", db.name);

        for bad in [
            json!({"firstName": {"near": "x"}}),
            json!({"secret": {"eq": 1}}),
            json!({"birthday": {"like": "1%"}}),
            json!({"createdAt": {"eq": "yesterday"}}),
        ] {
            assert!(Filter::from_json(&def, &[], &bad).is_err(), "{bad}");
        }
        let tags = tags::for_records(conn, &seen).await.unwrap();
        assert_eq!(tags.values().filter(|t| t.contains(&"vip".to_string())).count(), 2);
        db.cleanup().await;
    }
}

/// A page sorted by indexed keys (or filtered by a reference, in id order) is read in order
/// from an index ending with `id`, the keyset tie-break: no sort of the matching rows, on
/// either database. Without the trailing `id`, SQLite sorts each run of equal keys in a
/// temporary B-tree and PostgreSQL sorts every match.
#[tokio::test]
async fn sorted_and_reference_filtered_pages_are_read_in_index_order() {
    for db in TestDb::all().await {
        let def = db.kith.object("contact").unwrap();
        let backend = db.kith.store.backend();
        let company = uuid::Uuid::now_v7().to_string();
        let cases = [
            (
                json!({"addressCity": {"eq": "Lyon"}}),
                vec![OrderBy::asc("lastName")],
                "ix_contact_address_city_last_name_id",
            ),
            (json!({}), vec![OrderBy::asc("createdAt")], "ix_contact_created_at_id"),
            // Newest first: the same index read backwards, `id` descending with it.
            (
                json!({}),
                vec![OrderBy {
                    target: kith_core::domain::filter::Target::Field("createdAt".into()),
                    desc: true,
                    nulls_first: true,
                }],
                "ix_contact_created_at_id",
            ),
            (
                json!({"addressCity": {"eq": "Lyon"}}),
                vec![OrderBy {
                    target: kith_core::domain::filter::Target::Field("lastName".into()),
                    desc: true,
                    nulls_first: true,
                }],
                "ix_contact_address_city_last_name_id",
            ),
            (json!({"companyId": {"eq": company}}), vec![], "ix_contact_company_id_id"),
            (json!({"lifecycleStage": {"eq": "LEAD"}}), vec![], "ix_contact_lifecycle_stage_id"),
        ];
        // Each page alone, and with its companies joined (as a page answered directly reads them).
        let company_def = db.kith.object("company").unwrap();
        let name = ["name".to_owned()];
        let with_company =
            [kith_core::store::records::Join { reference: "companyId", target: &company_def, fields: &name }];
        let plain: [kith_core::store::records::Join<'_>; 0] = [];
        for ((filter, order, index), joins) in
            cases.iter().flat_map(|case| [(case.clone(), &plain[..]), (case.clone(), &with_company[..])])
        {
            let query = ListQuery {
                filter: Filter::from_json(&def, &[], &filter).unwrap(),
                order,
                page: PageRequest::Forward { first: 50, after: None },
                include_deleted: false,
            };
            let statement =
                kith_core::store::records::list_statement_joined(backend, &def, &query, None, joins).unwrap();
            assert_eq!(statement.sql.contains("LEFT JOIN"), !joins.is_empty(), "{}", statement.sql);
            let plan = query_plan(&db, &statement).await;
            let text = format!("{}\n{}", statement.sql, plan.join("\n"));
            assert!(text.contains(index), "{}: {filter} uses {index}:\n{text}", db.name);
            assert!(
                !text.contains("TEMP B-TREE") && !text.contains("Sort"),
                "{}: {filter} sorts nothing:\n{text}",
                db.name
            );
        }
        db.cleanup().await;
    }
}

/// `startsWith` ignores case, takes `%`, `_` and `\\` literally, and reads the field's prefix
/// index (migration 12) on both databases, with and without a sort on the field.
#[tokio::test]
async fn starts_with_ignores_case_and_reads_the_prefix_index() {
    use sea_orm::{ConnectionTrait, Statement};
    for db in TestDb::all().await {
        for (first, last) in [
            ("Ada", "Lovelace"),
            ("Bob", "LOVE"),
            ("Cy", "love_bug"),
            ("Dee", "lovexbug"),
            ("Eve", "Lov%e"),
            ("Fay", "Loq"),
            ("Gil", "Émile"),
            ("Hal", "émile"),
        ] {
            db.create("contact", json!({"firstName": first, "lastName": last})).await.unwrap();
        }
        db.create("contact", json!({"firstName": "Ivy"})).await.unwrap();
        let def = db.kith.object("contact").unwrap();
        let conn = db.kith.store.conn();
        let object: &kith_core::domain::object::ObjectDef = &def;
        let run = |prefix: &str| {
            let filter = Filter::from_json(object, &[], &json!({"lastName": {"startsWith": prefix}})).unwrap();
            let query = ListQuery {
                filter,
                order: vec![OrderBy::asc("firstName")],
                page: PageRequest::Forward { first: 50, after: None },
                include_deleted: false,
            };
            async move {
                let page = list(conn, object, &query).await.unwrap();
                page.records.iter().map(|(_, r)| r.get("firstName").to_string()).collect::<Vec<_>>()
            }
        };
        assert_eq!(run("love").await, ["Ada", "Bob", "Cy", "Dee"], "{}", db.name);
        assert_eq!(run("LOVE_").await, ["Cy"], "{}: `_` is literal", db.name);
        assert_eq!(run("lov%").await, ["Eve"], "{}: `%` is literal", db.name);
        assert_eq!(run("lo").await, ["Ada", "Bob", "Cy", "Dee", "Eve", "Fay"], "{}", db.name);
        assert_eq!(run("").await.len(), 8, "{}: every last name, no null", db.name);
        assert_eq!(run("lovelacex").await, Vec::<String>::new(), "{}", db.name);
        // Lower-cased the way the database lower-cases: SQLite (ASCII only) keeps `É`, and
        // PostgreSQL folds it where the database's character type knows it (C.UTF-8 does).
        let folds = conn
            .query_one_raw(Statement::from_string(conn.get_database_backend(), "SELECT lower('É') = 'é'"))
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index::<bool>(0)
            .unwrap_or(false);
        let expected: &[&str] = if folds { &["Gil", "Hal"] } else { &["Hal"] };
        assert_eq!(run("ÉMI").await, expected, "{}", db.name);
        // The plan: the prefix index, for a page in id order and one sorted by the field.
        for order in [vec![], vec![OrderBy::asc("lastName")]] {
            let filter = Filter::from_json(&def, &[], &json!({"lastName": {"startsWith": "lov"}})).unwrap();
            let query = ListQuery {
                filter,
                order,
                page: PageRequest::Forward { first: 50, after: None },
                include_deleted: false,
            };
            let statement =
                kith_core::store::records::list_statement(db.kith.store.backend(), &def, &query, None).unwrap();
            // Generic plans too, on PostgreSQL: the prefix's range is bound, not written into
            // the SQL. Sorting stays allowed: the prefix index's matches are sorted.
            let settings = ["enable_seqscan = off", "plan_cache_mode = force_generic_plan"];
            let plan = query_plan_with(&db, &statement, &settings).await;
            let text = format!("{}\n{}", statement.sql, plan.join("\n"));
            assert!(text.contains("ix_contact_last_name_prefix"), "{}: the prefix index:\n{text}", db.name);
        }
        db.cleanup().await;
    }
}

/// Migration 10 goes down to the indexes it replaced and up again, leaving the schema as it was,
/// on both databases.
#[tokio::test]
async fn the_sort_index_migration_goes_down_and_up_again() {
    use kith_migrations::{Migrator, MigratorTrait};
    use sea_orm::{ConnectionTrait, Statement};
    for db in TestDb::all().await {
        let conn = db.kith.store.pool();
        let backend = conn.get_database_backend();
        let indexes = || async {
            let sql = if backend == sea_orm::DbBackend::Sqlite {
                "SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'ix_%' ORDER BY name"
            } else {
                "SELECT indexname AS name FROM pg_indexes WHERE schemaname = 'public' AND indexname LIKE 'ix_%' ORDER BY indexname"
            };
            let rows = conn.query_all_raw(Statement::from_string(backend, sql)).await.unwrap();
            rows.iter().map(|r| r.try_get::<String>("", "name").unwrap()).collect::<Vec<String>>()
        };
        let up = indexes().await;
        for name in ["ix_contact_created_at_id", "ix_contact_last_name_first_name_id", "ix_activity_owner_id_due_at_id"]
        {
            assert!(up.contains(&name.to_owned()), "{}: {name} in {up:?}", db.name);
        }
        // Down past migrations 20 (contact time zone), 19 (mail), 18 (partitioned plugin
        // delivery), 17 (search index without pending list), 16 (webhooks), 15 (consent), 14
        // (import runs), 13 (idempotency keys), 12 (prefix indexes) and 11 (search words), then 10.
        Migrator::down(conn, Some(11)).await.unwrap();
        let down = indexes().await;
        let later = |name: &String| {
            name.starts_with("ix_idempotency_key")
                || name.starts_with("ix_import_run")
                || name.starts_with("ix_consent")
                || name.starts_with("ix_webhook")
                || name.starts_with("ix_mail_message")
        };
        let up: Vec<String> = up.into_iter().filter(|name| !later(name)).collect();
        let prefix: Vec<&String> = up.iter().filter(|name| name.ends_with("_prefix")).collect();
        assert_eq!(prefix.len(), 7, "{}: migration 12's indexes in {up:?}", db.name);
        assert!(down.iter().all(|name| !name.ends_with("_prefix")), "{}: and gone in {down:?}", db.name);
        for name in ["ix_contact_created_at", "ix_contact_last_name_first_name", "ix_activity_owner_id_due_at"] {
            assert!(down.contains(&name.to_owned()), "{}: {name} is back in {down:?}", db.name);
            assert!(!down.contains(&format!("{name}_id")), "{}: {name}_id is gone from {down:?}", db.name);
        }
        assert_eq!(down.len(), up.len() - prefix.len(), "{}: one index back for each one dropped", db.name);
        Migrator::up(conn, None).await.unwrap();
        let again: Vec<String> = indexes().await.into_iter().filter(|name| !later(name)).collect();
        assert_eq!(again, up, "{}: up again, as before", db.name);
        db.cleanup().await;
    }
}

/// Migration 11 rebuilds PostgreSQL's search documents from the index's words: before it, an
/// e-mail domain or a word without its diacritics found nothing there; after it, both databases
/// find the record, and down and up again leave the index as the store writes it.
#[tokio::test]
async fn the_search_words_migration_rebuilds_postgres_documents_and_goes_down_and_up() {
    use kith_core::store::search::search;
    use kith_migrations::{Migrator, MigratorTrait};
    for db in TestDb::all().await {
        db.create("contact", json!({"firstName": "Zoë", "lastName": "Quist", "email": "zoe@dunes.example"}))
            .await
            .unwrap();
        let conn = db.kith.store.pool();
        let found = |query: &'static str| async move {
            let hits = search(conn, query, &[], 10).await.unwrap();
            hits.into_iter().map(|h| h.title).collect::<Vec<String>>()
        };
        db.create("contact", json!({"firstName": "Jürgen", "lastName": "Brandt"})).await.unwrap();
        for query in ["dunes", "zoe@dunes.example", "zoe quist"] {
            assert_eq!(found(query).await, ["Zoë Quist"], "{}: {query}", db.name);
        }
        assert_eq!(found("jurgen").await, ["Jürgen Brandt"], "{}", db.name);
        // Down past migrations 20 (contact time zone), 19 (mail), 18 (partitioned plugin
        // delivery), 17 (search index without pending list), 16 (webhooks), 15 (consent), 14
        // (import runs), 13 (idempotency keys) and 12 (prefix indexes) to before 11.
        Migrator::down(conn, Some(10)).await.unwrap();
        if db.name == "postgres" {
            // The documents as PostgreSQL's parser made them: one token for the whole address,
            // and `Jürgen` kept its umlaut.
            for query in ["dunes", "zoe@dunes.example", "jurgen"] {
                assert!(found(query).await.is_empty(), "{}: {query} before migration 11", db.name);
            }
        }
        Migrator::up(conn, None).await.unwrap();
        for query in ["dunes", "zoe@dunes.example", "zoe q", "ZOË quist"] {
            assert_eq!(found(query).await, ["Zoë Quist"], "{}: {query} after migration 11", db.name);
        }
        assert_eq!(found("jurgen").await, ["Jürgen Brandt"], "{}: after migration 11", db.name);
        db.cleanup().await;
    }
}

/// PostgreSQL plans a search once per connection, not per query: the statement's text search
/// queries are subqueries, so after the planner's five custom plans the prepared statement keeps
/// a generic one (planning a search took four times as long as running it).
#[tokio::test]
async fn a_postgres_search_keeps_one_generic_plan() {
    use kith_core::store::search::search;
    use sea_orm::{ConnectionTrait, Statement};
    let Some(db) = TestDb::postgres_or_skip().await else { return };
    db.create("contact", json!({"firstName": "Grace", "lastName": "Hopper"})).await.unwrap();
    db.create("contact", json!({"firstName": "Alan", "lastName": "Turing"})).await.unwrap();
    // One transaction is one connection, so every run uses the same prepared statement.
    let tx = db.kith.store.begin(&kith_core::domain::actor::Actor::system("test")).await.unwrap();
    for (i, query) in ["grace", "turing", "hop", "nobody", "alan", "grace hopper", "tur", "g"].iter().enumerate() {
        let hits = search(tx.conn(), query, &[], 10).await.unwrap();
        let expected = match *query {
            "nobody" => 0,
            _ => 1,
        };
        assert_eq!(hits.len(), expected, "run {i}: {query}: {hits:?}");
    }
    let rows = tx
        .conn()
        .query_all_raw(Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements \
             WHERE statement LIKE '%to_tsquery%' AND statement NOT LIKE '%pg_prepared_statements%'",
        ))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "one prepared search statement");
    let generic: i64 = rows[0].try_get("", "generic_plans").unwrap();
    let custom: i64 = rows[0].try_get("", "custom_plans").unwrap();
    assert!(generic >= 3 && custom <= 5, "generic {generic}, custom {custom}");
    tx.rollback().await.unwrap();
    db.cleanup().await;
}

/// A page is read differently from a record by id (on SQLite, a whole page comes back as one
/// row of JSON): every kind of value, nulls, awkward text and joined targets read the same
/// both ways, on both databases.
#[tokio::test]
async fn pages_read_every_kind_of_value_as_reads_by_id_do() {
    use kith_core::store::records::{Join, get, list_joined};
    for db in TestDb::all().await {
        let awkward = "quote \" backslash \\ slash / newline \n tab \t bell \u{7} nul-ish \u{1} é ü 日本 🦀 '";
        let acme = db
            .create(
                "company",
                json!({"name": awkward, "employees": 9_007_199_254_740_993_i64, "annualRevenue": "12345678901.2345"}),
            )
            .await
            .unwrap();
        let gone = db.create("company", json!({"name": "Gone Ltd", "annualRevenue": "0.0001"})).await.unwrap();
        let people = [
            json!({"firstName": awkward, "lastName": "", "birthday": "1969-07-20", "emailOptIn": true,
                   "companyId": acme.id().to_string(), "lifecycleStage": "CUSTOMER", "tags": ["a"]}),
            json!({"firstName": "Bo", "email": "Bo.O@Example.org", "emailOptIn": false, "doNotContact": true, "companyId": gone.id().to_string()}),
            json!({"lastName": "Nobody"}),
        ];
        let mut contacts = Vec::new();
        for person in people {
            contacts.push(db.create("contact", person).await.unwrap());
        }
        let pipeline = db.create("pipeline", json!({"name": "Sales", "currency": "EUR"})).await.unwrap();
        let stage = db
            .create("stage", json!({"pipelineId": pipeline.id().to_string(), "name": "New", "position": 1, "probability": 10, "kind": "OPEN"}))
            .await
            .unwrap();
        for (i, amount) in [json!("0.01"), json!("5.5"), json!(null), json!("99999999999.99")].into_iter().enumerate() {
            let mut deal = json!({"title": format!("Deal {i} {awkward}"), "amount": amount, "expectedCloseDate": "2027-01-31",
                                  "pipelineId": pipeline.id().to_string(), "stageId": stage.id().to_string()});
            if i < contacts.len() {
                deal["contactId"] = json!(contacts[i].id().to_string());
                deal["companyId"] = contacts[i].get("companyId").to_json();
            }
            db.create("deal", deal).await.unwrap();
        }
        let tx = db.tx().await;
        kith_core::service::records::delete(&tx, &db.kith.registry(), "company", gone.id()).await.unwrap();
        tx.commit().await.unwrap();

        let conn = db.kith.store.conn();
        for object in ["company", "contact", "deal"] {
            let def = db.kith.object(object).unwrap();
            let query = ListQuery::first(Filter::all(), 200);
            let page = list(conn, &def, &query).await.unwrap();
            assert!(!page.records.is_empty(), "{}: {object}", db.name);
            for (_, record) in &page.records {
                let by_id = get(conn, &def, record.id()).await.unwrap().unwrap();
                assert_eq!(record, &by_id, "{}: a {object} read on a page and by id", db.name);
            }
        }
        assert_eq!(
            list(conn, &db.kith.object("company").unwrap(), &ListQuery::first(Filter::all(), 200))
                .await
                .unwrap()
                .records
                .iter()
                .map(|(_, r)| r.get("employees").clone())
                .collect::<Vec<_>>(),
            [kith_core::domain::value::Value::Int(9_007_199_254_740_993)],
            "{}: integers beyond a double's precision stay exact; the deleted company is not listed",
            db.name
        );

        // Deals with their contact and company joined: each target as read by id (just the
        // fields asked for, and `id`), none when the reference is null or its target deleted.
        let deal = db.kith.object("deal").unwrap();
        let contact = db.kith.object("contact").unwrap();
        let company = db.kith.object("company").unwrap();
        let contact_fields: Vec<String> =
            ["firstName", "birthday", "emailOptIn", "doNotContact", "lifecycleStage"].map(String::from).to_vec();
        let company_fields: Vec<String> = ["name", "annualRevenue", "employees"].map(String::from).to_vec();
        let joins = [
            Join { reference: "contactId", target: &contact, fields: &contact_fields },
            Join { reference: "companyId", target: &company, fields: &company_fields },
        ];
        let fields: Vec<String> =
            ["title", "amount", "expectedCloseDate", "contactId", "companyId"].map(String::from).to_vec();
        let order = vec![OrderBy::asc("title")];
        let query = ListQuery { order, ..ListQuery::first(Filter::all(), 3) };
        let page = list_joined(conn, &deal, &query, Some(&fields), &joins, true).await.unwrap();
        assert!(page.has_next, "{}: a fourth deal follows", db.name);
        assert_eq!(page.records.len(), 3, "{}", db.name);
        assert_eq!(page.joined.len(), 3, "{}", db.name);
        let mut seen_missing = 0;
        for ((cursor, record), targets) in page.records.iter().zip(&page.joined) {
            assert!(!cursor.is_empty(), "{}", db.name);
            let full = get(conn, &deal, record.id()).await.unwrap().unwrap();
            for name in fields.iter().chain(["id".to_string()].iter()) {
                assert_eq!(record.get(name), full.get(name), "{}: deal {name}", db.name);
            }
            for ((join, wanted), target) in joins.iter().zip([&contact_fields, &company_fields]).zip(targets) {
                let expected = match full.get(join.reference).as_uuid() {
                    Some(id) => get(conn, join.target, id).await.unwrap().filter(|r| r.get("deletedAt").is_null()),
                    None => None,
                };
                match (expected, target) {
                    (None, None) => seen_missing += 1,
                    (Some(expected), Some(target)) => {
                        assert_eq!(target.fields.len(), wanted.len() + 1, "{}: only the fields asked for", db.name);
                        for name in wanted.iter().chain(["id".to_string()].iter()) {
                            assert_eq!(target.get(name), expected.get(name), "{}: {} {name}", db.name, join.reference);
                        }
                    }
                    (expected, target) => {
                        panic!("{}: {} expected {expected:?}, read {target:?}", db.name, join.reference)
                    }
                }
            }
        }
        // Deal 1's company is deleted, deal 2 has none (deal 3, not on this page, has neither).
        assert_eq!(seen_missing, 2, "{}", db.name);
        let titles: Vec<String> = page.records.iter().map(|(_, r)| r.get("title").to_string()).collect();
        let mut sorted = titles.clone();
        sorted.sort();
        assert_eq!(titles, sorted, "{}: page order", db.name);

        // An empty page.
        let none = Filter::from_json(&deal, &[], &json!({"title": {"eq": "no such deal"}})).unwrap();
        let empty = list_joined(conn, &deal, &ListQuery::first(none, 50), Some(&fields), &joins, true).await.unwrap();
        assert!(empty.records.is_empty() && empty.joined.is_empty() && !empty.has_next, "{}", db.name);
        db.cleanup().await;
    }
}
