//! The SDK's in-memory `TestHost` reads as Kith does: one table of record queries (the filter
//! language, sorting, paging) and aggregates (metrics, groups, date buckets, ordering, limits),
//! each run twice through the same plugin code (the hostile test plugin's `conform` query):
//! natively against a `TestHost`, and as a wasm component in Kith over a real database (SQLite,
//! and PostgreSQL when configured). The answers must be the same, refusals included, so a plugin
//! whose unit tests pass against the `TestHost` reads the same records in production.
//!
//! The table, with Kith's answers, is also checked in as `plugin-sdk/conformance/reads.json`:
//! the Python and TypeScript SDKs' test hosts are held to it by their own unit tests (run by
//! `tests/it/sdks.rs`). This test fails when Kith's answers and that file part; `KITH_BLESS=1`
//! rewrites the file after a deliberate change of the table.

use kith_core::plugin::manager::Grants;
use kith_core::plugin::start_runtime;
use kith_plugin_sdk::Call;
use kith_plugin_sdk::testing::TestHost;
use kith_test_plugin_hostile::Hostile;
use kith_tests::TestDb;
use serde_json::{Value as Json, json};

use crate::util::{admin, hostile, plugins_config};

/// The object both hosts hold, declared by the plugin (so it reads it without grants), with a
/// field of each kind the filter language compares differently, and the query that runs a
/// request.
const SAMPLE: &str = r#"
[[objects]]
name = "sample"
plural = "samples"
[[objects.fields]]
name = "name"
type = "text"
required = true
[[objects.fields]]
name = "score"
type = "integer"
[[objects.fields]]
name = "amount"
type = "decimal"
[[objects.fields]]
name = "day"
type = "date"
[[objects.fields]]
name = "at"
type = "datetime"
[[objects.fields]]
name = "tier"
type = "enum"
values = ["BRONZE", "SILVER", "GOLD"]
[[objects.fields]]
name = "active"
type = "boolean"
[[objects.fields]]
name = "note"
type = "text"

[[queries]]
name = "conform"
returns = "JSON"
[queries.arguments]
request = "JSON!"
"#;

/// The records, in creation order, in the form Kith gives them back (decimals normalized,
/// instants with microseconds): the table is about reading, not about Kith's normalization,
/// which the `TestHost` does not do. Ties, negative numbers, nulls, a leap day and weeks that
/// start in one year and end in the next are on purpose.
fn samples() -> Vec<Json> {
    let fields = ["name", "score", "amount", "day", "at", "tier", "active", "note"];
    let rows = json!([
        ["Ada", 5, "10.5", "2026-01-05", "2026-01-05T09:00:00.000000Z", "GOLD", true, "Likes Lisp"],
        ["Bea", 12, "9", "2026-01-11", "2026-01-11T23:30:00.000000Z", "SILVER", false, "likes_prolog 100%"],
        ["Cy", null, "-2.25", "2026-02-01", null, "BRONZE", true, null],
        ["Dee", 5, "100", "2025-12-29", "2025-12-31T23:59:59.999999Z", "GOLD", null, "Teaches LISP"],
        ["Eve", -3, null, null, "2026-03-02T00:00:00.000000Z", null, false, "owns a cat"],
        ["Fay", 12, "10.5", "2026-01-07", "2026-01-07T12:00:00.000000Z", "SILVER", true, "likes cats"],
        ["Gus", 0, "0.001", "2026-03-31", "2026-03-31T08:00:00.000000Z", "BRONZE", false, "100% cat"],
        ["Hal", 100, "9.99", "2024-02-29", null, "GOLD", true, "Likes_lisp"]
    ]);
    let rows = rows.as_array().unwrap();
    rows.iter()
        .map(|row| fields.iter().zip(row.as_array().unwrap()).map(|(f, v)| (f.to_string(), v.clone())).collect())
        .collect()
}

/// A record query: every page's names, following the cursors.
fn query(filter: Json, order_by: Json, first: u32) -> Json {
    json!({"object": "sample", "query": {"filter": filter, "orderBy": order_by, "first": first}})
}

