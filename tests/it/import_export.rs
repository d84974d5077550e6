//! CSV import and export through the CLI on real files, and the demo seed.

use kith_core::domain::filter::Filter;
use kith_core::store::records::count;
use kith_tests::{TestDb, temp_dir};

use crate::util::{run_cli, run_kith};

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
        let out =
            run_cli(&db.url, &["import", "contacts", file.to_str().unwrap(), "--allow-rejects"], "").await.unwrap();
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

/// The `csv` crate read an unterminated quote to the end of the file: "2 rows read, 2 created,
/// 0 rejected", exit 0, and the next row inside a last name. The broken row is rejected with its
/// line, the rows after it are imported as they are, and the import fails.
#[tokio::test]
async fn a_broken_quote_rejects_its_row_and_never_merges_the_rows_after_it() {
    use kith_core::domain::filter::{Condition, Op, Target};
    use kith_core::domain::value::{FieldKind, Value};
    for db in TestDb::all().await {
        let dir = temp_dir();
        let file = dir.join("contacts.csv");
        std::fs::write(
            &file,
            "First Name,Last Name,Email,Notes\n\
             Ada,\"Lovelace,ada@example.org,\n\
             Grace,Hopper,grace@example.org,\n\
             \"Alan\"x,Turing,alan@example.org,\n\
             Katherine,Johnson,kj@example.org,\"two\nlines\"\n\
             Dorothy,Vaughan,dv@example.org,\n",
        )
        .unwrap();
        let out = run_kith(&["--database", &db.url, "import", "contacts", file.to_str().unwrap()], Vec::new()).await;
        assert_eq!(out.status, 1, "{}: rejected rows fail the import: {}", db.name, out.stderr);
        assert!(out.stderr.contains("5 rows read"), "{}", out.stderr);
        assert!(out.stderr.contains("3 created"), "{}", out.stderr);
        assert!(
            out.stderr.contains(
                "line 2: a quoted field is not closed on its line (the quote on line 4 that would close it is \
                 followed by `A`)"
            ),
            "{}",
            out.stderr
        );
        assert!(
            out.stderr.contains("line 4: a quoted field is followed by `x` after its closing quote"),
            "{}",
            out.stderr
        );
        assert!(
            out.stderr.contains("error: 2 of 5 rows rejected (listed above); the other rows were imported"),
            "{}",
            out.stderr
        );
        let contact = db.kith.object("contact").unwrap();
        let by_last_name = |name: &str| {
            Filter::Cond(Condition {
                target: Target::Field("lastName".into()),
                kind: FieldKind::Text,
                op: Op::Eq(Value::Text(name.into())),
            })
        };
        for name in ["Hopper", "Johnson", "Vaughan"] {
            let found = kith_core::store::records::select_where(db.kith.store.conn(), &contact, &by_last_name(name))
                .await
                .unwrap();
            assert_eq!(found.len(), 1, "{}: {name}, whole and alone", db.name);
        }
        assert_eq!(count(db.kith.store.conn(), &contact, &Filter::all(), false).await.unwrap(), 3, "{}", db.name);
        // Accepting the rejects: success, and it says what it accepted.
        let out = run_kith(
            &["--database", &db.url, "import", "contacts", file.to_str().unwrap(), "--allow-rejects"],
            Vec::new(),
        )
        .await;
        assert_eq!(out.status, 0, "{}", out.stderr);
        assert!(out.stderr.contains("3 skipped as duplicates, 2 rejected"), "{}", out.stderr);
        assert!(out.stderr.contains("2 of 5 rows rejected (accepted with --allow-rejects)"), "{}", out.stderr);
        let _ = std::fs::remove_dir_all(dir);
        db.cleanup().await;
    }
}

/// A header none of whose columns maps to a name (a French export, say) made every row a
/// rejected row under a mere warning; it is an error naming the columns, before any row. An
/// empty file is an error; a header without rows says there are none.
#[tokio::test]
async fn a_header_without_a_name_column_or_an_empty_file_is_an_error() {
    for db in TestDb::all().await {
        let dir = temp_dir();
        let file = dir.join("contacts.csv");
        std::fs::write(&file, "Prénom,Nom,Courriel\nAda,Lovelace,ada@example.org\n").unwrap();
        let out = run_kith(&["--database", &db.url, "import", "contacts", file.to_str().unwrap()], Vec::new()).await;
        assert_eq!(out.status, 1, "{}", out.stderr);
        assert!(
            out.stderr.contains(
                "no column maps to a contact's firstName, lastName or email, so every row would be rejected \
                 (the columns are: Prénom, Nom, Courriel); map one with --map \"HEADER=firstName\""
            ),
            "{}",
            out.stderr
        );
        let out = run_kith(
            &["--database", &db.url, "import", "contacts", file.to_str().unwrap(), "--map", "Courriel=email"],
            Vec::new(),
        )
        .await;
        assert_eq!(out.status, 0, "{}", out.stderr);
        assert!(out.stderr.contains("1 created"), "{}", out.stderr);
        std::fs::write(&file, "Firma,Web\nAcme,acme.example\n").unwrap();
        let out = run_kith(&["--database", &db.url, "import", "companies", file.to_str().unwrap()], Vec::new()).await;
        assert_eq!(out.status, 1, "{}", out.stderr);
        assert!(out.stderr.contains("no column maps to a company's name"), "{}", out.stderr);

        std::fs::write(&file, "").unwrap();
        let out = run_kith(&["--database", &db.url, "import", "contacts", file.to_str().unwrap()], Vec::new()).await;
        assert_eq!(out.status, 1, "{}", out.stderr);
        assert!(out.stderr.contains("is empty: nothing to import"), "{}", out.stderr);
        std::fs::write(&file, "\n\n").unwrap();
        let out = run_kith(&["--database", &db.url, "import", "contacts", file.to_str().unwrap()], Vec::new()).await;
        assert_eq!(out.status, 1, "{}", out.stderr);
        assert!(out.stderr.contains("file: is empty"), "{}", out.stderr);
        std::fs::write(&file, "First Name,Email\n").unwrap();
        let out = run_kith(&["--database", &db.url, "import", "contacts", file.to_str().unwrap()], Vec::new()).await;
        assert_eq!(out.status, 0, "{}", out.stderr);
        assert!(out.stderr.contains("0 rows read"), "{}", out.stderr);
        assert!(out.stderr.contains("no rows to import: "), "{}", out.stderr);
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
    let out =
        run_cli(&db.url, &["import", "companies", companies.to_str().unwrap(), "--allow-rejects"], "").await.unwrap();
    assert!(out.stderr.contains("2 created"), "{}", out.stderr);
    assert!(out.stderr.contains("line 3: employees: expected an integer"), "{}", out.stderr);
    assert!(out.stderr.contains("line 5: name: is required"), "{}", out.stderr);
    let contacts = dir.join("contacts.csv");
    std::fs::write(&contacts, "email,company\na@acme.example,acme.example\nb@other.example,other.example\n").unwrap();
    let out =
        run_cli(&db.url, &["import", "contacts", contacts.to_str().unwrap(), "--allow-rejects"], "").await.unwrap();
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
