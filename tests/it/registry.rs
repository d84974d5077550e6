//! The registry is the one description of every kind of record: a new object described once
//! (one `ObjectDef` added to a registry, with the table a migration would make) appears in the
//! schema, its filters, relations, export and search; and the naming plan the API builds with
//! is exactly what the built schema answers, so plugin clash checks need no schema.

use std::collections::{BTreeMap, BTreeSet};

use async_graphql::dynamic::Schema;
use kith_core::api::schema::build_schema;
use kith_core::config::ApiConfig;
use kith_core::domain::actor::Role;
use kith_core::domain::naming::Names;
use kith_core::domain::object::{FieldDef, ObjectDef, Registry};
use kith_core::domain::value::FieldKind;
use kith_core::plugin::manifest::Manifest;
use kith_core::plugin::{bundled, extension, objects};
use kith_core::service::export::{Format, export};
use kith_tests::TestDb;
use serde_json::{Value, json};

use crate::util::{Server, token};

/// An object Kith does not have: invoices of companies, searchable by number and customer.
fn invoice() -> ObjectDef {
    ObjectDef::new("invoice", "invoices", "A bill sent to a company.")
        .field(FieldDef::new("number", FieldKind::Text).required().doc("Invoice number."))
        .field(FieldDef::new("customer", FieldKind::Text).doc("Who it is addressed to."))
        .field(FieldDef::new("total", FieldKind::Decimal).doc("Amount due."))
        .field(FieldDef::new("companyId", FieldKind::Ref("company".into())).doc("The company billed."))
        .titled(&["Invoice {number}"], "number")
        .with(|def| {
            def.exportable = true;
            def.search_fields = vec!["number".into(), "customer".into()];
        })
        .finish()
}