/// A filter, sorted by name.
fn filter(filter: Json) -> Json {
    query(filter, json!([{"field": "name"}]), 50)
}

/// Every record, sorted, in pages of `first`.
fn sorted(order_by: Json, first: u32) -> Json {
    query(Json::Null, order_by, first)
}

/// An aggregate over every record: group keys as `[field, bucket]`, metrics as `[metric, field]`.
fn group(group_by: Json, metrics: Json) -> Json {
    aggregate(Json::Null, group_by, metrics, None, None)
}

/// An aggregate: group keys as `[field, bucket]`, metrics as `[metric, field]`.
fn aggregate(filter: Json, group_by: Json, metrics: Json, limit: Option<u32>, order: Option<(u32, bool)>) -> Json {
    json!({"object": "sample", "aggregate": {"filter": filter, "groupBy": group_by, "metrics": metrics,
           "limit": limit, "order": order.map(|(metric, descending)| json!([metric, descending]))}})
}

/// What Kith does with a request of the table (checked too, so that no case passes by both
/// hosts refusing what Kith should read, or the other way round).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kith {
    /// Answers records or rows.
    Reads,
    /// Refuses the request (`{"error": ...}`).
    Refuses,
}

use Kith::{Reads, Refuses};

/// The table: what each case checks, what Kith does with it, and the request.
fn cases() -> Vec<(&'static str, Kith, Json)> {
    let all = Json::Null;
    let by_name = json!([{"field": "name"}]);
    vec![
        // Comparisons, on each kind.
        ("eq on an enum", Reads, filter(json!({"tier": {"eq": "GOLD"}}))),
        ("neq never matches null", Reads, filter(json!({"tier": {"neq": "GOLD"}}))),
        ("in on integers", Reads, filter(json!({"score": {"in": [5, 12]}}))),
        ("notIn never matches null", Reads, filter(json!({"tier": {"notIn": ["GOLD", "SILVER"]}}))),
        ("in an empty list matches nothing", Reads, filter(json!({"score": {"in": []}}))),
        ("notIn an empty list matches every value", Reads, filter(json!({"score": {"notIn": []}}))),
        ("an integer range", Reads, filter(json!({"score": {"gte": 0, "lt": 12}}))),
        ("lte and gt on integers", Reads, filter(json!({"score": {"gt": -3, "lte": 5}}))),
        ("decimals compare as numbers", Reads, filter(json!({"amount": {"gt": "9.5"}}))),
        ("decimals are equal whatever their scale", Reads, filter(json!({"amount": {"eq": "10.50"}}))),
        ("a decimal range below zero", Reads, filter(json!({"amount": {"lt": "0.01"}}))),
        ("a date range", Reads, filter(json!({"day": {"gte": "2026-01-01", "lte": "2026-01-31"}}))),
        (
            "an instant range",
            Reads,
            filter(json!({"at": {"gte": "2026-01-05T09:00:00.000000Z", "lt": "2026-03-02T00:00:00.000000Z"}})),
        ),
        (
            "instants compare as instants, whatever their precision",
            Reads,
            filter(json!({"at": {"gte": "2026-01-05T09:00:00Z"}})),
        ),
        ("eq true", Reads, filter(json!({"active": {"eq": true}}))),
        ("eq false", Reads, filter(json!({"active": {"eq": false}}))),
        ("isNull true", Reads, filter(json!({"note": {"isNull": true}}))),
        ("isNull false", Reads, filter(json!({"score": {"isNull": false}}))),
        ("startsWith ignores case", Reads, filter(json!({"note": {"startsWith": "likes"}}))),
        ("startsWith takes % and _ literally", Reads, filter(json!({"note": {"startsWith": "100%"}}))),
        ("like is case-sensitive", Reads, filter(json!({"note": {"like": "%LISP"}}))),
        ("like's _ and % are wildcards", Reads, filter(json!({"note": {"like": "likes_%"}}))),
        ("like escapes with a backslash", Reads, filter(json!({"note": {"like": "%\\_%"}}))),
        ("ilike ignores case", Reads, filter(json!({"note": {"ilike": "%lisp%"}}))),
        ("two operators on a field", Reads, filter(json!({"score": {"gte": 5, "neq": 12}}))),
        ("two fields", Reads, filter(json!({"tier": {"eq": "GOLD"}, "active": {"eq": true}}))),
        // Combinators, with SQL's three-valued logic on null.
        ("or", Reads, filter(json!({"or": [{"tier": {"eq": "GOLD"}}, {"score": {"gt": 10}}]}))),
        ("and", Reads, filter(json!({"and": [{"score": {"gte": 5}}, {"amount": {"lt": "10"}}]}))),
        ("an empty and matches everything", Reads, filter(json!({"and": []}))),
        ("an empty or matches nothing", Reads, filter(json!({"or": []}))),
        ("not of a comparison with null is not true", Reads, filter(json!({"not": {"score": {"eq": 5}}}))),
        ("not of isNull", Reads, filter(json!({"not": {"note": {"isNull": true}}}))),
        ("not of or", Reads, filter(json!({"not": {"or": [{"tier": {"eq": "GOLD"}}, {"active": {"eq": false}}]}}))),
        ("or with an unknown side", Reads, filter(json!({"or": [{"score": {"lt": 0}}, {"amount": {"gt": "50"}}]}))),
        ("not of in", Reads, filter(json!({"not": {"tier": {"in": ["BRONZE"]}}}))),
        ("nested not", Reads, filter(json!({"not": {"not": {"active": {"eq": true}}}}))),
        // Refusals.
        ("contains is not an operator", Refuses, filter(json!({"note": {"contains": "cat"}}))),
        ("eq null is refused", Refuses, filter(json!({"score": {"eq": null}}))),
        ("a null in a list is refused", Refuses, filter(json!({"tier": {"in": ["GOLD", null]}}))),
        ("pattern operators are for text", Refuses, filter(json!({"score": {"startsWith": "1"}}))),
        ("an operator needs a field", Refuses, filter(json!({"score": {}}))),
        (
            "nesting deeper than 8 is refused",
            Refuses,
            filter((0..9).fold(json!({"score": {"eq": 5}}), |f, _| json!({"not": f}))),
        ),
        ("a filter is an object", Refuses, filter(json!(["score"]))),
        ("first 0 is refused", Refuses, sorted(by_name.clone(), 0)),
        ("first 201 is refused", Refuses, sorted(by_name.clone(), 201)),
        ("a direction is ASC or DESC", Refuses, sorted(json!([{"field": "name", "direction": "UP"}]), 50)),
        ("orderBy is a list", Refuses, sorted(json!({"field": "name"}), 50)),
        ("six sort keys are refused", Refuses, sorted(Json::Array(vec![json!({"field": "name"}); 6]), 50)),
        ("a sort key names a field", Refuses, sorted(json!([{"direction": "ASC"}]), 50)),
        // Sorting and paging.
        ("creation order without orderBy, in pages", Reads, sorted(Json::Null, 3)),
        ("ties ascending follow creation", Reads, sorted(json!([{"field": "score"}]), 3)),
        ("ties descending run backwards", Reads, sorted(json!([{"field": "score", "direction": "DESC"}]), 3)),
        ("nulls last ascending by default", Reads, sorted(json!([{"field": "amount"}]), 4)),
        ("nulls first descending by default", Reads, sorted(json!([{"field": "day", "direction": "DESC"}]), 4)),
        ("nulls first when asked", Reads, sorted(json!([{"field": "score", "nulls": "FIRST"}]), 5)),
        (
            "nulls last descending when asked",
            Reads,
            sorted(json!([{"field": "at", "direction": "DESC", "nulls": "LAST"}]), 5),
        ),
        ("two sort keys", Reads, sorted(json!([{"field": "tier"}, {"field": "amount", "direction": "DESC"}]), 2)),
        (
            "booleans sort false first",
            Reads,
            sorted(json!([{"field": "active"}, {"field": "name", "direction": "DESC"}]), 3),
        ),
        ("decimals sort as numbers", Reads, sorted(json!([{"field": "amount", "direction": "DESC"}]), 50)),
        (
            "a filtered, sorted page",
            Reads,
            query(json!({"active": {"eq": true}}), json!([{"field": "at", "direction": "DESC"}]), 2),
        ),
        // Aggregates.
        ("a count", Reads, group(json!([]), json!([["Count", null]]))),
        (
            "a count of nothing is a row of 0",
            Reads,
            aggregate(
                json!({"score": {"gt": 1000}}),
                json!([]),
                json!([["Count", null], ["Sum", "amount"], ["Max", "name"], ["CountDistinct", "tier"]]),
                None,
                None,
            ),
        ),
        (
            "every metric by an enum, null group first",
            Reads,
            aggregate(
                all.clone(),
                json!([["tier", null]]),
                json!([
                    ["Count", null],
                    ["Sum", "amount"],
                    ["Min", "day"],
                    ["Max", "at"],
                    ["CountDistinct", "score"],
                    ["Sum", "score"]
                ]),
                None,
                None,
            ),
        ),
        ("groups of integers in numeric order", Reads, group(json!([["score", null]]), json!([["Count", null]]))),
        (
            "groups of decimals in numeric order",
            Reads,
            group(json!([["amount", null]]), json!([["Count", null], ["Min", "name"]])),
        ),
        ("two keys", Reads, group(json!([["active", null], ["tier", null]]), json!([["Count", null]]))),
        ("weeks start on Monday", Reads, group(json!([["day", "Week"]]), json!([["Count", null], ["Sum", "amount"]]))),
        ("months of instants", Reads, group(json!([["at", "Month"]]), json!([["Count", null], ["Max", "at"]]))),
        ("years", Reads, group(json!([["day", "Year"]]), json!([["Min", "amount"], ["Max", "amount"]]))),
        (
            "days",
            Reads,
            aggregate(
                json!({"day": {"lt": "2026-01-31"}}),
                json!([["day", "Day"]]),
                json!([["Count", null]]),
                None,
                None,
            ),
        ),
        (
            "min and max of text and numbers",
            Reads,
            aggregate(
                all.clone(),
                json!([]),
                json!([
                    ["Min", "name"],
                    ["Max", "name"],
                    ["Min", "amount"],
                    ["Max", "amount"],
                    ["Min", "score"],
                    ["Max", "score"]
                ]),
                None,
                None,
            ),
        ),
        (
            "a filtered aggregate",
            Reads,
            aggregate(
                json!({"or": [{"tier": {"eq": "GOLD"}}, {"note": {"ilike": "%cat%"}}]}),
                json!([["tier", null]]),
                json!([["Count", null], ["Sum", "amount"]]),
                None,
                None,
            ),
        ),
        (
            "the top groups by a metric",
            Reads,
            aggregate(all.clone(), json!([["tier", null]]), json!([["Sum", "amount"]]), Some(2), Some((0, true))),
        ),
        (
            "ascending by a metric, missing values last",
            Reads,
            aggregate(
                all.clone(),
                json!([["tier", null]]),
                json!([["Count", null], ["Sum", "amount"]]),
                None,
                Some((1, false)),
            ),
        ),
        (
            "descending by a metric, missing values last",
            Reads,
            aggregate(all.clone(), json!([["active", null]]), json!([["Max", "day"]]), None, Some((0, true))),
        ),
        (
            "a limit keeps the first groups",
            Reads,
            aggregate(all.clone(), json!([["score", null]]), json!([["Count", null]]), Some(3), None),
        ),
        (
            "limit 0 is refused",
            Refuses,
            aggregate(all.clone(), json!([["tier", null]]), json!([["Count", null]]), Some(0), None),
        ),
        ("no metric is refused", Refuses, group(json!([["tier", null]]), json!([]))),
        (
            "four keys are refused",
            Refuses,
            aggregate(
                all.clone(),
                json!([["tier", null], ["active", null], ["score", null], ["name", null]]),
                json!([["Count", null]]),
                None,
                None,
            ),
        ),
        (
            "ordering by a missing metric is refused",
            Refuses,
            aggregate(all.clone(), json!([["tier", null]]), json!([["Count", null]]), None, Some((1, true))),
        ),
        ("text is not summed", Refuses, group(json!([]), json!([["Sum", "name"]]))),
        ("text is not bucketed", Refuses, group(json!([["name", "Month"]]), json!([["Count", null]]))),
    ]
}

