//! Unit tests on the SDK's in-memory host: what a pull plans and writes for pages the ERP
//! returned, and what the plugin does unconfigured. Talking to Tryton itself is tested against
//! a real server in `tests/it/tryton.rs`.

use kith_plugin_sdk::testing::TestHost;
use kith_plugin_sdk::{Call, Event};
use serde_json::json;

use crate::engine::{ErpRecord, Fields, Stream};
use crate::{Connector, failures, links, pull};

fn host() -> TestHost {
    TestHost::new()
        .grant("companies:read")
        .grant("companies:write")
        .grant("contacts:read")
        .grant("deals:read")
        .grant("deals:write")
        .grant("activities:write")
        .grant("kv")
        .own("erpLink")
        .own("erpProduct")
        .own("dealLine")
        .own("erpInvoice")
        .own("erpSyncError")
        .own("erpConflict")
        .setting("import_parties", json!(true))
        .setting("batch_size", json!(500))
}

fn party(id: &str, pairs: &[(&str, &str)]) -> ErpRecord {
    let mut fields: Fields = crate::engine::COMPANY_FIELDS.iter().map(|(f, _)| ((*f).to_owned(), None)).collect();
    fields.insert("active".into(), Some("true".into()));
    for (k, v) in pairs {
        fields.insert((*k).to_owned(), Some((*v).to_owned()));
    }
    ErpRecord { id: id.to_owned(), fields }
}

#[test]
fn a_new_party_becomes_a_linked_company_and_reading_it_again_changes_nothing() {
    let host = host();
    let page = vec![
        party(
            "7",
            &[("name", "Acme Ltd"), ("addressCity", "Lyon"), ("taxIdentifier", "FR123"), ("email", "ap@acme.test")],
        ),
        party("1", &[("name", "Our own organisation"), ("internal", "true")]),
    ];
    host.run(|| pull::write(pull::plan(Stream::Parties, &page).unwrap())).unwrap();
    let companies = host.records("company");
    assert_eq!(companies.len(), 1, "the organisation's own party is not imported");
    let company = &companies[0];
    assert_eq!(company.str("name"), Some("Acme Ltd"));
    assert_eq!(company.str("addressCity"), Some("Lyon"));
    assert_eq!(company.fields["customFields"]["taxIdentifier"], json!("FR123"));
    let links = host.records("erpLink");
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].str("kithId"), Some(company.id.as_str()));
    assert_eq!(links[0].str("externalKey"), Some("COMPANY:7"));
    // The same page again: nothing to do.
    let again = host.run(|| pull::plan(Stream::Parties, &page)).unwrap();
    assert!(again.creates.is_empty() && again.updates.is_empty(), "{again:?}");
}

#[test]
fn a_party_changed_in_the_erp_updates_its_company_and_a_conflict_goes_to_the_owner() {
    let host = host();
    host.run(|| {
        pull::write(pull::plan(Stream::Parties, &[party("7", &[("name", "Acme"), ("addressCity", "Lyon")])]).unwrap())
    })
    .unwrap();
    let company = host.records("company")[0].clone();
    // Kith renames it and changes the city; the ERP changes both too.
    host.run(|| {
        kith_plugin_sdk::records::update(
            "company",
            &company.id,
            &json!({"name": "Acme CRM", "addressCity": "Nice"}),
            None,
        )
    })
    .unwrap();
    let page = vec![party("7", &[("name", "Acme ERP"), ("addressCity", "Paris")])];
    host.run(|| pull::write(pull::plan(Stream::Parties, &page).unwrap())).unwrap();
    let company = host.record("company", &company.id).unwrap();
    assert_eq!(company.str("name"), Some("Acme CRM"), "the CRM owns the name");
    assert_eq!(company.str("addressCity"), Some("Paris"), "the ERP owns the billing address");
    let conflicts = host.records("erpConflict");
    assert_eq!(conflicts.len(), 2);
    assert!(conflicts.iter().any(|c| c.str("field") == Some("name") && c.str("winner") == Some("CRM")));
    assert!(conflicts.iter().any(|c| c.str("field") == Some("addressCity") && c.str("winner") == Some("ERP")));
    // The base keeps the ERP's name: the company's own event pushes Kith's.
    let link = host.records("erpLink")[0].clone();
    assert_eq!(link.fields["synced"]["name"], json!("Acme ERP"));
    assert_eq!(link.fields["synced"]["addressCity"], json!("Paris"));
}