/// Type and field names as the schema's own introspection answers them: every type, and the
/// fields of `Query`, `Mutation` and the given object types.
async fn introspected(schema: &Schema, object_types: &BTreeSet<String>) -> Names {
    let response = schema.execute("{ __schema { types { name fields { name } } } }").await;
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    let data = response.data.into_json().unwrap();
    let mut names = Names::default();
    for ty in data["__schema"]["types"].as_array().unwrap() {
        let name = ty["name"].as_str().unwrap().to_owned();
        if name.starts_with("__") {
            continue;
        }
        if name == "Query" || name == "Mutation" || object_types.contains(&name) {
            let fields = ty["fields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap().to_owned());
            names.fields.insert(name.clone(), fields.collect());
        }
        names.types.insert(name);
    }
    names
}

fn with_bundled_plugins() -> Registry {
    let mut registry = Registry::core();
    for plugin in bundled::BUNDLED {
        let manifest = Manifest::parse(plugin.manifest).unwrap();
        registry.extend(objects::object_defs(&manifest)).unwrap();
        registry.add_extension(extension::extension(&manifest)).unwrap();
    }
    registry
}

#[tokio::test]
async fn the_naming_plan_is_what_the_built_schema_answers() {
    let mut with_invoice = Registry::core();
    with_invoice.extend(vec![invoice()]).unwrap();
    for (what, registry) in
        [("core", Registry::core()), ("bundled plugins", with_bundled_plugins()), ("an invoice object", with_invoice)]
    {
        let plan = Names::of(&registry).unwrap_or_else(|e| panic!("{what}: {e}"));
        let schema = build_schema(&registry, None, ApiConfig::default()).unwrap();
        let object_types: BTreeSet<String> = registry.objects().map(|d| d.type_name.clone()).collect();
        let built = introspected(&schema, &object_types).await;
        let only_planned: Vec<_> = plan.types.difference(&built.types).collect();
        let only_built: Vec<_> = built.types.difference(&plan.types).collect();
        assert!(
            only_planned.is_empty() && only_built.is_empty(),
            "{what}: types planned but not built {only_planned:?}, built but not planned {only_built:?}"
        );
        let empty = BTreeSet::new();
        let mut differences = BTreeMap::new();
        for ty in plan.fields.keys().chain(built.fields.keys()) {
            let (planned, got) = (plan.fields.get(ty).unwrap_or(&empty), built.fields.get(ty).unwrap_or(&empty));
            if planned != got {
                let missing: Vec<_> = planned.difference(got).cloned().collect();
                let extra: Vec<_> = got.difference(planned).cloned().collect();
                differences.insert(ty.clone(), (missing, extra));
            }
        }
        assert!(
            differences.is_empty(),
            "{what}: fields (planned but not built, built but not planned): {differences:#?}"
        );
    }
}

#[test]
fn the_naming_plan_refuses_clashes_naming_them() {
    // An object whose query is a core query, and one whose type is a core type.
    for (object, expected) in [
        (ObjectDef::new("search", "searches", "x"), "query `search`"),
        (ObjectDef::new("pageInfo", "pageInfos", "x"), "GraphQL type `PageInfo`"),
        (ObjectDef::new("tag", "auditLog", "x"), "query `auditLog`"),
    ] {
        let mut registry = Registry::core();
        registry.extend(vec![object.finish()]).unwrap();
        let err = Names::of(&registry).unwrap_err();
        assert!(err.contains(expected), "{err} should say {expected}");
    }
    // Two references to one object get distinct relation names; a relation that shadows a
    // field of its target is refused.
    let shadow = ObjectDef::new("firm", "email", "x")
        .field(FieldDef::new("contactId", FieldKind::Ref("contact".into())))
        .with(|d| d.plugin = Some("p".into()))
        .finish();
    let err = Registry::core().extend(vec![shadow]).unwrap_err();
    assert!(err.contains("Contact.email"), "{err}");
}

#[tokio::test]
async fn a_new_object_described_once_is_in_the_schema_filters_relations_export_and_search() {
    for db in TestDb::all().await {
        let name = db.name;
        // The one edit: the object's description. (Its table is what its migration would make.)
        let def = invoice();
        kith_core::store::plugin_objects::create_table(db.kith.store.conn(), &def).await.unwrap();
        let mut registry = (*db.kith.registry()).clone();
        registry.extend(vec![def]).unwrap();
        db.kith.set_registry(registry);

        let server = Server::start(&db).await;
        let agent = token(&db, Role::Agent).await;
        let company = server.gql(&agent, "mutation { createCompany(input: {name: \"Acme\"}) { id } }", json!({})).await;
        let company_id = company["data"]["createCompany"]["id"].as_str().unwrap().to_owned();
        for (number, customer, total) in [("INV-1", "Ada Lovelace", "120.50"), ("INV-2", "Grace Hopper", "80")] {
            let r = server
                .gql(
                    &agent,
                    "mutation($input: InvoiceCreateInput!) { createInvoice(input: $input) { id number total } }",
                    json!({"input": {"number": number, "customer": customer, "total": total, "companyId": company_id}}),
                )
                .await;
            assert_eq!(r["data"]["createInvoice"]["number"], number, "{name}: {r}");
        }

        // Filters and sorting, derived from the fields.
        let r = server
            .gql(
                &agent,
                "{ invoices(filter: {total: {gt: \"100\"}}, orderBy: [{field: number}]) { totalCount edges { node { number company { name } } } } }",
                json!({}),
            )
            .await;
        assert_eq!(r["data"]["invoices"]["totalCount"], 1, "{name}: {r}");
        assert_eq!(r["data"]["invoices"]["edges"][0]["node"]["number"], "INV-1", "{name}: {r}");
        assert_eq!(r["data"]["invoices"]["edges"][0]["node"]["company"]["name"], "Acme", "{name}: {r}");
        // The reverse relation on the referenced object.
        let r = server
            .gql(&agent, "query($id: ID!) { company(id: $id) { invoices { totalCount } } }", json!({"id": company_id}))
            .await;
        assert_eq!(r["data"]["company"]["invoices"]["totalCount"], 2, "{name}: {r}");

        // Search, with the title the description gives.
        let r = server.gql(&agent, "{ search(query: \"grace\") { object title } }", json!({})).await;
        assert_eq!(r["data"]["search"], json!([{"object": "INVOICE", "title": "Invoice INV-2"}]), "{name}: {r}");

        // Export.
        let mut out = Vec::new();
        let n = export(&db.kith, "invoice", Role::Viewer, Format::Json, &mut out).await.unwrap();
        assert_eq!(n, 2, "{name}");
        let exported: Value = serde_json::from_slice(&out).unwrap();
        let numbers: BTreeSet<&str> =
            exported.as_array().unwrap().iter().map(|r| r["number"].as_str().unwrap()).collect();
        assert_eq!(numbers, BTreeSet::from(["INV-1", "INV-2"]), "{name}");
        server.stop().await;
    }
}