/// Runs `request` through the `TestHost`, natively.
fn in_test_host(host: &TestHost, request: &Json) -> Json {
    host.call::<Hostile>(&Call::new("conform", json!({"request": request})), false).unwrap()
}

#[tokio::test]
async fn the_test_host_reads_records_and_aggregates_as_kith_does() {
    let host = TestHost::new().own("sample");
    for sample in samples() {
        host.insert("sample", sample);
    }
    for db in TestDb::all().await {
        let manager = start_runtime(&db.kith, &plugins_config()).await.unwrap();
        let (manifest, wasm) = hostile("conform");
        let manifest = format!("{}{SAMPLE}", manifest.replace("events = [\"contact.*\"]", "events = []"));
        manager.install(&admin(), &manifest, &wasm).await.unwrap();
        manager.enable(&admin(), "conform", Grants::All).await.unwrap();
        manager.refresh().await.unwrap();
        for sample in samples() {
            db.create("sample", sample).await.unwrap();
        }
        let registry = db.kith.registry();
        let extension = registry.extensions().iter().find(|e| e.plugin == "conform").unwrap().clone();
        let caller = admin();
        let mut differences = Vec::new();
        let mut table = Vec::new();
        for (case, expected, request) in cases() {
            let arguments = json!({"request": request});
            let in_kith = kith_core::plugin::operation::run_operation(
                &db.kith,
                &extension,
                "conform",
                &caller,
                arguments.as_object().unwrap(),
            )
            .await
            .unwrap_or_else(|err| panic!("{}: {case}: {err}", db.name));
            let did = if in_kith.get("error").is_some() { Refuses } else { Reads };
            assert_eq!(did, expected, "{}: {case}: Kith answered {in_kith}", db.name);
            table.push(json!({
                "case": case,
                "kith": if expected == Reads { "reads" } else { "refuses" },
                "request": request,
                "answer": in_kith,
            }));
            let in_host = in_test_host(&host, &request);
            if in_kith != in_host {
                differences.push(format!("{case}:\n    Kith:     {in_kith}\n    TestHost: {in_host}"));
            }
        }
        assert!(
            differences.is_empty(),
            "{}: the TestHost answers {} of {} requests unlike Kith:\n{}",
            db.name,
            differences.len(),
            cases().len(),
            differences.join("\n")
        );
        check_checked_in_table(db.name, table);
        manager.stop().await;
        db.cleanup().await;
    }
}

