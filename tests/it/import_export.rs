//! CSV import and export through the CLI on real files, and the demo seed.

use kith_core::domain::filter::Filter;
use kith_core::store::records::count;
use kith_tests::{TestDb, temp_dir};

use crate::cli::run_cli;

#[tokio::test]
async fn import_reports_bad_rows_dedupes_and_updates() {
    for db in TestDb::all().await {
        let dir = temp_dir();
        let file = dir.join("contacts.csv");
        std::fs::write(
            &file,
            "First Name,Last Name,E-mail Address,Birthday,Tags,Favourite colour\n\
             Ada,Lovelace,ada@example.org,1815-12-10,vip;math,blue\n\
             Grace,Hopper,not-an-email,,,red\n\
             Alan,Turing,alan@example.org,1912-13-01,,green\n\
             ADA,Duplicate,ADA@example.org,,,\n\
             Katherine,Johnson,kj@example.org,,,\n\
             ,,,,,\n",
        )
        .unwrap();
        let out = run_cli(&db.url, &["import", "contacts", file.to_str().unwrap()], "").await.unwrap();
        assert!(out.stderr.contains("6 rows read"), "{}", out.stderr);
        assert!(out.stderr.contains("2 created") || out.stderr.contains("3 created"), "{}", out.stderr);
        assert!(out.stderr.contains("line 3: email: `not-an-email` is not a valid e-mail address"), "{}", out.stderr);
        assert!(out.stderr.contains("line 4: birthday: expected a date"), "{}", out.stderr);
        assert!(out.stderr.contains("line 7:"), "an empty row is rejected: {}", out.stderr);
        assert!(
            out.stderr.contains("ignored columns (no matching field; use --map): Favourite colour"),
            "{}",
            out.stderr
        );
        let contact = db.kith.object("contact").unwrap();
        assert_eq!(count(db.kith.store.conn(), &contact, &Filter::all(), false).await.unwrap(), 2, "{}", db.name);
        assert_eq!(db.count_rows("event_outbox").await, 2, "{}: one event per created contact", db.name);
        assert_eq!(db.count_rows("audit_log").await, 2);
        // The bulk path writes the same audit entry and event a single create writes.
        let ada = kith_core::store::records::select_where(
            db.kith.store.conn(),
            &contact,
            &Filter::Cond(kith_core::domain::filter::Condition {
                target: kith_core::domain::filter::Target::Field("lastName".into()),
                kind: kith_core::domain::value::FieldKind::Text,
                op: kith_core::domain::filter::Op::Eq(kith_core::domain::value::Value::Text("Lovelace".into())),
            }),
        )
        .await
        .unwrap()
        .remove(0);
        let entries = kith_core::store::audit::list(db.kith.store.conn(), "contact", Some(ada.id()), 10).await.unwrap();
        assert_eq!(entries.len(), 1, "{}", db.name);
        assert_eq!(entries[0].action, "create");
        assert_eq!(entries[0].changes["firstName"], serde_json::json!({"before": null, "after": "Ada"}), "{}", db.name);
        assert_eq!(entries[0].changes["birthday"]["after"], "1815-12-10");
        assert_eq!(entries[0].changes["tags"], serde_json::json!({"before": [], "after": ["vip", "math"]}));
        assert!(entries[0].changes.get("phone").is_none(), "empty fields are not listed: {}", entries[0].changes);
        let events = kith_core::store::outbox::read(db.kith.store.conn(), 0, 10).await.unwrap();
        let event = events.iter().find(|e| e.record_id == Some(ada.id())).expect("Ada's event");
        assert_eq!(event.kind, "contact.created");
        assert_eq!(event.payload["source"], "import");
        assert_eq!(event.payload["record"]["email"], "ada@example.org");
        assert_eq!(event.payload["record"]["lastName"], "Lovelace");
        assert!(event.payload["record"]["phone"].is_null());
        assert_eq!(event.payload["record"]["version"], 1);

        // Update mode: the duplicate row updates Ada; --map adds a mapping.
        std::fs::write(
            &file,
            "email,Job,Favourite colour\nADA@example.org,Countess,blue\nnew@example.org,Engineer,red\n",
        )
        .unwrap();
        let out = run_cli(
            &db.url,
            &["import", "contacts", file.to_str().unwrap(), "--on-duplicate", "update", "--map", "Job=jobTitle"],
            "",
        )
        .await
        .unwrap();
        assert!(out.stderr.contains("1 created, 1 updated"), "{}", out.stderr);
        let out = run_cli(&db.url, &["export", "contacts", "--format", "json"], "").await.unwrap();
        let exported: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        let ada = exported
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["email"].as_str().is_some_and(|e| e.eq_ignore_ascii_case("ada@example.org")))
            .unwrap();
        assert_eq!(ada["jobTitle"], "Countess", "{}", db.name);
        assert_eq!(ada["lastName"], "Lovelace", "update keeps other fields");
        assert_eq!(ada["tags"], serde_json::json!(["math", "vip"]));

        let err = run_cli(&db.url, &["import", "contacts", file.to_str().unwrap(), "--map", "Job=salary"], "")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("salary"), "{err}");
        let csv_out = dir.join("out.csv");
        run_cli(&db.url, &["export", "contacts", "--output", csv_out.to_str().unwrap()], "").await.unwrap();
        let text = std::fs::read_to_string(&csv_out).unwrap();
        assert_eq!(text.lines().count(), 4, "header + 3 contacts: {text}");
        assert!(text.lines().next().unwrap().starts_with("id,firstName,lastName,email"));
        let _ = std::fs::remove_dir_all(dir);
        db.cleanup().await;
    }
}

