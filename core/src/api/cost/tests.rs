//! The cost of sized fields, table-driven over documents and variables.

use async_graphql::Variables;

use crate::api::cost::{REPORT_COST, cost};

#[track_caller]
fn check(query: &str, variables: serde_json::Value, expect: usize) {
    let document = async_graphql::parser::parse_query(query).expect("the test query parses");
    let variables = Variables::from_json(variables);
    assert_eq!(cost(&document, &variables).extra, expect, "{query}");
}

#[test]
fn growth_costs_its_points_and_the_objects_in_each() {
    let growth = |range: &str, interval: &str| {
        format!("{{ contactGrowth({range}, interval: {interval}) {{ periodStart newContacts totalContacts }} }}")
    };
    let none = serde_json::json!({});
    check(&growth(r#"from: "2026-01-01", to: "2026-01-11""#, "DAY"), none.clone(), REPORT_COST + 10);
    // 2026-01-01 is a Thursday: its week starts on 2025-12-29; five weeks reach 2026-02-01.
    check(&growth(r#"from: "2026-01-01", to: "2026-02-01""#, "WEEK"), none.clone(), REPORT_COST + 5);
    check(&growth(r#"from: "2026-01-15", to: "2026-03-01""#, "MONTH"), none.clone(), REPORT_COST + 2);
    check(&growth(r#"from: "2026-01-15", to: "2026-03-02""#, "MONTH"), none.clone(), REPORT_COST + 3);
    // Over the cap, or not a range: its resolver refuses it before reading, so only the base.
    check(&growth(r#"from: "2000-01-01", to: "2030-01-01""#, "DAY"), none.clone(), REPORT_COST);
    check(&growth(r#"from: "2026-02-01", to: "2026-01-01""#, "DAY"), none.clone(), REPORT_COST);
    check(&growth(r#"from: "someday", to: "2026-01-01""#, "DAY"), none, REPORT_COST);
}

#[test]
fn arguments_come_from_variables_or_their_defaults() {
    let query = r#"query($f: Date!, $t: Date! = "2026-01-31", $i: GrowthInterval!) {
        contactGrowth(from: $f, to: $t, interval: $i) { newContacts } }"#;
    check(query, serde_json::json!({"f": "2026-01-01", "i": "DAY"}), REPORT_COST + 30);
    check(query, serde_json::json!({"f": "2026-01-01", "t": "2026-01-03", "i": "DAY"}), REPORT_COST + 2);
}

#[test]
fn aliases_and_fragments_each_count() {
    let field = r#"contactGrowth(from: "2026-01-01", to: "2026-01-11", interval: DAY) { newContacts }"#;
    check(&format!("{{ a: {field} b: {field} }}"), serde_json::json!({}), 2 * (REPORT_COST + 10));
    check(
        &format!("{{ ...F ... on Query {{ c: {field} }} }} fragment F on Query {{ a: {field} }}"),
        serde_json::json!({}),
        2 * (REPORT_COST + 10),
    );
    // A cycle (which validation refuses) is not followed.
    check("{ ...F } fragment F on Query { ...G } fragment G on Query { ...F }", serde_json::json!({}), 0);
}

#[test]
fn lists_cost_their_first_as_the_resolver_clamps_it() {
    let none = serde_json::json!({});
    check(r#"{ auditLog(object: "contact") { action } }"#, none.clone(), 50);
    check(r#"{ auditLog(object: "contact", first: 500) { action actorName changes } }"#, none.clone(), 500);
    check(r#"{ auditLog(object: "contact", first: 100000) { action } }"#, none.clone(), 500);
    check(r#"{ auditLog(object: "contact", first: -3) { action } }"#, none.clone(), 1);
    check(r#"{ search(query: "ada", first: 100) { title } }"#, none.clone(), REPORT_COST + 100);
    // Each candidate holds one object (its contact): 2 per item.
    check(r#"{ contactDuplicates(id: "x", first: 5) { score contact { id } } }"#, none.clone(), 10);
    check(
        r#"{ ticketReport(from: "a", to: "b") { volume } pipelineReport(pipelineId: "p") { winRate } }"#,
        none.clone(),
        2 * REPORT_COST,
    );
    // Other fields and mutations are async-graphql's to count.
    check("{ contacts(first: 200) { edges { node { id } } } }", none.clone(), 0);
    check(r#"mutation { auditLog(object: "contact", first: 500) { action } }"#, none, 0);
}

#[test]
fn a_document_too_long_to_walk_is_refused() {
    // Each fragment spreads the next one twice: 2^20 walks of the last one.
    let mut query = String::from("{ ...F0 }");
    for i in 0..20 {
        query.push_str(&format!(" fragment F{i} on Query {{ ...F{n} ...F{n} }}", n = i + 1));
    }
    query.push_str(" fragment F20 on Query { __typename }");
    check(&query, serde_json::json!({}), usize::MAX);
}