/// Where the table is checked in for the other languages' test hosts.
fn table_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin-sdk/conformance/reads.json")
}

/// The table as the other SDKs read it: the records (inserted in this order), and each case with
/// what Kith answered.
fn table_document(cases: Vec<Json>) -> Json {
    json!({
        "about": "Reads a test host must answer as Kith does: generated by tests/it/conformance.rs from \
                  Kith's answers on SQLite and PostgreSQL (KITH_BLESS=1 rewrites it); read by the \
                  Python and TypeScript SDKs' unit tests. Each request is run through the SDK's \
                  records and aggregate calls: a query answers the `name` of each record of each \
                  page, following the cursors; an aggregate its rows; a refused call \
                  {\"error\": \"<ErrorCode>\"}.",
        "object": "sample",
        "records": samples(),
        "cases": cases,
    })
}

/// Kith's answers are those of the checked-in table (or rewrite it under `KITH_BLESS`).
fn check_checked_in_table(db: &str, cases: Vec<Json>) {
    let document = table_document(cases);
    let path = table_path();
    if std::env::var_os("KITH_BLESS").is_some() {
        let text = serde_json::to_string_pretty(&document).unwrap() + "\n";
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        return;
    }
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let checked_in: Json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        checked_in == document,
        "{db}: Kith's answers differ from {} (after a deliberate change of the table, rerun with KITH_BLESS=1 \
         and review the diff)",
        path.display()
    );
}