#[tokio::test]
async fn companies_import_by_domain_and_contacts_link_to_them() {
    let db = TestDb::sqlite().await;
    let dir = temp_dir();
    let companies = dir.join("companies.csv");
    std::fs::write(
        &companies,
        "name,website,employees\nAcme,https://www.acme.example,12\nBad,acme.example,x\nNoName,,3\n,,\n",
    )
    .unwrap();
    let out = run_cli(&db.url, &["import", "companies", companies.to_str().unwrap()], "").await.unwrap();
    assert!(out.stderr.contains("2 created"), "{}", out.stderr);
    assert!(out.stderr.contains("line 3: employees: expected an integer"), "{}", out.stderr);
    assert!(out.stderr.contains("line 5: name: is required"), "{}", out.stderr);
    let contacts = dir.join("contacts.csv");
    std::fs::write(&contacts, "email,company\na@acme.example,acme.example\nb@other.example,other.example\n").unwrap();
    let out = run_cli(&db.url, &["import", "contacts", contacts.to_str().unwrap()], "").await.unwrap();
    assert!(out.stderr.contains("line 3: company: no company with domain `other.example`"), "{}", out.stderr);
    let _ = std::fs::remove_dir_all(dir);
    db.cleanup().await;
}

#[tokio::test]
async fn demo_seed_covers_every_stage_and_status_once() {
    for db in TestDb::all().await {
        let out = run_cli(&db.url, &["seed", "--demo"], "").await.unwrap();
        assert!(out.stderr.contains("seeded 8 companies, 48 contacts, 24 deals, 18 tickets"), "{}", out.stderr);
        for (table, column, expected) in
            [("stage s JOIN deal d ON d.stage_id = s.id", "s.name", 6), ("ticket", "status", 6)]
        {
            let sql = format!("SELECT COUNT(DISTINCT {column}) FROM {table}");
            let row = sea_orm::ConnectionTrait::query_one_raw(
                db.kith.store.conn(),
                sea_orm::Statement::from_string(db.kith.store.backend(), sql),
            )
            .await
            .unwrap()
            .unwrap();
            assert_eq!(row.try_get_by_index::<i64>(0).unwrap(), expected, "{}: {table}", db.name);
        }
        let again = run_cli(&db.url, &["seed", "--demo"], "").await.unwrap_err();
        assert!(again.to_string().contains("already"), "{again}");
        db.cleanup().await;
    }
}