#[test]
fn invoices_follow_their_party_and_posting_or_paying_one_adds_an_activity() {
    let host = host();
    host.run(|| pull::write(pull::plan(Stream::Parties, &[party("7", &[("name", "Acme")])]).unwrap())).unwrap();
    let company = host.records("company")[0].id.clone();
    let invoice = |state: &str, due: &str| ErpRecord {
        id: "30".into(),
        fields: [
            ("party", Some("7")),
            ("number", Some("INV-1")),
            ("invoiceDate", Some("2026-12-07")),
            ("total", Some("1250.00")),
            ("amountDue", Some(due)),
            ("currency", Some("USD")),
            ("state", Some(state)),
            ("reference", None),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.map(str::to_owned)))
        .collect(),
    };
    host.run(|| pull::write(pull::plan(Stream::Invoices, &[invoice("DRAFT", "0")]).unwrap())).unwrap();
    assert!(host.records("activity").is_empty());
    host.run(|| pull::write(pull::plan(Stream::Invoices, &[invoice("POSTED", "1250.00")]).unwrap())).unwrap();
    let balance = host.compute_field::<Connector>("company", "openBalance", std::slice::from_ref(&company)).unwrap();
    assert_eq!(balance, vec![json!("1250")]);
    host.run(|| pull::write(pull::plan(Stream::Invoices, &[invoice("PAID", "0")]).unwrap())).unwrap();
    let balance = host.compute_field::<Connector>("company", "openBalance", std::slice::from_ref(&company)).unwrap();
    assert_eq!(balance, vec![json!("0")]);
    let invoices = host.records("erpInvoice");
    assert_eq!(invoices.len(), 1);
    assert_eq!(invoices[0].str("state"), Some("PAID"));
    let subjects: Vec<String> =
        host.records("activity").iter().filter_map(|a| a.str("subject").map(str::to_owned)).collect();
    assert_eq!(subjects, vec!["Invoice INV-1 posted: 1250 USD".to_owned(), "Invoice INV-1 paid".to_owned()]);
}

#[test]
fn failures_back_off_and_give_up() {
    assert_eq!(failures::backoff_seconds(1), 60);
    assert_eq!(failures::backoff_seconds(3), 240);
    assert_eq!(failures::backoff_seconds(30), 3600);
    let host = host();
    let down = crate::engine::SyncError::retry("connection refused");
    host.run(|| failures::record(links::Kind::Company, "c1", &down)).unwrap();
    host.run(|| failures::record(links::Kind::Company, "c1", &down)).unwrap();
    let listed = host.records("erpSyncError");
    assert_eq!(listed.len(), 1, "one entry per record");
    assert_eq!(listed[0].fields["attempts"], json!(2));
    assert_eq!(listed[0].str("status"), Some("PENDING"));
    let bad = crate::engine::SyncError::fatal("UserError: invalid VAT");
    host.run(|| failures::record(links::Kind::Company, "c1", &bad)).unwrap();
    assert_eq!(host.records("erpSyncError")[0].str("status"), Some("FAILED"));
    host.run(|| failures::resolve(links::Kind::Company, "c1")).unwrap();
    assert_eq!(host.records("erpSyncError")[0].str("status"), Some("RESOLVED"));
}

#[test]
fn unconfigured_it_pushes_nothing_and_says_what_to_set() {
    let host = host();
    let company = host.insert("company", json!({"name": "Acme"}));
    let event = Event::new("company.created", "company", Some(&company), json!({"name": "Acme"}));
    host.on_events::<Connector>(&[event]).unwrap();
    assert!(host.records("erpLink").is_empty() && host.records("erpSyncError").is_empty());
    host.run_job::<Connector>("sync").unwrap();
    let err = host.call::<Connector>(&Call::new("resync", json!({})), true).unwrap_err();
    assert!(err.message.contains("`url`"), "{err}");
}
